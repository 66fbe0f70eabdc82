/* cmd_inspect.c - gen2prep inspect IMAGE [--json]: the read-only report of
 * what a disk holds and whether it can become a Generation 2 disk.
 * The verdict is the plan of `convert --dry-run` with default options
 * (lib/convert.c convert_run): same blockers, same exit status (0
 * convertible, 4 blockers, 5 a patch site, 3 unreadable input, 2 usage). */
#include "cli.h"
#include "json_text.h"
#include "convert.h"
#include "disk.h"
#include "overlay.h"
#include "patch.h"
#include "windows.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void inspect_help(void)
{
	printf("Usage: %s inspect IMAGE [--json]\n"
	       "Reports, read-only, what a Generation 1 Windows disk image holds and whether\n"
	       "it can be converted: image format, partitions and their roles, the Windows\n"
	       "installation, file versions, Integration Services, control sets,\n"
	       "MountedDevices, the kernel patches it would need, blockers and warnings.\n\n"
	       "Options:\n"
	       "  --json      print one JSON object instead of the summary\n"
	       "  -h, --help  this help\n\n"
	       "Exit status: 0 convertible, 4 not convertible (blockers), 5 a patch site not\n"
	       "found or ambiguous, 3 unreadable input,\n"
	       "2 usage error, 1 runtime failure.\n", progname);
}

/* ---------------------------------------------------------------- JSON */

static json_t *jstr_or_null(const char *s) { return s && *s ? json_text(s) : json_null(); }

static json_t *image_json(const char *path, const struct disk_info *di)
{
	json_t *j = json_object();
	json_object_set_new(j, "path", json_text(path));
	json_object_set_new(j, "format", json_text(di->format_name));
	json_object_set_new(j, "subformat", json_text(di->subformat));
	json_object_set_new(j, "virtual_size", json_integer((json_int_t)di->virtual_size));
	json_object_set_new(j, "logical_sector_size", json_integer(di->logical_sector_size));
	json_object_set_new(j, "physical_sector_size", json_integer(di->physical_sector_size));
	json_object_set_new(j, "parent", jstr_or_null(di->parent_path));
	return j;
}

static json_t *table_json(const struct ptable *t)
{
	json_t *j = json_object();
	char buf[40];
	json_object_set_new(j, "type", json_text(ptable_type_name(t->type)));
	/* both keys always, the other style's null (absent values are null) */
	snprintf(buf, sizeof buf, "0x%08x", t->disk_signature);   /* fits: 10 chars */
	json_object_set_new(j, "disk_signature", t->type == PT_MBR ? json_text(buf) : json_null());
	json_object_set_new(j, "disk_guid", t->type == PT_GPT ? json_text(guid_to_str(&t->disk_guid, buf)) : json_null());
	return j;
}

static json_t *partition_json(const struct ptable *t, const struct part_info *pi, const struct plan *plan)
{
	const struct part *p = pi->part;
	json_t *j = json_object();
	char buf[40];
	json_object_set_new(j, "number", json_integer(p->number));
	json_object_set_new(j, "start", json_integer((json_int_t)p->start));
	json_object_set_new(j, "size", json_integer((json_int_t)p->size));
	bool mbr = t->type == PT_MBR;
	if (mbr) snprintf(buf, sizeof buf, "0x%02x", p->mbr_type);   /* fits: a byte */
	else guid_to_str(&p->type_guid, buf);
	json_object_set_new(j, "type", json_text(buf));
	/* MBR keys null on GPT and the other way round: every key always there */
	json_object_set_new(j, "active", mbr ? json_boolean(p->active) : json_null());
	json_object_set_new(j, "logical", mbr ? json_boolean(p->logical) : json_null());
	json_object_set_new(j, "guid", mbr ? json_null() : json_text(guid_to_str(&p->part_guid, buf)));
	json_object_set_new(j, "name", mbr ? json_null() : json_text(p->name));
	json_object_set_new(j, "filesystem", json_text(pi->filesystem ? pi->filesystem : ""));
	json_object_set_new(j, "label", json_text(pi->label));
	json_object_set_new(j, "role", json_text(part_role_name(pi->role)));
	json_object_set_new(j, "ntfs_dirty", json_boolean(pi->ntfs_dirty));
	json_object_set_new(j, "hibernated", json_boolean(pi->ntfs_hibernated));
	json_object_set_new(j, "logfile", jstr_or_null(pi->logfile ? pi->logfile : ""));
	json_object_set_new(j, "bitlocker", json_boolean(pi->bitlocker));
	/* judged for a System Reserved partition only: null for the others */
	bool sr = pi->role == ROLE_SYSTEM_RESERVED;
	char why[256];
	bool reusable = sr && plan_reusable_as_esp(plan, pi, why, sizeof why);   /* the plan's own predicate */
	json_object_set_new(j, "reusable_as_esp", sr ? json_boolean(reusable) : json_null());
	json_object_set_new(j, "not_reusable_why", sr && !reusable ? json_text(why) : json_null());
	return j;
}

