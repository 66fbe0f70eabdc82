/* cmd_convert.c - gen2prep convert IN OUT: options, the plan or the run,
 * and what to do next. The work is lib/convert.c. */
#include "cli.h"
#include "json_text.h"
#include "convert.h"
#include "convert_args.h"
#include "next_steps.h"
#include "plan.h"
#include "vmconfig.h"
#include "writer.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s convert IN OUT [OPTIONS]\n"
		"Writes OUT, a copy of the Generation 1 Windows disk IN that boots in a Hyper-V\n"
		"Generation 2 machine. IN (VHD, VHDX or raw) is never modified.\n\n"
		"  --layout gpt|mbr        partition table of OUT (default gpt: the MBR becomes a\n"
		"                          GPT, every partition keeping its start, size and number)\n"
		"  --esp auto|existing|reuse|append\n"
		"                          where the EFI system partition goes: an existing FAT32\n"
		"                          partition, the System Reserved partition when it holds\n"
		"                          only boot files, or appended at the end of a grown disk\n"
		"                          (auto: the first of these that is possible)\n"
		"  --esp-size MiB          size of an appended ESP (default 100; 260 with 4096-byte\n"
		"                          sectors, also the least allowed there)\n"
		"  -O, --format vhdx|vhd|raw  output format (default: from OUT's extension)\n"
		"  -o subformat=fixed|dynamic  VHDX/VHD subformat (default dynamic)\n"
		"  --differencing          OUT is a differencing VHDX whose parent is IN (a VHDX):\n"
		"                          only what the conversion changed is written; IN must\n"
		"                          then stay unchanged (not booted again) and findable\n"
		"  --no-crash-report       do not patch KeBugCheckEx to report bugchecks to Hyper-V\n"
		"  --debug serial:PORT:BAUD  enable the kernel debugger (debug, sos) on COMPORT\n"
		"  --bootdebug             also enable the boot debugger (waits for a debugger!)\n"
		"  --random-ids            random disk/partition GUIDs (default: derived from IN)\n"
		"  --force                 convert a disk that is already Generation 2 ready\n"
		"                          (inspect's already-gen2; its ESP is formatted anew)\n"
		"  --force-version X.Y     treat the kernel as version X.Y for the patch catalog\n"
		"  --dry-run               print the plan, write nothing\n"
		"  --json                  machine-readable output on stdout\n"
		"  --overwrite             replace an existing OUT (and --nanabox/--hyperv-script files)\n"
		"  --nanabox FILE.7b       also write a NanaBox machine for OUT (Generation 2, Secure\n"
		"                          Boot off, OUT on SCSI by a path relative to FILE's folder;\n"
		"                          with --debug: COM PORT as \\\\.\\pipe\\NAME-comPORT)\n"
		"  --hyperv-script FILE.ps1  also write a PowerShell script that creates the same\n"
		"                          machine in Hyper-V (New-VM -Generation 2, ...)\n"
		"  --vm-name NAME          machine name (default: OUT's name without extension)\n"
		"  --vm-cpus N             processors (default 2)\n"
		"  --vm-memory MiB         memory (default 2048)\n"
		"  -p, --progress          show progress even when stderr is not a terminal\n"
		"  -q, --quiet             print nothing but errors (no progress, no next steps)\n"
		"  -v, --verbose           more detail\n"
		"  -h, --help              this help\n\n"
		"Exit status: 0 converted, 2 usage, 3 bad input, 4 blocked (reasons printed),\n"
		"5 a patch site not found or ambiguous, 7 output refused or failed, 130 interrupted.\n",
		progname);
}

enum { OPT_LAYOUT = 256, OPT_ESP, OPT_ESP_SIZE, OPT_NO_CRASH, OPT_DEBUG, OPT_BOOTDEBUG, OPT_RANDOM, OPT_FORCE,
       OPT_FORCE_VERSION, OPT_DRY_RUN, OPT_JSON, OPT_OVERWRITE, OPT_NANABOX, OPT_HYPERV, OPT_VM_NAME,
       OPT_VM_CPUS, OPT_VM_MEMORY, OPT_DIFFERENCING };

