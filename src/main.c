/* main.c - gen2prep: command dispatch, global options. */
#include "cli.h"
#include "json_text.h"
#include "util.h"

#include <jansson.h>
#include <stdarg.h>
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

/* "--json" or an abbreviation getopt_long would take for it ("--js"; no
 * other long option of any command starts with j), before "--". */
static bool json_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		size_t n = strlen(argv[i]);
		if (!strcmp(argv[i], "--")) break;
		if (n >= 3 && n <= 6 && !strncmp(argv[i], "--json", n)) return true;
	}
	return false;
}

/* A usage error main finds (no command, an unknown one, help misused):
 * the message and the usage on stderr, and with --json on the command line
 * the error object on stdout too (man page, JSON OUTPUT: code usage,
 * exit 2), as every command's usage error. Returns EXIT_USAGE. */
__attribute__((format(printf, 3, 4)))
static int top_usage(int argc, char **argv, const char *fmt, ...)
{
	static char msg[4096 * 2 + 2048];   /* as err_msg: a name of PATH_MAX bytes stays whole */
	va_list ap;
	va_start(ap, fmt);
	msg_vprintf(msg, sizeof msg, fmt, ap);   /* longer still ends in "...", never cut silently */
	va_end(ap);
	fprintf(stderr, "%s: %s\n", progname, msg);
	usage(stderr);
	if (json_asked(argc, argv))
		cli_print_json(json_pack("{s:i, s:{s:s, s:o, s:i}}", "schema", CLI_JSON_SCHEMA, "error", "code",
					 cli_err_name(E_USAGE), "message", json_text(msg), "exit_code", EXIT_USAGE));
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (argv[1][0] == '-' && json_asked(2, argv))
		return top_usage(argc, argv, "no COMMAND before %s: give one, e.g. '%s inspect --json IN'", argv[1], progname);
	if (!strcmp(argv[1], "help") && argc == 3 && json_asked(argc, argv))
		return top_usage(argc, argv, "help: help prints text only; for JSON give a COMMAND and --json");
	if (!strcmp(argv[1], "help") && argc == 3) {
		/* help COMMAND = COMMAND --help */
		for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
			if (!strcmp(argv[2], commands[i].name)) {
				char *args[] = { argv[2], (char *)"--help", NULL };
				return commands[i].fn(2, args);
			}
		return top_usage(argc, argv, "help: unknown command '%s'", argv[2]);
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || (!strcmp(argv[1], "help") && argc == 2)) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "help"))
		return top_usage(argc, argv, "help: give at most one COMMAND");
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (!strcmp(argv[1], commands[i].name)) {
			cli_install_signals();
			return commands[i].fn(argc - 1, argv + 1);
		}
	return top_usage(argc, argv, "unknown command '%s'", argv[1]);
}
