/* test_pe.c - lib/pe.c against images built with fixtures/pebuild (whose
 * layout python3-pefile confirms in tests/pe.sh), then against broken
 * images: each malformation is rejected with a reason or ignored, never
 * read out of bounds (the test runs under ASan/UBSan). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe.h"
#include "pebuild.h"
#include "util.h"

struct img {
	uint8_t *p;
	size_t n;
	/* symbols of the x64 test image */
	int f_main, f_helper, chunk, f_leaf, slot_kbc, slot_ord, slot_other, s_utf16, s_utf16b, s_ascii, lbl;
};

/* An x64 image with everything the parser reads: code in .text and
 * PAGELK, a chained chunk, exports (incl. an alias), imports by name and
 * by ordinal from two DLLs, UTF-16 strings, a version resource and a
 * security directory. */
static void build64(struct img *m)
{
	struct pebuild *b = pb_new(PE_MACHINE_AMD64, PE_SUBSYSTEM_NATIVE);
	m->slot_kbc = pb_import(b, "ntoskrnl.exe", "KeBugCheckEx");
	m->slot_other = pb_import(b, "HAL.dll", "KeStallExecutionProcessor");
	m->slot_ord = pb_import_ordinal(b, "ntoskrnl.exe", 42);
	assert_int_equal(pb_import(b, "NTOSKRNL.EXE", "KeBugCheckEx"), m->slot_kbc);
	m->s_utf16 = pb_string_utf16(b, "Kernel-PhysicalMemoryAddAllowed");
	m->s_ascii = pb_string_ascii(b, "ascii only");
	m->s_utf16b = pb_string_utf16(b, "Kernel-PhysicalMemoryAddAllowed");
	m->f_helper = pb_func_begin(b, "PAGELK", "Helper", 0);
	pb_emit(b, "\x33\xc0\xc3", 3);
	int cold = pb_label_new(b);
	m->f_main = pb_func_begin(b, ".text", "Main", 0x28);
	pb_emit(b, "\x48\x83\xec\x28", 4);
	pb_emit_rip(b, "\x48\x8d\x15", 3, m->s_utf16, NULL, 0);   /* lea rdx, [rip+str] */
	pb_emit_rip(b, "\xff\x15", 2, m->slot_kbc, NULL, 0);      /* call [rip+KeBugCheckEx] */
	pb_emit_rel32(b, 0xe8, m->f_helper);                      /* call Helper */
	m->lbl = pb_label(b);
	pb_emit_rip(b, "\x0f\x88", 2, cold, NULL, 0);             /* js cold */
	pb_emit(b, "\x48\x83\xc4\x28\xc3", 5);
	m->chunk = pb_chunk_begin(b, "PAGELK");
	pb_label_place(b, cold);
	pb_emit(b, "\xcc\xcc", 2);
	m->f_leaf = pb_func_begin(b, ".text", "Leaf", 0x200);      /* UWOP_ALLOC_LARGE */
	pb_emit(b, "\x48\x81\xec\x00\x02\x00\x00\x90\xc3", 9);
	pb_func_end(b);
	pb_export(b, "Main", m->f_main);
	pb_export(b, "Helper", m->f_helper);
	pb_export(b, "AliasOfMain", m->f_main);
	pb_set_entry(b, m->f_main);
	struct pb_version v = { .file = { 6, 1, 7601, 17514 }, .product = { 6, 1, 7601, 65535 }, .file_type = 3,
				.file_subtype = 7, .original_filename = "ntoskrnl.exe", .internal_name = "ntkrnlmp.exe" };
	pb_set_version(b, &v);
	pb_set_security(b, 100);
	pb_finish(b, &m->p, &m->n);
	/* Keep the RVAs: pb_rva needs the builder. */
	int *syms[] = { &m->f_main, &m->f_helper, &m->chunk, &m->f_leaf, &m->slot_kbc, &m->slot_ord, &m->slot_other,
			&m->s_utf16, &m->s_utf16b, &m->s_ascii, &m->lbl };
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
		*syms[i] = (int)pb_rva(b, *syms[i]);
	pb_free(b);
}

