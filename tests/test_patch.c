/* test_patch.c - the patch engine on images built by fixtures/pebuild +
 * fixtures/kernel_code: every catalog entry x every variant, checked
 * instruction by instruction with Zydis (decoded here, independently of
 * lib/x86.c), idempotence, length, untouched bytes, checksum (a second
 * implementation below), decoys, ambiguity, versions. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <Zydis/Zydis.h>

#include "kernel_code.h"
#include "patch.h"
#include "pe.h"
#include "pebuild.h"
#include "util.h"
#include "x86.h"

/* ---------------------------------------------------------------- images */

struct img {
	struct pebuild *b;
	uint8_t *data;
	size_t len;
};

/* Kernel code of `kind` with OriginalFilename ofn (NULL: the real file's:
 * a winload says osloader.exe). */
static void build_named(struct img *im, const char *kind, const char *variant, const char *ver, const char *ofn)
{
	uint16_t v[4] = { 0 };
	sscanf(ver, "%hu.%hu.%hu.%hu", &v[0], &v[1], &v[2], &v[3]);
	bool winload = !strcmp(kind, "winload");
	const char *fname = ofn ? ofn : !strcmp(kind, "ntoskrnl") ? "ntoskrnl.exe" : !strcmp(kind, "hal") ? "hal.dll"
			    : !strcmp(kind, "acpi") ? "acpi.sys" : "osloader.exe";
	im->b = pb_new(PE_MACHINE_AMD64, winload ? PE_SUBSYSTEM_WINDOWS_BOOT_APPLICATION : PE_SUBSYSTEM_NATIVE);
	struct pb_version pv = {
		.file = { v[0], v[1], v[2], v[3] }, .product = { v[0], v[1], v[2], v[3] },
		.file_type = 3, .company = "Microsoft Corporation", .description = "test",
		.internal_name = fname, .original_filename = fname,
	};
	pb_set_version(im->b, &pv);
	assert_int_equal(kernel_code_add(im->b, kind, variant, v), 0);
	pb_set_security(im->b, 0x100);
	pb_finish(im->b, &im->data, &im->len);
}

static void build(struct img *im, const char *kind, const char *variant, const char *ver)
{
	build_named(im, kind, variant, ver, NULL);
}

static void img_free(struct img *im)
{
	pb_free(im->b);
	free(im->data);
}

static uint32_t sym_rva(const struct img *im, const char *name)
{
	int s = pb_sym_find(im->b, name);
	assert_true(s >= 0);
	return pb_rva(im->b, s);
}

/* Second checksum implementation (imagehlp CheckSumMappedFile, as
 * described in the PE/COFF spec's optional header CheckSum field): 16-bit
 * word sum with carries folded, CheckSum field skipped, plus file length. */
static uint32_t checksum2(const uint8_t *p, size_t len, size_t cs_off)
{
	uint64_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2) {
		if (i == cs_off || i == cs_off + 2)
			continue;
		sum += (uint32_t)p[i] | ((uint32_t)p[i + 1] << 8);
		sum = (sum & 0xFFFF) + (sum >> 16);
	}
	if (len & 1) {
		sum += p[len - 1];
		sum = (sum & 0xFFFF) + (sum >> 16);
	}
	sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint32_t)(sum + len);
}

/* Zydis, here, without lib/x86.c: "mnemonic operands; ..." */
static void disasm(const uint8_t *p, size_t len, uint64_t rva, char *out, size_t n)
{
	ZydisDecoder d;
	ZydisFormatter f;
	ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	ZydisFormatterInit(&f, ZYDIS_FORMATTER_STYLE_INTEL);
	size_t used = 0;
	out[0] = 0;
	for (size_t off = 0; off < len;) {
		ZydisDecodedInstruction in;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
		char one[96];
		assert_true(ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, p + off, len - off, &in, ops)));
		ZydisFormatterFormatInstruction(&f, &in, ops, in.operand_count_visible, one, sizeof one, rva + off, NULL);
		used += (size_t)snprintf(out + used, n - used, "%s%s", off ? "; " : "", one);
		off += in.length;
	}
}

/* ------------------------------------------------------------- checking */

static const struct patch_result *result(const struct patch_report *r, const char *id)
{
	for (size_t i = 0; i < r->nresults; i++)
		if (!strcmp(r->results[i].id, id))
			return &r->results[i];
	return NULL;
}

/* Bytes outside the edits (and the checksum field) are the original ones;
 * inside, the edit's `after`. */
