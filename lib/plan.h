/* plan.h - the PLAN of DESIGN.md's data flow: what a conversion will do,
 * as pure data computed from an INSPECTION (windows.h) and the options.
 *
 * inspect prints it, convert executes it (convert.h), verify checks an
 * image against what it demands. Building a plan reads nothing and writes
 * nothing; every layout blocker is found here, before any byte is written.
 */
#ifndef GEN2PREP_PLAN_H
#define GEN2PREP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "bcd.h"
#include "guid.h"
#include "partition.h"
#include "patch.h"
#include "system_hive.h"
#include "writer.h"

struct inspection;
struct ntfs_vol;

enum plan_layout { LAYOUT_GPT = 0, LAYOUT_MBR };
enum esp_mode { ESP_AUTO = 0, ESP_EXISTING, ESP_REUSE, ESP_APPEND };

#define PLAN_ESP_DEFAULT_SIZE (100ULL << 20)   /* the article's 100 MiB */
#define PLAN_ALIGN (1ULL << 20)                 /* 1 MiB, partitions and virtual size */

const char *plan_layout_name(enum plan_layout l);   /* "gpt", "mbr" */
int plan_layout_parse(const char *s, enum plan_layout *out);
const char *esp_mode_name(enum esp_mode m);         /* "auto", "existing", "reuse", "append" */
int esp_mode_parse(const char *s, enum esp_mode *out);

struct plan_opts {
	enum plan_layout layout;
	enum esp_mode esp;
	uint64_t esp_size;            /* bytes; 0 = PLAN_ESP_DEFAULT_SIZE */
	bool format_given;            /* -O given */
	enum out_format format;
	bool fixed;                   /* -o subformat=fixed */
	const char *out_path;         /* for the format from its extension; may be NULL */
	bool no_crash_report;
	bool debug;                   /* --debug serial:PORT:BAUD */
	unsigned debug_port, debug_baud;
	bool bootdebug;
	bool random_ids;
	bool force;                   /* --force: convert a disk inspect finds already-gen2 */
	unsigned force_version;       /* (major << 8) | minor, 0 = from the image */
	uint8_t fingerprint[32];      /* disk_fingerprint() of the input: seed of every id */
	uint64_t disk_size;           /* virtual size of the input */
	uint32_t sector_size;         /* logical sector size of the input */
};

/* Parses "serial:PORT:BAUD" (PORT 1-4, BAUD one of the standard rates). */
int plan_parse_debug(const char *s, unsigned *port, unsigned *baud);

/* A blocker or a warning: JSON {"code": id, "message": message}. */
struct plan_blocker {
	const char *id;               /* stable: inspect's blocker ids, "esp-no-room", ...:
				       * a static string (a literal, blocker_id[]), not copied */
	char *message;                /* malloc'd, sized to its text (never cut);
				       * plan_free frees it */
};

/* One entry of the ESP as convert writes it, in this order (folders
 * before what they hold): read from the Windows volume (src, NTFS path) or,
 * with src "", produced by convert itself (the BCD store, last). */
struct plan_file {
	char src[256];                /* "\\Windows\\Boot\\EFI\\bootmgfw.efi" */
	char dst[256];                /* "EFI/Microsoft/Boot/bootmgfw.efi" (FAT32, '/') */
	uint64_t size;                /* bytes (0 for a folder) */
	bool dir;                     /* a directory to create on the ESP */
};

/* The BCD store as data (plan_volume.c decides it, convert.c writes it
 * with plan_bcd_store()): objects in the order they are added, each with
 * its elements in the order they are set (doc/formats.md, BCD). */
enum plan_bcd_kind { PBE_DEVICE, PBE_STRING, PBE_OBJECT, PBE_OBJECTS, PBE_INTEGER, PBE_BOOLEAN };
#define PLAN_BCD_MAX_OBJECTS 16
#define PLAN_BCD_MAX_ELEMENTS 20
#define PLAN_BCD_MAX_LIST 4
struct plan_bcd_element {
	uint32_t type;                /* BCDE_* */
	enum plan_bcd_kind kind;
	union {
		struct bcd_device device;
		char string[260];
		struct { struct guid v[PLAN_BCD_MAX_LIST]; size_t n; } objects;   /* PBE_OBJECT: n 1 */
		uint64_t integer;
		bool boolean;
	} u;
};
struct plan_bcd_object {
	struct guid id;
	uint32_t type;                /* BCD_TYPE_* */
	size_t nelements;
	struct plan_bcd_element elements[PLAN_BCD_MAX_ELEMENTS];
};
struct plan_bcd_graph {
	size_t nobjects;
	struct plan_bcd_object objects[PLAN_BCD_MAX_OBJECTS];
};