static struct pe *parse_ok(const struct img *m)
{
	struct pe *pe = pe_parse(m->p, m->n);
	if (!pe)
		fail_msg("pe_parse: %s", err_msg());
	return pe;
}

static void t_roundtrip64(void **st)
{
	struct img m;
	build64(&m);
	struct pe *pe = parse_ok(&m);
	assert_true(pe->pe32plus);
	assert_int_equal(pe->machine, PE_MACHINE_AMD64);
	assert_int_equal(pe->subsystem, PE_SUBSYSTEM_NATIVE);
	assert_int_equal(pe->entry_rva, (uint32_t)m.f_main);
	assert_int_equal(pe->file_alignment, 0x200);
	assert_int_equal(pe->section_alignment, 0x1000);
	assert_true(pe_checksum_valid(pe));
	/* sections: code first in order of first use (PAGELK before .text) */
	assert_string_equal(pe->sections[0].name, "PAGELK");
	assert_string_equal(pe->sections[1].name, ".text");
	/* exports: names sorted, ordinals from base 1 */
	assert_int_equal(pe->nexports, 3);
	assert_int_equal(pe_export_find(pe, "Main")->rva, (uint32_t)m.f_main);
	assert_int_equal(pe_export_find(pe, "AliasOfMain")->rva, (uint32_t)m.f_main);
	assert_int_equal(pe_export_find(pe, "Helper")->rva, (uint32_t)m.f_helper);
	assert_int_equal(pe_export_find(pe, "AliasOfMain")->ordinal, 1);
	assert_null(pe_export_find(pe, "main"));
	/* imports */
	assert_int_equal(pe->nimports, 3);
	const struct pe_import *im = pe_import_find(pe, "ntoskrnl", "KeBugCheckEx");
	assert_non_null(im);
	assert_int_equal(im->iat_rva, (uint32_t)m.slot_kbc);
	assert_non_null(pe_import_find(pe, "NTOSKRNL.EXE", "KeBugCheckEx"));
	assert_null(pe_import_find(pe, "ntoskrnl.dll", "KeBugCheckEx"));
	assert_null(pe_import_find(pe, "hal", "KeBugCheckEx"));
	assert_int_equal(pe_import_find(pe, "hal", "KeStallExecutionProcessor")->iat_rva, (uint32_t)m.slot_other);
	bool saw_ord = false;
	for (size_t i = 0; i < pe->nimports; i++)
		if (!pe->imports[i].name) {
			assert_int_equal(pe->imports[i].ordinal, 42);
			assert_int_equal(pe->imports[i].iat_rva, (uint32_t)m.slot_ord);
			saw_ord = true;
		}
	assert_true(saw_ord);
	/* the code's rel32 displacements point where the parser says */
	uint8_t *code = pe_ptr(pe, (uint32_t)m.f_main, 32);
	assert_non_null(code);
	assert_int_equal((uint32_t)m.f_main + 11 + get_le32(code + 7), (uint32_t)m.s_utf16);
	assert_int_equal((uint32_t)m.f_main + 17 + get_le32(code + 13), im->iat_rva);
	assert_int_equal((uint32_t)m.f_main + 22 + get_le32(code + 18), (uint32_t)m.f_helper);
	assert_int_equal((uint32_t)m.lbl + 6 + get_le32(code + 24), (uint32_t)m.chunk);
	/* .pdata: 4 entries, sorted, the chunk chained to Main */
	assert_int_equal(pe->nfunctions, 4);
	for (size_t i = 1; i < pe->nfunctions; i++)
		assert_true(pe->functions[i - 1].end <= pe->functions[i].begin);
	const struct pe_function *f = pe_function_at(pe, (uint32_t)m.chunk + 1);
	assert_non_null(f);
	assert_int_equal(f->begin, (uint32_t)m.chunk);
	assert_int_equal(f->primary_begin, (uint32_t)m.f_main);
	f = pe_function_at(pe, (uint32_t)m.f_main);
	assert_int_equal(f->primary_begin, (uint32_t)m.f_main);
	assert_int_equal(f->end - f->begin, 33);
	assert_null(pe_function_at(pe, f->end));        /* int3 padding */
	assert_null(pe_function_at(pe, 0x10));
	const struct pe_function *ch[4];
	assert_int_equal(pe_function_chunks(pe, (uint32_t)m.chunk, ch, 4), 2);
	assert_int_equal(ch[0]->begin, (uint32_t)m.f_main);
	assert_int_equal(ch[1]->begin, (uint32_t)m.chunk);
	assert_int_equal(pe_function_chunks(pe, (uint32_t)m.chunk, ch, 1), 1);
	assert_int_equal(pe_function_chunks(pe, (uint32_t)m.f_leaf, ch, 4), 1);
	assert_int_equal(pe_function_chunks(pe, 0x10, ch, 4), 0);
	/* UNWIND_INFO of Leaf: UWOP_ALLOC_LARGE, size/8 in the next slot */
	const uint8_t *ui = pe_ptr(pe, pe_function_at(pe, (uint32_t)m.f_leaf)->unwind, 8);
	assert_int_equal(ui[0], 1);
	assert_int_equal(ui[2], 2);
	assert_int_equal(ui[5] & 0xf, 1);
	assert_int_equal(get_le16(ui + 6), 0x200 / 8);
	/* strings */
	uint32_t rv[4];
	assert_int_equal(pe_find_utf16(pe, "Kernel-PhysicalMemoryAddAllowed", rv, 4), 2);
	assert_int_equal(rv[0], (uint32_t)m.s_utf16);
	assert_int_equal(rv[1], (uint32_t)m.s_utf16b);
	assert_int_equal(pe_find_utf16(pe, "Kernel-PhysicalMemoryAddAllowed", rv, 1), 2);   /* counts all */
	assert_int_equal(pe_find_utf16(pe, "Kernel-Physical", rv, 4), 0);   /* NUL-terminated match only */
	assert_int_equal(pe_find_utf16(pe, "ascii only", rv, 4), 0);
	assert_string_equal((char *)pe_ptr(pe, (uint32_t)m.s_ascii, 11), "ascii only");
	/* address translation */
	size_t off;
	uint32_t rva;
	assert_int_equal(pe_rva_to_off(pe, (uint32_t)m.f_main, 4, &off), 0);
	assert_int_equal(pe_off_to_rva(pe, off, &rva), 0);
	assert_int_equal(rva, (uint32_t)m.f_main);
	const struct pe_section *text = pe_section_for_rva(pe, (uint32_t)m.f_main);
	assert_string_equal(text->name, ".text");
	/* past the raw data (but inside the section's alignment) is not in the file */
	assert_int_equal(pe_rva_to_off(pe, text->va + text->raw_size, 1, &off), -1);
	assert_int_equal(pe_rva_to_off(pe, text->va + text->raw_size - 2, 4, &off), -1);
	assert_null(pe_ptr(pe, 0xfffffff0, 0x20));
	assert_int_equal(pe_off_to_rva(pe, 0x10, &rva), -1);   /* headers: in no section */
	assert_int_equal(pe_off_to_rva(pe, m.n + 5, &rva), -1);
	/* version */
	char buf[40];
	assert_true(pe->version.present);
	assert_string_equal(pe_version_str(pe, buf, sizeof buf), "6.1.7601.17514");
	assert_int_equal(pe->version.pv[3], 65535);
	assert_string_equal(pe->version.original_filename, "ntoskrnl.exe");
	assert_string_equal(pe->version.internal_name, "ntkrnlmp.exe");
	assert_string_equal(pe->version.file_version_str, "6.1.7601.17514 (fixture.091022-0000)");
	/* security directory: a file offset, 8-aligned, at the end */
	assert_int_equal(pe->security_off % 8, 0);
	assert_int_equal(pe->security_size, 104);
	assert_int_equal(pe->security_off + pe->security_size, m.n);
	pe_free(pe);
	free(m.p);
	(void)st;
}

