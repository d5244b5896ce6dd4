/* main.c - the jobring binary: one program with subcommands, like git. */
#include "jobring/bench.h"
#include "jobring/check.h"
#include "jobring/cli.h"
#include "jobring/config.h"
#include "jobring/log.h"
#include "jobring/store.h"
#include "jobring/supervisor.h"
#include "jobring/util.h"
#include "jobring/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int load_config(struct config *cfg, const char *path)
{
	char err[512];

	if (!path)
		path = getenv("JOBRING_CONFIG");
	if (config_load(cfg, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	struct config cfg;
	struct serve_opts opts = { 0 };
	const char *path = NULL, *data = NULL, *logfmt = NULL;
	static char self[4096];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
			data = argv[++i];
		} else if (strcmp(argv[i], "--log-format") == 0 && i + 1 < argc) {
			const char *f = argv[++i];
			if (strcmp(f, "json") && strcmp(f, "plain")) {
				fprintf(stderr, "jobring serve: --log-format is plain or json\n");
				return 2;
			}
			logfmt = f;
		} else if (strcmp(argv[i], "--demo") == 0) {
			opts.demo = 1;
		} else if (strcmp(argv[i], "--help") == 0) {
			printf("usage: jobring serve [--config FILE] [--data DIR] [--demo] [--log-format plain|json]\n");
			return 0;
		} else {
			fprintf(stderr, "jobring serve: unknown option '%s' (try --help)\n", argv[i]);
			return 2;
		}
	}
	if (load_config(&cfg, path) < 0)
		return 2;
	if (logfmt)
		cfg.log_format = strcmp(logfmt, "json") == 0 ? LOGFMT_JSON : LOGFMT_PLAIN;
	if (data) {
		free(cfg.data_dir);
		cfg.data_dir = xstrdup(data);
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	opts.worker_exe = self;
	rc = supervisor_run(&cfg, &opts);
	config_free(&cfg);
	return rc;
}

static int cmd_check(int argc, char **argv)
{
	struct store st;
	int r;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: jobring check DATADIR\n");
		return 2;
	}
	if (access(argv[1], F_OK) < 0) {
		fprintf(stderr, "jobring check: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if ((r = store_open(&st, argv[1], 1 << 16, 0)) < 0) {
		fprintf(stderr, "jobring check: cannot open the store in %s: %s\n", argv[1],
			strerror(-r));
		return 1;
	}
	r = check_store(&st, stdout);
	store_close(&st);
	if (r < 0) {
		fprintf(stderr, "jobring check: %s\n", strerror(-r));
		return 1;
	}
	if (r > 0) {
		printf("jobring check: %d problem%s found\n", r, r == 1 ? "" : "s");
		return 1;
	}
	printf("jobring check: ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	/* no command, help and the client commands: cli.c (one table drives
	 * the help, the man page and the parser) */
	if (argc < 2)
		return cli_main(argc, argv);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("jobring 0.1.0\n");
		return 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "worker") == 0)
		return worker_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench") == 0)
		return bench_main(argc - 1, argv + 1);
	return cli_main(argc, argv);
}
