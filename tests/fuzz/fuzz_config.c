/* libFuzzer target: the config loader on arbitrary text. It must either
 * load (and then every value is within its documented range) or fail with
 * one line naming a key; never crash or leak. */
#include "jobring/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char err[512];
	char *text;

	if (size > 1 << 16)
		return 0;
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	if (config_load_text(&cfg, text, err, sizeof(err)) == 0) {
		if (cfg.dispatch.max_attempts < 1 || cfg.ring_slots < 64 ||
		    (cfg.ring_slots & (cfg.ring_slots - 1)) || cfg.ntypes < 1 || cfg.nplans < 1)
			abort();
		config_free(&cfg);
	} else if (!err[0] || strchr(err, '\n') || strncmp(err, "config: ", 8) != 0) {
		abort();	/* an error must be one line naming the key */
	}
	free(text);
	return 0;
}
