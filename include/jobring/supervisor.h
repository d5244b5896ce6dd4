/* supervisor.h - `jobring serve`: make the region, bind the listeners, fork
 * the five actors, restart any that dies (with backoff, the others keep
 * running), and drain everything on SIGTERM.
 *
 * The run file DATADIR/jobring.run (JSON: supervisor pid, bound ports, actor
 * pids) is rewritten on every (re)start so tests and operators can find the
 * processes and ephemeral ports. */
#ifndef JOBRING_SUPERVISOR_H
#define JOBRING_SUPERVISOR_H

#include "jobring/config.h"

struct serve_opts {
	int demo;		/* make a demo org and key, start a local worker */
	const char *worker_exe;	/* path of our own binary, for `jobring worker` */
};

/** Run until SIGTERM/SIGINT. Returns the process exit code (0 after a clean
 *  drain, 1 if setup failed). */
int supervisor_run(struct config *cfg, const struct serve_opts *opts);

#endif