static void check_only_edits_changed(const uint8_t *orig, const struct pe *pe, const struct patch_report *r)
{
	uint8_t *mask = calloc(1, pe->len);
	for (size_t i = 0; i < r->nresults; i++)
		for (size_t k = 0; k < r->results[i].nedits; k++) {
			const struct patch_edit *e = &r->results[i].edits[k];
			assert_true(e->file_off + e->len <= pe->len);
			assert_memory_equal(pe->data + e->file_off, e->after, e->len);
			memset(mask + e->file_off, 1, e->len);
		}
	memset(mask + pe->checksum_off, 1, 4);
	for (size_t i = 0; i < pe->len; i++)
		if (!mask[i] && orig[i] != pe->data[i])
			fail_msg("byte at file offset %#zx changed outside every reported edit", i);
	free(mask);
}

static void expect_asm(const struct patch_edit *e, const char *want)
{
	char got[1024];
	disasm(e->after, e->len, e->rva, got, sizeof got);
	if (strcmp(got, want))
		fail_msg("edit at %#x decodes to\n  %s\nwanted\n  %s", e->rva, got, want);
}

/* jcc short L -> jmp short L: same target. */
static void expect_jmp_same_target(const struct patch_edit *e)
{
	assert_int_equal(e->len, 2);
	assert_int_equal(e->after[0], 0xEB);
	assert_true(e->before[0] >= 0x70 && e->before[0] <= 0x7F);
	assert_int_equal(e->after[1], e->before[1]);
	char want[64];
	snprintf(want, sizeof want, "jmp 0x%016llX", (unsigned long long)(e->rva + 2 + (int8_t)e->before[1]));
	expect_asm(e, want);
}

static const char crash_asm[] =
	"mov r10, rdx; mov eax, ecx; mov edx, ecx; mov ecx, 0x40000100; shr rdx, 0x20; wrmsr; "
	"mov rdx, r10; mov rax, r10; shr rdx, 0x20; mov ecx, 0x40000101; wrmsr; "
	"mov rdx, r8; mov rax, r8; shr rdx, 0x20; mov ecx, 0x40000102; wrmsr; "
	"mov rdx, r9; mov rax, r9; shr rdx, 0x20; mov ecx, 0x40000103; wrmsr; "
	"mov rdx, [rsp+0x28]; mov ecx, 0x40000104; mov rax, rdx; shr rdx, 0x20; wrmsr; "
	"xor eax, eax; mov edx, 0x80000000; mov ecx, 0x40000105; wrmsr; cli; hlt; ret 0x00";

struct variant_regs {
	const char *variant;
	const char *apic32, *tsc64;     /* timer-scale registers of that build */
};

/* Checks the intended instructions of every edit of one result. */
static void check_entry_bytes(const struct patch_result *res, const struct img *im, const char *variant)
{
	char want[1200];
	if (!strcmp(res->id, "crash-report")) {
		assert_int_equal(res->nedits, 1);
		assert_int_equal(res->edits[0].rva, sym_rva(im, "KeBugCheckEx"));
		snprintf(want, sizeof want, "%s", crash_asm);
		for (uint32_t i = 107; i < res->edits[0].len; i++)
			strcat(want, "; int3");
		expect_asm(&res->edits[0], want);
		/* the article's 107 bytes, first and last */
		assert_memory_equal(res->edits[0].after, "\x49\x89\xD2\x89\xC8", 5);
		assert_memory_equal(res->edits[0].after + 102, "\xFA\xF4\xC2\x00\x00", 5);
	} else if (!strcmp(res->id, "dynamic-partitioning") || !strcmp(res->id, "pcat-compat")) {
		assert_int_equal(res->nedits, !strcmp(res->id, "pcat-compat") ? 1 : 2);
		for (size_t k = 0; k < res->nedits; k++)
			expect_jmp_same_target(&res->edits[k]);
	} else if (!strcmp(res->id, "timer-scale")) {
		bool w7 = !strcmp(variant, "win7-sp1");
		assert_int_equal(res->nedits, 6);
		expect_jmp_same_target(&res->edits[0]);
		for (size_t k = 1; k <= 4; k++) {
			assert_true(res->edits[k].before[0] == 0x78 || res->edits[k].before[0] == 0x79);
			expect_asm(&res->edits[k], "nop");
			assert_int_equal(res->edits[k].len, 2);
		}
		snprintf(want, sizeof want,
			 "mov ecx, 0x40000023; rdmsr; mov %s, eax; mov ecx, 0x40000022; rdmsr; shl rdx, 0x20; "
			 "or rax, rdx; mov %s, rax",
			 w7 ? "esi" : "edi", w7 ? "r10" : "r9");
		expect_asm(&res->edits[5], want);
		if (!w7) /* the article's replacement bytes, exactly (its mov edi, eax is 89 C7) */
			assert_memory_equal(res->edits[5].after,
					    "\xB9\x23\x00\x00\x40\x0F\x32\x89\xC7\xB9\x22\x00\x00\x40\x0F\x32\x48\xC1\xE2\x20",
					    20);
	} else if (!strcmp(res->id, "timer-source")) {
		assert_int_equal(res->nedits, 1);
		expect_asm(&res->edits[0], "mov eax, 0x01");
	} else if (!strcmp(res->id, "acpi-mode")) {
		assert_int_equal(res->nedits, 1);
		assert_int_equal(res->edits[0].len, 9);
		expect_asm(&res->edits[0], "nop; nop; nop; nop; nop; nop; nop; nop; nop");
		assert_int_equal(res->edits[0].before[0], 0xE8);
		assert_memory_equal(res->edits[0].before + 5, "\xA8\x01\x74", 3);
	} else if (!strcmp(res->id, "loader-integrity")) {
		assert_int_equal(res->nedits, 1);
		assert_int_equal(res->edits[0].rva, sym_rva(im, "ImgpValidateImageHash"));
		snprintf(want, sizeof want, "xor eax, eax; ret");
		for (uint32_t i = 3; i < res->edits[0].len; i++)
			strcat(want, "; int3");
		expect_asm(&res->edits[0], want);
	} else {
		fail_msg("untested catalog entry %s", res->id);
	}
}

