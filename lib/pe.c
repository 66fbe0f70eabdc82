/* pe.c - PE32/PE32+ parser (Microsoft "PE Format" specification, the
 * section numbers below are those of learn.microsoft.com/windows/win32/
 * debug/pe-format), x64 exception data (learn.microsoft.com/cpp/build/
 * exception-handling-x64) and the version resource (VS_VERSIONINFO,
 * learn.microsoft.com/windows/win32/menurc/vs-versioninfo).
 *
 * Every read goes through range checks against the file length; counts
 * read from the file are bounded by what could fit in the file, so no
 * allocation is larger than a small multiple of the input.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe.h"
#include "pe_format.h"
#include "util.h"

#define OPT_MAGIC_PE32 0x10b
#define OPT_MAGIC_PE32PLUS 0x20b
#define MAX_SECTIONS 96         /* the loader's limit (spec: NumberOfSections) */
#define MAX_DATA_DIRS 16

/* Data directory indexes ("Optional Header Data Directories"). */
enum { DIR_EXPORT = 0, DIR_IMPORT = 1, DIR_RESOURCE = 2, DIR_EXCEPTION = 3, DIR_SECURITY = 4 };

struct datadir { uint32_t rva, size; };

struct parse {
	struct pe *pe;
	size_t opt_off;             /* file offset of the optional header */
	struct datadir dirs[MAX_DATA_DIRS];
	uint32_t ndirs;
	size_t name_budget;         /* bytes of names still allowed to be copied */
	bool nomem;                 /* string_at's NULL was out of memory (E_NOMEM set), not a bad name */
};

/* ------------------------------------------------------------------ */
/* address translation                                                 */

/* A section's extent in memory: VirtualSize, or SizeOfRawData when the
 * linker left VirtualSize 0 (old images do). */
static uint32_t section_vsize(const struct pe_section *s)
{
	return s->vsize ? s->vsize : s->raw_size;
}

const struct pe_section *pe_section_for_rva(const struct pe *pe, uint32_t rva)
{
	for (size_t i = 0; i < pe->nsections; i++) {
		const struct pe_section *s = &pe->sections[i];
		if (rva >= s->va && rva - s->va < section_vsize(s))
			return s;
	}
	return NULL;
}

int pe_rva_to_off(const struct pe *pe, uint32_t rva, uint32_t len, size_t *off)
{
	/* Headers are mapped at RVA 0 = file offset 0. */
	if (range_ok(rva, len, pe->size_of_headers) && range_ok(rva, len, pe->len)) {
		*off = rva;
		return 0;
	}
	const struct pe_section *s = pe_section_for_rva(pe, rva);
	if (!s)
		return -1;
	uint32_t rel = rva - s->va;
	/* Bytes past SizeOfRawData are zero-fill in memory, not in the file. */
	if (!range_ok(rel, len, s->raw_size))
		return -1;
	*off = (size_t)s->raw_off + rel;
	return 0;
}

int pe_off_to_rva(const struct pe *pe, size_t off, uint32_t *rva)
{
	for (size_t i = 0; i < pe->nsections; i++) {
		const struct pe_section *s = &pe->sections[i];
		if (off >= s->raw_off && off - s->raw_off < s->raw_size &&
		    off - s->raw_off < section_vsize(s)) {
			*rva = s->va + (uint32_t)(off - s->raw_off);
			return 0;
		}
	}
	return -1;
}

uint8_t *pe_ptr(const struct pe *pe, uint32_t rva, uint32_t len)
{
	size_t off;
	if (pe_rva_to_off(pe, rva, len, &off) < 0)
		return NULL;
	return pe->data + off;
}

/* NUL-terminated ASCII string at rva, copied (at most max bytes scanned).
 * NULL when it runs out of the section's raw data before the NUL, or when
 * the names copied so far exceed twice the file size: many name pointers
 * aimed at one long string must not turn a small file into a huge
 * allocation. */
static char *string_at(struct parse *ps, uint32_t rva, size_t max)
{
	const struct pe *pe = ps->pe;
	size_t off;
	if (pe_rva_to_off(pe, rva, 1, &off) < 0)
		return NULL;
	const struct pe_section *s = pe_section_for_rva(pe, rva);
	size_t avail = s ? s->raw_size - (rva - s->va) : pe->size_of_headers - rva;
	if (avail > pe->len - off)
		avail = pe->len - off;
	if (avail > max)
		avail = max;
	const uint8_t *p = pe->data + off;
	const uint8_t *nul = memchr(p, 0, avail);
	if (!nul || (size_t)(nul - p) + 1 > ps->name_budget)
		return NULL;
	ps->name_budget -= (size_t)(nul - p) + 1;
	char *s2 = xmalloc((size_t)(nul - p) + 1);
	if (!s2) {
		ps->nomem = true;
		err_prefix("PE name at RVA 0x%x", rva);
		return NULL;
	}
	memcpy(s2, p, (size_t)(nul - p) + 1);
	return s2;
}

/* ------------------------------------------------------------------ */
/* headers                                                             */