static void t_roundtrip32(void **st)
{
	struct pebuild *b = pb_new(PE_MACHINE_I386, 3);
	int slot = pb_import(b, "KERNEL32.dll", "ExitProcess");
	int f = pb_func_begin(b, ".text", "main", 0);
	pb_emit(b, "\x6a\x00\xff\x15", 4);
	pb_emit_abs32(b, slot);
	pb_func_end(b);
	pb_export(b, "main", f);
	pb_set_entry(b, f);
	uint8_t *p;
	size_t n;
	pb_finish(b, &p, &n);
	uint32_t slot_rva = pb_rva(b, slot), f_rva = pb_rva(b, f);
	pb_free(b);
	struct pe *pe = pe_parse(p, n);
	assert_non_null(pe);
	assert_false(pe->pe32plus);
	assert_int_equal(pe->machine, PE_MACHINE_I386);
	assert_int_equal(pe->image_base, 0x400000);
	assert_int_equal(pe->nfunctions, 0);          /* no .pdata on x86 */
	assert_int_equal(pe_import_find(pe, "kernel32", "ExitProcess")->iat_rva, slot_rva);
	assert_int_equal(get_le32(pe_ptr(pe, f_rva + 4, 4)), 0x400000 + slot_rva);
	assert_int_equal(pe_export_find(pe, "main")->rva, f_rva);
	assert_false(pe->version.present);
	char buf[8];
	assert_string_equal(pe_version_str(pe, buf, sizeof buf), "");
	assert_true(pe_checksum_valid(pe));
	assert_int_equal(pe->checksum_off, 0x80 + 24 + 64);
	pe_free(pe);
	free(p);
	(void)st;
}

