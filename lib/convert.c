/* convert.c - see convert.h */
#include "convert.h"
#include "json_text.h"
#include "bcd.h"
#include "disk.h"
#include "fat32.h"
#include "image.h"
#include "ntfs.h"
#include "output_id.h"
#include "overlay.h"
#include "partition.h"
#include "pe.h"
#include "rules.h"
#include "system_hive.h"
#include "util.h"
#include "win32_name.h"
#include "windows.h"
#include "writer.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MAX_BOOT_FILE (64u << 20)     /* any single boot file; bootmgfw.efi is ~1 MiB */
#define MAX_KERNEL_FILE (64u << 20)   /* ntoskrnl.exe is ~5 MiB */
#define MAX_HIVE (256u << 20)         /* SYSTEM hives are tens of MiB */

static const char SYSTEM_HIVE_PATH[] = "\\Windows\\System32\\config\\SYSTEM";

/* ---- output checks ---- */

int convert_check_output(const char *in, const char *out, bool overwrite)
{
	struct stat si, so;
	bool have_in = stat(in, &si) == 0;   /* an unreadable input is reported when opened */
	if (stat(out, &so) == 0) {
		if (have_in && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
			return err_set(E_EXISTS, "'%s' is the input: the input is never modified, write to another file", out);
		if (S_ISDIR(so.st_mode))
			return err_set(E_EXISTS, "'%s' is a directory", out);
		if (!overwrite)
			return err_set(E_EXISTS, "'%s' exists (use --overwrite to replace it)", out);
	}
	char *copy = xstrdup(out);
	if (!copy) return err_prefix("'%s': output folder name", out);
	const char *dir = dirname(copy);
	int ok = access(dir, W_OK | X_OK);
	int saved = errno;
	if (ok < 0) {
		errno = saved;
		err_errno(E_OUTPUT, "cannot write in the output folder '%s'", dir);
		free(copy);
		return -1;
	}
	free(copy);
	return 0;
}

/* Free space on OUT's file system against the estimated output size: a
 * fixed VHDX/VHD holds the whole virtual size; a dynamic or sparse output
 * holds about what the input holds (its allocated bytes) plus the new ESP.
 * An estimate: the writer may still fail later (exit 7 there too). */
static int check_output_space(const char *in, const char *out, const struct plan *p, uint64_t differencing)
{
	struct stat si;
	struct statvfs vf;
	char *copy = xstrdup(out);
	if (!copy) return err_prefix("'%s': output folder name", out);
	int rc = statvfs(dirname(copy), &vf);
	free(copy);
	if (rc < 0 || stat(in, &si) < 0) return 0;   /* not knowable: left to the writer */
	/* the new ESP adds its two FATs and the boot files (its free clusters
	 * are zeros, which no writer allocates) */
	uint64_t esp = 2 * ((uint64_t)p->esp_clusters + 2) * 4 + p->esp_files_clusters * p->esp_cluster_bytes + (1u << 20);
	uint64_t need = (uint64_t)si.st_blocks * 512 + esp;
	if (p->fixed) need = p->new_size;
	if (need > p->new_size + (16u << 20)) need = p->new_size;
	/* a differencing child allocates what is written (differencing_bytes):
	 * its apparent size is larger, its present blocks' unwritten and
	 * zeroed parts being holes (doc/notes-diff.md) */
	if (differencing) need = esp + differencing;
	uint64_t avail = (uint64_t)vf.f_bavail * vf.f_frsize;
	errno = ENOSPC;
	if (vf.f_files && !vf.f_favail)
		return err_errno(E_NOSPACE, "'%s': no free inode on its file system for the output", out);
	if (avail < need)
		return err_errno(E_NOSPACE, "'%s': not enough free space, %llu MiB free on its file system, the output needs about %llu MiB",
				 out, (unsigned long long)(avail >> 20), (unsigned long long)((need + (1 << 20) - 1) >> 20));
	return 0;
}

/* ---- steps ---- */

struct job;
static uint64_t differencing_bytes(const struct job *j);

struct job {
	const struct convert_opts *opts;
	struct convert_report *r;
	struct disk *disk;
	struct overlay *ov;
	struct inspection *ins;
	struct ntfs_vol *vol;
	struct fat32_builder *fat;
	struct pe **pes;               /* one per plan.patches (xcalloc'd by compute_patches) */
	size_t npes;
};

static int stage(struct job *j, enum convert_stage s, const char *phase)
{
	j->r->stage = s;
	progress_update(j->opts->progress, phase, 0, 1);
	return 0;
}

/* A read error while opening or inspecting the input is about the input
 * (exit 3 "unreadable input", as a malformed one), not a runtime failure. */
__attribute__((format(printf, 1, 2)))
static int input_error(const char *fmt, ...)
{
	char ctx[512];
	va_list ap;
	va_start(ap, fmt);
	msg_vprintf(ctx, sizeof ctx, fmt, ap);   /* a message: an overlong one ends in "..." */
	va_end(ap);
	err_prefix("%s", ctx);
	return err_code() == E_IO ? err_recode(E_FORMAT) : -1;
}

/* The report's copies of inspection and plan names are at least as large
 * as their sources, which bound what they read from the image. */
FIELD_FITS(struct convert_report, windows_version, struct inspection, version);
FIELD_FITS(struct convert_report, product_name, struct inspection, product_name);
FIELD_FITS(struct convert_patch, path, struct plan_patch_target, path);

static int open_input(struct job *j)
{
	stage(j, STAGE_INPUT, "reading input");
	j->ov = image_open(j->opts->in, &j->disk);   /* the one way to open an image (image.h) */
	if (!j->ov) return -1;
	j->ins = xcalloc(1, sizeof *j->ins);
	if (!j->ins) return err_prefix("inspecting %s", j->opts->in);
	if (windows_inspect(j->ov, j->ins) < 0) return input_error("inspecting %s", j->opts->in);
	j->r->inspected = true;
	snprintf(j->r->windows_version, sizeof j->r->windows_version, "%s", j->ins->version);   /* fits: FIELD_FITS above */
	snprintf(j->r->product_name, sizeof j->r->product_name, "%s", j->ins->product_name);   /* fits: FIELD_FITS above */
	return 0;
}

static int make_plan(struct job *j)
{
	if (j->opts->keep_input) {
		j->r->disk = j->disk;
		j->r->ov = j->ov;
		j->r->ins = j->ins;
	}
	stage(j, STAGE_PLAN, "planning");
	struct plan_opts po = j->opts->plan;
	const struct disk_info *di = disk_info(j->disk);
	if (disk_fingerprint(j->disk, po.fingerprint) < 0) return -1;
	po.disk_size = di->virtual_size;
	po.sector_size = di->logical_sector_size;
	if (!po.out_path) po.out_path = j->opts->out;
	if (plan_build(j->ins, &po, &j->r->plan) < 0) return -1;
	/* MS-VHDX 2.6.2.6: Hyper-V opens a parent where the child's recorded
	 * path leads; one found only by its name beside the child (disk.c) is
	 * read here, never there. IN is read right (its parent_linkage
	 * matched), so a full OUT is fine: a warning, not a refusal; verify
	 * of IN itself refuses it (exit 3) */
	if (di->parent_by_name)
		plan_add_warning(&j->r->plan, "parent-by-name", "'%s' records its parent as '%s' and nothing is there: the file of "
				 "that name beside it, '%s', was read, but Hyper-V follows the recorded path and will not find it (a "
				 "--differencing OUT built on IN will not open there either)", j->opts->in, di->parent_locator,
				 di->parent_path);
	return 0;
}

static int mount_windows(struct job *j, bool rw)
{
	const struct part *w = ptable_find(&j->ins->table, j->r->plan.windows_number);
	if (!w) return err_set(E_INTERNAL, "Windows partition %d not in the table", j->r->plan.windows_number);
	j->vol = ntfs_open(j->ov, w->start, w->size, rw);
	if (!j->vol) return err_prefix("Windows volume (partition %d)", w->number);
	return 0;
}

/* The plan's part read from the volume (plan_build_volume): a required
 * boot file missing or files that do not fit the planned ESP are blockers
 * of the plan (exit 4 in inspect, dry run and convert alike). */
static int list_files(struct job *j)
{
	struct plan *p = &j->r->plan;
	if (plan_build_volume(p, j->vol) < 0) return -1;
	j->r->memdiag = p->memdiag;
	return 0;
}

/* Patches every target in memory first, so a missing patch site stops the
 * run before anything is written (doc/patches.md "Rules every entry keeps": zero or two sites = error). */
static int compute_patches(struct job *j)
{
	stage(j, STAGE_PATCH, "patching kernel files");
	const struct plan *p = &j->r->plan;
	if (!p->npatches) return 0;
	/* one report (171 KB each: patch.h's fixed results) and one PE per
	 * target, as many as the plan has */
	j->r->patches = xcalloc(p->npatches, sizeof *j->r->patches);
	j->pes = xcalloc(p->npatches, sizeof *j->pes);
	if (!j->r->patches || !j->pes) return err_prefix("patch reports");
	j->npes = p->npatches;
	for (size_t i = 0; i < p->npatches; i++) {
		const struct plan_patch_target *t = &p->patches[i];
		struct convert_patch *cp = &j->r->patches[j->r->npatches++];
		snprintf(cp->path, sizeof cp->path, "%s", t->path);   /* fits: FIELD_FITS above */
		const char *src = t->copy_from[0] ? t->copy_from : t->path;
		uint8_t *data = NULL;
		size_t len = 0;
		if (ntfs_read_file(j->vol, src, MAX_KERNEL_FILE, &data, &len) < 0) return err_prefix("%s", src);
		j->pes[i] = pe_parse(data, len);
		free(data);
		if (!j->pes[i]) return err_prefix("%s", src);
		struct patch_opts po = { .skip = t->skip[0] ? t->skip : NULL, .force_version = p->version };
		if (patch_apply(j->pes[i], t->kind, &po, &cp->report) < 0) {
			/* zero or two sites: the patch cannot be made (patch.h) */
			if (err_code() != E_NOTFOUND && err_code() != E_AMBIGUOUS) return err_prefix("%s", src);
			plan_add_blocker(&j->r->plan, "patch-site", "%s: %s", src, err_msg());
			err_clear();
		}
	}
	return 0;
}

static bool report_changed(const struct patch_report *r)
{
	for (size_t i = 0; i < r->nresults; i++)
		if (r->results[i].status == PATCH_APPLIED) return true;
	return false;
}

static int write_patches(struct job *j)
{
	const struct plan *p = &j->r->plan;
	for (size_t i = 0; i < p->npatches; i++) {
		struct convert_patch *cp = &j->r->patches[i];
		/* a copy is always written; an original only when edited now */
		if (!p->patches[i].copy_from[0] && !report_changed(&cp->report)) continue;
		if (ntfs_write_file(j->vol, p->patches[i].path, j->pes[i]->data, j->pes[i]->len) < 0)
			return err_prefix("writing %s", p->patches[i].path);
		cp->written = true;
	}
	return 0;
}

static int edit_system_hive(struct job *j)
{
	const struct plan *p = &j->r->plan;
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0, out_len = 0;
	if (ntfs_read_file(j->vol, SYSTEM_HIVE_PATH, MAX_HIVE, &in, &len) < 0) return err_prefix("%s", SYSTEM_HIVE_PATH);
	int rc = system_hive_apply(in, len, p->edits, p->nedits, &out, &out_len);
	free(in);
	if (rc == 0 && ntfs_write_file(j->vol, SYSTEM_HIVE_PATH, out, out_len) < 0) rc = err_prefix("writing %s", SYSTEM_HIVE_PATH);
	free(out);
	return rc;
}

/* The store of the plan's BCD object graph; the plan counted its size
 * (the graph is serialized the same way both times). */
static int add_bcd_to_esp(struct job *j, const struct plan_file *f)
{
	struct bcd *b = plan_bcd_store(&j->r->plan);
	if (!b) return -1;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = bcd_serialize(b, &data, &len);
	bcd_free(b);
	if (rc < 0) return err_prefix("BCD store");
	if (len != f->size) rc = err_set(E_INTERNAL, "the BCD store has %zu bytes, the plan counted %llu", len, (unsigned long long)f->size);
	else rc = fat32_add_file(j->fat, f->dst, data, len);
	free(data);
	if (rc < 0) return err_prefix("ESP: %s", f->dst);
	return 0;
}

/* Writes the plan's ESP file list as it stands: folders, files read from
 * the Windows volume, and the one file convert makes (src "": the BCD
 * store). Nothing is decided here. */
static int build_esp(struct job *j)
{
	const struct plan *p = &j->r->plan;
	if (!p->files_known) return err_set(E_INTERNAL, "the plan has no ESP file list");
	j->fat = fat32_new(p->esp_size, p->sector_size, p->esp_volume_id, p->esp_label);
	if (!j->fat) return err_prefix("ESP");
	for (size_t i = 0; i < p->nfiles; i++) {
		const struct plan_file *f = &p->files[i];
		if (f->dir) {
			if (fat32_mkdir(j->fat, f->dst) < 0) return err_prefix("ESP: %s", f->dst);
			continue;
		}
		if (!f->src[0]) {
			if (add_bcd_to_esp(j, f) < 0) return -1;
			continue;
		}
		uint8_t *data = NULL;
		size_t len = 0;
		if (ntfs_read_file(j->vol, f->src, MAX_BOOT_FILE, &data, &len) < 0) return -1;   /* names f->src */
		int rc = len == f->size ? fat32_add_file(j->fat, f->dst, data, len)
			 : err_set(E_INTERNAL, "%s has %zu bytes, the plan listed %llu", f->src, len, (unsigned long long)f->size);
		free(data);
		/* the plan counted the fit (plan_build_volume): running out here is a bug */
		if (rc < 0 && err_code() == E_NOSPACE)
			return err_set(E_INTERNAL, "the boot files do not fit the %llu MiB ESP (at %s), though the plan counted they would",
				       (unsigned long long)(p->esp_size >> 20), f->dst);
		if (rc < 0) return err_prefix("ESP: %s", f->dst);
	}
	return 0;
}

static int edit_disk(struct job *j)
{
	const struct plan *p = &j->r->plan;
	stage(j, STAGE_EDIT, "editing");
	if (p->new_size != overlay_size(j->ov) && overlay_resize(j->ov, p->new_size) < 0)
		return err_prefix("sizing the disk");
	if (write_patches(j) < 0 || edit_system_hive(j) < 0 || build_esp(j) < 0) return -1;
	int rc = ntfs_close(j->vol);
	j->vol = NULL;
	if (rc < 0) return err_prefix("Windows volume");
	if (partition_write(j->ov, &p->table) < 0) return err_prefix("partition table");
	/* the ESP area starts as zeros (a reused partition held NTFS) */
	if (overlay_zero(j->ov, p->esp_start, p->esp_size) < 0 || fat32_write(j->fat, j->ov, p->esp_start) < 0)
		return err_prefix("ESP");
	j->r->overlay_bytes = overlay_bytes_written(j->ov);
	return 0;
}

static int write_output(struct job *j)
{
	const struct plan *p = &j->r->plan;
	const struct disk_info *di = disk_info(j->disk);
	stage(j, STAGE_OUTPUT, "writing output");
	/* --differencing: the input (never opened for writing) is the parent */
	struct writer_parent parent = { .path = j->opts->in, .data_write_guid = di->data_write_guid,
					.disk_id = di->disk_id, .size = di->virtual_size };
	struct writer_opts wo = {
		.format = p->format,
		.fixed = p->fixed,
		.logical_sector_size = di->logical_sector_size,
		.physical_sector_size = di->physical_sector_size,
		.disk_id = p->out_disk_id,
		.file_write_guid = p->out_write_guid,
		.timestamp = build_epoch(),
		.overwrite = j->opts->overwrite,
		.progress = j->opts->progress,
		.parent = j->opts->differencing ? &parent : NULL,
	};
	/* FileWriteGuid/DataWriteGuid from the output's content (MS-VHDX 2.2.2) */
	if (wo.format == OUT_VHDX && output_write_guid(j->ov, &di->data_write_guid, &wo) < 0)
		return err_prefix("%s", j->opts->in);
	int r = writer_stream(j->ov, j->opts->out, &wo);
	if (r == -2) j->r->input_error = true;   /* the message names the input */
	if (r < 0) return r == -2 ? -1 : err_prefix_file(j->opts->out);   /* the file named once */
	return 0;
}

static void job_free(struct job *j)
{
	for (size_t i = 0; i < j->npes; i++) pe_free(j->pes[i]);
	free(j->pes);
	if (j->fat) fat32_free(j->fat);
	if (j->vol) ntfs_close(j->vol);
	if (j->opts->keep_input && j->r->disk) return;   /* the report owns them */
	if (j->ov) overlay_free(j->ov);
	if (j->disk) disk_close(j->disk);
	free(j->ins);
}

/* --differencing (doc/formats.md, Differencing VHDX output): the parent must be a VHDX, since a
 * VHDX child names its parent by the parent's DataWriteGuid (MS-VHDX
 * 2.6.2.6.3 parent_linkage), which only a VHDX header has (2.2.2), and the
 * one locator type the specification defines is VHDX's; and the child keeps
 * its parent's virtual size (2.6.1.2: the Virtual Disk Size item is copied
 * when forking; no section lets a child outgrow its parent, and libvhdi's
 * chain and ours read only the parent's size), so an appended ESP cannot be
 * used. Output blockers (exit 7): the input is fine, this output of it is
 * not possible. */
/* The options that keep a differencing child the parent's size for this
 * disk, each checked with the plan's own predicate (plan_esp_in_place):
 * "use --esp reuse --layout mbr or ..." into buf[n], or, when none does,
 * why each cannot. */
static void differencing_advice(const struct job *j, char *buf, size_t n)
{
	const struct plan *p = &j->r->plan;
	static const enum esp_mode modes[2] = { ESP_EXISTING, ESP_REUSE };
	char why[2][256];
	size_t used = 0;
	buf[0] = 0;
	for (int l = 0; l < 2; l++) {
		enum plan_layout layout = l ? LAYOUT_MBR : p->layout;
		if (l && p->layout == LAYOUT_MBR) break;
		for (int m = 0; m < 2; m++) {
			if (!plan_esp_in_place(p, j->ins, modes[m], layout, why[m], sizeof why[m])) continue;
			text_append(buf, n, &used, "%s--esp %s%s", used ? " or " : "use ", esp_mode_name(modes[m]),
				    layout != p->layout ? " --layout mbr" : "");
		}
	}
	if (!used)
		msg_printf(buf, n, "no partition of this disk can be the ESP without growing it (--esp existing: %s; --esp reuse: %s)",
			   why[0], why[1]);
}

static void plan_differencing(struct job *j)
{
	struct plan *p = &j->r->plan;
	const struct disk_info *di = disk_info(j->disk);
	if (di->format != DISK_VHDX) {
		plan_add_blocker(p, "output-differencing-parent", "--differencing needs a VHDX input (the parent); '%s' is %s: convert without --differencing",
				 j->opts->in, di->format == DISK_VHD ? "a VHD" : "a raw image");
	} else if (p->esp_number && p->new_size != p->old_size) {
		char advice[1024];
		differencing_advice(j, advice, sizeof advice);
		plan_add_blocker(p, "output-differencing-grows", "--differencing keeps the parent's size, but %s grows the disk %llu -> %llu MiB: %s, or convert without --differencing",
				 p->esp_mode == ESP_APPEND ? "the appended ESP" : "room for the GPT's backup at its end",
				 (unsigned long long)(p->old_size >> 20), (unsigned long long)(p->new_size >> 20), advice);
	}
}

/* What a differencing child allocates besides the ESP's FATs and files:
 * the SYSTEM hive (rewritten whole), the patched files, and 2 MiB for the
 * VHDX header, metadata, BAT pages and sector bitmap pages and the NTFS
 * records and bitmap pages the writes touch (measured: 0.85 MiB in all
 * for the win7 fixture, tests/differencing.sh). */
static uint64_t differencing_bytes(const struct job *j)
{
	uint64_t n = 2u << 20, hive = 0;
	bool dir = false;
	if (j->vol && ntfs_stat(j->vol, SYSTEM_HIVE_PATH, &dir, &hive) == 0) n += hive;
	err_clear();
	for (size_t i = 0; i < j->npes; i++)
		if (j->pes[i]) n += j->pes[i]->len;
	return n;
}

/* OUT's own name for Windows (win32_name.h): Hyper-V opens a VHDX or VHD
 * by its name, so one it cannot open (CON.vhdx, a?.vhdx) is the warning
 * output-name. Not a refusal, unlike a parent's name (writer_diff.c) or
 * OUT's path in a --nanabox / --hyperv-script file (vmconfig.c): no file
 * records OUT's own name, a differencing child included (its locator
 * names the parent only, MS-VHDX 2.6.2.6.3), so renaming it on the
 * Windows side breaks nothing. */
static void plan_output_name(struct job *j)
{
	struct plan *p = &j->r->plan;
	char why[64];
	const char *slash = strrchr(j->opts->out, '/'), *name = slash ? slash + 1 : j->opts->out;
	if (!p->format_known || p->format == OUT_RAW || !win32_name_why(name, why, sizeof why)) return;
	plan_add_warning(p, "output-name", "'%s': the name has a %s, which Windows does not allow in a file name: Hyper-V "
			 "cannot open it by this name; rename it when you copy it to Windows (nothing records it)", name, why);
}

/* The output side of the plan: OUT itself (exists, is IN, folder) and the
 * room on its file system. Checked by the dry run as by the conversion;
 * a refusal is an "output-refused" blocker (exit 7). */
static void plan_output(struct job *j)
{
	const struct convert_opts *o = j->opts;
	struct plan *p = &j->r->plan;
	if (!o->out) return;
	if (convert_check_output(o->in, o->out, o->overwrite) < 0 ||
	    check_output_space(o->in, o->out, p, o->differencing ? differencing_bytes(j) : 0) < 0) {
		plan_add_blocker(p, "output-refused", "%s", err_msg());
		err_clear();
	}
	/* doc/formats.md, VHDX metadata: only VHDX records the logical sector
	 * size (MS-VHDX 2.6.2.4); a VHD footer or a raw file has none, and
	 * every reader (verify, qemu, Hyper-V) takes 512, so the GPT written at
	 * 4096-byte LBAs would not be found: refused, in the dry run as well */
	if (p->sector_size != 512 && p->format_known && p->format != OUT_VHDX)
		plan_add_blocker(p, "output-sector-size", "the input has %u-byte sectors: VHD and raw outputs cannot record them (readers take 512); use -O vhdx",
				 p->sector_size);
	if (o->differencing) plan_differencing(j);
	plan_output_name(j);
}

/* Everything that decides the outcome, read-only: the plan, then (when it
 * has no blocker yet) the ESP file list and its fit and the patches
 * applied in memory. */
static int plan_all(struct job *j)
{
	const struct convert_opts *o = j->opts;
	if (open_input(j) < 0 || make_plan(j) < 0) return -1;
	struct plan *p = &j->r->plan;
	if (plan_ok(p)) {
		if (mount_windows(j, !o->dry_run) < 0 || list_files(j) < 0) return -1;
		if (plan_ok(p) && compute_patches(j) < 0) return -1;
	}
	plan_output(j);
	/* a blocker lost to a failed allocation: no verdict rather than a wrong one */
	if (p->nomem) return err_set(E_NOMEM, "out of memory (plan tables)");
	return 0;
}

/* A refused OUT found before IN is read: the error the dry run gives for
 * it, the blocker output-refused (plan_output), so that the error object is
 * the same (man page, JSON OUTPUT: a dry run that would be refused has the
 * same error object as the conversion). Out of memory stays itself. */
static int output_refused(void)
{
	if (err_code() == E_NOMEM) return -1;
	char *why = xstrdup(err_msg());
	if (!why) return -1;
	err_set(E_OUTPUT, "output-refused: %s", why);
	free(why);
	return -1;
}

static int run(struct job *j)
{
	const struct convert_opts *o = j->opts;
	/* a refused OUT costs no reading of IN (the dry run reads on, to show the plan) */
	if (!o->dry_run) {
		j->r->stage = STAGE_OUTPUT;
		if (convert_check_output(o->in, o->out, o->overwrite) < 0) return output_refused();
		/* before the work: a second run to the same OUT fails at once */
		if (writer_lock(o->out) < 0) return -1;
	}
	if (plan_all(j) < 0) return -1;
	const struct plan *p = &j->r->plan;
	if (o->dry_run) return 0;
	if (!plan_ok(p)) {
		static _Thread_local char buf[4096 * 2];   /* the blockers whole (err_msg holds this and more) */
		bool output = plan_err_code(p) == E_OUTPUT;
		j->r->stage = output ? STAGE_OUTPUT : STAGE_PLAN;
		return err_set(plan_err_code(p), "%s%s", output ? "" : "not convertible: ", plan_blockers_text(p, buf, sizeof buf));
	}
	if (!p->format_known) return err_set(E_USAGE, "no output format: give -O vhdx, vhd or raw");
	if (edit_disk(j) < 0 || write_output(j) < 0) return -1;
	j->r->stage = STAGE_DONE;
	return 0;
}

int convert_run(const struct convert_opts *opts, struct convert_report *report)
{
	memset(report, 0, sizeof *report);
	struct job j = { .opts = opts, .r = report };
	report->stage = STAGE_ARGS;
	report->dry_run = opts->dry_run;
	int rc = run(&j);
	job_free(&j);
	writer_unlock();
	if (rc == 0 && opts->dry_run) report->stage = STAGE_DONE;
	return rc;
}

void convert_report_free(struct convert_report *r)
{
	if (r->ov) overlay_free(r->ov);
	if (r->disk) disk_close(r->disk);
	free(r->ins);
	r->ov = NULL;
	r->disk = NULL;
	r->ins = NULL;
	free(r->patches);
	r->patches = NULL;
	r->npatches = 0;
	plan_free(&r->plan);
}

/* a dry run applies the patches in memory only: to the reader that is
 * "would-apply", as inspect says. So is a run that failed before OUT was
 * complete (unapplied: no file holds the edit; written false), as its
 * text output lists only the failed sites. */
static json_t *patch_report_json(const struct convert_patch *cp, bool unapplied)
{
	json_t *res = json_array();
	for (size_t i = 0; i < cp->report.nresults; i++) {
		const struct patch_result *pr = &cp->report.results[i];
		enum patch_status st = unapplied && pr->status == PATCH_APPLIED ? PATCH_WOULD_APPLY : pr->status;
		json_t *o = json_pack("{s:s, s:s}", "id", pr->id ? pr->id : "", "status", patch_status_name(st));
		json_object_set_new(o, "message", pr->message[0] ? json_text(pr->message) : json_null());
		json_array_append_new(res, o);
	}
	return json_pack("{s:o, s:s, s:b, s:o}", "path", json_text(cp->path), "binary", pe_kind_name(cp->report.kind),
			 "written", cp->written && !unapplied, "results", res);
}

void *convert_report_json(const struct convert_report *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "windows", r->inspected && r->windows_version[0] ? json_pack("{s:o, s:o}", "product_name", json_text(r->product_name),
								   "version", json_text(r->windows_version)) : json_null());
	json_object_set_new(o, "plan", r->inspected ? plan_to_json(&r->plan) : json_null());
	json_t *files = json_array();
	/* the plan's ESP file list, as build_esp writes it */
	for (size_t i = 0; i < r->plan.nfiles; i++) {
		const struct plan_file *f = &r->plan.files[i];
		json_t *fo = json_pack("{s:o, s:b, s:o, s:o}", "path", json_text(f->dst), "dir", f->dir,
				       "size", f->dir ? json_null() : json_integer((json_int_t)f->size),
				       "from", f->src[0] ? json_text(f->src) : json_null());
		json_array_append_new(files, fo);
	}
	json_object_set_new(o, "esp_files", files);
	json_object_set_new(o, "memdiag", json_boolean(r->memdiag));
	json_t *pa = json_array();
	bool unapplied = r->dry_run || r->stage != STAGE_DONE;
	for (size_t i = 0; i < r->npatches; i++) json_array_append_new(pa, patch_report_json(&r->patches[i], unapplied));
	json_object_set_new(o, "patch_results", pa);
	/* done: the output was written (a dry run writes nothing) */
	json_object_set_new(o, "done", json_boolean(r->stage == STAGE_DONE && !r->dry_run));
	return o;
}
