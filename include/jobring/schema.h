/* schema.h - JSON Schema (a draft 7 subset) for job params, on top of cJSON.
 *
 * Claimed keywords: type, properties, required, additionalProperties, enum,
 * const, minimum, maximum, exclusiveMinimum, exclusiveMaximum (numeric form),
 * minLength, maxLength (Unicode code points), pattern, items (schema or
 * tuple), minItems, maxItems, oneOf, anyOf, allOf, default, title,
 * description, and the boolean schemas true/false. Other keywords are
 * ignored, as draft 7 says of unknown ones ($ref, patternProperties, format,
 * if/then/else, ... are NOT enforced).
 *
 * "pattern" is an ECMA-262 subset run by our own Pike VM: literals, '.',
 * classes [a-z0-9_] / [^...] with \d \w \s \D \W \S, anchors ^ $, \b \B,
 * groups ( ) and (?: ) with |, quantifiers * + ? {n} {n,} {n,m} (lazy forms
 * accepted). Matching time is O(len(subject) * len(program)) by
 * construction; lookaround, backreferences, \p{..} and flags are rejected.
 *
 * Ownership: nothing here keeps a pointer to the schema or the instance after
 * returning. Errors own their path strings (free with schema_errors_free()).
 * cJSON results are the caller's (cJSON_Delete()).
 * Limits: SCHEMA_MAX_ERRORS errors, SCHEMA_MAX_DEPTH nested levels, patterns
 * of at most SCHEMA_MAX_PATTERN bytes. */
#ifndef JOBRING_SCHEMA_H
#define JOBRING_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define SCHEMA_MAX_ERRORS 20
#define SCHEMA_MAX_DEPTH 64
#define SCHEMA_MAX_PATTERN 1024
#define SCHEMA_MSG_MAX 192

/** One step of an error path: an object key, or an array index when key is NULL. */
struct schema_seg {
	char *key;
	size_t index;
};

/** One validation error: where in the instance, and a short English message
 *  ("must be >= 1", "is required", "is not allowed", ...). */
struct schema_error {
	struct schema_seg *path;
	size_t npath;
	char message[SCHEMA_MSG_MAX];
};

/** The errors of one schema_validate() call; the caller owns the struct
 *  (usually on the stack), schema_errors_free() releases what it points to. */
struct schema_errors {
	size_t n;
	bool truncated; /* more errors existed than SCHEMA_MAX_ERRORS */
	struct schema_error e[SCHEMA_MAX_ERRORS];
};

/** Check that schema is usable: an object or a boolean whose claimed keywords
 *  are well-formed (types, numbers, patterns that compile, nesting within
 *  SCHEMA_MAX_DEPTH). Meant for config load. 0, or -EINVAL with a message such
 *  as `at /properties/timeout: "minimum" must be a number` in err. */
int schema_check(const cJSON *schema, char *err, size_t errsz);

/** Validate instance against schema (which should have passed schema_check()).
 *  Returns 0 when valid, else the number of errors recorded in errs (at most
 *  SCHEMA_MAX_ERRORS; errs->truncated says whether some were dropped).
 *  errs is (re)initialised here and must be released with schema_errors_free()
 *  whatever the result. errs may be NULL: validation then stops at the first
 *  error and returns 1. Returns -EINVAL when schema or instance is NULL, or
 *  when the schema turns out unusable (a pattern that does not compile; errs
 *  then holds one error with an empty path that says why). Error order:
 *  schema keyword order, then instance member order. */
int schema_validate(const cJSON *schema, const cJSON *instance, struct schema_errors *errs);

/** Free the paths held by errs and reset it to no errors; NULL is a no-op. */
void schema_errors_free(struct schema_errors *errs);

/** errs as `[{"path":["items",2],"message":"must be an integer"}]` (keys as
 *  strings, indices as numbers). New cJSON array owned by the caller; NULL
 *  only when cJSON runs out of memory. */
cJSON *schema_errors_to_json(const struct schema_errors *errs);

/** The Rendobar field list for GET /jobs/types/{type}/schema: one object per
 *  top-level property, in schema order: {key, name, label, type ("string",
 *  "number", "boolean", "options" or "json"), required, default?,
 *  options? [{label, value}], min?, max?, maxLength?, description?}. label is
 *  the property's title or its key in Title Case. A schema that is not an
 *  object shape (boolean, or top-level oneOf/anyOf) gives []. New cJSON array
 *  owned by the caller; NULL only when cJSON runs out of memory. */
cJSON *schema_fields(const cJSON *schema);

/** Add to the object instance a copy of the "default" of every top-level
 *  property it lacks. Returns the number added, or -EINVAL when instance is
 *  not an object. */
int schema_apply_defaults(const cJSON *schema, cJSON *instance);

/** Search subject (UTF-8, len bytes) for the ECMA-262 pattern, unanchored
 *  as JSON Schema's "pattern" is. 1 match, 0 no match, -EINVAL when the
 *  pattern is unsupported or malformed (reason in err, if err is not NULL). */
int schema_pattern_match(const char *pattern, const char *subject, size_t len,
			 char *err, size_t errsz);

#endif