static int parse_sections(struct parse *ps, size_t sec_off, uint16_t nsec)
{
	struct pe *pe = ps->pe;
	if (nsec > MAX_SECTIONS)
		return err_set(E_FORMAT, "not a PE file: NumberOfSections %u exceeds %u", nsec, MAX_SECTIONS);
	struct pe_section_header h;
	if (!range_ok(sec_off, (uint64_t)nsec * sizeof h, pe->len))
		return err_set(E_FORMAT, "not a PE file: section table (%u entries) past end of file", nsec);
	pe->sections = xcalloc(nsec ? nsec : 1, sizeof *pe->sections);
	if (!pe->sections) return err_prefix("PE section table");
	pe->nsections = nsec;
	for (uint16_t i = 0; i < nsec; i++) {
		memcpy(&h, pe->data + sec_off + (size_t)i * sizeof h, sizeof h);
		struct pe_section *s = &pe->sections[i];
		memcpy(s->name, h.name, 8);
		s->name[8] = 0;
		s->vsize = le32_get(&h.virtual_size);
		s->va = le32_get(&h.virtual_address);
		s->raw_size = le32_get(&h.size_of_raw_data);
		s->raw_off = le32_get(&h.pointer_to_raw_data);
		s->characteristics = le32_get(&h.characteristics);
		if (s->raw_size == 0)
			s->raw_off = 0;  /* PointerToRawData is meaningless then */
		if (!range_ok(s->raw_off, s->raw_size, pe->len))
			return err_set(E_FORMAT, "not a PE file: section %u (%s) raw data past end of file", i + 1, s->name);
		if ((uint64_t)s->va + section_vsize(s) > UINT32_MAX)
			return err_set(E_FORMAT, "not a PE file: section %u (%s) extends past 4 GiB", i + 1, s->name);
	}
	return 0;
}

/* The data directories after the optional header's fixed part (fixed
 * bytes, NumberOfRvaAndSizes its last field): NumberOfRvaAndSizes is
 * untrusted, so it is bounded by 16 and by what the header has room for. */
static void parse_data_dirs(struct parse *ps, const uint8_t *o, uint16_t opt_size, size_t fixed, uint32_t ndirs)
{
	if (ndirs > MAX_DATA_DIRS)
		ndirs = MAX_DATA_DIRS;
	if (ndirs > (opt_size - fixed) / sizeof(struct pe_data_directory))
		ndirs = (uint32_t)((opt_size - fixed) / sizeof(struct pe_data_directory));
	ps->ndirs = ndirs;
	for (uint32_t i = 0; i < ndirs; i++) {
		struct pe_data_directory d;
		memcpy(&d, o + fixed + sizeof d * i, sizeof d);
		ps->dirs[i].rva = le32_get(&d.virtual_address);
		ps->dirs[i].size = le32_get(&d.size);
	}
}

/* The optional header (doc/formats.md, PE): standard fields, the image base
 * (PE32: 4 bytes after BaseOfData; PE32+: 8 bytes), the Windows-specific
 * fields at 32 in both, then stack/heap sizes 4 or 8 bytes wide, so the
 * fixed part is 96 or 112 bytes and the directories follow. */
static int parse_optional_header(struct parse *ps, uint16_t opt_size)
{
	struct pe *pe = ps->pe;
	const uint8_t *o = pe->data + ps->opt_off;
	if (opt_size < 2 || !range_ok(ps->opt_off, opt_size, pe->len))
		return err_set(E_FORMAT, "not a PE file: optional header past end of file");
	le16 magic_field;
	memcpy(&magic_field, o, sizeof magic_field);   /* struct pe_opt_standard's first field */
	uint16_t magic = le16_get(&magic_field);
	if (magic != OPT_MAGIC_PE32 && magic != OPT_MAGIC_PE32PLUS)
		return err_set(E_FORMAT, "not a PE file: optional header magic 0x%x", magic);
	pe->pe32plus = magic == OPT_MAGIC_PE32PLUS;
	size_t fixed = pe->pe32plus ? sizeof(struct pe_optional_header64) : sizeof(struct pe_optional_header32);
	if (opt_size < fixed)
		return err_set(E_FORMAT, "not a PE file: SizeOfOptionalHeader %u too small", opt_size);
	struct pe_optional_header32 h32;
	memcpy(&h32, o, sizeof h32);
	const struct pe_opt_windows *win = &h32.win;   /* at 32 in both */
	pe->entry_rva = le32_get(&h32.std.address_of_entry_point);
	pe->image_base = le32_get(&h32.image_base);
	uint32_t ndirs = le32_get(&h32.number_of_rva_and_sizes);
	if (pe->pe32plus) {
		struct pe_optional_header64 h64;
		memcpy(&h64, o, sizeof h64);
		pe->image_base = le64_get(&h64.image_base);
		ndirs = le32_get(&h64.number_of_rva_and_sizes);
	}
	pe->section_alignment = le32_get(&win->section_alignment);
	pe->file_alignment = le32_get(&win->file_alignment);
	pe->size_of_image = le32_get(&win->size_of_image);
	pe->size_of_headers = le32_get(&win->size_of_headers);
	pe->checksum_off = ps->opt_off + offsetof(struct pe_optional_header32, win) +
			   offsetof(struct pe_opt_windows, checksum);
	pe->checksum = le32_get(&win->checksum);
	pe->subsystem = le16_get(&win->subsystem);
	parse_data_dirs(ps, o, opt_size, fixed, ndirs);
	return 0;
}

