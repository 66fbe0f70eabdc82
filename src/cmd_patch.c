/* cmd_patch.c - gen2prep patch FILE: apply the kernel patch catalog
 * (doc/patches.md, Which binary) to one PE file (ntoskrnl.exe, hal.dll, acpi.sys, winload.efi).
 * Exit 0 all applicable patches applied/already applied, 5 a required site
 * not found or ambiguous, 4 kernel 5.x (refused), 3 not a PE / wrong
 * machine / unknown binary, 7 output refused or failed, 2 usage. */
#include "cli.h"
#include "json_text.h"
#include "writer.h"
#include "patch.h"
#include "pe.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PE_FILE (512u << 20) /* a kernel is ~5 MiB; refuse absurd inputs */

static void patch_help(void)
{
	printf("Usage: %s patch FILE [-o OUT | --in-place] [options]\n"
	       "Applies the kernel patch catalog to one PE file: ntoskrnl.exe, hal.dll,\n"
	       "acpi.sys (Windows 6.0/6.1) or winload.efi (a copy meant as winload-gen2.efi).\n"
	       "Each patch site is found by what the code does (Zydis), must be unique, is\n"
	       "checked before writing; the PE checksum is recomputed. FILE is never changed\n"
	       "unless --in-place.\n\n"
	       "Options:\n"
	       "  -o, --output OUT       write the patched file to OUT (must not exist)\n"
	       "      --in-place         rewrite FILE itself (atomically: temp file + rename)\n"
	       "      --kind KIND        ntoskrnl, hal, acpi or winload (default: detected from\n"
	       "                         the version resource, exports and imports)\n"
	       "      --only ID,...      apply only these patches\n"
	       "      --skip ID,...      do not apply these patches\n"
	       "      --dry-run          find and check every site, write nothing\n"
	       "      --force-version V  treat the file as kernel version V (e.g. 6.1) instead of\n"
	       "                         its FileVersion: an escape hatch for unknown builds\n"
	       "      --json             print the report as one JSON object\n"
	       "  -h, --help             this help\n\n"
	       "Patches:\n",
	       progname);
	for (size_t i = 0; i < patch_catalog_count(); i++)
		printf("  %-22s %s%s\n", patch_catalog_id(i), pe_kind_name(patch_catalog_binary(i)),
		       patch_catalog_applies(i, 0x600) && !patch_catalog_applies(i, 0x601) ? " (6.0 only)" : " (6.0, 6.1)");
	printf("\nExit status: 0 every applicable patch applied or already applied, 5 a patch\n"
	       "site not found or ambiguous, 4 refused (kernel 5.x), 3 not a PE / not AMD64 /\n"
	       "unknown binary, 7 output refused or failed, 2 usage error, 1 runtime failure.\n");
}

struct patch_cli {
	const char *file, *out, *only, *skip, *kind;
	bool in_place, dry_run, json;
	unsigned force_version;
};

static int parse_version_opt(const char *s, unsigned *v)
{
	unsigned maj, min;
	char tail;
	if (sscanf(s, "%u.%u%c", &maj, &min, &tail) != 2 || maj > 255 || min > 255 || maj == 0)
		return -1;
	*v = (maj << 8) | min;
	return 0;
}

/* The first id of the comma list only that is also in skip, into id; false
 * when none: asking to apply only X and to skip X is a contradiction the
 * user must resolve (exit 2), not something to guess an intent for. */
static bool id_lists_clash(const char *only, const char *skip, char *id, size_t n)
{
	if (!only || !skip) return false;
	for (const char *p = only; *p;) {
		size_t len = strcspn(p, ",");
		for (const char *s = skip; *s;) {
			size_t sl = strcspn(s, ",");
			if (len && sl == len && !strncmp(p, s, len)) {
				msg_printf(id, n, "%.*s", (int)len, p);   /* named in a usage message */
				return true;
			}
			s += sl + (s[sl] == ',');
		}
		p += len + (p[len] == ',');
	}
	return false;
}

