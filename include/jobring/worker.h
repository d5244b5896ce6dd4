/* worker.h - `jobring worker`, the reference execution provider.
 *
 * A separate process (started by hand or by `jobring serve --demo`) that
 * speaks the provider side of DESIGN.md §6: it accepts signed dispatches
 * over HTTP, runs up to --jobs of them at once, each in a forked child with
 * its own process group and work directory, and reports running, progress,
 * logs and the outcome to the dispatch's callbackUrl. Built-in types: sleep,
 * fail, checksum, ffprobe and ffmpeg (sandboxed).
 *
 * Routes: POST /dispatch (or /), POST /dispatch/{jobId}/cancel (or
 * /{jobId}/cancel), both with X-Jobring-Signature; GET /health.
 */
#ifndef JOBRING_WORKER_H
#define JOBRING_WORKER_H

/**
 * Run the worker until SIGTERM or SIGINT, then kill the running jobs'
 * process groups, remove their work dirs and return.
 *
 * @param argc, argv  the subcommand's arguments; argv[0] is "worker".
 *                    Options: --listen HOST:PORT (default 127.0.0.1:8090;
 *                    port 0 picks one and logs it), --secret S (default
 *                    $JOBRING_PROVIDER_SECRET, else
 *                    "jobring-local-provider-secret"), --jobs N (default 4),
 *                    --workdir DIR (default a fresh dir under /tmp, removed
 *                    at exit), --help.
 * @return the process exit status: 0 after a signal or --help, 2 for bad
 *         options, 1 when the listener cannot start.
 */
int worker_main(int argc, char **argv);

#endif
