/* config.h - the one JSON config file (DESIGN.md §7).
 *
 * Every key has a default, so config_load(NULL) gives a runnable server. An
 * unknown key, a wrong type or a bad value fails with one line naming the
 * key ("dispatch.maxAttempts: must be an integer in [1, 100]"); the caller
 * prints it and exits 2.
 *
 * Ownership: config_load() allocates everything inside *cfg; config_free()
 * releases it. Strings and cJSON schemas live as long as the config. */
#ifndef JOBRING_CONFIG_H
#define JOBRING_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define CONFIG_MAX_TYPES 64
#define CONFIG_MAX_PROVIDERS 32
#define CONFIG_MAX_PLANS 32
#define CONFIG_NAME_MAX 32

struct addr_cfg {
	char host[64];
	uint16_t port;
};

struct provider_cfg {
	char id[CONFIG_NAME_MAX];
	char *kind;		/* "http" (default) or "trigger.dev" */
	char *url;		/* dispatch URL (http) or baseUrl (trigger.dev) */
	char *cancel_url;	/* optional template with {jobId} and {runId} */
	char *secret;
	char *task;		/* trigger.dev task id */
	struct cJSON *options;	/* trigger.dev options (queue, tags) or NULL */
	char types[CONFIG_MAX_TYPES][CONFIG_NAME_MAX];
	int ntypes;		/* 0 with all_types set means "*" */
	int all_types;
	int capacity;
};

struct price_cfg {
	int64_t base;		/* nanodollars per job */
	int64_t per_second;	/* nanodollars per compute second */
	int64_t estimate_seconds;
};

struct jobtype_cfg {
	char name[CONFIG_NAME_MAX];
	char *summary;
	char *tag;
	struct cJSON *schema;	/* JSON Schema of params */
	struct price_cfg price;
	int max_execution_seconds;
	int hidden;		/* accepted but not listed (aliases) */
};

struct plan_cfg {
	char name[CONFIG_NAME_MAX];
	int concurrent_jobs;
	int requests_per_minute;
	int max_job_timeout;	/* seconds */
	int64_t max_input_file_size;
	int queue_limit;
	int priority;
	char types[CONFIG_MAX_TYPES][CONFIG_NAME_MAX];
	int ntypes;
	int all_types;
};

/* storage.blobs: where blobs (outputs, assets) live. local: DATADIR/blobs;
 * s3: an S3-compatible bucket, reached through 307 redirects from jobring's
 * own signed URLs to SigV4 presigned ones (object keys jobs/{jobId}/{name}
 * and assets/{assetId}/{name}). accessKey/secretKey may come from
 * JOBRING_S3_ACCESS_KEY / JOBRING_S3_SECRET_KEY instead. */
enum blobs_kind { BLOBS_LOCAL, BLOBS_S3 };
struct blobs_cfg {
	enum blobs_kind kind;
	char *endpoint;		/* "http[s]://host[:port]" (s3) */
	char *bucket, *region;	/* region defaults to "us-east-1" */
	char *access_key, *secret_key;
	int path_style;		/* 1: {endpoint}/{bucket}/{key} */
	int expires_seconds;	/* lifetime of a presigned S3 URL (900) */
};

enum sync_mode { SYNC_FULL, SYNC_NONE };
enum log_format { LOGFMT_PLAIN, LOGFMT_JSON };

struct config {
	struct addr_cfg listen, provider_listen;
	char *public_url, *callback_url, *data_dir;
	int64_t map_size_mb;
	enum sync_mode sync;
	struct blobs_cfg blobs;
	char *admin_token, *signing_key;	/* NULL: taken from env or LMDB */
	struct {
		int max_attempts, backoff_ms, backoff_max_ms, timeout_ms;
		int unhealthy_after, cooldown_ms;
	} dispatch;
	struct {
		int interval_seconds, stuck_seconds;
	} sweep;
	struct {
		int timeout_ms, backoff_ms, backoff_max_ms, max_attempts;
		int disable_after_failures, allow_private_targets;
	} webhooks;
	int retention_days;
	struct {
		int max_connections, header_timeout_ms, idle_timeout_ms;
		int max_body_bytes, max_header_bytes;
	} http;
	int ring_slots;
	enum log_format log_format;
	struct provider_cfg providers[CONFIG_MAX_PROVIDERS];
	int nproviders;
	struct jobtype_cfg types[CONFIG_MAX_TYPES];
	int ntypes;
	struct plan_cfg plans[CONFIG_MAX_PLANS];
	int nplans;
	char *source;		/* path the config came from, or NULL */
};

/** Load defaults, then the file at path (NULL: defaults only). 0, or -EINVAL
 *  with a one-line message in err naming the key. On error *cfg is freed. */
int config_load(struct config *cfg, const char *path, char *err, size_t errsz);
/** Same from a JSON text (for tests and `--config-json`). */
int config_load_text(struct config *cfg, const char *json, char *err, size_t errsz);
void config_free(struct config *cfg);

const struct jobtype_cfg *config_type(const struct config *cfg, const char *name);
const struct plan_cfg *config_plan(const struct config *cfg, const char *name);
/** 1 if the plan allows job type `type`. */
int config_plan_allows(const struct plan_cfg *p, const char *type);
/** 1 if the provider serves job type `type`. */
int config_provider_serves(const struct provider_cfg *p, const char *type);
/** The hold for a job of this type: base + perSecond * estimateSeconds. */
int64_t config_estimate(const struct jobtype_cfg *t);
/** The price of a finished run, capped at the hold. */
int64_t config_price(const struct jobtype_cfg *t, int64_t compute_ms, int64_t hold);

#endif