static int parse_headers(struct parse *ps)
{
	struct pe *pe = ps->pe;
	struct pe_dos_header dos;
	struct pe_coff_header coff;
	if (pe->len < sizeof dos)
		return err_set(E_FORMAT, "not a PE file: %zu bytes, shorter than a DOS header", pe->len);
	memcpy(&dos, pe->data, sizeof dos);
	if (dos.e_magic[0] != 'M' || dos.e_magic[1] != 'Z')
		return err_set(E_FORMAT, "not a PE file: no MZ signature");
	uint32_t lfanew = le32_get(&dos.e_lfanew);
	if (!range_ok(lfanew, 4 + sizeof coff, pe->len))
		return err_set(E_FORMAT, "not a PE file: e_lfanew 0x%x past end of file", lfanew);
	if (memcmp(pe->data + lfanew, "PE\0\0", 4) != 0)
		return err_set(E_FORMAT, "not a PE file: no PE signature at 0x%x", lfanew);
	memcpy(&coff, pe->data + lfanew + 4, sizeof coff);
	pe->machine = le16_get(&coff.machine);
	uint16_t nsec = le16_get(&coff.number_of_sections);
	uint16_t opt_size = le16_get(&coff.size_of_optional_header);
	pe->characteristics = le16_get(&coff.characteristics);
	ps->opt_off = (size_t)lfanew + 4 + sizeof coff;
	if (parse_optional_header(ps, opt_size) < 0)
		return -1;
	return parse_sections(ps, ps->opt_off + opt_size, nsec);
}

/* ------------------------------------------------------------------ */
/* exports ("The .edata Section"): a 40-byte directory, the export address
 * table (RVAs; one inside the export directory is a forwarder string), the
 * name pointer table and the parallel ordinal table (indexes into the
 * EAT, not biased by OrdinalBase). */

static int export_add(struct pe *pe, size_t *cap, char *name, uint32_t rva, uint16_t ord)
{
	if (pe->nexports == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct pe_export *v = xrealloc(pe->exports, c * sizeof *pe->exports);
		if (!v) {
			free(name);
			return err_prefix("PE export table");
		}
		pe->exports = v, *cap = c;
	}
	pe->exports[pe->nexports++] = (struct pe_export){ name, rva, ord };
	return 0;
}

static int parse_exports(struct parse *ps)
{
	struct pe *pe = ps->pe;
	if (ps->ndirs <= DIR_EXPORT || !ps->dirs[DIR_EXPORT].rva)
		return 0;
	struct datadir d = ps->dirs[DIR_EXPORT];
	struct pe_export_directory ed;
	const uint8_t *edp = pe_ptr(pe, d.rva, sizeof ed);
	if (!edp)
		return err_set(E_FORMAT, "export directory at RVA 0x%x outside the image", d.rva);
	memcpy(&ed, edp, sizeof ed);
	uint32_t base = le32_get(&ed.ordinal_base), nfuncs = le32_get(&ed.address_table_entries);
	uint32_t nnames = le32_get(&ed.number_of_name_pointers);
	uint32_t eat_rva = le32_get(&ed.export_address_table_rva), names_rva = le32_get(&ed.name_pointer_rva);
	uint32_t ords_rva = le32_get(&ed.ordinal_table_rva);
	/* Each table must lie in the file: that alone bounds the counts. */
	if (nfuncs > pe->len / 4 || nnames > pe->len / 4 || nfuncs > UINT32_MAX / 4 || nnames > UINT32_MAX / 4)
		return err_set(E_FORMAT, "export directory: %u functions / %u names cannot fit in the file", nfuncs, nnames);
	const uint8_t *eat = pe_ptr(pe, eat_rva, nfuncs * 4);
	const uint8_t *names = pe_ptr(pe, names_rva, nnames * 4);
	const uint8_t *ords = pe_ptr(pe, ords_rva, nnames * 2);
	if ((nfuncs && !eat) || (nnames && (!names || !ords)))
		return err_set(E_FORMAT, "export directory: address/name/ordinal table outside the image");
	bool *named = xcalloc(nfuncs ? nfuncs : 1, 1);
	if (!named) return err_prefix("PE export table");
	size_t cap = 0;
	for (uint32_t i = 0; i < nnames; i++) {
		uint16_t idx = get_le16(ords + 2 * i);
		if (idx >= nfuncs) {
			free(named);
			return err_set(E_FORMAT, "export %u: ordinal index %u past %u functions", i, idx, nfuncs);
		}
		uint32_t rva = get_le32(eat + 4 * idx);
		char *name = string_at(ps, get_le32(names + 4 * i), 4096);
		if (!name) {
			free(named);
			if (ps->nomem) return -1;
			return err_set(E_FORMAT, "export %u: name at RVA 0x%x unterminated, outside the image or past the name budget",
				       i, get_le32(names + 4 * i));
		}
		named[idx] = true;
		if (rva >= d.rva && rva - d.rva < d.size) {   /* forwarder "DLL.Name" */
			free(name);
			continue;
		}
		if (export_add(pe, &cap, name, rva, (uint16_t)(base + idx)) < 0) {
			free(named);
			return -1;
		}
	}
	for (uint32_t idx = 0; idx < nfuncs; idx++) {
		uint32_t rva = get_le32(eat + 4 * idx);
		if (named[idx] || rva == 0 || (rva >= d.rva && rva - d.rva < d.size))
			continue;
		if (export_add(pe, &cap, NULL, rva, (uint16_t)(base + idx)) < 0) {
			free(named);
			return -1;
		}
	}
	free(named);
	return 0;
}

