/* report.h - parsing and checking a provider's report (DESIGN.md §6):
 *   {event: running|progress|complete|failed|log, attempt, progress (0..1),
 *    step, message, level, output: {files: [{path, size, type}], data},
 *    error: {code, message, detail}, computeMs}
 *
 * Bounds: output ≤ 256 KiB and ≤ 100 files with bare file names; error code
 * [A-Z0-9_]{1,40} (else PROVIDER_ERROR); message ≤ 1000 and detail ≤ 4096
 * bytes (cut at a UTF-8 boundary); step ≤ 128.
 *
 * Ownership: every string in struct report points into r->root or r->output,
 * both freed by report_free(). */
#ifndef JOBRING_REPORT_H
#define JOBRING_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

enum report_event { REPORT_RUNNING = 1, REPORT_PROGRESS, REPORT_COMPLETE, REPORT_FAILED, REPORT_LOG };

struct report {
	enum report_event event;
	uint32_t attempt;
	uint32_t progress;	/* ppm */
	const char *step;	/* or NULL */
	char *output;		/* complete: compact JSON of output, or NULL */
	int64_t compute_ms;
	const char *code;	/* failed: the provider's code or PROVIDER_ERROR */
	const char *message, *detail;	/* failed or log; may be NULL */
	const char *level;	/* log: info|warn|error|debug */
	struct cJSON *root;
};

/** Parse body[0..n). 0, or -EINVAL with a sentence for a 400 in *why. */
int report_parse(const char *body, size_t n, struct report *r, const char **why);
void report_free(struct report *r);

#endif