/* The function each entry must land in (decoys elsewhere must not). */
static const char *site_function(const char *id)
{
	static const struct { const char *id, *fn; } m[] = {
		{ "crash-report", "KeBugCheckEx" },
		{ "dynamic-partitioning", "InitializeDynamicPartitioningPolicy" },
		{ "pcat-compat", "HalpInitMpInfo" },
		{ "timer-scale", "HalpScaleTimers" },
		{ "timer-source", "HalInitSystem" },
		{ "acpi-mode", "ACPIEnableEnterACPIMode" },
		{ "loader-integrity", "ImgpValidateImageHash" },
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		if (!strcmp(m[i].id, id))
			return m[i].fn;
	return NULL;
}

static const char *const kinds[] = { "ntoskrnl", "hal", "acpi", "winload" };
static const char *const good_variants[] = { "vista-sp2", "win7-sp1", "decoy" };

/* Every entry x every variant: applied (forced to 6.0 so timer-source is in),
 * intended bytes, only those bytes, checksum, then idempotent. */
static void apply_and_check(const char *kind, const char *variant, unsigned force, const char *ver)
{
	struct img im;
	build(&im, kind, variant, ver);
	struct pe *pe = pe_parse(im.data, im.len);
	assert_non_null(pe);
	enum pe_kind k = patch_detect_kind(pe);
	assert_string_equal(pe_kind_name(k), kind);
	struct patch_opts o = { .force_version = force };
	struct patch_report *r = calloc(1, sizeof *r);
	int rc = patch_apply(pe, k, &o, r);
	if (rc)
		fail_msg("%s/%s: %s", kind, variant, err_msg());
	assert_true(r->nresults > 0);
	size_t napplied = 0;
	for (size_t i = 0; i < r->nresults; i++) {
		const struct patch_result *res = &r->results[i];
		if (res->status == PATCH_NOT_APPLICABLE) {
			assert_true(!strcmp(res->id, "timer-source") && (force ? force : 0x601) == 0x601);
			continue;
		}
		if (res->status != PATCH_APPLIED)
			fail_msg("%s/%s: %s is %s (%s)", kind, variant, res->id, patch_status_name(res->status), res->message);
		napplied++;
		check_entry_bytes(res, &im, variant);
		uint32_t fn = sym_rva(&im, site_function(res->id));
		assert_int_equal(res->func_begin, fn);
		for (size_t e = 0; e < res->nedits; e++) { /* edit inside its function's chunks */
			const struct pe_function *pf = pe_function_at(pe, res->edits[e].rva);
			assert_non_null(pf);
			assert_int_equal(pf->primary_begin, fn);
			assert_true(res->edits[e].rva + res->edits[e].len <= pf->end);
		}
	}
	assert_true(napplied > 0);
	assert_true(r->checksum_updated);
	assert_int_equal(pe->len, im.len);
	check_only_edits_changed(im.data, pe, r);
	assert_true(pe_checksum_valid(pe));
	assert_int_equal(get_le32(pe->data + pe->checksum_off), checksum2(pe->data, pe->len, pe->checksum_off));

	/* second run: already applied, zero bytes changed */
	uint8_t *once = malloc(pe->len);
	memcpy(once, pe->data, pe->len);
	struct pe *pe2 = pe_parse(once, pe->len);
	assert_non_null(pe2);
	struct patch_report *r2 = calloc(1, sizeof *r2);
	assert_int_equal(patch_apply(pe2, k, &o, r2), 0);
	for (size_t i = 0; i < r2->nresults; i++)
		if (r->results[i].status == PATCH_APPLIED) {
			assert_int_equal(r2->results[i].status, PATCH_ALREADY_APPLIED);
			assert_int_equal(r2->results[i].nedits, r->results[i].nedits);
			for (size_t e = 0; e < r2->results[i].nedits; e++) {
				/* the same range and bytes as applying wrote (issue 9 item 10) */
				const struct patch_edit *a = &r->results[i].edits[e], *b = &r2->results[i].edits[e];
				assert_int_equal(b->rva, a->rva);
				assert_int_equal(b->file_off, a->file_off);
				if (b->len != a->len)
					fail_msg("%s: already-applied edit at %#x is %u bytes, applying wrote %u",
						 r->results[i].id, a->rva, b->len, a->len);
				assert_memory_equal(b->before, a->after, a->len);
				assert_memory_equal(b->after, a->after, a->len);
			}
		}
	assert_false(r2->checksum_updated);
	assert_memory_equal(pe2->data, once, pe->len);
	free(once);
	free(r2);
	pe_free(pe2);
	free(r);
	pe_free(pe);
	img_free(&im);
}

static void test_all_entries_all_variants(void **state)
{
	for (size_t k = 0; k < 4; k++)
		for (size_t v = 0; v < 3; v++) {
			apply_and_check(kinds[k], good_variants[v], 0x600, "6.1.7601.17514");
			apply_and_check(kinds[k], good_variants[v], 0, !strcmp(good_variants[v], "vista-sp2")
								       ? "6.0.6002.18005" : "6.1.7601.17514");
		}
}

/* The win7-sp1 kernel as mkpe makes it: every applicable patch applies. */
static void test_win7_kernel_unforced(void **state)
{
	apply_and_check("ntoskrnl", "win7-sp1", 0, "6.1.7601.17514");
	apply_and_check("hal", "win7-sp1", 0, "6.1.7601.17514");
}

static void test_ambiguous(void **state)
{
	static const struct { const char *kind, *id, *fn; } cases[] = {
		{ "ntoskrnl", "dynamic-partitioning", "InitializeDynamicPartitioningPolicy" },
		{ "hal", "pcat-compat", "HalpInitMpInfo" },
		{ "hal", "timer-scale", "HalpScaleTimers" },
		{ "acpi", "acpi-mode", "ACPIEnableEnterACPIMode" },
		{ "winload", "loader-integrity", "ImgpValidateImageHash" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct img im;
		build(&im, cases[i].kind, "ambiguous", "6.1.7601.17514");
		struct pe *pe = pe_parse(im.data, im.len);
		assert_non_null(pe);
		struct patch_report *r = calloc(1, sizeof *r);
		struct patch_opts o = { .only = cases[i].id };
		assert_int_equal(patch_apply(pe, patch_detect_kind(pe), &o, r), -1);
		assert_int_equal(err_code(), E_AMBIGUOUS);
		const struct patch_result *res = result(r, cases[i].id);
		assert_non_null(res);
		assert_int_equal(res->status, PATCH_AMBIGUOUS);
		char a[32], b[32], copy[80];
		snprintf(copy, sizeof copy, "%sCopy", cases[i].fn);
		snprintf(a, sizeof a, "%#x", sym_rva(&im, cases[i].fn));
		snprintf(b, sizeof b, "%#x", sym_rva(&im, copy));
		assert_non_null(strstr(res->message, "ambiguous: 2 candidates"));
		assert_non_null(strstr(res->message, a));
		assert_non_null(strstr(res->message, b));
		assert_memory_equal(pe->data, im.data, im.len); /* nothing written */
		free(r);
		pe_free(pe);
		img_free(&im);
	}
}

static void test_versions(void **state)
{
	struct img im;
	build(&im, "hal", "win7-sp1", "6.1.7601.17514");
	struct pe *pe = pe_parse(im.data, im.len);
	struct patch_report *r = calloc(1, sizeof *r);
	struct patch_opts o = { .force_version = 0x602 };
	/* 6.2+: every entry not applicable, nothing written */
	assert_int_equal(patch_apply(pe, KIND_HAL, &o, r), 0);
	assert_int_equal(r->nresults, 3);
	for (size_t i = 0; i < r->nresults; i++)
		assert_int_equal(r->results[i].status, PATCH_NOT_APPLICABLE);
	assert_memory_equal(pe->data, im.data, im.len);
	/* 5.2: refused */
	o.force_version = 0x502;
	assert_int_equal(patch_apply(pe, KIND_HAL, &o, r), -1);
	assert_int_equal(err_code(), E_UNSUPPORTED);
	assert_non_null(strstr(err_msg(), "kernel 5.2 is Windows XP Professional x64 Edition or Windows Server "
					  "2003 / 2003 R2 x64: out of reach"));
	assert_string_equal(result(r, "pcat-compat")->message, err_msg());
	o.force_version = 0x501;
	assert_int_equal(patch_apply(pe, KIND_HAL, &o, r), -1);
	assert_non_null(strstr(err_msg(), "kernel 5.1 is Windows XP (32-bit)"));
	o.force_version = 0x500;
	assert_int_equal(patch_apply(pe, KIND_HAL, &o, r), -1);
	assert_non_null(strstr(err_msg(), "kernel 5.0 is Windows 2000"));
	assert_memory_equal(pe->data, im.data, im.len);
	/* 6.1 without forcing: timer-source is Vista only */
	o.force_version = 0;
	o.dry_run = true;
	assert_int_equal(patch_apply(pe, KIND_HAL, &o, r), 0);
	assert_int_equal(result(r, "timer-source")->status, PATCH_NOT_APPLICABLE);
	assert_int_equal(result(r, "pcat-compat")->status, PATCH_WOULD_APPLY);
	assert_int_equal(result(r, "timer-scale")->status, PATCH_WOULD_APPLY);
	assert_memory_equal(pe->data, im.data, im.len); /* dry run */
	assert_true(patch_catalog_applies(4, 0x600) && !patch_catalog_applies(4, 0x601));
	free(r);
	pe_free(pe);
	img_free(&im);
}

static void test_only_skip(void **state)
{
	struct img im;
	build(&im, "hal", "vista-sp2", "6.0.6002.18005");
	struct pe *pe = pe_parse(im.data, im.len);
	struct patch_report *r = calloc(1, sizeof *r);
	struct patch_opts o = { .only = "pcat-compat,timer-source" };
	assert_int_equal(patch_apply(pe, KIND_HAL, &o, r), 0);
	assert_int_equal(result(r, "pcat-compat")->status, PATCH_APPLIED);
	assert_int_equal(result(r, "timer-source")->status, PATCH_APPLIED);
	assert_int_equal(result(r, "timer-scale")->status, PATCH_NOT_APPLICABLE);
	struct patch_opts s = { .skip = "pcat-compat" };
	assert_int_equal(patch_apply(pe, KIND_HAL, &s, r), 0);
	assert_int_equal(result(r, "pcat-compat")->status, PATCH_NOT_APPLICABLE);
	assert_int_equal(result(r, "timer-source")->status, PATCH_ALREADY_APPLIED);
	assert_int_equal(result(r, "timer-scale")->status, PATCH_APPLIED);
	struct patch_opts bad = { .only = "no-such-patch" };
	assert_int_equal(patch_apply(pe, KIND_HAL, &bad, r), -1);
	assert_int_equal(err_code(), E_USAGE);
	free(r);
	pe_free(pe);
	img_free(&im);
}

/* A broken anchor: not found, named, nothing written; a half-applied
 * timer-scale: refused (all or none). */
static void test_not_found_and_partial(void **state)
{
	struct img im;
	build(&im, "hal", "vista-sp2", "6.0.6002.18005");
	uint8_t *copy = malloc(im.len);
	memcpy(copy, im.data, im.len);
	uint8_t *p = memmem(copy, im.len, "\x41\xF6\x44\x24\x28\x01", 6);
	assert_non_null(p);
	p[4] = 0x2C; /* test byte [r12+2Ch], 1: not the MADT flags */
	struct pe *pe = pe_parse(copy, im.len);
	struct patch_report *r = calloc(1, sizeof *r);
	assert_int_equal(patch_apply(pe, KIND_HAL, NULL, r), -1);
	assert_int_equal(err_code(), E_NOTFOUND);
	assert_non_null(strstr(err_msg(), "pcat-compat"));
	assert_int_equal(result(r, "pcat-compat")->status, PATCH_NOT_FOUND);
	assert_memory_equal(pe->data, copy, im.len);
	pe_free(pe);

	/* apply timer-scale, then undo its first edit by hand */
	pe = pe_parse(im.data, im.len);
	struct patch_opts o = { .only = "timer-scale" };
	assert_int_equal(patch_apply(pe, KIND_HAL, &o, r), 0);
	const struct patch_edit *e = &result(r, "timer-scale")->edits[0];
	pe->data[e->file_off] = e->before[0];
	assert_int_equal(patch_apply(pe, KIND_HAL, &o, r), -1);
	assert_non_null(strstr(result(r, "timer-scale")->message, "partially applied"));
	free(r);
	pe_free(pe);
	free(copy);
	img_free(&im);
}

static void test_detect_and_names(void **state)
{
	for (size_t k = 0; k < 4; k++) {
		struct img im;
		build(&im, kinds[k], "vista-sp2", "6.0.6002.18005");
		struct pe *pe = pe_parse(im.data, im.len);
		assert_string_equal(pe_kind_name(patch_detect_kind(pe)), kinds[k]);
		enum pe_kind parsed;
		assert_int_equal(pe_kind_parse(kinds[k], &parsed), 0);
		assert_int_equal(parsed, patch_detect_kind(pe));
		pe_free(pe);
		img_free(&im);
	}
	enum pe_kind x;
	assert_int_equal(pe_kind_parse("vmbus", &x), -1);
	assert_int_equal(patch_catalog_count(), 7);
	assert_string_equal(patch_status_name(PATCH_ALREADY_APPLIED), "already-applied");
}

/* x86 layer: register constants as the anchors need them. */
static void test_x86_regs(void **state)
{
	/* xor edi, edi; lea edx, [rdi+6]; mov ecx, 79h; mov dx, 70h; mov al, 0Ah */
	static const uint8_t code[] = { 0x33, 0xFF, 0x8D, 0x57, 0x06, 0xB9, 0x79, 0x00, 0x00, 0x00,
					0x66, 0xBA, 0x70, 0x00, 0xB0, 0x0A };
	ZydisDecoder d;
	ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	struct x86_regs r;
	x86_regs_reset(&r);
	for (size_t off = 0; off < sizeof code;) {
		struct x86_insn in;
		memset(&in, 0, sizeof in);
		assert_true(ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, code + off, sizeof code - off, &in.zi, in.op)));
		in.valid = true;
		in.len = in.zi.length;
		x86_regs_step(&r, &in);
		off += in.len;
	}
	uint64_t v;
	assert_true(x86_regs_get(&r, ZYDIS_REGISTER_RDI, &v) && v == 0);
	/* edx = 6 zero-extended, then dx = 70h over the low 16 bits: rdx = 70h */
	assert_true(x86_regs_get(&r, ZYDIS_REGISTER_RDX, &v) && v == 0x70);
	assert_true(x86_regs_get(&r, ZYDIS_REGISTER_DX, &v) && v == 0x70);
	assert_true(x86_regs_get(&r, ZYDIS_REGISTER_EDX, &v) && v == 0x70);
	assert_true(x86_regs_get(&r, ZYDIS_REGISTER_ECX, &v) && v == 0x79);
	assert_true(x86_regs_get(&r, ZYDIS_REGISTER_AL, &v) && v == 0x0A);
	assert_false(x86_regs_get(&r, ZYDIS_REGISTER_EAX, &v));
	/* encoder */
	uint8_t buf[16];
	size_t pos = 0;
	const struct x86_enc_op ops[] = { X86_R(ZYDIS_REGISTER_R9), X86_R(ZYDIS_REGISTER_RAX) };
	assert_int_equal(x86_encode(buf, sizeof buf, &pos, ZYDIS_MNEMONIC_MOV, 2, ops), 0);
	char text[64];
	disasm(buf, pos, 0, text, sizeof text);
	assert_string_equal(text, "mov r9, rax");
	assert_int_equal(x86_encode(buf, 2, &pos, ZYDIS_MNEMONIC_MOV, 2, ops), -1); /* does not fit */
}