static int parse_args(int argc, char **argv, struct patch_cli *o)
{
	static const struct option opts[] = {
		{ "output", required_argument, 0, 'o' }, { "in-place", no_argument, 0, 'i' },
		{ "kind", required_argument, 0, 'k' },   { "only", required_argument, 0, 'O' },
		{ "skip", required_argument, 0, 'S' },   { "dry-run", no_argument, 0, 'n' },
		{ "force-version", required_argument, 0, 'F' }, { "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },         { 0, 0, 0, 0 },
	};
	int c;
	optind = 1;
	while ((c = cli_getopt("patch", argc, argv, "o:h", opts)) != -1) {
		switch (c) {
		case 'o': o->out = optarg; break;
		case 'i': o->in_place = true; break;
		case 'k': o->kind = optarg; break;
		case 'O': o->only = optarg; break;
		case 'S': o->skip = optarg; break;
		case 'n': o->dry_run = true; break;
		case 'j': o->json = true; break;
		case 'F':
			if (parse_version_opt(optarg, &o->force_version) < 0)
				return cli_usage("patch", "--force-version: expected MAJOR.MINOR, got '%s'", optarg);
			break;
		case 'h': patch_help(); return -2;
		default: return EXIT_USAGE;   /* cli_getopt said why */
		}
	}
	if (optind != argc - 1)
		return cli_usage("patch", "expected exactly one FILE");
	o->file = argv[optind];
	if (o->out && o->in_place)
		return cli_usage("patch", "-o and --in-place exclude each other");
	char clash[64];
	if (id_lists_clash(o->only, o->skip, clash, sizeof clash))
		return cli_usage("patch", "patch id '%s' is in both --only and --skip: give it in one of them", clash);
	if (!o->out && !o->in_place && !o->dry_run)
		return cli_usage("patch", "choose where the patched file goes: -o OUT, or --in-place to rewrite %s"
				 " (--dry-run writes nothing)", o->file);
	return 0;
}

/* ---- I/O ---- */

static int read_input(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return err_errno(E_IO, "%s", path);
	struct stat st;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_PE_FILE) {
		fclose(f);
		return err_set(E_FORMAT, "%s: not a regular file of at most %u MiB", path, MAX_PE_FILE >> 20);
	}
	*len = (size_t)st.st_size;
	*data = xmalloc(*len ? *len : 1);
	if (!*data) {
		fclose(f);
		return err_prefix("%s", path);
	}
	size_t got = fread(*data, 1, *len, f);
	fclose(f);
	if (got != *len) {
		free(*data);
		return err_set(E_IO, "%s: short read", path);
	}
	return 0;
}

/* Nameless file beside dest, fsync, link or rename over it (writer.h): an
 * interrupted or killed run never leaves a half-written dest or a temporary
 * file. */
static int write_atomic(const char *dest, const uint8_t *data, size_t len)
{
	return writer_save_buffer(dest, data, len, true, 0644);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* ---- report ---- */

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);   /* fits: out holds 2n + 1 */
	out[2 * n] = 0;
}

