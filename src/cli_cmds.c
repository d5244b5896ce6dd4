/* cli_cmds.c - the table of jobring's commands and their help texts. The
 * parser, every --help, `jobring help` and the man page are made from it,
 * so a command is documented where it is declared. */
#include "cli_int.h"

#include <stddef.h>

const struct cli_opt cli_common_opts[] = {
	{ "url", "URL", "the server's base URL (default $JOBRING_URL, else $RENDOBAR_API_URL, "
			"else " CLI_DEFAULT_URL ")", 0 },
	{ "server", "URL", "the same as --url (webhooks create takes --url for the endpoint)", 0 },
	{ "key", "KEY", "the API key (default $JOBRING_API_KEY, else $RENDOBAR_API_KEY)", 0 },
	{ "admin-token", "TOKEN", "the admin token for admin commands (default $JOBRING_ADMIN_TOKEN)",
	  0 },
	{ "json", NULL, "print the server's JSON answer untouched, for scripts", 0 },
	{ "help", NULL, "show this help", 0 },
	{ NULL, NULL, NULL, 0 },
};

static const struct cli_opt serve_opts[] = {
	{ "config", "FILE", "the JSON config file (default $JOBRING_CONFIG; none: all defaults)", 0 },
	{ "data", "DIR", "the data directory, overriding the config's dataDir", 0 },
	{ "demo", NULL, "make a demo org with credits and a key, run a local worker, print a "
			"ready-to-paste curl", 0 },
	{ NULL, NULL, NULL, 0 },
};

static const struct cli_opt worker_opts[] = {
	{ "listen", "HOST:PORT", "where dispatches arrive (port 0 picks one)", 0 },
	{ "secret", "S", "the key of X-Jobring-Signature (default $JOBRING_PROVIDER_SECRET)", 0 },
	{ "jobs", "N", "how many runs at once", 0 },
	{ "workdir", "DIR", "where runs get their directories (default: a fresh one in /tmp)", 0 },
	{ NULL, NULL, NULL, 0 },
};

static const struct cli_opt submit_opts[] = {
	{ "param", "K=V", "a job parameter; V is read as JSON when it parses (numbers, true, "
			  "false, null, objects, arrays, \"quoted\"), else it is a string", 1 },
	{ "input", "NAME=SRC", "an input: a URL, @PATH to upload a local file first, or a JSON "
			       "source such as {\"content\":\"...\"} or {\"job\":\"job_...\"}", 1 },
	{ "idempotency-key", "K", "submit at most once under K: a repeat returns the first job", 0 },
	{ "wait", NULL, "follow the job until it ends, then print its output; exit 1 unless it "
			"completed", 0 },
	{ "wait-timeout", "SECONDS", "with --wait, stop waiting after this long (exit 1; the job "
				     "goes on)", 0 },
	{ NULL, NULL, NULL, 0 },
};

static const struct cli_opt list_opts[] = {
	{ "status", "S", "only jobs in status S (waiting dispatched running complete failed "
			 "cancelled)", 0 },
	{ "type", "T", "only jobs of type T", 0 },
	{ "limit", "N", "at most N jobs, 1 to 100 (default 20)", 0 },
	{ "offset", "N", "skip the N newest matches first", 0 },
	{ NULL, NULL, NULL, 0 },
};

static const struct cli_opt wh_create_opts[] = {
	{ "url", "URL", "where deliveries are POSTed (here the server's URL is given with "
			"--server or $JOBRING_URL)", 0 },
	{ "event", "E", "an event to subscribe to (job.created job.started job.completed "
			"job.failed job.cancelled balance.low); default: job.completed, "
			"job.failed, job.cancelled", 1 },
	{ "name", "N", "a label for the endpoint (default \"cli\")", 0 },
	{ NULL, NULL, NULL, 0 },
};

static const struct cli_opt org_create_opts[] = {
	{ "plan", "P", "the org's plan (default free)", 0 },
	{ NULL, NULL, NULL, 0 },
};

static const struct cli_opt key_create_opts[] = {
	{ "test", NULL, "a test key (rb_test_...): the full pipeline, no money", 0 },
	{ "name", "N", "a label for the key", 0 },
	{ NULL, NULL, NULL, 0 },
};