static json_t *files_json(const struct inspection *ins)
{
	json_t *j = json_object();
	for (int f = 0; f < WF_COUNT; f++) {
		const struct winfile_info *fi = &ins->files[f];
		if (!fi->present) { json_object_set_new(j, winfile_name[f], json_null()); continue; }
		json_t *e = json_object();
		char m[8];
		snprintf(m, sizeof m, "0x%04x", fi->machine);   /* fits: a u16, 6 chars */
		json_object_set_new(e, "path", json_text(fi->path));
		json_object_set_new(e, "file_version", jstr_or_null(fi->version));
		json_object_set_new(e, "machine", json_text(m));
		json_object_set_new(e, "size", json_integer((json_int_t)fi->size));
		json_object_set_new(e, "error", fi->error[0] ? json_text(fi->error) : json_null());
		json_object_set_new(j, winfile_name[f], e);
	}
	return j;
}

static json_t *start_json(int v) { return v < 0 ? json_null() : json_integer(v); }

static json_t *control_sets_json(const struct inspection *ins)
{
	json_t *a = json_array();
	for (size_t i = 0; i < ins->ncontrol_sets; i++) {
		const struct control_set *cs = &ins->control_sets[i];
		json_t *j = json_object();
		json_object_set_new(j, "name", json_text(cs->name));
		json_object_set_new(j, "ntfs_start", start_json(cs->ntfs_start));
		json_object_set_new(j, "vmbus_start", start_json(cs->vmbus_start));
		json_object_set_new(j, "storvsc_start", start_json(cs->storvsc_start));
		json_object_set_new(j, "hyperkbd_start", start_json(cs->hyperkbd_start));
		json_object_set_new(j, "firmware_boot_device", jstr_or_null(cs->firmware_boot_device));
		json_object_set_new(j, "system_boot_device", jstr_or_null(cs->system_boot_device));
		json_array_append_new(a, j);
	}
	return a;
}

static json_t *mounted_json(const struct inspection *ins)
{
	json_t *a = json_array();
	char buf[40];
	for (size_t i = 0; i < ins->nmounted; i++) {
		const struct mounted_device *m = &ins->mounted[i];
		json_t *j = json_object();
		json_object_set_new(j, "name", json_text(m->name));
		json_object_set_new(j, "kind", json_text(m->kind == MD_MBR ? "mbr" : m->kind == MD_GPT ? "gpt" : "other"));
		if (m->kind == MD_MBR) {
			snprintf(buf, sizeof buf, "0x%08x", m->signature);   /* fits: 10 chars */
			json_object_set_new(j, "signature", json_text(buf));
			json_object_set_new(j, "offset", json_integer((json_int_t)m->offset));
		} else if (m->kind == MD_GPT) {
			json_object_set_new(j, "partition_guid", json_text(guid_to_str(&m->part_guid, buf)));
		}
		json_object_set_new(j, "partition", m->partition ? json_integer(m->partition) : json_null());
		json_array_append_new(a, j);
	}
	return a;
}

static json_t *patches_json(const struct inspection *ins)
{
	json_t *a = json_array();
	for (size_t i = 0; i < ins->npatches; i++) {
		const struct patch_status_info *p = &ins->patches[i];
		json_t *j = json_object();
		json_object_set_new(j, "id", json_text(p->id));
		json_object_set_new(j, "file", json_text(p->file));
		json_object_set_new(j, "status", json_text(patch_status_name(p->status)));
		json_object_set_new(j, "message", json_text(p->message));
		json_array_append_new(a, j);
	}
	return a;
}

static json_t *windows_json(const struct inspection *ins)
{
	if (!ins->windows_found) return json_null();
	json_t *j = json_object();
	char kv[16];
	snprintf(kv, sizeof kv, "%u.%u", ins->kernel_version >> 8, ins->kernel_version & 0xff);   /* fits: 12 chars for any unsigned */
	json_object_set_new(j, "partition", json_integer(ins->windows_partition));
	json_object_set_new(j, "product_name", json_text(ins->product_name));
	json_object_set_new(j, "edition", json_text(ins->edition));
	json_object_set_new(j, "version", json_text(ins->version));
	json_object_set_new(j, "current_version", json_text(ins->current_version));
	json_object_set_new(j, "build", json_text(ins->build));
	json_object_set_new(j, "service_pack", json_text(ins->service_pack));
	json_object_set_new(j, "architecture", json_text(ins->architecture ? ins->architecture : ""));
	json_object_set_new(j, "kernel_version", json_text(kv));
	json_object_set_new(j, "locale", json_text(ins->locale));
	json_object_set_new(j, "files", files_json(ins));
	json_t *is = json_object();
	json_object_set_new(is, "version", jstr_or_null(ins->integration_services));
	json_object_set_new(j, "integration_services", is);
	json_object_set_new(j, "system_hive_dirty", json_boolean(ins->system_hive_dirty));
	json_object_set_new(j, "system_hive_state", json_text(ins->system_hive_state));
	json_object_set_new(j, "current_control_set", json_integer(ins->current_control_set));
	json_object_set_new(j, "control_sets", control_sets_json(ins));
	json_object_set_new(j, "mounted_devices", mounted_json(ins));
	json_object_set_new(j, "patches", patches_json(ins));
	return j;
}