static const struct option long_opts[] = {
	{ "layout", required_argument, NULL, OPT_LAYOUT },
	{ "esp", required_argument, NULL, OPT_ESP },
	{ "esp-size", required_argument, NULL, OPT_ESP_SIZE },
	{ "format", required_argument, NULL, 'O' },
	{ "no-crash-report", no_argument, NULL, OPT_NO_CRASH },
	{ "debug", required_argument, NULL, OPT_DEBUG },
	{ "bootdebug", no_argument, NULL, OPT_BOOTDEBUG },
	{ "random-ids", no_argument, NULL, OPT_RANDOM },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "force-version", required_argument, NULL, OPT_FORCE_VERSION },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "overwrite", no_argument, NULL, OPT_OVERWRITE },
	{ "nanabox", required_argument, NULL, OPT_NANABOX },
	{ "hyperv-script", required_argument, NULL, OPT_HYPERV },
	{ "vm-name", required_argument, NULL, OPT_VM_NAME },
	{ "vm-cpus", required_argument, NULL, OPT_VM_CPUS },
	{ "vm-memory", required_argument, NULL, OPT_VM_MEMORY },
	{ "differencing", no_argument, NULL, OPT_DIFFERENCING },
	{ "progress", no_argument, NULL, 'p' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct vm_out {
	const char *path;          /* --nanabox / --hyperv-script FILE, NULL if not asked */
	char *disk_path;           /* OUT relative to FILE's folder (Windows form) */
	bool written;
	char refused[4096 * 2 + 2048]; /* err_msg whole; dry run: why FILE could not be written ("" = it can) */
};

struct args {
	struct convert_opts co;
	bool json;
	int progress;   /* -1 auto, 0 off, 1 forced */
	bool quiet;     /* -q: nothing but errors */
	struct vm_out nanabox, hyperv;
	const char *vm_name_opt;
	char *vm_name;
	unsigned vm_cpus, vm_memory;
	bool vm_opt_given;         /* --vm-name/--vm-cpus/--vm-memory */
};

static int parse_uint(const char *opt, const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || v > 0xFFFFFFFFul)
		return err_set(E_USAGE, "%s takes a number, not '%s'", opt, s);
	*out = (unsigned)v;
	return 0;
}

static int parse_version(const char *s, unsigned *out)
{
	unsigned ma, mi;
	char tail;
	if (sscanf(s, "%u.%u%c", &ma, &mi, &tail) != 2 || ma > 255 || mi > 255)
		return err_set(E_USAGE, "--force-version takes MAJOR.MINOR (e.g. 6.1), not '%s'", s);
	*out = ma << 8 | mi;
	return 0;
}

static int parse_size_mib(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || v == 0 || v > (1ULL << 20))
		return err_set(E_USAGE, "--esp-size takes a size in MiB (1-1048576), not '%s'", s);
	*out = v << 20;
	return 0;
}

static int parse_o(const char *s, struct plan_opts *po)
{
	if (!strcmp(s, "subformat=fixed")) po->fixed = true;
	else if (!strcmp(s, "subformat=dynamic")) po->fixed = false;
	else return err_set(E_USAGE, "-o takes subformat=fixed or subformat=dynamic, not '%s'", s);
	return 0;
}

static int parse_one(int c, const char *arg, struct args *a)
{
	struct plan_opts *po = &a->co.plan;
	switch (c) {
	case OPT_LAYOUT: return plan_layout_parse(arg, &po->layout);
	case OPT_ESP: return esp_mode_parse(arg, &po->esp);
	case OPT_ESP_SIZE: return parse_size_mib(arg, &po->esp_size);
	case 'O': po->format_given = true; return out_format_parse(arg, &po->format);
	case 'o': return parse_o(arg, po);
	case OPT_NO_CRASH: po->no_crash_report = true; return 0;
	case OPT_DEBUG: po->debug = true; return plan_parse_debug(arg, &po->debug_port, &po->debug_baud);
	case OPT_BOOTDEBUG: po->bootdebug = true; return 0;
	case OPT_RANDOM: po->random_ids = true; return 0;
	case OPT_FORCE: po->force = true; return 0;
	case OPT_FORCE_VERSION: return parse_version(arg, &po->force_version);
	case OPT_DRY_RUN: a->co.dry_run = true; return 0;
	case OPT_JSON: a->json = true; return 0;
	case OPT_OVERWRITE: a->co.overwrite = true; return 0;
	case OPT_DIFFERENCING: a->co.differencing = true; return 0;
	case OPT_NANABOX: a->nanabox.path = arg; return 0;
	case OPT_HYPERV: a->hyperv.path = arg; return 0;
	case OPT_VM_NAME: a->vm_opt_given = true; a->vm_name_opt = arg; return 0;
	case OPT_VM_CPUS: a->vm_opt_given = true; return parse_uint("--vm-cpus", arg, &a->vm_cpus);
	case OPT_VM_MEMORY: a->vm_opt_given = true; return parse_uint("--vm-memory", arg, &a->vm_memory);
	case 'p': a->progress = 1; return 0;
	case 'q': a->progress = 0; a->quiet = true; return 0;
	case 'v': opt_verbose++; return 0;
	}
	return err_set(E_USAGE, "unknown option");
}

