/* libFuzzer target for schema.c. The input is a schema and an instance, both
 * JSON, split at the first newline or NUL. Beyond "no crash, no leak, no UB"
 * it checks the module's promises: a schema that passed schema_check never
 * makes schema_validate fail with -EINVAL, the quiet mode (errs NULL) then
 * agrees with the full one, and the error count matches what is recorded.
 *
 * clang -fsanitize=fuzzer,address,undefined -Iinclude src/schema.c src/util.c \
 *       tests/fuzz/fuzz_schema.c -lcjson -o fuzz_schema
 * ./fuzz_schema tests/fuzz/corpus/schema */
#include "jobring/schema.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	size_t cut = 0;
	cJSON *schema, *inst, *out, *copy;
	struct schema_errors errs;
	char err[256];
	int checked, r, q;

	while (cut < size && text[cut] != '\n' && text[cut] != '\0')
		cut++;
	schema = cJSON_ParseWithLength(text, cut);
	inst = cut < size ? cJSON_ParseWithLength(text + cut + 1, size - cut - 1) : NULL;
	if (!schema)
		goto out;
	checked = schema_check(schema, err, sizeof(err));
	if (checked != 0 && !err[0])
		abort(); /* a rejection always says why */
	out = schema_fields(schema);
	cJSON_Delete(out);
	if (!inst)
		goto out;

	r = schema_validate(schema, inst, &errs);
	q = schema_validate(schema, inst, NULL);
	/* On a checked schema both modes agree; on a broken one the quiet mode
	 * may stop at an instance error before reaching the broken keyword. */
	if (checked == 0 && (r < 0 || q != (r > 0)))
		abort();
	if ((r >= 0 && (size_t)r != errs.n) || errs.n > SCHEMA_MAX_ERRORS)
		abort();
	out = schema_errors_to_json(&errs);
	cJSON_Delete(out);
	schema_errors_free(&errs);

	copy = cJSON_Duplicate(inst, 1);
	if (copy && schema_apply_defaults(schema, copy) < 0 && cJSON_IsObject(copy))
		abort();
	cJSON_Delete(copy);
out:
	cJSON_Delete(schema);
	cJSON_Delete(inst);
	return 0;
}
