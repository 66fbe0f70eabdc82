/* main.c - gen2prep: command dispatch, global options. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "inspect", cmd_inspect, "report what a Generation 1 disk holds and whether it can be converted" },
	{ "convert", cmd_convert, "write a new disk that boots in a Generation 2 machine" },
	{ "verify",  cmd_verify,  "check a disk the way UEFI firmware and Windows will read it" },
	{ "patch",   cmd_patch,   "apply the kernel patch catalog to one PE file" },
	{ "bcd",     cmd_bcd,     "print a BCD store like 'bcdedit /enum all'" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s COMMAND [OPTIONS] ...\n\n"
		   "Turns the disk of a Windows guest installed in a Hyper-V Generation 1 machine\n"
		   "into a disk that boots in a Generation 2 machine, offline.\n\nCommands:\n", progname);
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		fprintf(f, "  %-8s  %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun '%s help COMMAND' (or '%s COMMAND --help') for a command's options;\n"
		   "'man gen2prep' for the exit codes, blockers and JSON fields. '%s --version'\n"
		   "prints the version.\n", progname, progname, progname);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") && argc == 3) {
		/* help COMMAND = COMMAND --help */
		for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
			if (!strcmp(argv[2], commands[i].name)) {
				char *args[] = { argv[2], (char *)"--help", NULL };
				return commands[i].fn(2, args);
			}
		fprintf(stderr, "%s help: unknown command '%s'\n", progname, argv[2]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || (!strcmp(argv[1], "help") && argc == 2)) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "help")) {
		fprintf(stderr, "%s help: give at most one COMMAND\n", progname);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (!strcmp(argv[1], commands[i].name)) {
			cli_install_signals();
			return commands[i].fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "%s: unknown command '%s'\n", progname, argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