/* 0 ok, 1 help printed, -1 usage error (printed) */
static int parse_args(int argc, char **argv, struct args *a)
{
	int c;
	a->progress = -1;
	a->vm_cpus = VM_DEFAULT_CPUS;
	a->vm_memory = VM_DEFAULT_MEMORY_MIB;
	optind = 1;
	while ((c = cli_getopt("convert", argc, argv, "O:o:pqvh", long_opts)) != -1) {
		if (c == 'h') { help(stdout); return 1; }
		if (c == '?') return -1;
		if (parse_one(c, optarg, a) < 0) { cli_usage("convert", "%s", err_msg()); return -1; }
	}
	/* -q asks for nothing but errors, -v for more: one of them (man page) */
	if (a->quiet && opt_verbose) {
		cli_usage("convert", "-q and -v contradict each other: give one of them");
		return -1;
	}
	if (a->quiet) a->progress = 0;   /* -q wins over -p, in either order (man page) */
	if (argc - optind != 2) {
		cli_usage("convert", "expected IN and OUT, got %d argument%s", argc - optind, argc - optind == 1 ? "" : "s");
		return -1;
	}
	a->co.in = argv[optind];
	a->co.out = argv[optind + 1];
	a->co.plan.out_path = a->co.out;
	return 0;
}

static void print_plan(const struct plan *p, const struct convert_report *r)
{
	/* what is known, never "?" (a disk whose table hides the volume) */
	if (!r->product_name[0] && !r->windows_version[0])
		printf("Windows: not found\n");
	else
		printf("Windows: %s (%s)\n", r->product_name[0] ? r->product_name : "name not known",
		       r->windows_version[0] ? r->windows_version : "version not known");
	for (size_t i = 0; i < p->nblockers; i++) printf("BLOCKED (%s): %s\n", p->blockers[i].id, p->blockers[i].message);
	if (!p->esp_number) return;
	printf("Layout: %s; ESP: partition %d (%s), %llu MiB at byte %llu\n  %s\n", plan_layout_name(p->layout), p->esp_number,
	       esp_mode_name(p->esp_mode), (unsigned long long)(p->esp_size >> 20), (unsigned long long)p->esp_start, p->esp_why);
	if (p->new_size != p->old_size)
		printf("Virtual size: %llu -> %llu MiB\n", (unsigned long long)(p->old_size >> 20), (unsigned long long)(p->new_size >> 20));
	printf("Boot loader: %s%s\n", p->bcd.loader_path, p->bcd.nointegritychecks ? " (patched copy, nointegritychecks)" : "");
	printf("Registry edits (SYSTEM): %zu\n", p->nedits);
	if (opt_verbose)
		for (size_t i = 0; i < p->nedits; i++) printf("  %s\\%s  (%s)\n", p->edits[i].key, p->edits[i].value, p->edits[i].why);
	for (size_t i = 0; i < p->npatches; i++)
		printf("Patch: %s (%s)%s%s\n", p->patches[i].path, pe_kind_name(p->patches[i].kind),
		       p->patches[i].copy_from[0] ? ", copy of " : "", p->patches[i].copy_from);
	if (p->files_known) printf("ESP files: %zu entries (%llu clusters)\n", p->nfiles, (unsigned long long)p->esp_files_clusters);
	if (opt_verbose)
		for (size_t i = 0; i < p->nfiles; i++) printf("  %s%s\n", p->files[i].dst, p->files[i].dir ? "/" : "");
	char bcd[256];
	if (plan_bcd_summary(p, bcd, sizeof bcd)) printf("BCD store: %s\n", bcd);
}