/* ---- issue 9 items 9-11: which binary, tighter loader anchors, machines ---- */

/* A real winload says OriginalFilename osloader.exe: detected as winload
 * and patched; renamed copies (winload.efi) too. A boot manager or resume
 * loader with the loader's code is refused whatever --kind says, before
 * anything is looked at, and nothing is written. */
static void test_loader_identity(void **state)
{
	static const char *const loaders[] = { "osloader.exe", "OSLOADER.EXE", "winload.efi", "winload.exe" };
	for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++) {
		struct img im;
		build_named(&im, "winload", "win7-sp1", "6.1.7601.17514", loaders[i]);
		struct pe *pe = pe_parse(im.data, im.len);
		assert_non_null(pe);
		assert_string_equal(pe->version.original_filename, loaders[i]);
		assert_int_equal(patch_detect_kind(pe), KIND_WINLOAD);
		struct patch_report *r = calloc(1, sizeof *r);
		struct patch_opts o = { .dry_run = true };
		assert_int_equal(patch_apply(pe, patch_detect_kind(pe), &o, r), 0);
		assert_int_equal(result(r, "loader-integrity")->status, PATCH_WOULD_APPLY);
		free(r);
		pe_free(pe);
		img_free(&im);
	}
	static const struct { const char *ofn, *what; } others[] = {
		{ "bootmgr.exe", "the Windows Boot Manager" }, { "BOOTMGR.EXE", "the Windows Boot Manager" },
		{ "bootmgfw.efi", "the Windows Boot Manager" }, { "hiberrsm.exe", "the Windows resume loader" },
	};
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		struct img im;
		build_named(&im, "winload", "win7-sp1", "6.1.7601.17514", others[i].ofn);
		struct pe *pe = pe_parse(im.data, im.len);
		assert_non_null(pe);
		assert_int_equal(patch_detect_kind(pe), KIND_UNKNOWN);
		const enum pe_kind kinds_tried[] = { KIND_WINLOAD, KIND_UNKNOWN, KIND_HAL, KIND_NTOSKRNL };
		for (size_t k = 0; k < sizeof kinds_tried / sizeof kinds_tried[0]; k++) {
			struct patch_report *r = calloc(1, sizeof *r);
			assert_int_equal(patch_apply(pe, kinds_tried[k], NULL, r), -1);
			assert_int_equal(err_code(), E_FORMAT);
			assert_non_null(strstr(err_msg(), others[i].what));
			assert_non_null(strstr(err_msg(), others[i].ofn));
			assert_non_null(strstr(err_msg(), "not the OS loader"));
			assert_non_null(strstr(err_msg(), "image-hash check"));
			assert_true((strstr(err_msg(), "even with --kind winload") != NULL) == (kinds_tried[k] == KIND_WINLOAD));
			assert_int_equal(r->nresults, 0);
			assert_false(r->checksum_updated);
			free(r);
		}
		assert_memory_equal(pe->data, im.data, im.len);
		pe_free(pe);
		img_free(&im);
	}
}