static json_t *result_json(const struct patch_result *r)
{
	json_t *j = json_object();
	json_object_set_new(j, "id", json_text(r->id));
	json_object_set_new(j, "binary", json_text(pe_kind_name(r->binary)));
	json_object_set_new(j, "status", json_text(patch_status_name(r->status)));
	json_object_set_new(j, "message", r->message[0] ? json_text(r->message) : json_null());
	if (r->func_end) {
		json_t *fn = json_object();
		json_object_set_new(fn, "begin", json_integer(r->func_begin));
		json_object_set_new(fn, "end", json_integer(r->func_end));
		json_object_set_new(j, "function", fn);
	} else {
		json_object_set_new(j, "function", json_null());
	}
	json_t *edits = json_array();
	for (size_t i = 0; i < r->nedits; i++) {
		const struct patch_edit *e = &r->edits[i];
		char h[2 * sizeof e->before + 1];
		json_t *je = json_object();
		json_object_set_new(je, "rva", json_integer(e->rva));
		json_object_set_new(je, "file_offset", json_integer((json_int_t)e->file_off));
		json_object_set_new(je, "length", json_integer(e->len));
		hex(h, e->before, e->len);
		json_object_set_new(je, "before", json_text(h));
		hex(h, e->after, e->len);
		json_object_set_new(je, "after", json_text(h));
		json_object_set_new(je, "asm_before", json_text(e->asm_before));
		json_object_set_new(je, "asm_after", json_text(e->asm_after));
		json_array_append_new(edits, je);
	}
	json_object_set_new(j, "edits", edits);
	return j;
}

static void print_json(const struct patch_cli *o, const struct pe *pe, const struct patch_report *rep,
		       const char *written, int rc)
{
	char vbuf[64], cs[16];
	json_t *j = json_object();
	json_object_set_new(j, "file", json_text(o->file));
	json_object_set_new(j, "kind", json_text(pe_kind_name(rep->kind)));
	json_object_set_new(j, "file_version", json_text(pe_version_str(pe, vbuf, sizeof vbuf)));
	snprintf(vbuf, sizeof vbuf, "%u.%u", rep->version >> 8, rep->version & 0xFF);   /* fits: 14 chars for any unsigned */
	json_object_set_new(j, "kernel_version", json_text(vbuf));
	json_object_set_new(j, "forced_version", json_boolean(o->force_version != 0));
	json_object_set_new(j, "dry_run", json_boolean(o->dry_run));
	json_t *arr = json_array();
	for (size_t i = 0; i < rep->nresults; i++)
		json_array_append_new(arr, result_json(&rep->results[i]));
	json_object_set_new(j, "patches", arr);
	json_object_set_new(j, "checksum_updated", json_boolean(rep->checksum_updated));
	snprintf(cs, sizeof cs, "0x%08x", get_le32(pe->data + pe->checksum_off));   /* fits: 10 chars */
	json_object_set_new(j, "checksum", json_text(cs));
	json_object_set_new(j, "output", written ? json_text(written) : json_null());
	json_object_set_new(j, "ok", json_boolean(rc == 0));
	json_object_set_new(j, "error", rc ? json_text(err_msg()) : json_null());
	cli_print_json(j);
}

static void print_human(const struct patch_cli *o, const struct pe *pe, const struct patch_report *rep)
{
	char vbuf[64];
	printf("%s: %s, file version %s, kernel %u.%u%s\n", o->file, pe_kind_name(rep->kind),
	       *pe_version_str(pe, vbuf, sizeof vbuf) ? vbuf : "(none)", rep->version >> 8, rep->version & 0xFF,
	       o->force_version ? " (forced)" : "");
	for (size_t i = 0; i < rep->nresults; i++) {
		const struct patch_result *r = &rep->results[i];
		printf("  %-22s %-16s", r->id, patch_status_name(r->status));
		if (r->func_end)
			printf(" function 0x%x-0x%x", r->func_begin, r->func_end);
		if (r->message[0])
			printf(" (%s)", r->message);
		printf("\n");
		for (size_t k = 0; k < r->nedits; k++) {
			const struct patch_edit *e = &r->edits[k];
			printf("      rva 0x%x-0x%x  file 0x%zx-0x%zx  %u bytes\n", e->rva, e->rva + e->len, e->file_off,
			       e->file_off + e->len, e->len);
			printf("        before: %s\n", e->asm_before);
			if (r->status != PATCH_ALREADY_APPLIED)
				printf("        after:  %s\n", e->asm_after);
		}
	}
	if (rep->checksum_updated)
		printf("  checksum updated: 0x%08x\n", get_le32(pe->data + pe->checksum_off));
}

