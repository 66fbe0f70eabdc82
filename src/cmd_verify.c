/* cmd_verify.c - gen2prep verify IMAGE: is this disk Generation 2 ready?
 * The checks are lib/verify.c. */
#include "cli.h"
#include "verify.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s verify IMAGE [--json]\n"
		"Checks a disk (VHD, VHDX or raw) the way UEFI firmware and Windows will read it:\n"
		"partition table, ESP and its FAT32, boot files, BCD store and its loader entry,\n"
		"SYSTEM hive, MountedDevices, and for Windows Vista/7 (6.0/6.1) the kernel\n"
		"patches, PE checksums and the patched winload copy.\n\n"
		"  --json          every check as JSON on stdout\n"
		"  -v, --verbose   print passing checks' details too\n"
		"  -h, --help      this help\n\n"
		"Exit status: 0 Generation 2 ready, 6 a check failed, 3 unreadable image, 2 usage.\n",
		progname);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	optind = 1;
	while ((c = cli_getopt("verify", argc, argv, "vh", opts)) != -1) {
		if (c == 'h') { help(stdout); return EXIT_OK; }
		if (c == 'j') json = true;
		else if (c == 'v') opt_verbose++;
		else return EXIT_USAGE;   /* cli_getopt said why */
	}
	if (argc - optind != 1) return cli_usage("verify", "expected one IMAGE");
	struct verify_result r;
	if (verify_image(argv[optind], &r) < 0) {
		return cli_fail_json("verify", json);
	}
	if (json) {
		json_t *j = verify_to_json(&r);
		json_object_set_new(j, "schema", json_integer(CLI_JSON_SCHEMA));
		cli_print_json(j);
	} else {
		for (size_t i = 0; i < r.n; i++)
			printf("%-4s %-22s %s\n", r.checks[i].pass ? "ok" : "FAIL", r.checks[i].id,
			       r.checks[i].detail);
		printf(r.ready ? "Generation 2 ready.\n" : "NOT Generation 2 ready.\n");
	}
	return r.ready ? EXIT_OK : EXIT_VERIFY;
}
