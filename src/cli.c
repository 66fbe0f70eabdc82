/* cli.c - see cli.h */
#include "cli.h"
#include "writer.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *progname = "gen2prep";
int opt_verbose;

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

void *cli_error_json(int exit_code)
{
	return json_pack("{s:i, s:{s:s, s:s, s:i}}", "schema", CLI_JSON_SCHEMA, "error", "code", cli_err_name(err_code()),
			 "message", err_msg(), "exit_code", exit_code);
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
	va_list ap;
	fprintf(stderr, "%s %s: ", progname, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s --help'.\n", progname, cmd);
	return EXIT_USAGE;
}

/* The name an option error is about: "-x" for a short option, "--name"
 * (without "=value") for a long one. */
static void option_name(int argc, char **argv, const char *shortopts, char *buf, size_t n)
{
	const char *arg = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : "";
	if (optopt > 0 && optopt < 256 && strncmp(arg, "--", 2)) {
		snprintf(buf, n, "-%c", optopt);
		return;
	}
	size_t len = strcspn(arg, "=");
	snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), arg);
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	char opts[64], name[64];
	snprintf(opts, sizeof opts, ":%s", shortopts);   /* ':' first: a missing argument returns ':' */
	opterr = 0;
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
	if (json_is_object(j) && !json_object_get(j, "schema")) {
		json_t *o = json_pack("{s:i}", "schema", CLI_JSON_SCHEMA);
		json_object_update(o, j);
		json_decref(j);
		j = o;
	}
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
}

/* ---- progress ---- */

struct tty_progress {
	struct progress p;
	bool tty;
	char phase[64];
	int last_pct;
	time_t started;
	bool drawn;
};

static void draw(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct tty_progress *t = ctx;
	int pct = total ? (int)(done * 100 / total) : 100;
	bool new_phase = strncmp(t->phase, phase, sizeof t->phase - 1) != 0;
	if (new_phase) {
		if (t->drawn && t->tty) fputc('\n', stderr);
		snprintf(t->phase, sizeof t->phase, "%s", phase);
		t->last_pct = -1;
		t->started = time(NULL);
	}
	if (pct == t->last_pct) return;
	if (!t->tty && pct / 10 == t->last_pct / 10 && !new_phase && pct != 100) return;
	t->last_pct = pct;
	if (t->tty) {
		int width = 30, fill = pct * width / 100;
		char bar[64];
		for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
		bar[width] = 0;
		fprintf(stderr, "\r%-22.22s [%s] %3d%%  %llu/%llu MiB", t->phase, bar, pct,
			(unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
	} else {
		fprintf(stderr, "%s: %s: %d%%\n", progname, t->phase, pct);
	}
	t->drawn = true;
	fflush(stderr);
}

struct progress *cli_progress(int mode)
{
	bool tty = isatty(STDERR_FILENO);
	if (mode == 0 || (mode < 0 && !tty)) return NULL;
	struct tty_progress *t = xcalloc(1, sizeof *t);
	t->p.update = draw;
	t->p.ctx = t;
	t->tty = tty;
	t->last_pct = -1;
	return &t->p;
}

void cli_progress_done(struct progress *p)
{
	if (!p) return;
	struct tty_progress *t = p->ctx;
	if (t->drawn && t->tty) fputc('\n', stderr);
	free(t);
}

static void on_signal(int sig)
{
	writer_cleanup_tmp();
	static const char msg[] = "gen2prep: interrupted; no output written\n";
	ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
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