/* ------------------------------------------------------------------ */
/* imports ("The .idata Section"): 20-byte descriptors ending with an
 * all-zero one; OriginalFirstThunk (ILT, may be 0 in old images: then the
 * IAT holds the lookup entries), Name, FirstThunk (IAT). Lookup entries
 * are 8 bytes (PE32+) or 4 (PE32); the top bit means "by ordinal" (low 16
 * bits), else bits 0-30 are the RVA of a hint/name entry: a 2-byte hint
 * then the NUL-terminated name. */

static int parse_import_dll(struct parse *ps, uint32_t desc_rva, size_t *cap)
{
	struct pe *pe = ps->pe;
	struct pe_import_descriptor id;
	memcpy(&id, pe_ptr(pe, desc_rva, sizeof id), sizeof id);   /* checked by parse_imports */
	uint32_t ilt = le32_get(&id.import_lookup_table_rva), name_rva = le32_get(&id.name_rva);
	uint32_t iat = le32_get(&id.import_address_table_rva);
	char *dll = string_at(ps, name_rva, 256);
	if (!dll)
		return ps->nomem ? -1 : err_set(E_FORMAT, "import descriptor at RVA 0x%x: DLL name unterminated or outside the image", desc_rva);
	if (!ilt)
		ilt = iat;   /* old linkers: the IAT doubles as the lookup table */
	if (!ilt) {
		err_set(E_FORMAT, "imports from %s: no lookup table", dll);
		free(dll);
		return -1;
	}
	unsigned tsize = pe->pe32plus ? 8 : 4;
	bool used = false;
	for (uint32_t i = 0;; i++) {
		uint64_t lookup_rva = (uint64_t)ilt + (uint64_t)i * tsize;
		const uint8_t *t = lookup_rva <= UINT32_MAX ? pe_ptr(pe, (uint32_t)lookup_rva, tsize) : NULL;
		if (!t) {
			err_set(E_FORMAT, "imports from %s: lookup table runs outside the image", dll);
			if (!used)
				free(dll);
			return -1;
		}
		uint64_t v = pe->pe32plus ? get_le64(t) : get_le32(t);
		if (v == 0)
			break;
		bool by_ord = pe->pe32plus ? (v >> 63) != 0 : (v >> 31) != 0;
		struct pe_import im = { .dll = dll, .iat_rva = (uint32_t)(iat + (uint64_t)i * tsize) };
		if (by_ord) {
			im.ordinal = (uint16_t)v;
		} else {
			uint32_t hn = (uint32_t)(v & 0x7fffffff);
			if (hn > UINT32_MAX - 2 || !(im.name = string_at(ps, hn + 2, 4096))) {
				if (!ps->nomem) err_set(E_FORMAT, "imports from %s: name %u at RVA 0x%x unterminated, outside the image or past the name budget",
					dll, i, hn);
				if (!used)
					free(dll);
				return -1;
			}
		}
		if (pe->nimports == *cap) {
			size_t c = *cap ? *cap * 2 : 16;
			struct pe_import *v = xrealloc(pe->imports, c * sizeof *pe->imports);
			if (!v) {
				free(im.name);
				if (!used)
					free(dll);
				return err_prefix("PE import table");
			}
			pe->imports = v, *cap = c;
		}
		/* The first entry of a DLL owns the dll string (see pe_free). */
		pe->imports[pe->nimports++] = im;
		used = true;
		if (pe->nimports > pe->len / 4)
			return err_set(E_FORMAT, "imports: more entries than the file can hold");
	}
	if (!used)
		free(dll);
	return 0;
}