/* A copy rule of `bcdboot <windir> /f UEFI` (doc/formats.md, Boot files): the
 * tree under src goes to dst. Expanded into plan_file entries by
 * plan_build_volume(). */
struct plan_copy_rule {
	const char *src;              /* NTFS path */
	const char *dst;              /* FAT32 path */
	bool tree;                    /* a directory copied with its subfolders, else one file */
	bool required;
};

struct plan_patch_target {
	enum pe_kind kind;
	char path[256];               /* file patched (in place) */
	char copy_from[256];          /* "" or the original the copy is made from */
	char skip[64];                /* ids skipped by option ("crash-report") */
};

struct plan_bcd {
	struct bcd_device esp, windows;
	struct guid loader_id;        /* the Windows Boot Loader object */
	struct guid resume_id;        /* the Resume from Hibernate object */
	char description[128];
	char locale[16];
	char loader_path[256];        /* \Windows\system32\winload.efi or the patched copy */
	bool nointegritychecks;
	bool debug, bootdebug;
	unsigned debug_port, debug_baud;
	bool memdiag_if_present;      /* {memdiag} added when memtest.efi is copied */
	unsigned windows_version;     /* (major << 8) | minor: which objects bcdboot of that generation writes */
};

#define PLAN_MAX_RULES 4

/* The plan's tables (blockers, warnings, registry edits, patch targets)
 * are arrays on the heap, grown as entries are added: as long as the disk
 * needs, never cut. An entry that cannot be allocated sets nomem; the
 * plan is then not ok (plan_ok false, plan_err_code E_NOMEM) and
 * plan_build / plan_build_volume fail with E_NOMEM, so a lost blocker can
 * never let a conversion through. */

struct plan {
	enum plan_layout layout;
	enum esp_mode esp_mode;       /* resolved (never ESP_AUTO once ok) */
	char esp_why[256];            /* why this placement (auto) */
	int esp_number;               /* partition number of the ESP in the new table */
	uint64_t esp_start, esp_size;
	bool esp_new_entry;           /* a table entry is added (append / free slot) */
	int windows_number;
	uint64_t old_size, new_size;  /* virtual size before/after (append grows) */
	uint32_t sector_size;
	struct ptable table;          /* the new partition table */
	uint32_t esp_volume_id;
	char esp_label[12];
	char arc_esp[64];             /* multi(0)disk(0)rdisk(0)partition(N) */
	unsigned version;             /* kernel (major << 8) | minor used for patches */
	size_t nrules;
	struct plan_copy_rule rules[PLAN_MAX_RULES];
	struct plan_bcd bcd;
	size_t nedits, cap_edits;
	struct plan_value_edit *edits;          /* malloc'd, nedits used */
	size_t npatches, cap_patches;
	struct plan_patch_target *patches;      /* malloc'd, npatches used */
	enum out_format format;
	bool format_known;
	bool fixed;
	struct guid out_disk_id, out_write_guid;
	size_t nblockers, cap_blockers;
	struct plan_blocker *blockers;          /* malloc'd, nblockers used */
	size_t nwarnings, cap_warnings;
	struct plan_blocker *warnings;          /* malloc'd, nwarnings used */
	bool nomem;                             /* an entry was lost to a failed allocation */
	/* FAT32 geometry of the ESP (rules.h): checked here, not when built */
	uint32_t esp_clusters, esp_cluster_bytes;
	/* read from the Windows volume (plan_build_volume): the ESP file list
	 * (malloc'd, the BCD store last), its fit and the BCD object graph
	 * (malloc'd); files_known false and both NULL until then */
	size_t nfiles;
	struct plan_file *files;
	uint64_t esp_files_clusters;  /* clusters the files and folders take */
	bool files_known;
	bool memdiag;                 /* memtest.efi copied: {memdiag} in the store */
	struct plan_bcd_graph *bcd_graph;
};