/* failed_only: after an error only the sites that failed (an "applied"
 * line would claim an edit that no file holds) */
static void print_patches(const struct convert_report *r, bool failed_only)
{
	for (size_t i = 0; i < r->npatches; i++)
		for (size_t k = 0; k < r->patches[i].report.nresults; k++) {
			const struct patch_result *pr = &r->patches[i].report.results[k];
			if (pr->status == PATCH_NOT_APPLICABLE && !opt_verbose) continue;
			if (failed_only && pr->status != PATCH_NOT_FOUND && pr->status != PATCH_AMBIGUOUS) continue;
			fprintf(stderr, "  %-20s %-14s %s\n", pr->id ? pr->id : "?", patch_status_name(pr->status), r->patches[i].path);
		}
}

/* ---- --nanabox / --hyperv-script (lib/vmconfig.c) ---- */

static struct vm_config vm_config_for(const struct args *a, const struct vm_out *o)
{
	const struct plan_opts *po = &a->co.plan;
	struct vm_config c = {
		.name = a->vm_name, .cpus = a->vm_cpus, .memory_mib = a->vm_memory, .disk_path = o->disk_path,
		.debug_port = po->debug ? po->debug_port : 0, .debug_baud = po->debug_baud,
	};
	return c;
}

static void free_vm(struct args *a)
{
	free(a->vm_name);
	free(a->nanabox.disk_path);
	free(a->hyperv.disk_path);
}

static int prepare_vm_out(const struct args *a, struct vm_out *o)
{
	if (!o->path) return 0;
	if (!strcmp(o->path, a->co.out) || !strcmp(o->path, a->co.in))
		return err_set(E_USAGE, "'%s' is IN or OUT: the machine definition needs a file of its own", o->path);
	if (vmconfig_check_output(o->path, a->co.overwrite) < 0) {
		/* the conversion stops here; the dry run shows the plan with an
		 * output-side blocker (vm_blockers), as for OUT itself */
		if (!a->co.dry_run || err_code() == E_IO) return -1;
		msg_printf(o->refused, sizeof o->refused, "%s", err_msg());
		err_clear();
	}
	o->disk_path = vmconfig_relative_path(o->path, a->co.out);
	if (!o->disk_path) return -1;
	struct vm_config c = vm_config_for(a, o);
	return vmconfig_check(&c);
}

/* Everything about the machine definitions is checked before the
 * conversion, so a bad name or an existing file costs no conversion. */
static int prepare_vm(struct args *a)
{
	if (!a->nanabox.path && !a->hyperv.path) {
		if (a->vm_opt_given) return err_set(E_USAGE, "--vm-name, --vm-cpus and --vm-memory need --nanabox or --hyperv-script");
		return 0;
	}
	if (a->nanabox.path && a->hyperv.path && !strcmp(a->nanabox.path, a->hyperv.path))
		return err_set(E_USAGE, "--nanabox and --hyperv-script name the same file");
	/* NanaBox's VirtualDisk takes "vhdx and vhd files" (ConfigurationReference.md,
	 * ScsiDevices.Path); Add-VMHardDiskDrive takes VHD/VHDX too: not raw. */
	const struct plan_opts *po = &a->co.plan;
	enum out_format f = po->format;
	if (!po->format_given && out_format_from_path(a->co.out, &f) < 0)
		return err_set(E_USAGE, "cannot tell the output format from '%s': use -O vhdx, vhd or raw", a->co.out);
	if (f == OUT_RAW)
		return err_set(E_USAGE, "--nanabox/--hyperv-script need a VHDX or VHD output: NanaBox and Hyper-V do not attach raw images");
	a->vm_name = a->vm_name_opt ? xstrdup(a->vm_name_opt) : vmconfig_default_name(a->co.out);
	if (!a->vm_name) return err_prefix("VM name");
	if (prepare_vm_out(a, &a->nanabox) < 0 || prepare_vm_out(a, &a->hyperv) < 0) return -1;
	return 0;
}