static json_t *inspection_json(const char *path, const struct disk_info *di, const struct inspection *ins,
			       const struct convert_report *r)
{
	const struct plan *p = &r->plan;
	json_t *j = json_object();
	json_object_set_new(j, "schema", json_integer(CLI_JSON_SCHEMA));
	json_object_set_new(j, "image", image_json(path, di));
	json_object_set_new(j, "partition_table", table_json(&ins->table));
	json_t *parts = json_array();
	for (size_t i = 0; i < ins->nparts; i++)
		json_array_append_new(parts, partition_json(&ins->table, &ins->parts[i], &r->plan));
	json_object_set_new(j, "partitions", parts);
	json_object_set_new(j, "windows", windows_json(ins));
	/* the plan's blockers and warnings (the inspection's findings are among them) */
	json_object_set_new(j, "blockers", plan_findings_json(p->blockers, p->nblockers));
	json_object_set_new(j, "warnings", plan_findings_json(p->warnings, p->nwarnings));
	json_object_set_new(j, "convertible", json_boolean(plan_ok(p)));
	json_t *cr = convert_report_json(r);
	json_object_set_new(j, "plan", json_incref(json_object_get(cr, "plan")));
	json_object_set_new(j, "esp_files", json_incref(json_object_get(cr, "esp_files")));
	json_object_set_new(j, "patch_results", json_incref(json_object_get(cr, "patch_results")));
	json_decref(cr);
	return j;
}

/* ---------------------------------------------------------------- text */

static void print_size(uint64_t b)
{
	if (b >= (1ULL << 30) && b % (1ULL << 30) == 0) printf("%llu GiB", (unsigned long long)(b >> 30));
	else printf("%llu MiB", (unsigned long long)(b >> 20));
}

static void print_start(const char *what, int v)
{
	static const char *const names[] = { "boot", "system", "automatic", "manual", "disabled" };
	if (v < 0) printf(" %s=absent", what);
	else printf(" %s=%d(%s)", what, v, v <= 4 ? names[v] : "?");
}

static void print_windows(const struct inspection *ins)
{
	printf("Windows:      partition %d: %s%s%s, version %s, %s\n", ins->windows_partition,
	       ins->product_name[0] ? ins->product_name : "(unknown product)",
	       ins->service_pack[0] ? " " : "", ins->service_pack, ins->version[0] ? ins->version : "?",
	       ins->architecture && *ins->architecture ? ins->architecture : "unknown architecture");
	if (ins->locale[0]) printf("Locale:       %s\n", ins->locale);
	for (int f = 0; f < WF_COUNT; f++) {
		const struct winfile_info *fi = &ins->files[f];
		printf("  %-13s %s\n", winfile_name[f],
		       !fi->present ? "missing" : fi->version[0] ? fi->version : "(no version resource)");
	}
	printf("Integration Services: %s\n", ins->integration_services[0] ? ins->integration_services : "not found");
	const char *hs = ins->system_hive_state;
	printf("SYSTEM hive:  %s, current control set %d\n", !strcmp(hs, "torn") ? "NEEDS RECOVERY (torn base block)"
	       : !strcmp(hs, "unreadable") ? "UNREADABLE" : ins->system_hive_dirty ? "DIRTY" : "clean", ins->current_control_set);
	for (size_t i = 0; i < ins->ncontrol_sets; i++) {
		const struct control_set *cs = &ins->control_sets[i];
		printf("  %s:", cs->name);
		print_start("Ntfs", cs->ntfs_start);
		print_start("vmbus", cs->vmbus_start);
		print_start("storvsc", cs->storvsc_start);
		print_start("hyperkbd", cs->hyperkbd_start);
		printf("\n    FirmwareBootDevice=%s SystemBootDevice=%s\n",
		       cs->firmware_boot_device[0] ? cs->firmware_boot_device : "-",
		       cs->system_boot_device[0] ? cs->system_boot_device : "-");
	}
	for (size_t i = 0; i < ins->nmounted; i++) {
		const struct mounted_device *m = &ins->mounted[i];
		if (m->partition) printf("  %s -> partition %d\n", m->name, m->partition);
		else printf("  %s -> (no partition of this disk)\n", m->name);
	}
	if (ins->npatches) {
		printf("Kernel patches (dry run):\n");
		for (size_t i = 0; i < ins->npatches; i++)
			printf("  %-16s %-24s %s%s%s\n", ins->patches[i].file, ins->patches[i].id,
			       patch_status_name(ins->patches[i].status), ins->patches[i].message[0] ? ": " : "",
			       ins->patches[i].message);
	}
}

