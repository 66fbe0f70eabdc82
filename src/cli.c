/* cli.c - see cli.h */
#include "cli.h"
#include "json_text.h"
#include "writer.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

const char *progname = "gen2prep";
int opt_verbose;
volatile sig_atomic_t cli_json_seen;
volatile sig_atomic_t cli_json_report;
void (*cli_error_report)(void *json, int exit_code);

/* The one mapping from an error to an exit status (issue 8): the same
 * cause gives the same status in every command. E_NOTFOUND is a missing
 * file (input, a file inside the image): 3. A patch site that is not there
 * is E_PATCH (lib/convert.c makes it a "patch-site" blocker). */
int cli_exit_for(enum err_code c)
{
	switch (c) {
	case E_OK: return EXIT_OK;
	case E_USAGE: return EXIT_USAGE;
	case E_FORMAT: case E_NOTFOUND: return EXIT_BAD_INPUT;
	case E_BLOCKED: case E_UNSUPPORTED: return EXIT_BLOCKED;
	case E_PATCH: case E_AMBIGUOUS: return EXIT_PATCH;
	case E_EXISTS: case E_NOSPACE: case E_OUTPUT: return EXIT_OUTPUT;
	case E_INTERRUPTED: return EXIT_INTERRUPTED;
	default: return EXIT_FAILURE_;
	}
}

static const char *const err_names[] = {
	[E_OK] = "ok", [E_IO] = "io", [E_FORMAT] = "format", [E_NOMEM] = "nomem", [E_NOTFOUND] = "notfound",
	[E_AMBIGUOUS] = "ambiguous", [E_UNSUPPORTED] = "unsupported", [E_EXISTS] = "exists", [E_NOSPACE] = "nospace",
	[E_USAGE] = "usage", [E_BLOCKED] = "blocked", [E_INTERRUPTED] = "interrupted", [E_INTERNAL] = "internal",
	[E_OUTPUT] = "output", [E_PATCH] = "patch",
};

const char *cli_err_name(enum err_code c)
{
	return (unsigned)c < sizeof err_names / sizeof *err_names && err_names[c] ? err_names[c] : "internal";
}

void cli_check_failure(int exit_code)
{
	if (exit_code == EXIT_OK || exit_code == EXIT_USAGE || err_code() != E_OK) return;
	fprintf(stderr, "%s: internal error: exit status %d without an error recorded\n", progname, exit_code);
#if defined(__SANITIZE_ADDRESS__)
	abort();   /* the ASan/UBSan build the tests run: a test that reaches this fails */
#endif
	err_set(E_INTERNAL, "internal error: the run failed (exit status %d) without a reason recorded", exit_code);
}

void *cli_error_json(int exit_code)
{
	cli_check_failure(exit_code);
	return json_pack("{s:i, s:{s:s, s:o, s:i}}", "schema", CLI_JSON_SCHEMA, "error", "code", cli_err_name(err_code()),
			 "message", json_text(err_msg()), "exit_code", exit_code);
}

int cli_fail_json(const char *what, bool json)
{
	int code = cli_fail(what);
	if (json) cli_print_json(cli_error_json(code));
	return code;
}

int cli_fail(const char *what)
{
	if (what && *what)
		fprintf(stderr, "%s: %s: %s\n", progname, what, err_msg());
	else
		fprintf(stderr, "%s: %s\n", progname, err_msg());
	return cli_exit_for(err_code());
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	static char msg[4096 * 2 + 2048];   /* as err_msg: two paths and the cause, whole */
	va_list ap;
	va_start(ap, fmt);
	msg_vprintf(msg, sizeof msg, fmt, ap);   /* an overlong message ends in "..." */
	va_end(ap);
	fprintf(stderr, "%s: %s: %s\nTry '%s %s --help'.\n", progname, cmd, msg, progname, cmd);
	/* --json on the command line: the error object on stdout too (man
	 * page, JSON OUTPUT), even when the options around it were wrong */
	if (cli_json_seen) {
		json_t *j = json_pack("{s:i, s:{s:s, s:o, s:i}}", "schema", CLI_JSON_SCHEMA, "error", "code",
				      cli_err_name(E_USAGE), "message", json_text(msg), "exit_code", EXIT_USAGE);
		if (j && cli_error_report) cli_error_report(j, EXIT_USAGE);
		cli_print_json(j);
	}
	return EXIT_USAGE;
}

/* The name an option error is about: "-x" for a short option, "--name"
 * (without "=value") for a long one. */
static void option_name(int argc, char **argv, const char *shortopts, char *buf, size_t n)
{
	const char *arg = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : "";
	if (optopt > 0 && optopt < 256 && strncmp(arg, "--", 2)) {
		snprintf(buf, n, "-%c", optopt);   /* fits: 2 chars */
		return;
	}
	int len = (int)strcspn(arg, "=");
	msg_printf(buf, n, "%.*s", len, arg);   /* an overlong name ends in "..." */
}

