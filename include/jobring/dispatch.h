/* dispatch.h - what the dispatcher sends to a provider: the dispatch body of
 * DESIGN.md §6 (or its Trigger.dev form), the presigned URLs in it, and the
 * cancel request. Pure functions over a job record, so they can be tested
 * without a server.
 *
 * URLs jobring signs itself (HMAC-SHA256 with the signing key, see presign.h):
 *   inline input   GET  {publicUrl}/blobs/in/{jobId}/{name}?exp&sig
 *   job output     GET  {publicUrl}/dl/{jobId}/{path}?exp&sig
 *   upload         PUT  {publicUrl}/blobs/out/{jobId}/{attempt}/{path}?exp&sig
 *                  — a template: the signature covers the prefix
 *                  "/blobs/out/{jobId}/{attempt}/", so any {path} works
 * Ownership: results are written into caller buffers. */
#ifndef JOBRING_DISPATCH_H
#define JOBRING_DISPATCH_H

#include "jobring/buf.h"
#include "jobring/config.h"
#include "jobring/job.h"

struct dispatch_ctx {
	const struct config *cfg;
	const char *signing_key;
	int64_t now;		/* Unix ms */
};

/** The prefix an upload URL's signature covers. */
int dispatch_upload_prefix(char *out, size_t outsz, const char *job_id, uint32_t attempt);

/** Build the request for dispatching j (attempt = the attempt being made) to
 *  provider p: url, headers (each "Name: value", up to 4) and body. For
 *  kind "http" the body is signed with X-Jobring-Signature. 0 or -errno. */
int dispatch_build(const struct dispatch_ctx *c, const struct provider_cfg *p,
		   const struct job *j, uint32_t attempt, struct buf *url, char hdrs[4][512],
		   unsigned *nhdrs, struct buf *body);

/** Build the provider cancel for job (provider-side run id may be empty). */
int dispatch_cancel_build(const struct dispatch_ctx *c, const struct provider_cfg *p,
			  const char *job_id, uint32_t attempt, const char *run_id,
			  struct buf *url, char hdrs[4][512], unsigned *nhdrs, struct buf *body);

/** The run id in a provider's 2xx answer ({"runId"} or Trigger.dev's {"id"}),
 *  or "" (out must hold 72 bytes). */
void dispatch_parse_run_id(const char *body, size_t len, char *out, size_t outsz);

/** Backoff before the next try after `tries` failed attempts (≥ 1):
 *  backoffMs × 2^(tries−1) capped at backoffMaxMs, plus up to a quarter more
 *  of jitter, so each gap is at least the configured minimum and they grow. */
int64_t dispatch_backoff_ms(const struct config *cfg, unsigned tries, uint64_t *rng);

#endif
