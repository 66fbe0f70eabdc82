/* cli.h - what the commands share: exit codes, error printing, JSON output,
 * the progress bar. The commands (cmd_*.c) are thin: parse options, call
 * the library, print. */
#ifndef GEN2PREP_CLI_H
#define GEN2PREP_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include "progress.h"
#include "util.h"

/* Exit codes: stable, documented in man/gen2prep.1 (EXIT STATUS). */
enum {
	EXIT_OK = 0,          /* success; inspect: convertible; verify: Generation 2 ready */
	EXIT_FAILURE_ = 1,    /* runtime failure (I/O error, internal error) */
	EXIT_USAGE = 2,       /* bad command line */
	EXIT_BAD_INPUT = 3,   /* input unreadable, truncated, not a disk image / PE / BCD */
	EXIT_BLOCKED = 4,     /* not convertible: one or more blockers (listed) */
	EXIT_PATCH = 5,       /* a required patch site not found or ambiguous */
	EXIT_VERIFY = 6,      /* verify: one or more checks failed */
	EXIT_OUTPUT = 7,      /* output refused or failed: exists, is the input, not writable, no space */
	EXIT_INTERRUPTED = 130,
};

extern const char *progname;      /* "gen2prep" */
extern int opt_verbose;           /* -v */
/* --json is on the command line as getopt_long reads it (abbreviations
 * such as --js included; cli_getopt looks at the whole line before its
 * first option): usage errors and the interrupt handler then print the
 * error object on stdout too. */
#include <signal.h>
extern volatile sig_atomic_t cli_json_seen;
/* Set by convert: the interrupt handler's JSON object is convert's (the
 * report keys null, empty or false, then the error) */
extern volatile sig_atomic_t cli_json_report;

/* Prints "gen2prep: <what>: <err_msg()>" on stderr (one line) and returns
 * the exit code that err_code() maps to. */
int cli_fail(const char *what);
int cli_exit_for(enum err_code c);
/* JSON (doc/schema.json): every --json object has "schema": CLI_JSON_SCHEMA;
 * an error is {"schema":1, "error": {"code", "message", "exit_code"}},
 * code = cli_err_name() of err_code(). */
#define CLI_JSON_SCHEMA 1
const char *cli_err_name(enum err_code c);
void *cli_error_json(int exit_code);   /* json_t * of the current error */
/* The internal check that a failing exit carries its error: exit_code not
 * 0 (nor 2, which cli_usage reports without err_set) while err_code() is
 * E_OK is a bug (an error cleared on the way): the ASan/UBSan build aborts,
 * the release build reports it as E_INTERNAL. cli_error_json calls it. */
void cli_check_failure(int exit_code);
/* cli_fail, and with json the error object on stdout too. */
int cli_fail_json(const char *what, bool json);
/* Set by a command whose --json failures carry its report keys
 * (convert): adds them to the error object json (a json_t *) of a
 * failure with status exit_code, so a usage error has the shape of
 * every other failure of that command (man page, JSON OUTPUT). */
extern void (*cli_error_report)(void *json, int exit_code);
/* Usage error: prints "gen2prep CMD: msg" and "Try 'gen2prep CMD --help'." */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* getopt_long without getopt's own messages: an unknown option prints
 * "gen2prep CMD: unknown option '-x'" and "Try 'gen2prep CMD --help'." on
 * stderr (a missing argument: "option '--x' needs an argument") and
 * returns '?'; otherwise what getopt_long returns. */
struct option;
int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts, const struct option *longopts);

/* Prints a jansson value (void * to keep jansson out of this header) on
 * stdout, indented, keys in insertion order, then frees it. */
void cli_print_json(void *json);

/* Progress: mode -1 auto (on a terminal), 0 off (-q), 1 forced (-p). On a
 * terminal one line on stderr, redrawn in place and cut to its width:
 * overall percent across the stages, the stage, MiB done/total, rate and
 * time left while the output is written, "flushing" after its last byte.
 * Off a terminal (-p) one line per tenth of the run. cli_progress_done
 * clears the line (ok: off a terminal, a last "100% done" line). */
struct progress *cli_progress(int mode);
void cli_progress_done(struct progress *p, bool ok);

/* Installs SIGINT/SIGTERM handlers that remove temporary outputs and exit
 * with EXIT_INTERRUPTED. */
void cli_install_signals(void);

int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_patch(int argc, char **argv);
int cmd_bcd(int argc, char **argv);

#endif