/* Builds the plan into p, which is zeroed or a plan from an earlier
 * plan_build (whose heap tables are freed first). Returns 0 (even with
 * blockers: see p->nblockers) or -1 on invalid options (E_USAGE; e.g.
 * --esp-size below rules_esp_min_size() for the disk's sector size, the
 * message stating the minimum) or out of memory (E_NOMEM). Free with
 * plan_free. */
int plan_build(const struct inspection *ins, const struct plan_opts *opts, struct plan *p);
/* The rest of the plan, read from the Windows volume v (read only; the
 * partition p->windows_number of the inspected disk): the ESP file list
 * from the copy rules with every size, the .efi files checked, the BCD
 * object graph, and the fit of all of it on the planned FAT32 (geometry of
 * rules.h). Findings are blockers ("no-boot-files", "boot-file-not-pe",
 * "boot-file-unreadable", "esp-too-small"); returns -1 only on an I/O or
 * memory error (err set). Call only when plan_ok(p). */
int plan_build_volume(struct plan *p, struct ntfs_vol *v);
/* "11 objects, 61 elements, 28672 bytes" of the BCD graph into buf; NULL
 * when the plan has none (not read from the volume). */
const char *plan_bcd_summary(const struct plan *p, char *buf, size_t n);
/* Frees what plan_build and plan_build_volume allocated (the plan itself
 * is the caller's); the plan is then empty (no blocker, no table). */
void plan_free(struct plan *p);
/* The BCD store of p->bcd_graph, as convert writes it (bcd.h); NULL + err. */
struct bcd *plan_bcd_store(const struct plan *p);

/* Adds a blocker / a warning found after plan_build (the ESP file list
 * and its fit, patch dry runs, the output side). 0, or -1 with E_NOMEM
 * set and p->nomem (the plan is then not ok: plan_err_code E_NOMEM). */
int plan_add_blocker(struct plan *p, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int plan_add_warning(struct plan *p, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
struct part_info;
/* Whether the System Reserved partition pi can become the ESP (convert
 * --esp reuse): it holds only boot files (windows.c) and its size makes a
 * FAT32 at p's sector size (rules_esp_geometry; 512 when p has none).
 * why[n]: the reason when not. The one predicate the plan and inspect's
 * "(reusable as ESP)" use. */
bool plan_reusable_as_esp(const struct plan *p, const struct part_info *pi, char *why, size_t n);
/* Whether --esp m (ESP_EXISTING or ESP_REUSE) with layout places the ESP
 * in an existing partition of ins without growing the disk (what
 * --differencing needs): the plan's own try, on a scratch copy of p
 * (built by plan_build). why[n]: the reason when not. */
bool plan_esp_in_place(const struct plan *p, const struct inspection *ins, enum esp_mode m, enum plan_layout layout,
		       char *why, size_t n);
/* Whether a blocker with this id is in the plan. */
bool plan_has_blocker(const struct plan *p, const char *id);
/* The err_code that stands for the plan's blockers: E_NOMEM when an entry
 * was lost (p->nomem), else output-side blockers
 * ("output-...") E_OUTPUT, else patch-site blockers ("patch-site") E_PATCH,
 * else E_BLOCKED; E_OK without one. The CLI maps it to an exit status like
 * any other error (7, 5, 4): inspect, convert --dry-run and convert give
 * the same for the same plan. */
int plan_err_code(const struct plan *p);
bool plan_ok(const struct plan *p);   /* no blocker, nothing lost (nomem) */
/* "code: message; code: message" of every blocker into buf (each with its
 * stable code, as convert's message shows them). */
const char *plan_blockers_text(const struct plan *p, char *buf, size_t n);
/* JSON object (jansson json_t *, as void *). */
void *plan_to_json(const struct plan *p);
/* [{"code", "message"}, ...] of blockers or warnings: the one form every
 * command prints them in (doc/schema.json). */
void *plan_findings_json(const struct plan_blocker *f, size_t n);

/* Deterministic id for name (from the fingerprint), or random with random_ids. */
int plan_id(const struct plan_opts *opts, const char *name, struct guid *out);

#endif