/* Known values worked out by hand from the algorithm (imagehlp
 * CheckSumMappedFile: 16-bit words with end-around carry, CheckSum field
 * as zero, plus the length). */
static void t_checksum_known(void **st)
{
	const uint8_t a[5] = { 1, 2, 3, 4, 5 };
	/* 0x0201 + 0x0403 + 0x0005 = 0x0609, + 5 */
	assert_int_equal(pe_checksum_compute(a, 5, 100), 0x060e);
	const uint8_t c[4] = { 0xff, 0xff, 0xff, 0xff };
	/* 0xffff + 0xffff = 0x1fffe -> 0xffff, + 4 */
	assert_int_equal(pe_checksum_compute(c, 4, 100), 0x10003);
	/* the field counts as zero: only 0x0005 is left, + 5 */
	assert_int_equal(pe_checksum_compute(a, 5, 0), 0x000a);
	/* field at an odd offset: bytes 1..4 zero -> 0x0001, + 5 */
	assert_int_equal(pe_checksum_compute(a, 5, 1), 0x0006);
	assert_int_equal(pe_checksum_compute(a, 0, 0), 0);

	struct img m;
	build64(&m);
	struct pe *pe = parse_ok(&m);
	uint32_t good = pe->checksum;
	pe->data[pe->len - 1] ^= 0x55;               /* inside the dummy certificate */
	assert_false(pe_checksum_valid(pe));
	pe_checksum_update(pe);
	assert_true(pe_checksum_valid(pe));
	assert_int_not_equal(pe->checksum, good);
	assert_int_equal(get_le32(pe->data + pe->checksum_off), pe->checksum);
	pe->data[pe->len - 1] ^= 0x55;
	pe_checksum_update(pe);
	assert_int_equal(pe->checksum, good);
	/* the stored checksum never influences the computed one */
	put_le32(pe->data + pe->checksum_off, 0xdeadbeef);
	assert_int_equal(pe_checksum_compute(pe->data, pe->len, pe->checksum_off), good);
	pe_free(pe);
	free(m.p);
	(void)st;
}

