/* patch.c - the patch engine: one matcher loop for every catalog entry
 * (doc/patches.md "Rules every entry keeps"). candidates -> decode
 * (x86.c) -> entry's anchors -> exactly one site -> checks -> apply ->
 * checksum once.
 */
#include "patch_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe.h"
#include "util.h"

#define MAX_CANDIDATES 256
#define MAX_SITES 8

/* ---- names ---- */

static const char *const kind_names[] = { "unknown", "ntoskrnl", "hal", "acpi", "winload" };

const char *pe_kind_name(enum pe_kind k)
{
	return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "unknown";
}

int pe_kind_parse(const char *s, enum pe_kind *out)
{
	for (unsigned k = KIND_NTOSKRNL; k <= KIND_WINLOAD; k++)
		if (ascii_casecmp(s, kind_names[k]) == 0) {
			*out = (enum pe_kind)k;
			return 0;
		}
	return err_set(E_USAGE, "unknown binary kind '%s' (ntoskrnl, hal, acpi, winload)", s);
}

const char *patch_status_name(enum patch_status s)
{
	switch (s) {
	case PATCH_APPLIED: return "applied";
	case PATCH_WOULD_APPLY: return "would-apply";
	case PATCH_ALREADY_APPLIED: return "already-applied";
	case PATCH_NOT_APPLICABLE: return "not-applicable";
	case PATCH_NOT_FOUND: return "not-found";
	case PATCH_AMBIGUOUS: return "ambiguous";
	}
	return "?";
}

/* ---- kind detection ---- */

/* Version-resource OriginalFilename of each binary. Every real x64
 * winload.efi/winload.exe (6.0, 6.1, 10.0) says "osloader.exe" (measured
 * on 6.1.7601 and 10.0.19041/22621 files; doc/patches.md "Which binary");
 * winload.* are accepted too for copies renamed by hand. */