#define ID_HELP "IDs are the server's (job_..., org_..., key_...)."

const struct cli_cmd cli_cmds[] = {
	/* ---- the server side, run by main.c ---- */
	{ "serve", "", 0, 0, CLI_AUTH_NONE, serve_opts, NULL,
	  "run the server (supervisor and actors)",
	  "Runs jobring: the client API on `listen`, the provider API on `providerListen`, the "
	  "store in `dataDir`. Every config key has a default, so no config file is needed to "
	  "start. SIGTERM drains and stops it." },
	{ "check", "DATADIR", 1, 1, CLI_AUTH_NONE, NULL, NULL,
	  "verify a stopped server's store offline",
	  "Checks the store's invariants (jobs, indexes, holds and the ledger add up) and prints "
	  "each problem found; exits 1 if there is one." },
	{ "worker", "", 0, 0, CLI_AUTH_NONE, worker_opts, NULL,
	  "run the reference provider",
	  "Accepts dispatches over HTTP, runs the built-in job types (ffmpeg, ffprobe, sleep, "
	  "checksum, fail) in sandboxed work directories, uploads outputs and reports back." },
	{ "bench", "", 0, 0, CLI_AUTH_NONE, NULL, NULL,
	  "run the benchmarking harness",
	  "Starts a server of its own (or targets one with --url), submits jobs through the whole "
	  "lifecycle with its own provider and webhook receiver, and prints the latency of every "
	  "hop. See `jobring bench --help` for its options." },
	{ "version", "", 0, 0, CLI_AUTH_NONE, NULL, NULL, "print the version", "" },

	/* ---- jobs ---- */
	{ "submit", "TYPE", 1, 1, CLI_AUTH_KEY, submit_opts, cli_submit,
	  "submit a job",
	  "Submits a job of TYPE (see `jobring types`) and prints its id. With --wait it then "
	  "follows the job, with a live progress bar on a terminal, and prints the output URLs "
	  "(or the output data of a data job) when it completes, or the error code and message "
	  "when it fails.\n\n"
	  "A local file given as --input NAME=@PATH is uploaded first (POST /assets, PUT, "
	  "complete) and the job gets the uploaded asset's URL.\n\n"
	  "Examples:\n\n"
	  "  jobring submit sleep --param seconds=3 --wait\n"
	  "  jobring submit ffmpeg --input in.mp4=@clip.mp4 \\\n"
	  "      --param command='ffmpeg -i in.mp4 -t 1 out.gif' --wait\n"
	  "  jobring submit checksum --input f=https://example.com/a.bin --idempotency-key a1" },
	{ "get", "ID", 1, 1, CLI_AUTH_KEY, NULL, cli_get_job,
	  "show one job",
	  "Shows a job: status, progress, times, cost, and its output (fresh signed URLs) or its "
	  "error." },
	{ "list", "", 0, 0, CLI_AUTH_KEY, list_opts, cli_list,
	  "list jobs, newest first",
	  "Prints a table of the org's jobs: id, type, status, progress, age and error. The "
	  "number of matches is printed on stderr when there are more than shown." },
	{ "cancel", "ID", 1, 1, CLI_AUTH_KEY, NULL, cli_cancel,
	  "cancel a job",
	  "Cancels a waiting, dispatched or running job; a provider that has it is told to "
	  "stop. Cancelling a cancelled job is fine; a complete or failed one is a CONFLICT." },
	{ "retry", "ID", 1, 1, CLI_AUTH_KEY, NULL, cli_retry,
	  "run a failed job again",
	  "Moves a failed job back to waiting (its retryCount goes up by one and credits are "
	  "held again). Any other status is a CONFLICT." },
	{ "logs", "ID", 1, 1, CLI_AUTH_KEY, NULL, cli_logs,
	  "print a job's log lines",
	  "Prints the log lines the provider reported for a job, oldest first." },
	{ "types", "", 0, 0, CLI_AUTH_OPTIONAL, NULL, cli_types,
	  "list the job types",
	  "Lists the job types this server runs, with their summaries and estimated prices. "
	  "Needs no API key." },
	{ "balance", "", 0, 0, CLI_AUTH_KEY, NULL, cli_balance,
	  "show the org's credit balance",
	  "Shows the balance, the part held for unfinished jobs and what is available." },

	/* ---- webhooks ---- */
	{ "webhooks list", "", 0, 0, CLI_AUTH_KEY, NULL, cli_wh_list,
	  "list webhook endpoints", "Lists the org's webhook endpoints." },
	{ "webhooks create", "", 0, 0, CLI_AUTH_KEY, wh_create_opts, cli_wh_create,
	  "add a webhook endpoint",
	  "Adds an endpoint that receives signed POSTs for the events it subscribes to. The "
	  "signing secret is printed once: keep it to verify X-Rendobar-Signature.\n\n"
	  "Example:\n\n"
	  "  jobring webhooks create --url https://example.com/hook --event job.completed" },
	{ "webhooks delete", "ID", 1, 1, CLI_AUTH_KEY, NULL, cli_wh_delete,
	  "remove a webhook endpoint", "Removes an endpoint; its pending deliveries stop." },
	{ "webhooks deliveries", "ID", 1, 1, CLI_AUTH_KEY, NULL, cli_wh_deliveries,
	  "list an endpoint's deliveries",
	  "Lists the deliveries made to an endpoint: id, event, status, attempts, job, age." },
	{ "webhooks redeliver", "ENDPOINT DELIVERY", 2, 2, CLI_AUTH_KEY, NULL, cli_wh_redeliver,
	  "send a delivery again", "Queues a delivery again, with the same delivery id." },
	{ "webhooks rotate", "ID", 1, 1, CLI_AUTH_KEY, NULL, cli_wh_rotate,
	  "give an endpoint a new signing secret",
	  "Makes a new signing secret and prints it once. For a while deliveries also carry a "
	  "signature with the previous secret." },

	/* ---- admin ---- */
	{ "admin org create", "NAME", 1, 1, CLI_AUTH_ADMIN, org_create_opts, cli_org_create,
	  "create an org",
	  "Creates an org and prints its id. Give it credits with `jobring admin credits` and a "
	  "key with `jobring admin key create`." },
	{ "admin org get", "ID", 1, 1, CLI_AUTH_ADMIN, NULL, cli_org_get,
	  "show an org", "Shows an org: name, plan, balance, held credits. " ID_HELP },
	{ "admin org plan", "ID PLAN", 2, 2, CLI_AUTH_ADMIN, NULL, cli_org_plan,
	  "move an org to another plan", "Sets an org's plan (a plan of the config)." },
	{ "admin key create", "ORG", 1, 1, CLI_AUTH_ADMIN, key_create_opts, cli_key_create,
	  "create an API key for an org",
	  "Creates an API key and prints it. The key is shown only this once." },
	{ "admin key delete", "ID", 1, 1, CLI_AUTH_ADMIN, NULL, cli_key_delete,
	  "revoke an API key", "Deletes an API key by its id (key_..., not the key itself)." },
	{ "admin credits", "ORG AMOUNT", 2, 2, CLI_AUTH_ADMIN, NULL, cli_credits,
	  "add (or take) credits",
	  "Adds AMOUNT to an org's balance and prints the new balance. AMOUNT is in nanodollars "
	  "(1 USD = 1000000000) or in dollars with a $ ($5, $0.25); a negative amount takes "
	  "credits away.\n\n"
	  "  jobring admin credits org_123 '$10'" },
	{ "admin dlq list", "", 0, 0, CLI_AUTH_ADMIN, NULL, cli_dlq_list,
	  "list the dead-letter queue",
	  "Lists the jobs that failed with DISPATCH_EXHAUSTED: no provider took them." },
	{ "admin dlq requeue", "ID", 1, 1, CLI_AUTH_ADMIN, NULL, cli_dlq_requeue,
	  "put a dead-lettered job back in the queue",
	  "Moves a dead-lettered job back to waiting (credits are held again)." },
	{ "admin dlq delete", "ID", 1, 1, CLI_AUTH_ADMIN, NULL, cli_dlq_delete,
	  "drop a job from the dead-letter queue", "Removes a job from the DLQ; it stays failed." },
	{ NULL, NULL, 0, 0, CLI_AUTH_NONE, NULL, NULL, NULL, NULL },
};