/* ---- malformed inputs ---- */

static size_t opt_off(const uint8_t *p) { return get_le32(p + 0x3c) + 24; }
static size_t dir_off(const uint8_t *p, int i) { return opt_off(p) + 112 + 8 * (size_t)i; }
static size_t sect_off(const uint8_t *p, int i) { return opt_off(p) + 240 + 40 * (size_t)i; }

static void expect_reject(const uint8_t *p, size_t n, const char *needle)
{
	err_clear();
	struct pe *pe = pe_parse(p, n);
	if (pe) {
		pe_free(pe);
		fail_msg("accepted a malformed image (expected '%s')", needle);
	}
	assert_int_equal(err_code(), E_FORMAT);
	if (!strstr(err_msg(), needle))
		fail_msg("reason '%s' does not mention '%s'", err_msg(), needle);
}

static void t_bad_headers(void **st)
{
	struct img m;
	build64(&m);
	uint8_t *c = xmalloc(m.n);
	expect_reject(m.p, 10, "DOS header");
	expect_reject(m.p, 0, "DOS header");
	memcpy(c, m.p, m.n); c[0] = 'X';
	expect_reject(c, m.n, "MZ");
	memcpy(c, m.p, m.n); put_le32(c + 0x3c, (uint32_t)m.n - 8);
	expect_reject(c, m.n, "e_lfanew");
	memcpy(c, m.p, m.n); put_le32(c + 0x3c, 0xfffffff0);
	expect_reject(c, m.n, "e_lfanew");
	memcpy(c, m.p, m.n); c[0x80] = 'X';
	expect_reject(c, m.n, "PE signature");
	memcpy(c, m.p, m.n); put_le16(c + 0x80 + 6, 0xffff);        /* NumberOfSections */
	expect_reject(c, m.n, "NumberOfSections");
	memcpy(c, m.p, m.n); put_le16(c + 0x80 + 6, 60);           /* table past the headers: garbage sections */
	err_clear();
	struct pe *pe = pe_parse(c, m.n);    /* either way, no out-of-bounds read */
	pe_free(pe);
	expect_reject(m.p, 0x80 + 24 + 50, "optional header");
	memcpy(c, m.p, m.n); put_le16(c + opt_off(c), 0x107);
	expect_reject(c, m.n, "magic");
	memcpy(c, m.p, m.n); put_le16(c + 0x80 + 20, 16);          /* SizeOfOptionalHeader */
	expect_reject(c, m.n, "SizeOfOptionalHeader");
	memcpy(c, m.p, m.n); put_le32(c + sect_off(c, 2) + 16, 0x10000000);   /* section 3 SizeOfRawData */
	expect_reject(c, m.n, "section 3 (.rdata) raw data past end of file");
	memcpy(c, m.p, m.n); put_le32(c + sect_off(c, 0) + 20, 0xfffffe00);   /* PointerToRawData */
	expect_reject(c, m.n, "section 1 (PAGELK) raw data past end of file");
	memcpy(c, m.p, m.n); put_le32(c + sect_off(c, 0) + 12, 0xfffff000);   /* VirtualAddress + size wraps */
	put_le32(c + sect_off(c, 0) + 8, 0x2000);
	expect_reject(c, m.n, "past 4 GiB");
	/* NumberOfRvaAndSizes huge: bounded by 16 and the header, still parses */
	memcpy(c, m.p, m.n); put_le32(c + opt_off(c) + 108, 0xffffffff);
	pe = pe_parse(c, m.n);
	assert_non_null(pe);
	assert_int_equal(pe->nexports, 3);
	pe_free(pe);
	/* NumberOfRvaAndSizes 2: no resource/exception/security directories */
	memcpy(c, m.p, m.n); put_le32(c + opt_off(c) + 108, 2);
	pe = pe_parse(c, m.n);
	assert_non_null(pe);
	assert_int_equal(pe->nfunctions, 0);
	assert_false(pe->version.present);
	assert_int_equal(pe->security_off, 0);
	assert_int_equal(pe->nimports, 3);
	pe_free(pe);
	free(c);
	free(m.p);
	(void)st;
}