/* The loader site must really return STATUS_INVALID_IMAGE_HASH after the
 * hash check: the Windows-10-shaped fixture (a `mov rax, rsp` function
 * with the mask, a test and 0C0000428h passed to a call) has no site even
 * forced to 6.1; taking any one anchor out of the true function (the
 * returned status, the test of the flags, the copy to eax) loses it. */
static void expect_loader_not_found(const uint8_t *data, size_t len, unsigned force, const char *why)
{
	struct pe *pe = pe_parse(data, len);
	assert_non_null(pe);
	struct patch_report *r = calloc(1, sizeof *r);
	struct patch_opts o = { .force_version = force };
	if (patch_apply(pe, KIND_WINLOAD, &o, r) != -1 || err_code() != E_NOTFOUND)
		fail_msg("%s: expected site not found, got %s (%s)", why,
			 patch_status_name(result(r, "loader-integrity")->status), err_msg());
	assert_non_null(strstr(err_msg(), "loader-integrity: site not found"));
	assert_non_null(strstr(err_msg(), "0C0000428h"));
	assert_int_equal(result(r, "loader-integrity")->status, PATCH_NOT_FOUND);
	assert_memory_equal(pe->data, data, len);
	free(r);
	pe_free(pe);
}

static void test_loader_anchors(void **state)
{
	struct img im;
	build(&im, "winload", "win10", "10.0.19041.1");
	expect_loader_not_found(im.data, im.len, 0x601, "win10 forced 6.1");
	expect_loader_not_found(im.data, im.len, 0x600, "win10 forced 6.0");
	/* the decoy the former anchor (the mask alone) took: still there */
	uint32_t decoy = sym_rva(&im, "ImgpFilterValidationFailureDecoy");
	struct pe *pe = pe_parse(im.data, im.len);
	assert_memory_equal(pe_ptr(pe, decoy, 3), "\x48\x8B\xC4", 3); /* mov rax, rsp */
	struct patch_report *r = calloc(1, sizeof *r);
	assert_int_equal(patch_apply(pe, KIND_WINLOAD, NULL, r), 0); /* 10.0 unforced: nothing applies */
	assert_int_equal(result(r, "loader-integrity")->status, PATCH_NOT_APPLICABLE);
	free(r);
	pe_free(pe);
	img_free(&im);

	static const struct { const char *orig, *mut, *why; size_t n; } cuts[] = {
		{ "\xBB\x28\x04\x00\xC0", "\xBB\x00\x00\x00\x00", "mov ebx, 0C0000428h -> mov ebx, 0", 5 },
		{ "\x85\x74\x24\x30", "\x85\xF6\x66\x90", "test [rsp+30h], esi -> test esi, esi", 4 },
		{ "\x8B\xC3\x48\x8B\x5C", "\x33\xC0\x48\x8B\x5C", "mov eax, ebx -> xor eax, eax", 5 },
		{ "\x83\xE6\xD7", "\x83\xE6\xDF", "and esi, 0FFFFFFD7h -> 0FFFFFFDFh", 3 },
	};
	build(&im, "winload", "vista-sp2", "6.0.6002.18005");
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		uint8_t *copy = malloc(im.len);
		memcpy(copy, im.data, im.len);
		uint8_t *p = memmem(copy, im.len, cuts[i].orig, cuts[i].n);
		assert_non_null(p);
		assert_null(memmem(p + 1, im.len - (size_t)(p + 1 - copy), cuts[i].orig, cuts[i].n)); /* unique */
		memcpy(p, cuts[i].mut, cuts[i].n);
		expect_loader_not_found(copy, im.len, 0, cuts[i].why);
		free(copy);
	}
	img_free(&im);
}