static void print_plan(const struct convert_report *r)
{
	const struct plan *p = &r->plan;
	if (!p->esp_number) return;
	printf("Plan:         convert's defaults (--layout %s --esp auto)\n", plan_layout_name(p->layout));
	printf("  ESP:        partition %d (%s), %llu MiB, FAT32 of %u clusters of %u bytes\n              %s\n", p->esp_number,
	       esp_mode_name(p->esp_mode), (unsigned long long)(p->esp_size >> 20), p->esp_clusters, p->esp_cluster_bytes,
	       p->esp_why);
	if (p->files_known)
		printf("  Boot files: %zu entries with the BCD store, %llu clusters\n", p->nfiles,
		       (unsigned long long)p->esp_files_clusters);
	char bcd[256];
	if (plan_bcd_summary(p, bcd, sizeof bcd)) printf("  BCD store:  %s\n", bcd);
	printf("  Registry:   %zu edits of SYSTEM\n", p->nedits);
	printf("  Loader:     %s%s\n", p->bcd.loader_path, p->bcd.nointegritychecks ? " (patched copy, nointegritychecks)" : "");
}

static void print_text(const char *path, const struct disk_info *di, const struct inspection *ins,
		       const struct convert_report *r)
{
	const struct plan *p = &r->plan;
	printf("Image:        %s (%s, %s, ", path, di->format_name, di->subformat);
	print_size(di->virtual_size);
	printf(", %u-byte sectors)\n", di->logical_sector_size);
	if (di->parent_path) printf("Parent:       %s\n", di->parent_path);
	printf("Partitions:   %s", ptable_type_name(ins->table.type));
	if (ins->table.type == PT_MBR) printf(", disk signature 0x%08X", ins->table.disk_signature);
	printf("\n");
	for (size_t i = 0; i < ins->nparts; i++) {
		const struct part_info *pi = &ins->parts[i];
		printf("  %d: start %llu, ", pi->part->number, (unsigned long long)pi->part->start);
		print_size(pi->part->size);
		printf(", %s%s%s%s%s -> %s", pi->filesystem && *pi->filesystem ? pi->filesystem : "no file system",
		       pi->label[0] ? " \"" : "", pi->label, pi->label[0] ? "\"" : "",
		       pi->part->active ? ", active" : "", part_role_name(pi->role));
		char why[256];
		if (pi->role == ROLE_SYSTEM_RESERVED)
			printf(plan_reusable_as_esp(p, pi, why, sizeof why) ? " (reusable as ESP)" : " (not reusable as ESP: %s)", why);
		printf("\n");
	}
	if (ins->windows_found) print_windows(ins);
	else printf("Windows:      not found\n");
	print_plan(r);
	for (size_t i = 0; i < p->nblockers; i++) printf("Blocker: %s: %s\n", p->blockers[i].id, p->blockers[i].message);
	for (size_t i = 0; i < p->nwarnings; i++) printf("Warning: %s: %s\n", p->warnings[i].id, p->warnings[i].message);
	printf("Convertible:  %s\n", plan_ok(p) ? "yes" : "no");
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	optind = 1;
	while ((c = cli_getopt("inspect", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': inspect_help(); return EXIT_OK;
		default: return EXIT_USAGE;   /* cli_getopt said why */
		}
	}
	if (argc - optind != 1)
		return cli_usage("inspect", argc - optind ? "too many arguments" : "missing IMAGE");
	const char *path = argv[optind];
	/* the dry run of convert with its defaults and no OUT: the same
	 * opening of the image and the same plan as convert (issue 8) */
	struct convert_opts co = { .in = path, .dry_run = true, .keep_input = true };
	struct convert_report *r = xcalloc(1, sizeof *r);
	if (!r) return cli_fail_json("inspect", json);
	int rc;
	if (convert_run(&co, r) < 0 || !r->ins) {
		rc = cli_fail_json("inspect", json);
	} else {
		if (json) cli_print_json(inspection_json(path, disk_info(r->disk), r->ins, r));
		else print_text(path, disk_info(r->disk), r->ins, r);
		rc = cli_exit_for(plan_err_code(&r->plan));
	}
	convert_report_free(r);
	free(r);
	return rc;
}