/* E_NOTFOUND here is a patch site, not a missing file: exit 5. */
static int exit_for(enum err_code c)
{
	return c == E_NOTFOUND || c == E_AMBIGUOUS ? EXIT_PATCH : cli_exit_for(c);
}

/* -1 (E_OUTPUT) when PATH is a symbolic link: writing it would replace
 * the link by a regular file and leave its target unpatched. */
static int refuse_symlink(const char *path, const char *how)
{
	struct stat st;
	if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode)) return 0;
	char target[4096];
	ssize_t n = readlink(path, target, sizeof target - 1);
	target[n < 0 ? 0 : n] = 0;
	err_set(E_OUTPUT, "%s is a symbolic link to %s; not writing %s (patch the target itself)", path,
		n < 0 ? "(unreadable)" : target, how);
	return -1;
}

static int run(const struct patch_cli *o)
{
	const char *dest = o->in_place ? o->file : o->out;
	if (!o->dry_run && !dest) {
		err_set(E_EXISTS, "refusing to overwrite %s: give -o OUT or --in-place (or --dry-run)", o->file);
		return cli_fail_json("patch", o->json);
	}
	if (!o->dry_run && refuse_symlink(dest, o->in_place ? "it in place" : "through it") < 0)
		return cli_fail("patch");
	if (!o->dry_run && o->out && (same_file(o->out, o->file) || access(o->out, F_OK) == 0)) {
		err_set(E_EXISTS, "%s exists%s; not overwriting (use --in-place to patch FILE itself)", o->out,
			same_file(o->out, o->file) ? " and is FILE" : "");
		return cli_fail_json("patch", o->json);
	}
	enum pe_kind kind = KIND_UNKNOWN;
	if (o->kind && pe_kind_parse(o->kind, &kind) < 0)
		return cli_usage("patch", "%s", err_msg());
	uint8_t *data = NULL;
	size_t len = 0;
	if (read_input(o->file, &data, &len) < 0) {
		if (err_code() == E_IO) err_recode(E_FORMAT);   /* unreadable input: 3 in every command */
		return cli_fail_json("patch", o->json);
	}
	struct pe *pe = pe_parse(data, len);
	free(data);
	if (!pe) {
		err_prefix_file(o->file);
		return cli_fail_json("patch", o->json);
	}
	if (!o->kind)
		kind = patch_detect_kind(pe);
	struct patch_opts po = { o->only, o->skip, o->dry_run, o->force_version };
	struct patch_report *rep = xcalloc(1, sizeof *rep);
	if (!rep) {
		pe_free(pe);
		return cli_fail_json("patch", o->json);
	}
	int rc = patch_apply(pe, kind, &po, rep);
	enum err_code code = rc < 0 ? err_code() : E_OK;
	const char *written = NULL;
	bool write_failed = false;
	if (rc == 0 && !o->dry_run && (o->out || rep->checksum_updated)) {
		if (write_atomic(dest, pe->data, pe->len) < 0) {
			rc = -1;
			code = err_code();
			write_failed = true;
		} else {
			written = dest;
		}
	}
	if (o->json)
		print_json(o, pe, rep, written, rc);
	else if (rep->nresults && !write_failed) /* a refused file (no entry looked at) or a failed write prints only the error */
		print_human(o, pe, rep);
	if (!o->json && written)
		printf("wrote %s\n", written);
	int ex = EXIT_OK;
	if (rc < 0) {
		fprintf(stderr, "%s: patch: %s\n", progname, err_msg());
		ex = exit_for(code);
	}
	free(rep);
	pe_free(pe);
	return ex;
}

int cmd_patch(int argc, char **argv)
{
	struct patch_cli o;
	memset(&o, 0, sizeof o);
	int r = parse_args(argc, argv, &o);
	if (r == -2)
		return EXIT_OK;
	if (r != 0)
		return r;
	return run(&o);
}