/* The dry run's output side includes the machine definitions: a FILE
 * that would be refused is an "output-refused" blocker (exit 7). */
static void vm_blockers(const struct args *a, struct convert_report *r)
{
	const struct vm_out *outs[2] = { &a->nanabox, &a->hyperv };
	for (int i = 0; i < 2; i++)
		if (r->inspected && outs[i]->refused[0]) plan_add_blocker(&r->plan, "output-refused", "%s", outs[i]->refused);
}

static int write_vm_out(const struct args *a, struct vm_out *o,
			int (*gen)(const struct vm_config *, char **, size_t *))
{
	if (!o->path) return 0;
	struct vm_config c = vm_config_for(a, o);
	char *buf;
	size_t len;
	if (gen(&c, &buf, &len) < 0) return -1;
	int rc = vmconfig_save(o->path, buf, len, a->co.overwrite);
	free(buf);
	if (rc < 0) return err_prefix("%s was converted, but", a->co.out);
	o->written = true;
	return 0;
}

static void vm_json(const struct args *a, json_t *j)
{
	if (!a->nanabox.path && !a->hyperv.path) return;
	const struct plan_opts *po = &a->co.plan;
	json_t *vm = json_object();
	json_object_set_new(vm, "name", json_text(a->vm_name));
	json_object_set_new(vm, "cpus", json_integer(a->vm_cpus));
	json_object_set_new(vm, "memory_mib", json_integer(a->vm_memory));
	if (po->debug && po->debug_port <= 2) {
		char *pipe = vmconfig_pipe_name(a->vm_name, po->debug_port);
		json_object_set_new(vm, "debug_pipe", json_text(pipe));
		free(pipe);
	}
	const struct vm_out *outs[2] = { &a->nanabox, &a->hyperv };
	const char *keys[2] = { "nanabox", "hyperv_script" };
	for (int i = 0; i < 2; i++) {
		if (!outs[i]->path) continue;
		json_object_set_new(vm, keys[i], json_pack("{s:o,s:o?,s:b}", "path", json_text(outs[i]->path),
							   "disk_path", json_text(outs[i]->disk_path), "written", outs[i]->written));
	}
	json_object_set_new(j, "vm", vm);
}

static int exit_code_for(const struct convert_report *r)
{
	enum err_code c = err_code();
	/* the input changed or failed while OUT was written: an input error */
	if (r->input_error && c != E_INTERRUPTED) return EXIT_BAD_INPUT;
	/* anything else that fails while writing OUT is about the output */
	if (r->stage == STAGE_OUTPUT && c != E_INTERRUPTED && c != E_USAGE) return EXIT_OUTPUT;
	return cli_exit_for(c);
}

/* Warnings go to stderr, whatever else is printed (stdout carries the
 * results: the plan, the report, the JSON). */
static void print_warnings(const struct plan *p, bool planned)
{
	if (!planned) return;
	for (size_t i = 0; i < p->nwarnings; i++) fprintf(stderr, "%s: warning: %s\n", progname, p->warnings[i].message);
	char buf[256];
	if (p->format_known && next_steps_vhd_warning(p, buf, sizeof buf))
		fprintf(stderr, "%s: warning: %s\n", progname, buf);
}

static void print_vm_files(const struct args *a)
{
	if (a->nanabox.written)
		printf("Wrote %s: a NanaBox machine '%s' for %s.\n", a->nanabox.path, a->vm_name, a->co.out);
	if (a->hyperv.written)
		printf("Wrote %s: a PowerShell script that creates the Hyper-V machine '%s' for %s.\n",
		       a->hyperv.path, a->vm_name, a->co.out);
}

static void make_steps(const struct args *a, const struct convert_report *r, struct next_steps *s)
{
	char *name = a->vm_name ? NULL : vmconfig_default_name(a->co.out);
	struct next_input in = {
		.plan = &r->plan, .in = a->co.in, .out = a->co.out, .product_name = r->product_name,
		.vm_name = a->vm_name ? a->vm_name : name, .vm_memory_mib = a->vm_memory,
		.nanabox = a->nanabox.written ? a->nanabox.path : NULL, .nanabox_disk = a->nanabox.disk_path,
		.hyperv_script = a->hyperv.written ? a->hyperv.path : NULL, .hyperv_disk = a->hyperv.disk_path,
		.differencing = a->co.differencing,
	};
	next_steps_make(&in, s);
	free(name);
}