/* Whether getopt_long, parsing the whole command line, takes an option
 * named "json": its decision, not a string compare, so "--js" (a unique
 * abbreviation, which getopt_long accepts) counts and "--json=x", an
 * ambiguous prefix or an argument after "--" do not. Parses a copy of
 * argv (getopt permutes it), then leaves getopt to start afresh. */
static bool json_option_taken(int argc, char **argv, const char *opts, const struct option *longopts)
{
	char **copy = xcalloc((size_t)argc + 1, sizeof *copy);
	if (!copy) {   /* out of memory: the error prints as text; the command reports it */
		err_clear();
		return false;
	}
	memcpy(copy, argv, (size_t)argc * sizeof *copy);
	bool seen = false;
	int c, idx;
	optind = 0;   /* glibc: 0 reinitialises the scan */
	while (idx = -1, (c = getopt_long(argc, copy, opts, longopts, &idx)) != -1)
		if (c != '?' && c != ':' && idx >= 0 && !strcmp(longopts[idx].name, "json")) seen = true;
	optind = 0;
	free(copy);
	return seen;
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	static bool scanned;   /* one command per process: its line is looked at once */
	char opts[64], name[64];
	/* ':' first: a missing argument returns ':' */
	snprintf(opts, sizeof opts, ":%s", shortopts);   /* fits: the commands' constant option strings are < 40 */
	opterr = 0;
	if (!scanned) {
		/* before the first option is parsed: a usage error in front of
		 * --json still prints the error object (cli_usage) */
		scanned = true;
		if (json_option_taken(argc, argv, opts, longopts)) cli_json_seen = 1;
	}
	int c = getopt_long(argc, argv, opts, longopts, NULL);
	if (c != '?' && c != ':') return c;
	option_name(argc, argv, shortopts, name, sizeof name);
	const char *arg = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : "";
	if (c == ':')
		cli_usage(cmd, "option '%s' needs an argument", name);
	else if (!strncmp(arg, "--", 2) && strchr(arg, '='))
		cli_usage(cmd, "option '%s' takes no argument, or is unknown", name);
	else
		cli_usage(cmd, "unknown option '%s'", name);
	return '?';
}

void cli_print_json(void *json)
{
	json_t *j = json;
	/* every object printed starts with "schema": the version of
	 * doc/schema.json it follows (one place for every command) */
	if (json_is_object(j)) {   /* first, even where the caller already set it */
		json_t *o = json_pack("{s:i}", "schema", CLI_JSON_SCHEMA);
		json_object_del(j, "schema");
		json_object_update(o, j);
		json_decref(j);
		j = o;
	}
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
}

/* ---- progress ---- */

/* The stages convert reports (lib/convert.c, lib/writer.c) and their share
 * of the overall percentage: nearly all the time is the output stream.
 * "flushing" is shown once the stream has read its last byte: what is left
 * is the last write, fsync and rename. */
static const struct { const char *name; int weight; } stages[] = {
	{ "reading input", 2 }, { "planning", 1 }, { "patching kernel files", 2 },
	{ "editing", 3 }, { "writing output", 89 }, { "flushing", 3 },
};
#define NSTAGES (int)(sizeof stages / sizeof *stages)
#define STAGE_FLUSH (NSTAGES - 1)
#define STAGE_OUTPUT_IDX (NSTAGES - 2)

/* set while a progress line is on the terminal: the signal handler clears it */
static volatile sig_atomic_t line_on_tty;

struct tty_progress {
	struct progress p;
	bool tty;
	int stage;                /* index in stages[], -1 before the first */
	char other[32];           /* a phase not in stages[] */
	int last_pct, last_tenth;
	struct timespec stage_start, last_draw;
	uint64_t done, total;
};

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

static int stage_index(const char *phase)
{
	for (int i = 0; i < NSTAGES; i++)
		if (!strcmp(stages[i].name, phase)) return i;
	return -1;
}

static int overall_pct(const struct tty_progress *t)
{
	int base = 0;
	for (int i = 0; i < t->stage && i < NSTAGES; i++) base += stages[i].weight;
	int w = t->stage >= 0 && t->stage != STAGE_FLUSH ? stages[t->stage].weight : 0;
	int pct = base + (t->total ? (int)((double)t->done / t->total * w) : 0);
	return pct > 100 ? 100 : pct;
}

/* "42% writing output  430/1024 MiB  215.3 MiB/s  0:03 left" */
static void format_line(const struct tty_progress *t, int pct, char *buf, size_t n)
{
	const char *name = t->stage >= 0 ? stages[t->stage].name : t->other;
	/* a line for the terminal: one longer than buf ends in "..." */
	if (msg_printf(buf, n, t->tty ? "%3d%% %s" : "%d%% %s", pct, name) < 0) return;
	if (t->stage != STAGE_OUTPUT_IDX || t->total <= 1) return;
	size_t k = strlen(buf);
	if (msg_printf(buf + k, n - k, "  %llu/%llu MiB", (unsigned long long)(t->done >> 20),
		       (unsigned long long)(t->total >> 20)) < 0) return;
	k += strlen(buf + k);
	double el = since(&t->stage_start);
	if (el < 1 || !t->done) return;
	double rate = t->done / el;
	unsigned left = (unsigned)((t->total - t->done) / rate + 0.5);
	msg_printf(buf + k, n - k, "  %.1f MiB/s  %u:%02u left", rate / (1 << 20), left / 60, left % 60);
}