/* A tiny image of machine m (no kernel code): what the machine check sees. */
static void build_machine(struct img *im, uint16_t m, uint16_t subsystem, const char *ofn)
{
	im->b = pb_new(m, subsystem);
	struct pb_version pv = { .file = { 6, 1, 7601, 17514 }, .product = { 6, 1, 7601, 17514 }, .file_type = 1,
				 .company = "Microsoft Corporation", .description = "test",
				 .internal_name = ofn, .original_filename = ofn };
	pb_set_version(im->b, &pv);
	int f = pb_func_begin(im->b, ".text", "entry", 0);
	pb_emit(im->b, "\xc0\x03\x5f\xd6", 4);
	pb_func_end(im->b);
	pb_set_entry(im->b, f);
	pb_finish(im->b, &im->data, &im->len);
}

/* i386, ARMNT and ARM64 files are refused as not AMD64 whatever the kind
 * (named, detected or unknown), with the machine in words. */
static void test_machines(void **state)
{
	static const struct { uint16_t m; const char *name; bool plus; } ms[] = {
		{ PE_MACHINE_I386, "machine 0x014c, i386", false },
		{ PE_MACHINE_ARMNT, "machine 0x01c4, ARMNT", false },
		{ PE_MACHINE_ARM64, "machine 0xaa64, ARM64", true },
	};
	static const char *const names[] = { "osloader.exe", "ntoskrnl.exe", "bootmgr.exe", "other.exe" };
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
		for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
			struct img im;
			build_machine(&im, ms[i].m, PE_SUBSYSTEM_WINDOWS_BOOT_APPLICATION, names[n]);
			struct pe *pe = pe_parse(im.data, im.len);
			assert_non_null(pe);
			assert_int_equal(pe->machine, ms[i].m);
			assert_int_equal(pe->pe32plus, ms[i].plus);
			for (int k = KIND_UNKNOWN; k <= KIND_WINLOAD; k++) {
				struct patch_report *r = calloc(1, sizeof *r);
				assert_int_equal(patch_apply(pe, (enum pe_kind)k, NULL, r), -1);
				assert_int_equal(err_code(), E_FORMAT);
				if (!strstr(err_msg(), "not an AMD64 PE32+ image") || !strstr(err_msg(), ms[i].name))
					fail_msg("%s as %s: %s", names[n], pe_kind_name((enum pe_kind)k), err_msg());
				assert_int_equal(r->nresults, 0);
				free(r);
			}
			assert_memory_equal(pe->data, im.data, im.len);
			pe_free(pe);
			img_free(&im);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x86_regs),
		cmocka_unit_test(test_detect_and_names),
		cmocka_unit_test(test_all_entries_all_variants),
		cmocka_unit_test(test_win7_kernel_unforced),
		cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_only_skip),
		cmocka_unit_test(test_not_found_and_partial),
		cmocka_unit_test(test_loader_identity),
		cmocka_unit_test(test_loader_anchors),
		cmocka_unit_test(test_machines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