/* The JSON object of a run: the report, then (for a failure, or a dry run
 * that would be refused) the error object. The report's builders may read
 * on past a detail they cannot give (null) and clear the error on the way:
 * the run's error is kept aside over them and set again, so that the error
 * object and the message on stderr are the run's own (issue: --json
 * printed "unknown error", code "ok"). */
static json_t *result_json(const struct args *a, const struct convert_report *r, int rc, int code)
{
	json_t *j = json_pack("{s:i}", "schema", CLI_JSON_SCHEMA);
	json_t *rep = convert_report_json(r);
	json_object_update(j, rep);
	json_decref(rep);
	json_t *e = code != EXIT_OK ? cli_error_json(code) : NULL;
	if (e) json_object_update(j, e);
	json_decref(e);
	return j;
}

/* The keys every convert --json object has, whatever the exit (man page,
 * JSON OUTPUT; doc/schema.json convert "required"): error (null on
 * success), output (OUT as given, null before the command line named it),
 * output_written, exit_code and next_steps (empty unless OUT was written). */
static void report_keys(json_t *j, const char *out, bool written, int code, const struct next_steps *steps)
{
	if (!json_object_get(j, "error")) json_object_set_new(j, "error", json_null());
	json_object_set_new(j, "output", out ? json_text(out) : json_null());
	json_object_set_new(j, "output_written", json_boolean(written));
	json_object_set_new(j, "exit_code", json_integer(code));
	json_object_set_new(j, "next_steps", steps ? next_steps_json(steps) : json_array());
}

/* Every --json failure of convert has the report keys, a usage error or
 * a refusal before the run too (cli.h cli_error_report): the run's report
 * when there is one, else an empty one (null, empty or false, as the
 * interrupted run's object, cli.c), then error, output_written (false:
 * nothing was written) and exit_code. */
static const struct convert_report *failed_report;
static const struct args *report_args;   /* OUT as parsed so far (NULL: none yet) */

static void error_report_keys(void *json, int exit_code)
{
	json_t *j = json, *o = NULL, *rep = NULL;
	struct convert_report *empty = failed_report ? NULL : xcalloc(1, sizeof *empty);
	if (failed_report || empty) rep = convert_report_json(failed_report ? failed_report : empty);
	free(empty);
	if (rep) o = json_pack("{s:O?}", "error", json_object_get(j, "error"));
	if (o) report_keys(o, report_args ? report_args->co.out : NULL, false, exit_code, NULL);
	if (o && !json_object_update(rep, o) && !json_object_clear(j)) json_object_update(j, rep);
	json_decref(o);
	json_decref(rep);   /* out of memory on the way: the plain error object */
}

