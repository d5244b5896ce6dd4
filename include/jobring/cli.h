/* cli.h - jobring's command-line client: submit, get, list, cancel, retry,
 * logs, types, balance, webhooks and admin, all talking HTTP to a running
 * `jobring serve` (DESIGN.md §4, §7).
 *
 * One table of commands with their help texts drives the parser, every
 * `--help`, `jobring help` and the roff man page (`jobring help --man`), so
 * they cannot drift apart. The server commands (serve, check, worker,
 * version) are in that table too, for the help and the man page; main.c
 * runs them itself.
 *
 * Configuration comes from the environment (JOBRING_URL, JOBRING_API_KEY,
 * with RENDOBAR_API_URL / RENDOBAR_API_KEY as fallbacks, and
 * JOBRING_ADMIN_TOKEN) and from the flags --url, --key and --admin-token,
 * which win.
 *
 * Exit status: 0 success; 1 the server refused, could not be reached, or a
 * waited-for job did not complete; 2 bad usage or missing configuration.
 *
 * The CLI is a blocking program (libcurl's easy interface); it is not
 * meant to be linked into the actors. */
#ifndef JOBRING_CLI_H
#define JOBRING_CLI_H

#include <stdio.h>

/** Exit codes of cli_main(). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/** Run the client: argv[0] is the program, argv[1..] the command words
 *  ("submit", "admin org create", ...), then arguments and options.
 *  With no command, `help` or `--help` it prints the top-level help;
 *  `help --man` prints the man page; an unknown command is a usage error.
 *  Returns the process exit code. Writes to stdout and stderr only. */
int cli_main(int argc, char **argv);

/** Write the roff man page jobring(1) to out. 0 or -errno (a write error). */
int cli_man(FILE *out);

#endif