/* Overwrites, from the file offset of string s to the end of its section's
 * raw data, every byte with 'A': the string loses its NUL. */
static void unterminate(uint8_t *c, const struct pe *pe, const char *s)
{
	for (size_t i = 0; i < pe->nsections; i++) {
		const struct pe_section *sec = &pe->sections[i];
		uint8_t *base = c + sec->raw_off;
		for (size_t o = 0; o + strlen(s) < sec->raw_size; o++)
			if (!memcmp(base + o, s, strlen(s) + 1)) {
				memset(base + o, 'A', sec->raw_size - o);
				return;
			}
	}
	fail_msg("string %s not found", s);
}

static void t_bad_directories(void **st)
{
	struct img m;
	build64(&m);
	struct pe *pe = parse_ok(&m);
	uint8_t *c = xmalloc(m.n);
	/* export / import directories pointing outside the image */
	memcpy(c, m.p, m.n); put_le32(c + dir_off(c, 0), 0x7fff0000);
	expect_reject(c, m.n, "export directory");
	memcpy(c, m.p, m.n); put_le32(c + dir_off(c, 1), 0x7fff0000);
	expect_reject(c, m.n, "import descriptor 0");
	/* export tables outside / counts that cannot fit */
	uint32_t ed = get_le32(m.p + dir_off(m.p, 0));
	size_t ed_off;
	assert_int_equal(pe_rva_to_off(pe, ed, 40, &ed_off), 0);
	memcpy(c, m.p, m.n); put_le32(c + ed_off + 20, 0x40000000);
	expect_reject(c, m.n, "cannot fit");
	memcpy(c, m.p, m.n); put_le32(c + ed_off + 24, 0xffffffff);
	expect_reject(c, m.n, "cannot fit");
	memcpy(c, m.p, m.n); put_le32(c + ed_off + 32, 0x7ffffff0);
	expect_reject(c, m.n, "outside the image");
	memcpy(c, m.p, m.n); put_le16(c + ed_off + 40 + 3 * 4 * 2, 77);   /* ordinal index past the EAT */
	expect_reject(c, m.n, "ordinal index");
	/* unterminated names: the last export name, the last import name */
	memcpy(c, m.p, m.n); unterminate(c, pe, "Main");
	expect_reject(c, m.n, "unterminated");
	memcpy(c, m.p, m.n); unterminate(c, pe, "ntoskrnl.exe");
	expect_reject(c, m.n, "unterminated");
	/* garbage after the import descriptors (lookup tables, hint/name
	 * entries, DLL names all non-zero): rejected, not followed */
	uint32_t idd = get_le32(m.p + dir_off(m.p, 1));
	size_t id_off;
	assert_int_equal(pe_rva_to_off(pe, idd, 20, &id_off), 0);
	const struct pe_section *isec = pe_section_for_rva(pe, idd);
	memcpy(c, m.p, m.n);
	memset(c + id_off + 60, 0x41, isec->raw_off + isec->raw_size - id_off - 60);
	expect_reject(c, m.n, "");
	/* a descriptor without lookup and address tables */
	memcpy(c, m.p, m.n); put_le32(c + id_off, 0); put_le32(c + id_off + 16, 0);
	expect_reject(c, m.n, "no lookup table");
	/* a forwarder export (RVA inside the export directory) is skipped */
	memcpy(c, m.p, m.n);
	put_le32(c + ed_off + 40, ed + 8);
	struct pe *pf = pe_parse(c, m.n);
	assert_non_null(pf);
	assert_int_equal(pf->nexports, 2);
	pe_free(pf);
	/* .pdata count overflow / outside */
	memcpy(c, m.p, m.n); put_le32(c + dir_off(c, 3) + 4, 0xfffffff0);
	expect_reject(c, m.n, "exception directory");
	memcpy(c, m.p, m.n); put_le32(c + dir_off(c, 3), 0xfffffff0);
	expect_reject(c, m.n, "exception directory");
	/* .pdata entry with end before begin, unwind info outside */
	uint32_t pd = get_le32(m.p + dir_off(m.p, 3));
	size_t pd_off;
	assert_int_equal(pe_rva_to_off(pe, pd, 12, &pd_off), 0);
	memcpy(c, m.p, m.n); put_le32(c + pd_off + 4, 1);
	expect_reject(c, m.n, "not after begin");
	memcpy(c, m.p, m.n); put_le32(c + pd_off + 8, 0x7ffffff0);
	expect_reject(c, m.n, "outside the image");
	/* chained unwind loop: the chunk's chained RUNTIME_FUNCTION names the
	 * chunk itself */
	const struct pe_function *chunk = pe_function_at(pe, (uint32_t)m.chunk);
	size_t cu_off;
	assert_int_equal(pe_rva_to_off(pe, chunk->unwind, 16, &cu_off), 0);
	assert_int_equal(m.p[cu_off], 1 | (4 << 3));
	memcpy(c, m.p, m.n);
	put_le32(c + cu_off + 4, chunk->begin);
	put_le32(c + cu_off + 8, chunk->end);
	put_le32(c + cu_off + 12, chunk->unwind);
	expect_reject(c, m.n, "deeper than");
	/* indirect entry (UnwindData bit 0) pointing at itself */
	memcpy(c, m.p, m.n);
	for (size_t i = 0; i < pe->nfunctions; i++)
		if (get_le32(c + pd_off + 12 * i) == chunk->begin)
			put_le32(c + pd_off + 12 * i + 8, pd + 12 * (uint32_t)i + 1);
	expect_reject(c, m.n, "deeper than");
	/* chained info cut off by the end of the section's raw data */
	memcpy(c, m.p, m.n);
	{
		size_t pe_end = 0;
		for (size_t i = 0; i < pe->nfunctions; i++)
			if (get_le32(c + pd_off + 12 * i) == chunk->begin) {
				const struct pe_section *rs = pe_section_for_rva(pe, chunk->unwind);
				/* the last 4 bytes of .rdata (VirtualSize < SizeOfRawData here) */
				uint32_t last = rs->va + (rs->vsize < rs->raw_size ? rs->vsize : rs->raw_size) - 4;
				size_t lo;
				assert_int_equal(pe_rva_to_off(pe, last, 4, &lo), 0);
				c[lo] = 1 | (4 << 3);
				c[lo + 2] = 0;
				put_le32(c + pd_off + 12 * i + 8, last);
				pe_end = 1;
			}
		assert_int_equal(pe_end, 1);
	}
	expect_reject(c, m.n, "chained unwind info");
	pe_free(pe);
	free(c);
	free(m.p);
	(void)st;
}

