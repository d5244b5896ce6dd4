/* libFuzzer target: provider reports. A report either parses within its
 * documented bounds or is refused with a reason; never a crash or a leak. */
#include "jobring/buf.h"
#include "jobring/report.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct report r;
	const char *why = NULL;

	if (report_parse((const char *)data, size, &r, &why) < 0) {
		if (!why || !*why)
			abort();
		return 0;
	}
	if (r.attempt < 1 || r.progress > 1000000 || r.compute_ms < 0)
		abort();
	if (r.event == REPORT_COMPLETE && r.output && strlen(r.output) > 256 * 1024)
		abort();
	if (r.event == REPORT_FAILED &&
	    (!r.code || strlen(r.code) > 40 || (r.message && strlen(r.message) > 1000) ||
	     (r.detail && strlen(r.detail) > 4096) ||
	     (r.detail && !utf8_valid(r.detail, strlen(r.detail)))))
		abort();
	if (r.step && strlen(r.step) > 128)
		abort();
	report_free(&r);
	return 0;
}