static int finish(struct args *a, struct convert_report *r, int rc, bool out_written)
{
	const struct plan *p = &r->plan;
	/* an option the plan refuses only once IN is read (--esp-size below
	 * the minimum for IN's sector size) is a usage error like the
	 * parser's: one message, one error object with --json */
	if (rc < 0 && err_code() == E_USAGE) {
		failed_report = r;
		return cli_usage("convert", "%s", err_msg());
	}
	int code = rc < 0 ? exit_code_for(r) : EXIT_OK;
	if (rc == 0 && a->co.dry_run && !plan_ok(p)) {
		/* a dry run that would be refused has the conversion's error
		 * (blocked, or output for an output-side blocker; JSON error
		 * object, -q's error line) */
		static char buf[4096 * 2];   /* the blockers whole (err_msg holds this and more) */
		code = cli_exit_for(plan_err_code(p));
		err_set(plan_err_code(p), "%s%s", plan_err_code(p) == E_OUTPUT ? "" : "not convertible: ",
			plan_blockers_text(p, buf, sizeof buf));
	}
	struct next_steps steps = { 0 };
	if (rc == 0 && !a->co.dry_run) make_steps(a, r, &steps);
	if (a->json) {
		json_t *j = result_json(a, r, rc, code);
		report_keys(j, a->co.out, !a->co.dry_run && out_written, code,
			    rc == 0 && !a->co.dry_run ? &steps : NULL);
		vm_json(a, j);
		cli_print_json(j);
	} else if (a->co.dry_run && r->inspected && !a->quiet) {
		print_plan(p, r);   /* -q: the verdict line only (below) */
	}
	if (!a->quiet) print_warnings(p, rc == 0 || r->inspected);
	if (code != EXIT_OK) cli_check_failure(code);
	if (rc < 0) {
		/* after the work began (patches, edits, stream), say on the same
		 * line that none of it reached OUT; a refusal before it needs not */
		next_steps_free(&steps);
		bool worked = !a->co.dry_run && !out_written && r->inspected && r->stage >= STAGE_PATCH && plan_ok(p);
		fprintf(stderr, "%s: convert: %s%s\n", progname, err_msg(), worked ? "; nothing was written" : "");
		if (plan_has_blocker(p, "patch-site")) print_patches(r, true);   /* which site is missing */
		return code;
	}
	if (a->co.dry_run) {
		next_steps_free(&steps);
		if (!a->json) printf(code == EXIT_OK ? "Dry run: nothing written.\n" : "Dry run: not convertible.\n");
		/* every failing exit says why on stderr (man page, OUTPUT), with
		 * or without -q: the reasons as the conversion's error line */
		if (code != EXIT_OK) fprintf(stderr, "%s: convert: %s\n", progname, err_msg());
		return code;
	}
	if (!a->json && !a->quiet) {
		printf("Wrote %s (%s%s%s): %s, layout %s, ESP partition %d.\n", a->co.out, out_format_name(p->format),
		       a->co.differencing ? ", differencing, parent " : p->format == OUT_RAW ? "" : p->fixed ? ", fixed" : ", dynamic",
		       a->co.differencing ? a->co.in : "",
		       r->product_name[0] ? r->product_name : "Windows", plan_layout_name(p->layout), p->esp_number);
		print_vm_files(a);
		if (opt_verbose) print_patches(r, false);
		next_steps_print(&steps, stdout);
	}
	next_steps_free(&steps);
	return EXIT_OK;
}

int cmd_convert(int argc, char **argv)
{
	struct args a;
	memset(&a, 0, sizeof a);
	cli_error_report = error_report_keys;
	report_args = &a;
	int pr = parse_args(argc, argv, &a);
	if (pr) return pr > 0 ? EXIT_OK : EXIT_USAGE;
	if (convert_check_args(&a.co, a.nanabox.path, a.hyperv.path, a.quiet) < 0 || prepare_vm(&a) < 0) {
		/* anything but a usage error is about an output file: exit 7 */
		int code = EXIT_OUTPUT;
		if (err_code() == E_USAGE) code = cli_usage("convert", "%s", err_msg());   /* JSON too with --json */
		else if (err_code() == E_NOMEM) code = cli_fail_json("convert", a.json);
		else {
			cli_fail("convert");
			if (a.json) {   /* the error object with the report keys, as every refusal */
				json_t *j = cli_error_json(code);
				if (j) error_report_keys(j, code);
				cli_print_json(j);
			}
		}
		free_vm(&a);
		return code;
	}
	cli_json_report = 1;   /* from here an interrupt prints convert's JSON object */
	struct progress *prog = a.json && a.progress < 0 ? NULL : cli_progress(a.co.dry_run ? 0 : a.progress);
	a.co.progress = prog;
	struct convert_report *r = xcalloc(1, sizeof *r);
	if (!r) {
		cli_progress_done(prog, false);
		free_vm(&a);
		return cli_fail_json("convert", a.json);
	}
	int rc = convert_run(&a.co, r);
	if (rc == 0 && a.co.dry_run) vm_blockers(&a, r);
	bool out_written = rc == 0 && !a.co.dry_run;
	cli_progress_done(prog, rc == 0);
	if (rc == 0 && !a.co.dry_run && (write_vm_out(&a, &a.nanabox, vmconfig_nanabox) < 0 ||
					 write_vm_out(&a, &a.hyperv, vmconfig_hyperv_script) < 0)) {
		rc = -1;
		r->stage = STAGE_OUTPUT;
	}
	int code = finish(&a, r, rc, out_written);
	convert_report_free(r);
	free(r);
	free_vm(&a);
	return code;
}