static void t_bad_resources(void **st)
{
	struct img m;
	build64(&m);
	struct pe *pe = parse_ok(&m);
	uint32_t rd = get_le32(m.p + dir_off(m.p, 2));
	size_t r;
	assert_int_equal(pe_rva_to_off(pe, rd, 64, &r), 0);
	uint8_t *c = xmalloc(m.n);
	struct pe *q;
	/* the type directory's entry points back at the root: a loop */
	memcpy(c, m.p, m.n); put_le32(c + r + 20, 0x80000000u);
	q = pe_parse(c, m.n);
	assert_non_null(q);
	assert_false(q->version.present);
	pe_free(q);
	/* the language level points at a directory instead of data */
	memcpy(c, m.p, m.n); put_le32(c + r + 24 * 2 + 20, 0x80000000u | 24);
	q = pe_parse(c, m.n);
	assert_non_null(q);
	assert_false(q->version.present);
	pe_free(q);
	/* entry counts larger than the section */
	memcpy(c, m.p, m.n); put_le16(c + r + 14, 0xffff); put_le16(c + r + 12, 0xffff);
	q = pe_parse(c, m.n);
	assert_non_null(q);
	pe_free(q);
	/* the data entry's size past the end, its RVA outside */
	memcpy(c, m.p, m.n); put_le32(c + r + 72 + 4, 0x7fffffff);
	q = pe_parse(c, m.n);
	assert_non_null(q);
	assert_false(q->version.present);
	pe_free(q);
	/* VS_VERSION_INFO with a broken signature or lengths */
	uint32_t data_rva = get_le32(m.p + r + 72);
	size_t vo;
	assert_int_equal(pe_rva_to_off(pe, data_rva, 92, &vo), 0);
	memcpy(c, m.p, m.n); put_le32(c + vo + 40, 0x12345678);   /* dwSignature */
	q = pe_parse(c, m.n);
	assert_false(q->version.present);
	pe_free(q);
	memcpy(c, m.p, m.n); put_le16(c + vo, 0xffff);            /* wLength past the data */
	q = pe_parse(c, m.n);
	assert_false(q->version.present);
	pe_free(q);
	/* a child block whose length is 0 / odd: strings stop, version stays */
	memcpy(c, m.p, m.n); put_le16(c + vo + 92, 0);
	q = pe_parse(c, m.n);
	assert_true(q->version.present);
	assert_string_equal(q->version.original_filename, "");
	pe_free(q);
	pe_free(pe);
	free(c);
	free(m.p);
	(void)st;
}

