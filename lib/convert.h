/* convert.h - execute a PLAN (plan.h): the data flow of DESIGN.md from the
 * input disk through an overlay to the output image.
 *
 *   disk_open -> overlay -> windows_inspect -> plan_build (every blocker
 *   checked here) -> patches computed in memory -> (append: overlay_resize)
 *   -> NTFS writes (SYSTEM hive, patched kernel files, winload copy) -> new
 *   partition table -> FAT32 ESP with the boot files and the BCD store ->
 *   writer_stream to OUT (temporary file, fsync, rename).
 *
 * Nothing reaches OUT before everything above has succeeded.
 */
#ifndef GEN2PREP_CONVERT_H
#define GEN2PREP_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "patch.h"
#include "plan.h"
#include "progress.h"

struct ntfs_vol;
struct bcd;

struct convert_opts {
	struct plan_opts plan;        /* fingerprint/disk_size/sector_size filled by convert_run */
	const char *in, *out;         /* out NULL: plan only, no output side (inspect) */
	bool dry_run, overwrite;
	bool keep_input;              /* leave the opened disk and inspection in the report (inspect) */
	bool differencing;            /* --differencing: OUT a differencing VHDX whose parent is IN (writer_diff.c) */
	const struct progress *progress;
};

enum convert_stage { STAGE_ARGS, STAGE_INPUT, STAGE_PLAN, STAGE_PATCH, STAGE_EDIT, STAGE_OUTPUT, STAGE_DONE };

struct convert_patch {
	char path[256];
	struct patch_report report;
	bool written;
};

struct convert_report {
	enum convert_stage stage;     /* where it stopped (STAGE_DONE on success) */
	struct plan plan;
	bool inspected;
	char windows_version[32];
	char product_name[128];
	bool memdiag;                 /* = plan.memdiag */
	size_t npatches;
	struct convert_patch *patches;  /* malloc'd, one per plan.patches (freed by convert_report_free) */
	uint64_t overlay_bytes;
	/* with keep_input: the input as opened (freed by convert_report_free) */
	struct disk *disk;
	struct overlay *ov;
	struct inspection *ins;
	bool input_error;             /* the input changed or failed while the output was written (exit 3) */
	bool dry_run;                 /* nothing written: JSON says done false, patches would-apply */
};

/* Runs the conversion (or, with dry_run, the whole plan: everything that
 * decides the outcome and writes nothing - the plan, the ESP file list and
 * its fit, the patches applied in memory, the output-side checks).
 * Returns 0 when the plan was made (with dry_run even when it has blockers:
 * plan_err_code(&report->plan) says which exit the run would have), -1
 * with err set otherwise (a blocked plan without dry_run: the plan's
 * plan_err_code; report->stage says where). inspect, convert --dry-run and
 * convert all come here, so they give the same verdict. */
int convert_run(const struct convert_opts *opts, struct convert_report *report);
void convert_report_free(struct convert_report *r);
void *convert_report_json(const struct convert_report *r);  /* json_t * */

/* Refuses OUT == IN (same st_dev/st_ino), an existing OUT without
 * overwrite, and an output folder that is not writable. 0 or -1 (E_EXISTS). */
int convert_check_output(const char *in, const char *out, bool overwrite);

#endif
