/* patch.h - the kernel patch engine (doc/patches.md, Rules every entry
 * keeps): one matcher over Zydis-
 * decoded functions, the catalog as data (patch_catalog.c).
 */
#ifndef GEN2PREP_PATCH_H
#define GEN2PREP_PATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pe;

enum pe_kind { KIND_UNKNOWN = 0, KIND_NTOSKRNL, KIND_HAL, KIND_ACPI, KIND_WINLOAD };

enum patch_status {
	PATCH_APPLIED,          /* edited now */
	PATCH_WOULD_APPLY,      /* dry run: site found, nothing written */
	PATCH_ALREADY_APPLIED,  /* the site carries our edit already */
	PATCH_NOT_APPLICABLE,   /* other binary, other version, or skipped by option */
	PATCH_NOT_FOUND,
	PATCH_AMBIGUOUS,
};

#define PATCH_MAX_EDITS 8

struct patch_edit {
	uint32_t rva;
	size_t file_off;
	uint32_t len;
	uint8_t before[128], after[128];
	char asm_before[512], asm_after[512]; /* Zydis formatter, "; " separated */
};

struct patch_result {
	const char *id;               /* catalog id, e.g. "timer-scale" */
	enum pe_kind binary;
	enum patch_status status;
	char message[256];            /* why not found / ambiguous candidates / skipped */
	uint32_t func_begin, func_end;/* .pdata bounds of the containing function */
	size_t nedits;
	struct patch_edit edits[PATCH_MAX_EDITS];
};

struct patch_opts {
	const char *only;             /* comma list of ids, NULL = all */
	const char *skip;             /* comma list of ids */
	bool dry_run;
	unsigned force_version;       /* (major << 8) | minor; 0 = from the file */
};

struct patch_report {
	enum pe_kind kind;
	unsigned version;             /* (major << 8) | minor used */
	size_t nresults;
	struct patch_result results[16];
	bool checksum_updated;
};

const char *pe_kind_name(enum pe_kind k);  /* "ntoskrnl", "hal", "acpi", "winload" */
int pe_kind_parse(const char *s, enum pe_kind *out);
const char *patch_status_name(enum patch_status s); /* "applied", "already-applied", ... */

/* From exports, imports and version resource (OriginalFilename; a loader
 * is "osloader.exe"). KIND_UNKNOWN for a boot manager or resume loader
 * (doc/patches.md "Which binary"). */
enum pe_kind patch_detect_kind(const struct pe *pe);

/* Applies every catalog entry for kind to pe->data (unless dry_run), then
 * recomputes the checksum when anything changed. Returns 0 when every
 * applicable entry is applied/would-apply/already-applied; -1 with err set
 * otherwise: E_FORMAT before any entry (no result) for a file that is not
 * AMD64 PE32+, a boot manager / resume loader whatever kind says, or
 * KIND_UNKNOWN; E_UNSUPPORTED for 5.x (the Windows named); E_NOTFOUND /
 * E_AMBIGUOUS for a site. The report is filled in every case. Version
 * 6.2+: every entry not-applicable. */
int patch_apply(struct pe *pe, enum pe_kind kind, const struct patch_opts *opts,
		struct patch_report *report);

/* Catalog introspection for --help, inspect and verify. */
size_t patch_catalog_count(void);
const char *patch_catalog_id(size_t i);
enum pe_kind patch_catalog_binary(size_t i);
bool patch_catalog_applies(size_t i, unsigned version);

#endif