/* Deterministic mutation: flip bytes of the valid image many times (the
 * headers and directories most), parse, run every lookup. Nothing may read
 * out of bounds (ASan) or fail to free. */
static void t_mutations(void **st)
{
	struct img m;
	build64(&m);
	uint8_t *c = xmalloc(m.n);
	uint32_t x = 1;
	int accepted = 0;
	for (int it = 0; it < 3000; it++) {
		memcpy(c, m.p, m.n);
		int k = 1 + it % 8;
		for (int j = 0; j < k; j++) {
			x = x * 1103515245u + 12345u;
			size_t pos = (x >> 8) % (it % 2 ? m.n : 0x400);
			x = x * 1103515245u + 12345u;
			c[pos] = (uint8_t)(x >> 16);
		}
		size_t n = it % 5 == 0 ? (x >> 4) % m.n : m.n;
		struct pe *pe = pe_parse(c, n);
		if (!pe)
			continue;
		accepted++;
		const struct pe_function *ch[4];
		uint32_t rv[2];
		for (size_t i = 0; i < pe->nexports; i++)
			pe_function_chunks(pe, pe->exports[i].rva, ch, 4);
		pe_find_utf16(pe, "Kernel-PhysicalMemoryAddAllowed", rv, 2);
		pe_import_find(pe, "ntoskrnl", "KeBugCheckEx");
		pe_checksum_update(pe);
		pe_free(pe);
	}
	assert_true(accepted > 100);   /* the mutations also reach the deeper parsers */
	free(c);
	free(m.p);
	(void)st;
}

int main(void)
{
	setenv("SOURCE_DATE_EPOCH", "1256169600", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_roundtrip64),
		cmocka_unit_test(t_roundtrip32),
		cmocka_unit_test(t_checksum_known),
		cmocka_unit_test(t_bad_headers),
		cmocka_unit_test(t_bad_directories),
		cmocka_unit_test(t_bad_resources),
		cmocka_unit_test(t_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
