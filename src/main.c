/* main.c - the jobring binary: dispatches to subcommands, like git. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		printf("usage: jobring <command> [args]\n");
		return argc < 2 ? 2 : 0;
	}
	fprintf(stderr, "jobring: unknown command '%s'\n", argv[1]);
	return 2;
}