static enum pe_kind kind_from_filename(const char *n)
{
	static const struct { const char *name; enum pe_kind k; } names[] = {
		{ "ntoskrnl.exe", KIND_NTOSKRNL }, { "ntkrnlmp.exe", KIND_NTOSKRNL },
		{ "ntkrnlpa.exe", KIND_NTOSKRNL }, { "ntkrpamp.exe", KIND_NTOSKRNL },
		{ "hal.dll", KIND_HAL }, { "halmacpi.dll", KIND_HAL }, { "halacpi.dll", KIND_HAL },
		{ "halaacpi.dll", KIND_HAL }, { "acpi.sys", KIND_ACPI },
		{ "osloader.exe", KIND_WINLOAD }, { "winload.efi", KIND_WINLOAD }, { "winload.exe", KIND_WINLOAD },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (ascii_casecmp(n, names[i].name) == 0)
			return names[i].k;
	return KIND_UNKNOWN;
}

/* Boot applications that hold the same image-hash check as the loader but
 * are not it: the boot manager (bootmgfw.efi and bootmgr.efi both carry
 * OriginalFilename "bootmgr.exe", measured on 10.0.17763) and the resume
 * loader (winresume, "hiberrsm.exe"). Patching them would switch off
 * their own check of what they start. NULL for any other file. */
static const char *other_boot_application(const struct pe *pe)
{
	static const struct { const char *name, *what; } apps[] = {
		{ "bootmgr.exe", "the Windows Boot Manager" }, { "bootmgfw.efi", "the Windows Boot Manager" },
		{ "bootmgr.efi", "the Windows Boot Manager" }, { "bootmgr", "the Windows Boot Manager" },
		{ "hiberrsm.exe", "the Windows resume loader (winresume)" },
		{ "winresume.efi", "the Windows resume loader (winresume)" },
		{ "winresume.exe", "the Windows resume loader (winresume)" },
	};
	if (!pe->version.present)
		return NULL;
	for (size_t i = 0; i < sizeof apps / sizeof apps[0]; i++)
		if (ascii_casecmp(pe->version.original_filename, apps[i].name) == 0)
			return apps[i].what;
	return NULL;
}

/* The version resource's OriginalFilename decides when present (real
 * files carry it; a .mui-less kernel also has "ntkrnlmp.exe" for the MP
 * build). Without it: the kernel exports both KeBugCheckEx and
 * ZwQueryLicenseValue, a HAL exports HalInitSystem, winload is a Windows
 * boot application (subsystem 16). acpi.sys has no export or import that
 * sets it apart from other drivers: it needs its OriginalFilename or --kind.
 * A boot manager or resume loader is never detected as anything. */
enum pe_kind patch_detect_kind(const struct pe *pe)
{
	if (other_boot_application(pe))
		return KIND_UNKNOWN;
	if (pe->version.present && pe->version.original_filename[0]) {
		enum pe_kind k = kind_from_filename(pe->version.original_filename);
		if (k != KIND_UNKNOWN)
			return k;
		if (pe->subsystem != PE_SUBSYSTEM_WINDOWS_BOOT_APPLICATION)
			return KIND_UNKNOWN;
	}
	if (pe_export_find(pe, "KeBugCheckEx") && pe_export_find(pe, "ZwQueryLicenseValue"))
		return KIND_NTOSKRNL;
	if (pe_export_find(pe, "HalInitSystem"))
		return KIND_HAL;
	if (pe->subsystem == PE_SUBSYSTEM_WINDOWS_BOOT_APPLICATION &&
	    !(pe->version.present && pe->version.original_filename[0]))
		return KIND_WINLOAD;
	return KIND_UNKNOWN;
}

/* ---- catalog introspection ---- */

size_t patch_catalog_count(void) { return patch_catalog_n; }
const char *patch_catalog_id(size_t i) { return i < patch_catalog_n ? patch_catalog[i].id : NULL; }
enum pe_kind patch_catalog_binary(size_t i) { return i < patch_catalog_n ? patch_catalog[i].kind : KIND_UNKNOWN; }

bool patch_catalog_applies(size_t i, unsigned version)
{
	return i < patch_catalog_n && version >= patch_catalog[i].min_version &&
	       version <= patch_catalog[i].max_version;
}

/* ---- helpers for matchers ---- */

int site_add(struct patch_site *s, uint32_t rva, const uint8_t *after, uint32_t len, bool applied)
{
	if (s->nedits >= PATCH_MAX_EDITS)
		return err_set(E_INTERNAL, "too many edits in one site");
	if (len == 0 || len > sizeof s->edit[0].after)
		return err_set(E_INTERNAL, "edit of %u bytes", len);
	struct site_edit *e = &s->edit[s->nedits++];
	e->rva = rva;
	e->len = len;
	memcpy(e->after, after, len);
	e->applied = applied;
	return 0;
}

size_t straight_line_start(const struct x86_func *f, size_t idx, size_t window)
{
	size_t from = idx > window ? idx - window : 0;
	for (size_t k = idx; k > from; k--)
		if (x86_ends_flow(&f->insn[k - 1]) || f->insn[k - 1].zi.meta.category == ZYDIS_CATEGORY_CALL)
			return k;
	return from;
}

bool is_bugcheck_call(const struct x86_func *f, size_t from, size_t ci, int64_t code, int64_t p1, int64_t p2)
{
	if (ci >= f->n || !x86_calls(&f->insn[ci], "KeBugCheckEx") ||
	    f->insn[ci].zi.meta.category != ZYDIS_CATEGORY_CALL)
		return false;
	struct x86_regs r;
	x86_regs_track(&r, f, from, ci);
	const int64_t want[3] = { code, p1, p2 };
	/* BugCheckCode is a ULONG: only ecx counts. The parameters are
	 * ULONG_PTR in rdx/r8 (x64 calling convention); a 32-bit write
	 * zero-extends, so `lea edx, [rdi+6]` with rdi = 0 is rdx = 6. */
	const ZydisRegister reg[3] = { ZYDIS_REGISTER_ECX, ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_R8 };
	for (int i = 0; i < 3; i++) {
		uint64_t v;
		if (want[i] < 0)
			continue;
		if (!x86_regs_get(&r, reg[i], &v) || v != (uint64_t)want[i])
			return false;
	}
	return true;
}

/* ---- candidates ---- */

static bool section_is_code(const struct pe_section *s)
{
	/* IMAGE_SCN_CNT_CODE 0x20, IMAGE_SCN_MEM_EXECUTE 0x20000000 (PE/COFF 3.1). */
	return (s->characteristics & 0x20000020u) != 0;
}

struct cands {
	size_t n;
	uint32_t rva[MAX_CANDIDATES];
	bool overflow;
};

static void cand_add(const struct pe *pe, struct cands *c, uint32_t rva)
{
	const struct pe_function *fn = pe_function_at(pe, rva);
	if (!fn)
		return;
	uint32_t primary = fn->primary_begin;
	for (size_t i = 0; i < c->n; i++)
		if (c->rva[i] == primary)
			return;
	if (c->n == MAX_CANDIDATES) {
		c->overflow = true;
		return;
	}
	c->rva[c->n++] = primary;
}

/* Every position in code whose 4 bytes, read as a rel32/disp32, reach one
 * of targets: `p + 4 + k + disp` with k the size of an immediate that may
 * follow the displacement (0, 1, 2 or 4: cmp byte [rip+x], 0 has k = 1). */
static void scan_refs(const struct pe *pe, const uint32_t *targets, size_t nt, struct cands *c)
{
	static const uint32_t ks[] = { 0, 1, 2, 4 };
	for (size_t s = 0; s < pe->nsections; s++) {
		const struct pe_section *sec = &pe->sections[s];
		uint32_t n = sec->raw_size < sec->vsize || !sec->vsize ? sec->raw_size : sec->vsize;
		if (!section_is_code(sec) || n < 4 || !range_ok(sec->raw_off, n, pe->len))
			continue;
		const uint8_t *p = pe->data + sec->raw_off;
		for (uint32_t i = 0; i + 4 <= n; i++) {
			uint32_t d = get_le32(p + i), at = sec->va + i;
			for (size_t t = 0; t < nt; t++)
				for (size_t k = 0; k < 4; k++)
					if (at + 4 + ks[k] + d == targets[t])
						cand_add(pe, c, at);
		}
	}
}

static void scan_bytes(const struct pe *pe, const struct cand_spec *cs, struct cands *c)
{
	for (size_t s = 0; s < pe->nsections; s++) {
		const struct pe_section *sec = &pe->sections[s];
		uint32_t n = sec->raw_size < sec->vsize || !sec->vsize ? sec->raw_size : sec->vsize;
		if (!section_is_code(sec) || !range_ok(sec->raw_off, n, pe->len))
			continue;
		const uint8_t *p = pe->data + sec->raw_off;
		for (size_t q = 0; q < cs->npatterns; q++) {
			const struct byte_pattern *bp = &cs->patterns[q];
			for (uint32_t i = 0; i + bp->len <= n; i++) {
				uint8_t k = 0;
				while (k < bp->len && (p[i + k] & bp->mask[k]) == bp->want[k])
					k++;
				if (k == bp->len)
					cand_add(pe, c, sec->va + i);
			}
		}
	}
}

/* RVAs a call to `name` goes through: the export itself, the IAT slots of
 * an import of that name, and jmp [rip+slot] thunks in code. */
static size_t callee_targets(const struct pe *pe, const char *name, uint32_t *t, size_t max)
{
	size_t n = 0;
	const struct pe_export *ex = pe_export_find(pe, name);
	if (ex && n < max)
		t[n++] = ex->rva;
	for (size_t i = 0; i < pe->nimports && n < max; i++)
		if (pe->imports[i].name && strcmp(pe->imports[i].name, name) == 0)
			t[n++] = pe->imports[i].iat_rva;
	size_t nslots = n;
	for (size_t s = 0; s < pe->nsections && n < max; s++) {
		const struct pe_section *sec = &pe->sections[s];
		uint32_t len = sec->raw_size < sec->vsize || !sec->vsize ? sec->raw_size : sec->vsize;
		if (!section_is_code(sec) || len < X86_RIP_JMP_LEN || !range_ok(sec->raw_off, len, pe->len))
			continue;
		const uint8_t *p = pe->data + sec->raw_off;
		uint32_t slot;
		for (uint32_t i = 0; i + X86_RIP_JMP_LEN <= len && n < max; i++)
			if (x86_rip_jmp_slot(p + i, sec->va + i, &slot))
				for (size_t k = 0; k < nslots; k++)
					if (slot == t[k] && n < max)
						t[n++] = sec->va + i;
	}
	return n;
}

static void find_candidates(const struct pe *pe, const struct cand_spec *cs, struct cands *c)
{
	memset(c, 0, sizeof *c);
	uint32_t t[64];
	size_t nt = 0;
	switch (cs->how) {
	case CAND_EXPORT: {
		const struct pe_export *ex = pe_export_find(pe, cs->name);
		if (ex)
			cand_add(pe, c, ex->rva);
		break;
	}
	case CAND_CALLERS:
		nt = callee_targets(pe, cs->name, t, 64);
		scan_refs(pe, t, nt, c);
		break;
	case CAND_UTF16_REFS:
		for (size_t i = 0; cs->strings[i] && nt < 64; i++)
			nt += pe_find_utf16(pe, cs->strings[i], t + nt, 64 - nt);
		scan_refs(pe, t, nt, c);
		break;
	case CAND_BYTES:
		scan_bytes(pe, cs, c);
		break;
	}
}

/* ---- one entry ---- */

static void fill_edit(const struct pe *pe, const struct site_edit *se, struct patch_edit *pe_out)
{
	memset(pe_out, 0, sizeof *pe_out);
	pe_out->rva = se->rva;
	pe_out->len = se->len;
	pe_rva_to_off(pe, se->rva, se->len, &pe_out->file_off);
	const uint8_t *cur = pe_ptr(pe, se->rva, se->len);
	if (cur)
		memcpy(pe_out->before, cur, se->len);
	memcpy(pe_out->after, se->after, se->len);
	x86_format_bytes(pe_out->before, se->len, se->rva, pe_out->asm_before, sizeof pe_out->asm_before);
	x86_format_bytes(pe_out->after, se->len, se->rva, pe_out->asm_after, sizeof pe_out->asm_after);
}

/* The engine's own checks on what a matcher produced, whatever the entry:
 * every edit lies inside one chunk of the site's function, starts and ends
 * on instruction boundaries of the original decode, is readable in the
 * file, and its replacement decodes completely (Zydis). */
static int check_site(const struct pe *pe, const struct x86_func *f, const struct patch_site *s)
{
	for (size_t i = 0; i < s->nedits; i++) {
		const struct site_edit *e = &s->edit[i];
		uint32_t cb, ce;
		char tmp[512];
		if (!x86_chunk_of(f, e->rva, &cb, &ce) || e->len > ce - e->rva)
			return err_set(E_INTERNAL, "edit at %#x+%u leaves its function chunk", e->rva, e->len);
		if (!x86_is_boundary(f, e->rva) || !x86_is_boundary(f, e->rva + e->len))
			return err_set(E_INTERNAL, "edit at %#x+%u splits an instruction", e->rva, e->len);
		if (!pe_ptr(pe, e->rva, e->len))
			return err_set(E_FORMAT, "edit at %#x is outside the file's section data", e->rva);
		if (x86_format_bytes(e->after, e->len, e->rva, tmp, sizeof tmp) < 0)
			return err_set(E_INTERNAL, "replacement at %#x does not decode", e->rva);
		for (size_t j = 0; j < i; j++)
			if (e->rva < s->edit[j].rva + s->edit[j].len && s->edit[j].rva < e->rva + e->len)
				return err_set(E_INTERNAL, "edits at %#x and %#x overlap", e->rva, s->edit[j].rva);
	}
	return 0;
}

/* Finds the entry's sites. Returns the number of sites (0..MAX_SITES, more
 * are counted but not kept), -1 on a hard error. */
static int find_sites(const struct match_ctx *mc, const struct patch_entry *e, struct patch_site *sites)
{
	struct cands c;
	find_candidates(mc->pe, &e->cand, &c);
	int nsites = 0;
	for (size_t i = 0; i < c.n; i++) {
		struct x86_func f;
		if (x86_decode_function(mc->pe, c.rva[i], &f) < 0)
			continue; /* a malformed candidate is simply not the site */
		struct patch_site s;
		memset(&s, 0, sizeof s);
		s.func_begin = f.begin;
		s.func_end = f.end;
		int r = e->match(mc, &f, &s);
		if (r > 0 && check_site(mc->pe, &f, &s) < 0)
			r = -1;
		x86_func_free(&f);
		if (r < 0)
			return err_prefix("%s", e->id);
		for (int k = 0; k < r; k++) {
			if (nsites < MAX_SITES)
				sites[nsites] = s;
			nsites++;
		}
	}
	return nsites;
}

static void list_sites(char *buf, size_t n, const struct patch_site *s, int count)
{
	size_t used = 0;
	buf[0] = 0;
	for (int i = 0; i < count && i < MAX_SITES; i++) {
		/* several sites in one function: name the function once, marked */
		int same = 0;
		for (int k = 0; k < i; k++)
			same |= s[k].func_begin == s[i].func_begin;
		if (same)
			continue;
		int in_fn = 0;
		for (int k = i; k < count && k < MAX_SITES; k++)
			in_fn += s[k].func_begin == s[i].func_begin;
		if (text_append(buf, n, &used, "%s%#x%s", used ? ", " : "", s[i].func_begin,
				in_fn > 1 ? " (several sites in this function)" : "") < 0)
			break;
	}
}

/* Runs one entry up to (not including) writing. Returns 0 when the site
 * is there (result->status APPLIED-to-be / ALREADY_APPLIED), -1 with err
 * set and result->status NOT_FOUND / AMBIGUOUS otherwise. */
static int run_entry(const struct match_ctx *mc, const struct patch_entry *e, struct patch_result *res,
		     struct patch_site *out)
{
	struct patch_site sites[MAX_SITES];
	int n = find_sites(mc, e, sites);
	if (n < 0) {
		res->status = PATCH_NOT_FOUND;
		msg_printf(res->message, sizeof res->message, "%s", err_msg());
		return -1;
	}
	if (n == 0) {
		res->status = PATCH_NOT_FOUND;
		msg_printf(res->message, sizeof res->message, "not found: no function with %s", e->anchors);
		return err_set(E_NOTFOUND, "%s: site not found (%s)", e->id, e->anchors);
	}
	if (n > 1) {
		char list[160];
		list_sites(list, sizeof list, sites, n);
		res->status = PATCH_AMBIGUOUS;
		msg_printf(res->message, sizeof res->message, "ambiguous: %d candidates at %s", n, list);
		return err_set(E_AMBIGUOUS, "%s: ambiguous: %d candidates at %s", e->id, n, list);
	}
	const struct patch_site *s = &sites[0];
	res->func_begin = s->func_begin;
	res->func_end = s->func_end;
	res->nedits = s->nedits;
	size_t napplied = 0;
	for (size_t i = 0; i < s->nedits; i++) {
		fill_edit(mc->pe, &s->edit[i], &res->edits[i]);
		napplied += s->edit[i].applied;
	}
	if (napplied == s->nedits) {
		res->status = PATCH_ALREADY_APPLIED;
		/* Report what is there: before == after. */
		for (size_t i = 0; i < s->nedits; i++) {
			memcpy(res->edits[i].after, res->edits[i].before, res->edits[i].len);
			memcpy(res->edits[i].asm_after, res->edits[i].asm_before, sizeof res->edits[i].asm_after);
		}
		return 0;
	}
	if (napplied) {
		res->status = PATCH_NOT_FOUND;
		msg_printf(res->message, sizeof res->message,
			 "partially applied: %zu of %zu edits present; refusing to mix", napplied, s->nedits);
		return err_set(E_NOTFOUND, "%s: %s", e->id, res->message);
	}
	res->status = PATCH_WOULD_APPLY;
	*out = *s;
	return 0;
}

/* ---- options ---- */

static bool id_in_list(const char *list, const char *id)
{
	if (!list)
		return false;
	size_t n = strlen(id);
	for (const char *p = list; *p;) {
		const char *q = strchr(p, ',');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if (len == n && strncmp(p, id, n) == 0)
			return true;
		if (!q)
			break;
		p = q + 1;
	}
	return false;
}

static int check_id_list(const char *list, const char *opt)
{
	if (!list)
		return 0;
	for (const char *p = list; *p;) {
		const char *q = strchr(p, ',');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		bool ok = false;
		for (size_t i = 0; i < patch_catalog_n; i++)
			if (strlen(patch_catalog[i].id) == len && strncmp(patch_catalog[i].id, p, len) == 0)
				ok = true;
		if (!ok)
			return err_set(E_USAGE, "%s: unknown patch id '%.*s'", opt, (int)len, p);
		if (!q)
			break;
		p = q + 1;
	}
	return 0;
}

static unsigned file_version(const struct pe *pe)
{
	return pe->version.present ? VER(pe->version.v[0], pe->version.v[1]) : 0;
}

static void result_init(struct patch_result *r, const struct patch_entry *e)
{
	memset(r, 0, sizeof *r);
	r->id = e->id;
	r->binary = e->kind;
	r->status = PATCH_NOT_APPLICABLE;
}

/* ---- the driver ---- */

/* Which Windows an NT 5.x kernel is, in words (the file only says 5.2). */
static const char *nt5_name(unsigned v)
{
	switch (v & 0xFF) {
	case 0: return "Windows 2000";
	case 1: return "Windows XP (32-bit)";
	case 2: return "Windows XP Professional x64 Edition or Windows Server 2003 / 2003 R2 x64";
	default: return "a Windows NT 5 release";
	}
}

static int check_version(unsigned v)
{
	if (v == 0)
		return err_set(E_UNSUPPORTED, "no version resource: cannot tell the kernel version (use --force-version)");
	if ((v >> 8) == 5)
		return err_set(E_UNSUPPORTED,
			       "kernel %u.%u is %s: out of reach (the article's attempt deadloops); "
			       "patches start at Vista / Server 2008 (6.0)", v >> 8, v & 0xFF, nt5_name(v));
	if (v < VER(6, 0))
		return err_set(E_UNSUPPORTED, "kernel %u.%u is not a 64-bit Windows this tool knows", v >> 8, v & 0xFF);
	return 0;
}

/* PE/COFF "Machine Types" names for the refusal message. */
static const char *machine_name(uint16_t m)
{
	switch (m) {
	case PE_MACHINE_I386: return "i386, 32-bit x86";
	case PE_MACHINE_ARMNT: return "ARMNT, 32-bit ARM Thumb-2";
	case PE_MACHINE_ARM64: return "ARM64";
	case PE_MACHINE_AMD64: return "AMD64 but not PE32+";
	default: return "unknown machine";
	}
}

/* What must hold before any catalog entry is looked at, in this order:
 * the machine (whatever the kind: a 32-bit or ARM file is never a
 * candidate), not another boot application (even with --kind), a kind. */
static int check_file(const struct pe *pe, enum pe_kind kind)
{
	if (pe->machine != PE_MACHINE_AMD64 || !pe->pe32plus)
		return err_set(E_FORMAT, "not an AMD64 PE32+ image (machine %#06x, %s): the patches are for 64-bit "
			       "x64 Windows", pe->machine, machine_name(pe->machine));
	const char *app = other_boot_application(pe);
	if (app)
		return err_set(E_FORMAT, "this is %s (OriginalFilename %s), not the OS loader (osloader.exe): "
			       "patching it would switch off its own image-hash check; refusing%s", app,
			       pe->version.original_filename, kind == KIND_WINLOAD ? " even with --kind winload" : "");
	if (kind == KIND_UNKNOWN)
		return err_set(E_FORMAT, "cannot tell which binary this is (ntoskrnl, hal, acpi, winload): use --kind");
	return 0;
}

static void apply_site(struct pe *pe, const struct patch_site *s, struct patch_result *res)
{
	for (size_t i = 0; i < s->nedits; i++) {
		uint8_t *p = pe_ptr(pe, s->edit[i].rva, s->edit[i].len);
		memcpy(p, s->edit[i].after, s->edit[i].len);
	}
	res->status = PATCH_APPLIED;
}

static int apply_body(struct pe *pe, enum pe_kind kind, const struct patch_opts *opts, struct patch_report *report)
{
	static const struct patch_opts none;
	if (!opts)
		opts = &none;
	memset(report, 0, sizeof *report);
	report->kind = kind;
	report->version = opts->force_version ? opts->force_version : file_version(pe);
	if (check_file(pe, kind) < 0)
		return -1;
	if (check_id_list(opts->only, "--only") < 0 || check_id_list(opts->skip, "--skip") < 0)
		return -1;

	struct match_ctx mc = { pe, report->version };
	struct patch_site todo[16];
	bool have[16] = { false };
	int rc = 0;
	enum err_code first = E_OK;
	char firstmsg[512] = "";
	int vrc = check_version(report->version);
	if (vrc < 0) {
		first = err_code();
		msg_printf(firstmsg, sizeof firstmsg, "%s", err_msg());
		rc = -1;
	}
	for (size_t i = 0; i < patch_catalog_n && report->nresults < 16; i++) {
		const struct patch_entry *e = &patch_catalog[i];
		if (e->kind != kind)
			continue;
		size_t k = report->nresults++;
		struct patch_result *res = &report->results[k];
		result_init(res, e);
		if (vrc < 0) {
			msg_printf(res->message, sizeof res->message, "%.200s", firstmsg);
			continue;
		}
		if (report->version < e->min_version || report->version > e->max_version) {
			msg_printf(res->message, sizeof res->message, "applies to kernel %u.%u-%u.%u, this is %u.%u",
				 e->min_version >> 8, e->min_version & 0xFF, e->max_version >> 8,
				 e->max_version & 0xFF, report->version >> 8, report->version & 0xFF);
			continue;
		}
		if ((opts->only && !id_in_list(opts->only, e->id)) || id_in_list(opts->skip, e->id)) {
			msg_printf(res->message, sizeof res->message, "skipped by option");
			continue;
		}
		if (run_entry(&mc, e, res, &todo[k]) < 0) {
			if (first == E_OK) {
				first = err_code();
				msg_printf(firstmsg, sizeof firstmsg, "%s", err_msg());
			}
			rc = -1;
			continue;
		}
		have[k] = res->status == PATCH_WOULD_APPLY;
	}
	if (rc < 0) {
		/* All or nothing across the file: one missing site means no edit. */
		for (size_t k = 0; k < report->nresults; k++)
			if (have[k])
				msg_printf(report->results[k].message, sizeof report->results[k].message,
					 "not written: another patch of this file failed");
		return err_set(first, "%s", firstmsg);
	}
	if (opts->dry_run)
		return 0;
	bool changed = false;
	for (size_t k = 0; k < report->nresults; k++)
		if (have[k]) {
			apply_site(pe, &todo[k], &report->results[k]);
			changed = true;
		}
	if (changed) {
		pe_checksum_update(pe);
		report->checksum_updated = true;
	}
	return 0;
}

/* The matchers answer "not this site" when a scratch allocation fails
 * (E_NOMEM set): a run short of memory fails as such, not as a missing
 * patch site (exit 5). */
int patch_apply(struct pe *pe, enum pe_kind kind, const struct patch_opts *opts, struct patch_report *report)
{
	unsigned long nomem = err_nomem_count();
	int rc = apply_body(pe, kind, opts, report);
	if (err_nomem_count() != nomem)
		return err_set(E_NOMEM, "out of memory while looking for the patch sites");
	return rc;
}