static int term_width(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
	return 80;
}

/* One line, redrawn in place, never wider than the terminal (a wrapped
 * line cannot be redrawn by \r and would scroll). */
static void draw_tty(struct tty_progress *t, int pct, bool force)
{
	if (!force && pct == t->last_pct && since(&t->last_draw) < 0.25) return;
	if (!force && since(&t->last_draw) < 0.1) return;
	char line[160];
	format_line(t, pct, line, sizeof line);
	int w = term_width() - 1;
	if (w < 1) w = 1;
	fprintf(stderr, "\r%.*s\033[K", w, line);
	fflush(stderr);
	line_on_tty = 1;
	t->last_pct = pct;
	clock_gettime(CLOCK_MONOTONIC, &t->last_draw);
}

/* Off a terminal (-p): a line at every tenth of the whole run. */
static void draw_plain(struct tty_progress *t, int pct)
{
	if (pct / 10 == t->last_tenth) return;
	t->last_tenth = pct / 10;
	char line[160];
	format_line(t, pct / 10 * 10, line, sizeof line);
	fprintf(stderr, "%s: %s\n", progname, line);
	fflush(stderr);
}

static void update(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct tty_progress *t = ctx;
	int s = stage_index(phase);
	if (s == STAGE_OUTPUT_IDX && total > 1 && done >= total) s = STAGE_FLUSH;
	/* a new stage, or the sizes of one announced after its start: drawn at once */
	bool changed = s != t->stage || (s < 0 && strcmp(t->other, phase)) || (t->total <= 1 && total > 1);
	if (changed) {
		t->stage = s;
		msg_printf(t->other, sizeof t->other, "%s", phase);   /* a phase name, shown only */
		clock_gettime(CLOCK_MONOTONIC, &t->stage_start);
	}
	t->done = done;
	t->total = total;
	int pct = overall_pct(t);
	if (t->tty) draw_tty(t, pct, changed);
	else draw_plain(t, pct);
}

struct progress *cli_progress(int mode)
{
	bool tty = isatty(STDERR_FILENO);
	if (mode == 0 || (mode < 0 && !tty)) return NULL;
	struct tty_progress *t = xcalloc(1, sizeof *t);
	if (!t) {   /* out of memory: no progress shown, nothing else changes */
		err_clear();
		return NULL;
	}
	t->p.update = update;
	t->p.ctx = t;
	t->tty = tty;
	t->stage = -1;
	t->last_pct = t->last_tenth = -1;
	return &t->p;
}

void cli_progress_done(struct progress *p, bool ok)
{
	if (!p) return;
	struct tty_progress *t = p->ctx;
	if (t->tty && line_on_tty) {
		fputs("\r\033[K", stderr);   /* nothing stays: the result line follows */
		line_on_tty = 0;
	} else if (!t->tty && ok && t->last_tenth < 10) {
		fprintf(stderr, "%s: 100%% done\n", progname);
	}
	fflush(stderr);
	free(t);
}

static void on_signal(int sig)
{
	writer_cleanup_tmp();
	if (line_on_tty) {   /* the message gets a line of its own */
		ssize_t c = write(STDERR_FILENO, "\r\033[K", 4);
		(void)c;
	}
	static const char msg[] = "gen2prep: interrupted; no output written\n";
	ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
	/* with --json the error object on stdout as well: a constant, as
	 * write(2) is all a handler may use (signal-safety(7)); same shape as
	 * cli_error_json(), doc/schema.json error_object */
	static const char js[] = "{\n  \"schema\": 1,\n  \"error\": {\n    \"code\": \"interrupted\",\n"
				 "    \"message\": \"interrupted; no output written\",\n    \"exit_code\": 130\n  }\n}\n";
	/* convert's object has its report keys too (man page, JSON OUTPUT:
	 * "convert adds the report keys"): none is known to the handler, so
	 * each is null, empty or false, as before anything was read */
	static const char jc[] = "{\n  \"schema\": 1,\n  \"windows\": null,\n  \"plan\": null,\n  \"esp_files\": [],\n"
				 "  \"memdiag\": false,\n  \"patch_results\": [],\n  \"done\": false,\n  \"error\": {\n"
				 "    \"code\": \"interrupted\",\n    \"message\": \"interrupted; no output written\",\n"
				 "    \"exit_code\": 130\n  },\n  \"output\": null,\n  \"output_written\": false,\n  \"exit_code\": 130,\n"
				 "  \"next_steps\": []\n}\n";
	if (cli_json_seen && cli_json_report) r = write(STDOUT_FILENO, jc, sizeof jc - 1);
	else if (cli_json_seen) r = write(STDOUT_FILENO, js, sizeof js - 1);
	(void)r;
	_exit(EXIT_INTERRUPTED);
}

void cli_install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}