static int parse_imports(struct parse *ps)
{
	struct pe *pe = ps->pe;
	if (ps->ndirs <= DIR_IMPORT || !ps->dirs[DIR_IMPORT].rva)
		return 0;
	size_t cap = 0;
	for (uint32_t i = 0;; i++) {
		struct pe_import_descriptor id;
		uint64_t rva = (uint64_t)ps->dirs[DIR_IMPORT].rva + (uint64_t)sizeof id * i;
		const uint8_t *idp = rva <= UINT32_MAX ? pe_ptr(pe, (uint32_t)rva, sizeof id) : NULL;
		if (!idp)
			return err_set(E_FORMAT, "import descriptor %u at RVA 0x%llx outside the image", i,
				       (unsigned long long)rva);
		memcpy(&id, idp, sizeof id);
		if (le32_get(&id.name_rva) == 0 && le32_get(&id.import_address_table_rva) == 0)
			break;   /* the null descriptor ends the table */
		if (parse_import_dll(ps, (uint32_t)rva, &cap) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* x64 exception data: .pdata is an array of 12-byte RUNTIME_FUNCTION
 * {BeginAddress, EndAddress, UnwindData} ("The .pdata Section"). UNWIND_INFO
 * (exception-handling-x64, "struct UNWIND_INFO"): byte 0 = Version (bits
 * 0-2) | Flags (bits 3-7), byte 2 = CountOfCodes; 2-byte unwind codes
 * from offset 4, their array padded to an even count; with
 * UNW_FLAG_CHAININFO (4) a RUNTIME_FUNCTION of the previous (primary)
 * piece follows at 4 + 2 * ((CountOfCodes + 1) & ~1). An UnwindData with
 * bit 0 set points directly at another RUNTIME_FUNCTION (an indirect
 * entry, as the Windows unwinder treats it). */

#define UNW_FLAG_CHAININFO 0x4
#define MAX_CHAIN_DEPTH 32

static int unwind_parent(const struct pe *pe, uint32_t unwind, uint32_t *parent_begin, uint32_t *parent_unwind,
			 bool *has_parent)
{
	const uint8_t *rf;
	struct pe_runtime_function f;
	*has_parent = false;
	if (unwind & 1) {
		rf = pe_ptr(pe, unwind & ~1u, sizeof f);
	} else {
		const uint8_t *ui = pe_ptr(pe, unwind, 4);
		if (!ui)
			return err_set(E_FORMAT, "unwind info at RVA 0x%x outside the image", unwind);
		if (!((ui[0] >> 3) & UNW_FLAG_CHAININFO))
			return 0;
		uint32_t off = 4 + 2 * ((ui[2] + 1u) & ~1u);
		rf = pe_ptr(pe, unwind + off, sizeof f);
	}
	if (!rf)
		return err_set(E_FORMAT, "chained unwind info of RVA 0x%x outside the image", unwind);
	memcpy(&f, rf, sizeof f);
	*parent_begin = le32_get(&f.begin_address);
	*parent_unwind = le32_get(&f.unwind_data);
	*has_parent = true;
	return 0;
}

static int primary_of(const struct pe *pe, struct pe_function *f)
{
	uint32_t unwind = f->unwind, begin = f->begin;
	for (int depth = 0;; depth++) {
		if (depth >= MAX_CHAIN_DEPTH)
			return err_set(E_FORMAT, "function at RVA 0x%x: chained unwind info deeper than %d (a loop?)",
				       f->begin, MAX_CHAIN_DEPTH);
		uint32_t pb, pu;
		bool has;
		if (unwind_parent(pe, unwind, &pb, &pu, &has) < 0)
			return err_prefix("function at RVA 0x%x", f->begin);
		if (!has)
			break;
		begin = pb;
		unwind = pu;
	}
	f->primary_begin = begin;
	return 0;
}

static int cmp_function(const void *a, const void *b)
{
	const struct pe_function *x = a, *y = b;
	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int parse_pdata(struct parse *ps)
{
	struct pe *pe = ps->pe;
	/* Only x64 uses this RUNTIME_FUNCTION layout (ARM/ARM64 differ). */
	if (pe->machine != PE_MACHINE_AMD64 || ps->ndirs <= DIR_EXCEPTION || !ps->dirs[DIR_EXCEPTION].rva)
		return 0;
	struct datadir d = ps->dirs[DIR_EXCEPTION];
	struct pe_runtime_function rf;
	uint32_t n = d.size / sizeof rf;
	const uint8_t *p = n ? pe_ptr(pe, d.rva, n * (uint32_t)sizeof rf) : NULL;
	if (n && !p)
		return err_set(E_FORMAT, "exception directory (%u entries at RVA 0x%x) outside the image", n, d.rva);
	pe->functions = xcalloc(n ? n : 1, sizeof *pe->functions);
	if (!pe->functions) return err_prefix("PE exception directory");
	for (uint32_t i = 0; i < n; i++) {
		struct pe_function *f = &pe->functions[pe->nfunctions];
		memcpy(&rf, p + sizeof rf * i, sizeof rf);
		f->begin = le32_get(&rf.begin_address);
		f->end = le32_get(&rf.end_address);
		f->unwind = le32_get(&rf.unwind_data);
		if (f->begin == 0 && f->end == 0)
			continue;   /* zero padding at the end of .pdata */
		if (f->end <= f->begin)
			return err_set(E_FORMAT, ".pdata entry %u: end 0x%x not after begin 0x%x", i, f->end, f->begin);
		if (primary_of(pe, f) < 0)
			return err_prefix(".pdata entry %u", i);
		pe->nfunctions++;
	}
	qsort(pe->functions, pe->nfunctions, sizeof *pe->functions, cmp_function);
	return 0;
}

/* ------------------------------------------------------------------ */
/* version resource. The resource tree ("The .rsrc Section"): a 16-byte
 * directory (NumberOfNamedEntries at 12, NumberOfIdEntries at 14) followed
 * by 8-byte entries {Name/Id, Offset}; Offset bit 31 set = a subdirectory,
 * offsets relative to the start of the resource directory; a leaf is a
 * 16-byte data entry {DataRVA (an RVA), Size, CodePage, Reserved}. Levels:
 * type (RT_VERSION = 16), name, language; walked to a fixed depth of three,
 * so a directory that points at itself cannot loop. */

#define RT_VERSION 16

/* Offset (from the resource root) of the entry with id (or the first entry
 * when id < 0) in the directory at dir_off; -1 if none. */
static int64_t rsrc_find(const struct pe *pe, const uint8_t *root, uint32_t rsize, uint32_t dir_off, int id,
			 bool want_dir)
{
	struct pe_resource_directory dir;
	struct pe_resource_entry e;
	if (!range_ok(dir_off, sizeof dir, rsize))
		return -1;
	memcpy(&dir, root + dir_off, sizeof dir);
	uint32_t n = (uint32_t)le16_get(&dir.number_of_name_entries) + le16_get(&dir.number_of_id_entries);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e_off = dir_off + sizeof dir + (uint64_t)sizeof e * i;
		if (!range_ok(e_off, sizeof e, rsize))
			return -1;
		memcpy(&e, root + e_off, sizeof e);
		uint32_t name = le32_get(&e.name_or_id), off = le32_get(&e.offset);
		if (id >= 0 && ((name & 0x80000000u) || name != (uint32_t)id))
			continue;
		if (((off & 0x80000000u) != 0) != want_dir)
			return -1;
		return off & 0x7fffffffu;
	}
	return -1;
}

/* One VS_VERSIONINFO-style block: wLength, wValueLength, wType, szKey
 * (UTF-16, NUL-terminated), padding to 32 bits, Value, padding, Children. */
struct vblock {
	size_t off, len;            /* within the buffer, len = wLength */
	uint16_t value_len, type;
	char key[40];
	size_t value_off;           /* 4-aligned after the key */
	size_t children_off;
};

static bool vblock_read(const uint8_t *buf, size_t size, size_t off, struct vblock *b)
{
	struct pe_version_block h;
	if (!range_ok(off, sizeof h, size))
		return false;
	memcpy(&h, buf + off, sizeof h);
	b->off = off;
	b->len = le16_get(&h.length);
	b->value_len = le16_get(&h.value_length);
	b->type = le16_get(&h.type);
	if (b->len < sizeof h || !range_ok(off, b->len, size))
		return false;
	/* a key longer than key[] is cut: it then equals none of the (shorter)
	 * names looked for, as the whole key would not */
	size_t end = off + b->len, p = off + sizeof h, k = 0;
	for (;; p += 2) {
		if (p + 2 > end)
			return false;
		uint16_t c = get_le16(buf + p);
		if (!c)
			break;
		if (k + 1 < sizeof b->key)
			b->key[k++] = c < 0x80 ? (char)c : '?';
	}
	b->key[k] = 0;
	b->value_off = (p + 2 + 3) & ~(size_t)3;
	/* wValueLength counts WORDs for text values (wType 1), bytes otherwise. */
	size_t vbytes = b->type == 1 ? 2u * b->value_len : b->value_len;
	if (b->value_off > end)
		b->value_off = end;
	b->children_off = (b->value_off + (vbytes < end - b->value_off ? vbytes : end - b->value_off) + 3) & ~(size_t)3;
	return true;
}

/* A String's value, whole (as long as its block: never cut; doc/formats.md,
 * PE), non-ASCII characters as '?'. */
static void version_string(const uint8_t *buf, const struct vblock *s, struct pe_version *v)
{
	char **dst = NULL;
	if (!strcmp(s->key, "OriginalFilename"))
		dst = &v->original_filename;
	else if (!strcmp(s->key, "InternalName"))
		dst = &v->internal_name;
	else if (!strcmp(s->key, "FileVersion"))
		dst = &v->file_version_str;
	if (!dst)
		return;
	size_t end = s->off + s->len, i = 0;
	char *text = xmalloc(end > s->value_off ? (end - s->value_off) / 2 + 1 : 1);
	if (!text) return;   /* E_NOMEM set: pe_parse fails (err_nomem_count) */
	for (size_t p = s->value_off; p + 2 <= end; p += 2) {
		uint16_t c = get_le16(buf + p);
		if (!c)
			break;
		text[i++] = c < 0x80 ? (char)c : '?';
	}
	text[i] = 0;
	free(*dst);
	*dst = text;
}

/* Children of parent: StringFileInfo > StringTable > String. The nesting
 * is fixed (three levels) so there is no recursion. */
static void version_strings(const uint8_t *buf, const struct vblock *root, struct pe_version *v)
{
	size_t rend = root->off + root->len;
	for (size_t o = root->children_off; o < rend;) {
		struct vblock sfi;
		if (!vblock_read(buf, rend, o, &sfi))
			return;
		if (!strcmp(sfi.key, "StringFileInfo")) {
			size_t send = sfi.off + sfi.len;
			struct vblock table;
			/* Only the first string table (one language) matters. */
			if (vblock_read(buf, send, sfi.children_off, &table)) {
				size_t tend = table.off + table.len;
				for (size_t so = table.children_off; so < tend;) {
					struct vblock str;
					if (!vblock_read(buf, tend, so, &str))
						break;
					version_string(buf, &str, v);
					so = (str.off + str.len + 3) & ~(size_t)3;
				}
			}
		}
		o = (sfi.off + sfi.len + 3) & ~(size_t)3;
	}
}

#define VS_FFI_SIGNATURE 0xFEEF04BDu

static void parse_version(struct parse *ps)
{
	struct pe *pe = ps->pe;
	if (ps->ndirs <= DIR_RESOURCE || !ps->dirs[DIR_RESOURCE].rva)
		return;
	struct datadir d = ps->dirs[DIR_RESOURCE];
	/* The directory's Size may be understated; use the section's raw data. */
	const struct pe_section *s = pe_section_for_rva(pe, d.rva);
	if (!s)
		return;
	uint32_t rsize = s->raw_size > d.rva - s->va ? s->raw_size - (d.rva - s->va) : 0;
	const uint8_t *root = rsize ? pe_ptr(pe, d.rva, rsize) : NULL;
	if (!root)
		return;
	int64_t l1 = rsrc_find(pe, root, rsize, 0, RT_VERSION, true);
	int64_t l2 = l1 < 0 ? -1 : rsrc_find(pe, root, rsize, (uint32_t)l1, -1, true);
	int64_t l3 = l2 < 0 ? -1 : rsrc_find(pe, root, rsize, (uint32_t)l2, -1, false);
	struct pe_resource_data_entry de;
	if (l3 < 0 || !range_ok((uint64_t)l3, sizeof de, rsize))
		return;
	memcpy(&de, root + l3, sizeof de);
	uint32_t data_rva = le32_get(&de.data_rva), data_size = le32_get(&de.size);
	const uint8_t *vi = pe_ptr(pe, data_rva, data_size);
	struct vblock top;
	if (!vi || !vblock_read(vi, data_size, 0, &top) || strcmp(top.key, "VS_VERSION_INFO"))
		return;
	struct pe_fixed_file_info ffi;
	if (top.value_len < sizeof ffi || !range_ok(top.value_off, sizeof ffi, top.len))
		return;
	memcpy(&ffi, vi + top.value_off, sizeof ffi);
	if (le32_get(&ffi.signature) != VS_FFI_SIGNATURE)
		return;
	struct pe_version *v = &pe->version;
	v->present = true;
	uint32_t fms = le32_get(&ffi.file_version_ms), fls = le32_get(&ffi.file_version_ls);
	uint32_t pms = le32_get(&ffi.product_version_ms), pls = le32_get(&ffi.product_version_ls);
	v->v[0] = fms >> 16; v->v[1] = (uint16_t)fms; v->v[2] = fls >> 16; v->v[3] = (uint16_t)fls;
	v->pv[0] = pms >> 16; v->pv[1] = (uint16_t)pms; v->pv[2] = pls >> 16; v->pv[3] = (uint16_t)pls;
	version_strings(vi, &top, v);
}

/* ------------------------------------------------------------------ */

static void parse_security(struct parse *ps)
{
	struct pe *pe = ps->pe;
	if (ps->ndirs <= DIR_SECURITY)
		return;
	/* "The Attribute Certificate Table": VirtualAddress is a FILE offset. */
	struct datadir d = ps->dirs[DIR_SECURITY];
	if (d.rva && range_ok(d.rva, d.size, pe->len)) {
		pe->security_off = d.rva;
		pe->security_size = d.size;
	}
}

struct pe *pe_parse(const uint8_t *data, size_t len)
{
	struct pe *pe = xcalloc(1, sizeof *pe);
	if (!pe) {
		err_prefix("PE file of %zu bytes", len);
		return NULL;
	}
	pe->version.original_filename = xstrdup("");
	pe->version.internal_name = xstrdup("");
	pe->version.file_version_str = xstrdup("");
	pe->data = xmalloc(len ? len : 1);
	if (!pe->version.original_filename || !pe->version.internal_name || !pe->version.file_version_str ||
	    !pe->data) {
		pe_free(pe);
		err_prefix("PE file of %zu bytes", len);
		return NULL;
	}
	if (len)
		memcpy(pe->data, data, len);
	pe->len = len;
	struct parse ps = { .pe = pe, .name_budget = 2 * len + 4096 };
	if (parse_headers(&ps) < 0 || parse_exports(&ps) < 0 || parse_imports(&ps) < 0 || parse_pdata(&ps) < 0) {
		pe_free(pe);
		return NULL;
	}
	unsigned long nomem = err_nomem_count();
	parse_version(&ps);   /* a version string lost to a failed allocation fails the parse */
	if (err_nomem_count() != nomem) {
		pe_free(pe);
		err_prefix("PE version resource");
		return NULL;
	}
	parse_security(&ps);
	return pe;
}

void pe_free(struct pe *pe)
{
	if (!pe)
		return;
	free(pe->version.original_filename);
	free(pe->version.internal_name);
	free(pe->version.file_version_str);
	for (size_t i = 0; i < pe->nexports; i++)
		free(pe->exports[i].name);
	free(pe->exports);
	for (size_t i = 0; i < pe->nimports; i++) {
		if (i == 0 || pe->imports[i].dll != pe->imports[i - 1].dll)
			free(pe->imports[i].dll);
		free(pe->imports[i].name);
	}
	free(pe->imports);
	free(pe->functions);
	free(pe->sections);
	free(pe->data);
	free(pe);
}

/* ------------------------------------------------------------------ */
/* lookups                                                             */

const struct pe_export *pe_export_find(const struct pe *pe, const char *name)
{
	for (size_t i = 0; i < pe->nexports; i++)
		if (pe->exports[i].name && !strcmp(pe->exports[i].name, name))
			return &pe->exports[i];
	return NULL;
}

/* "ntoskrnl" matches "ntoskrnl.exe"; "ntoskrnl.exe" matches only itself. */
static bool dll_matches(const char *have, const char *want)
{
	if (!ascii_casecmp(have, want))
		return true;
	if (strchr(want, '.'))
		return false;
	const char *dot = strrchr(have, '.');
	size_t n = dot ? (size_t)(dot - have) : strlen(have);
	if (strlen(want) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char a = have[i], b = want[i];
		if (a >= 'A' && a <= 'Z') a += 32;
		if (b >= 'A' && b <= 'Z') b += 32;
		if (a != b)
			return false;
	}
	return true;
}

const struct pe_import *pe_import_find(const struct pe *pe, const char *dll, const char *name)
{
	for (size_t i = 0; i < pe->nimports; i++) {
		const struct pe_import *im = &pe->imports[i];
		if (im->name && !strcmp(im->name, name) && (!dll || dll_matches(im->dll, dll)))
			return im;
	}
	return NULL;
}

const struct pe_function *pe_function_at(const struct pe *pe, uint32_t rva)
{
	size_t lo = 0, hi = pe->nfunctions;
	while (lo < hi) {   /* last entry with begin <= rva */
		size_t mid = lo + (hi - lo) / 2;
		if (pe->functions[mid].begin <= rva)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct pe_function *f = &pe->functions[lo - 1];
	return rva < f->end ? f : NULL;
}

size_t pe_function_chunks(const struct pe *pe, uint32_t rva, const struct pe_function **out, size_t max)
{
	const struct pe_function *f = pe_function_at(pe, rva);
	if (!f)
		return 0;
	uint32_t primary = f->primary_begin;
	size_t n = 0;
	/* The primary first, then the other chunks in address order. */
	for (size_t i = 0; i < pe->nfunctions; i++)
		if (pe->functions[i].begin == primary && pe->functions[i].primary_begin == primary) {
			if (n < max)
				out[n] = &pe->functions[i];
			n++;
		}
	for (size_t i = 0; i < pe->nfunctions; i++)
		if (pe->functions[i].primary_begin == primary && pe->functions[i].begin != primary) {
			if (n < max)
				out[n] = &pe->functions[i];
			n++;
		}
	return n < max ? n : max;
}

size_t pe_find_utf16(const struct pe *pe, const char *ascii, uint32_t *rvas, size_t max)
{
	size_t n = strlen(ascii), nbytes = 2 * (n + 1), count = 0;
	for (size_t s = 0; s < pe->nsections; s++) {
		const struct pe_section *sec = &pe->sections[s];
		uint32_t size = sec->raw_size < section_vsize(sec) ? sec->raw_size : section_vsize(sec);
		const uint8_t *base = pe->data + sec->raw_off;
		/* UTF-16 strings are 2-aligned in every image the linker makes. */
		for (uint32_t o = 0; size >= nbytes && o <= size - nbytes; o += 2) {
			size_t i = 0;   /* ascii as UTF-16LE, its NUL included (no copy: nothing to allocate) */
			while (i <= n && get_le16(base + o + 2 * i) == (uint8_t)ascii[i])
				i++;
			if (i <= n)
				continue;
			if (count < max)
				rvas[count] = sec->va + o;
			count++;
		}
	}
	return count;
}

/* ------------------------------------------------------------------ */
/* checksum: imagehlp CheckSumMappedFile. The file is summed as 16-bit
 * little-endian words (an odd final byte as a word with a zero high byte)
 * with end-around carry, the CheckSum field counting as zero; the 16-bit
 * result plus the file length is the checksum. */

uint32_t pe_checksum_compute(const uint8_t *data, size_t len, size_t checksum_off)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < len; i += 2) {
		uint32_t lo = data[i], hi = i + 1 < len ? data[i + 1] : 0;
		if (i - checksum_off < 4)
			lo = 0;
		if (i + 1 - checksum_off < 4)
			hi = 0;
		sum += lo | (hi << 8);
		sum = (sum & 0xffff) + (sum >> 16);
	}
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint32_t)((sum & 0xffff) + len);
}

bool pe_checksum_valid(const struct pe *pe)
{
	return pe->checksum == pe_checksum_compute(pe->data, pe->len, pe->checksum_off);
}

void pe_checksum_update(struct pe *pe)
{
	pe->checksum = pe_checksum_compute(pe->data, pe->len, pe->checksum_off);
	if (range_ok(pe->checksum_off, 4, pe->len))
		put_le32(pe->data + pe->checksum_off, pe->checksum);
}

const char *pe_version_str(const struct pe *pe, char *buf, size_t n)
{
	if (!n)
		return buf;
	if (!pe->version.present)
		buf[0] = 0;
	else
		snprintf(buf, n, "%u.%u.%u.%u", pe->version.v[0], pe->version.v[1], pe->version.v[2],
			 pe->version.v[3]);   /* fits: 4 u16 are 23 chars, n >= PE_VERSION_STR_MAX */
	return buf;
}
