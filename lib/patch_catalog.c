/* patch_catalog.c - the kernel patch catalog as data (doc/patches.md,
 * Rules every entry keeps; each entry has its own section there): one
 * entry per patch, each with a small matcher made of anchor predicates
 * over a decoded function (x86.h). The engine (patch.c) does candidates,
 * decoding, uniqueness, checks, writing and the checksum.
 *
 * Listings quoted in comments are the article's (64-bit Vista SP2,
 * legacy-windows-on-gen2.md); the matchers accept the same logic compiled
 * differently (other registers, offsets, mov vs lea, call forms).
 */
#include "patch_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe.h"
#include "util.h"

#define R(x) ZYDIS_REGISTER_##x
#define M(x) ZYDIS_MNEMONIC_##x

/* ---------------------------------------------------------------- helpers */

static bool is_reg(const struct x86_insn *in, int i, ZydisRegister r)
{
	return x86_reg(in, i) == r;
}

static bool imm_is(const struct x86_insn *in, int i, uint64_t v, unsigned bits)
{
	int64_t x;
	uint64_t mask = bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
	return x86_imm(in, i, &x) && ((uint64_t)x & mask) == (v & mask);
}

static bool has_imm(const struct x86_insn *in, uint64_t v, unsigned bits)
{
	for (int i = 0; in->valid && i < in->zi.operand_count_visible; i++)
		if (imm_is(in, i, v, bits))
			return true;
	return false;
}

/* Short conditional jump `m` (original) or `jmp short` (our edit), same
 * target: the recogniser for "jcc short L becomes jmp short L". */
static bool short_jcc_or_jmp(const struct x86_insn *in, ZydisMnemonic m, bool *applied)
{
	if (x86_is_short_jcc(in, m)) {
		*applied = false;
		return true;
	}
	if (x86_is_short_jcc(in, M(JMP)) && in->zi.raw.imm[0].size == 8) {
		*applied = true;
		return true;
	}
	return false;
}

/* jcc short L (7x rel8) -> jmp short L (EB rel8): same displacement. */
static int edit_jcc_to_jmp(struct patch_site *s, const struct x86_insn *in, bool applied, const struct pe *pe)
{
	const uint8_t *cur = pe_ptr(pe, in->rva, 2);
	if (!cur)
		return err_set(E_FORMAT, "jump at %#x outside the file", in->rva);
	uint8_t after[2] = { 0xEB, cur[1] };
	return site_add(s, in->rva, after, 2, applied);
}

/* Next instruction in the same chunk (straight-line successor), or NULL. */
static const struct x86_insn *next_in_chunk(const struct x86_func *f, size_t i)
{
	if (i + 1 >= f->n || f->insn[i + 1].chunk != f->insn[i].chunk)
		return NULL;
	return &f->insn[i + 1];
}

/* Replacement at the function's start that must end on an instruction
 * boundary of the original code: the bytes left of a split instruction
 * are dead (the replacement never falls through), filled with int3 so the
 * rest of the function still decodes instruction by instruction. When the
 * replacement is there already (applied), the edit covers those int3 too
 * (at most 14: the rest of one split instruction, Intel SDM vol. 2 2.3.11,
 * 15 bytes at most), so it names the same bytes the first run wrote. */
static int edit_function_start(const struct x86_func *f, struct patch_site *s, const uint8_t *code,
			       size_t len, bool applied)
{
	uint32_t cb, ce;
	if (!x86_chunk_of(f, f->begin, &cb, &ce) || ce - cb < len)
		return err_set(E_NOTFOUND, "function at %#x is %u bytes, the replacement needs %zu", f->begin,
			       ce - cb, len);
	uint32_t end = f->begin + (uint32_t)len;
	if (applied) {
		long k = x86_index_at(f, end);
		while (k >= 0 && (size_t)k < f->n && end < ce && end - f->begin - len < 14 &&
		       x86_is(&f->insn[k], M(INT3)) && f->insn[k].len == 1)
			k++, end++;
	} else {
		while (end < ce && !x86_is_boundary(f, end))
			end++;
	}
	uint8_t after[128];
	if (end - f->begin > sizeof after)
		return err_set(E_INTERNAL, "replacement padding too long");
	memset(after, 0xCC, sizeof after);
	memcpy(after, code, len);
	return site_add(s, f->begin, after, end - f->begin, applied);
}

/* ------------------------------------------------------- crash-report */

/* The article's KeBugCheckEx replacement (section "Fix the BugCheck to
 * ensure we can get the error message"): CRASH_P0..P4 = 0x40000100..104,
 * CRASH_CTL = 0x40000105 with CrashNotify (bit 63) — Hyper-V TLFS, guest
 * crash enlightenment. Parameter4 is the fifth argument: [rsp+28h] at entry
 * (return address + 20h of home space, x64 calling convention). 107 bytes,
 * encoded once (here) and checked by decoding against crash_report_asm
 * before first use. */
static const uint8_t crash_report_code[] = {
	0x49, 0x89, 0xD2, 0x89, 0xC8, 0x89, 0xCA, 0xB9, 0x00, 0x01, 0x00, 0x40, 0x48, 0xC1, 0xEA, 0x20, 0x0F, 0x30,
	0x4C, 0x89, 0xD2, 0x4C, 0x89, 0xD0, 0x48, 0xC1, 0xEA, 0x20, 0xB9, 0x01, 0x01, 0x00, 0x40, 0x0F, 0x30,
	0x4C, 0x89, 0xC2, 0x4C, 0x89, 0xC0, 0x48, 0xC1, 0xEA, 0x20, 0xB9, 0x02, 0x01, 0x00, 0x40, 0x0F, 0x30,
	0x4C, 0x89, 0xCA, 0x4C, 0x89, 0xC8, 0x48, 0xC1, 0xEA, 0x20, 0xB9, 0x03, 0x01, 0x00, 0x40, 0x0F, 0x30,
	0x48, 0x8B, 0x54, 0x24, 0x28, 0xB9, 0x04, 0x01, 0x00, 0x40, 0x48, 0x89, 0xD0, 0x48, 0xC1, 0xEA, 0x20, 0x0F, 0x30,
	0x31, 0xC0, 0xBA, 0x00, 0x00, 0x00, 0x80, 0xB9, 0x05, 0x01, 0x00, 0x40, 0x0F, 0x30,
	0xFA, 0xF4,
	0xC2, 0x00, 0x00,
};

static const char crash_report_asm[] =
	"mov r10, rdx; mov eax, ecx; mov edx, ecx; mov ecx, 0x40000100; shr rdx, 0x20; wrmsr; "
	"mov rdx, r10; mov rax, r10; shr rdx, 0x20; mov ecx, 0x40000101; wrmsr; "
	"mov rdx, r8; mov rax, r8; shr rdx, 0x20; mov ecx, 0x40000102; wrmsr; "
	"mov rdx, r9; mov rax, r9; shr rdx, 0x20; mov ecx, 0x40000103; wrmsr; "
	"mov rdx, [rsp+0x28]; mov ecx, 0x40000104; mov rax, rdx; shr rdx, 0x20; wrmsr; "
	"xor eax, eax; mov edx, 0x80000000; mov ecx, 0x40000105; wrmsr; "
	"cli; hlt; ret 0x00";

const uint8_t *patch_crash_report_code(size_t *len);
const uint8_t *patch_crash_report_code(size_t *len)
{
	*len = sizeof crash_report_code;
	return crash_report_code;
}

static int crash_report_verified(void)
{
	static int state; /* 0 unknown, 1 ok, -1 bad */
	if (state == 0) {
		char text[1024];
		int n = x86_format_bytes(crash_report_code, sizeof crash_report_code, 0, text, sizeof text);
		state = (n == 33 && strcmp(text, crash_report_asm) == 0) ? 1 : -1;
	}
	return state > 0 ? 0 : err_set(E_INTERNAL, "crash-report replacement does not decode as intended");
}

static int match_crash_report(const struct match_ctx *c, const struct x86_func *f, struct patch_site *s)
{
	if (crash_report_verified() < 0)
		return -1;
	const uint8_t *cur = pe_ptr(c->pe, f->begin, sizeof crash_report_code);
	bool applied = cur && memcmp(cur, crash_report_code, sizeof crash_report_code) == 0;
	if (edit_function_start(f, s, crash_report_code, sizeof crash_report_code, applied) < 0)
		return -1;
	return 1;
}

/* ------------------------------------------------ dynamic-partitioning */

static const char *const dp_site1[] = { "Kernel-DynamicPartitioningSupported",
					"Kernel-VirtualDynamicPartitioningSupported", NULL };
static const char *const dp_site2[] = { "Kernel-PhysicalMemoryAddAllowed", "Kernel-VmPhysicalMemoryAddAllowed", NULL };
static const char *const dp_all[] = { "Kernel-DynamicPartitioningSupported",
				      "Kernel-VirtualDynamicPartitioningSupported",
				      "Kernel-PhysicalMemoryAddAllowed", "Kernel-VmPhysicalMemoryAddAllowed", NULL };

static bool in_set(const char *s, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

/* Which license value the UNICODE_STRING set up before call i names: the
 * UTF-16 strings loaded by lea r, [rip+x] since the previous query call
 * (or the function start). 1 or 2 when they all belong to one site's set,
 * 0 otherwise. */
static int dp_group(const struct x86_func *f, size_t i)
{
	int g = 0;
	for (size_t k = i; k-- > 0;) {
		const struct x86_insn *in = &f->insn[k];
		if (x86_calls(in, "ZwQueryLicenseValue"))
			break;
		if (!in->ustr)
			continue;
		int this = in_set(in->ustr, dp_site1) ? 1 : in_set(in->ustr, dp_site2) ? 2 : -1;
		if (this < 0 || (g && g != this))
			return 0;
		g = this;
	}
	return g;
}

/*  call ZwQueryLicenseValue / test eax, eax / js short L  ->  jmp short L */
static int match_dynamic_partitioning(const struct match_ctx *c, const struct x86_func *f, struct patch_site *s)
{
	const struct x86_insn *js[3] = { NULL, NULL, NULL };
	bool applied[3] = { false, false, false };
	int count[3] = { 0, 0, 0 };
	for (size_t i = 0; i + 2 < f->n; i++) {
		const struct x86_insn *call = &f->insn[i], *t = next_in_chunk(f, i), *j = next_in_chunk(f, i + 1);
		if (!x86_is(call, M(CALL)) || !x86_calls(call, "ZwQueryLicenseValue") || !t || !j)
			continue;
		if (!x86_is(t, M(TEST)) || !is_reg(t, 0, R(EAX)) || !is_reg(t, 1, R(EAX)))
			continue;
		bool ap;
		if (!short_jcc_or_jmp(j, M(JS), &ap))
			continue;
		int g = dp_group(f, i);
		if (!g)
			continue;
		count[g]++;
		js[g] = j;
		applied[g] = ap;
	}
	if (count[1] == 0 || count[2] == 0)
		return 0;
	if (count[1] > 1 || count[2] > 1)
		return count[1] > count[2] ? count[1] : count[2];
	if (edit_jcc_to_jmp(s, js[1], applied[1], c->pe) < 0 || edit_jcc_to_jmp(s, js[2], applied[2], c->pe) < 0)
		return -1;
	return 1;
}

/* -------------------------------------------------------- pcat-compat */

/*  test byte ptr [r12+28h], 1 ; ... ; jnz short L ; <fall-through>
 *  KeBugCheckEx(0x79, 6, ...)  ->  jmp short L
 * +28h is the MADT Flags field (ACPI spec 5.2.12, Table "MADT format":
 * header 36 bytes, Local Interrupt Controller Address 4, Flags 4 -> 28h);
 * bit 0 is PCAT_COMPAT. */
static int match_pcat_compat(const struct match_ctx *c, const struct x86_func *f, struct patch_site *s)
{
	int found = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct x86_insn *t = &f->insn[i];
		ZydisRegister base;
		int64_t disp;
		unsigned bits;
		if (!x86_is(t, M(TEST)) || !x86_mem(t, 0, &base, &disp, &bits) || disp != 0x28 || bits != 8 ||
		    base == R(NONE) || base == R(RIP) || !imm_is(t, 1, 1, 8))
			continue;
		/* within the next few instructions, before any other branch */
		size_t j = i + 1;
		bool ap = false;
		for (; j < f->n && j <= i + 6; j++) {
			if (short_jcc_or_jmp(&f->insn[j], M(JNZ), &ap))
				break;
			if (x86_ends_flow(&f->insn[j]) || x86_is_cond_branch(&f->insn[j]) ||
			    f->insn[j].zi.meta.category == ZYDIS_CATEGORY_CALL) {
				j = f->n;
				break;
			}
		}
		if (j >= f->n || j > i + 6)
			continue;
		/* the fall-through: straight line to the bugcheck call */
		size_t from = straight_line_start(f, i, 16);
		for (size_t k = j + 1; k < f->n && k <= j + 12 && f->insn[k].chunk == f->insn[j].chunk; k++) {
			if (is_bugcheck_call(f, from, k, 0x79, 6, -1)) {
				if (!found++ && edit_jcc_to_jmp(s, &f->insn[j], ap, c->pe) < 0)
					return -1;
				break;
			}
			if (x86_ends_flow(&f->insn[k]) || x86_is_cond_branch(&f->insn[k]) ||
			    f->insn[k].zi.meta.category == ZYDIS_CATEGORY_CALL)
				break;
		}
	}
	return found;
}

/* -------------------------------------------------------- timer-scale */

/* Local APIC registers at the HAL's fixed mapping 0FFFFFFFFFFFE0000h:
 * +380h initial count, +390h current count (Intel SDM vol. 3, 10.5.4). */
#define APIC_INITIAL_COUNT 0xFFFFFFFFFFFE0380ull
#define APIC_CURRENT_COUNT 0xFFFFFFFFFFFE0390ull
/* Hyper-V TLFS: HV_X64_MSR_TSC_FREQUENCY / HV_X64_MSR_APIC_FREQUENCY. */
#define HV_MSR_TSC_FREQUENCY 0x40000022
#define HV_MSR_APIC_FREQUENCY 0x40000023

static bool is_apic_initial_all_ones(const struct x86_insn *in)
{
	return x86_is(in, M(MOV)) && in->has_abs_mem && in->abs_mem == APIC_INITIAL_COUNT &&
	       imm_is(in, 1, 0xFFFFFFFF, 32);
}

/* out 70h, al (or out dx, al with dx = 70h) with al = 0Ah: select RTC
 * register A (the status register with UIP in bit 7). */
static bool is_rtc_select_a(const struct x86_func *f, size_t i, size_t from)
{
	const struct x86_insn *in = &f->insn[i];
	if (!x86_is(in, M(OUT)) || !is_reg(in, 1, R(AL)))
		return false;
	struct x86_regs r;
	uint64_t port, al;
	x86_regs_track(&r, f, from, i);
	if (!imm_is(in, 0, 0x70, 8) && !(is_reg(in, 0, R(DX)) && x86_regs_get(&r, R(DX), &port) && port == 0x70))
		return false;
	return x86_regs_get(&r, R(AL), &al) && al == 0x0A;
}

/* in al, 71h / test al, al / js-or-jns short back to the in (UIP poll);
 * applied: the jcc is a 2-byte NOP. Returns the jcc's index or 0. */
static size_t rtc_poll_at(const struct x86_func *f, size_t i, bool *applied)
{
	const struct x86_insn *in = &f->insn[i], *t = next_in_chunk(f, i), *j = t ? next_in_chunk(f, i + 1) : NULL;
	if (!j || !x86_is(in, M(IN)) || !is_reg(in, 0, R(AL)) || !imm_is(in, 1, 0x71, 8))
		return 0;
	if (!x86_is(t, M(TEST)) || !is_reg(t, 0, R(AL)) || !is_reg(t, 1, R(AL)))
		return 0;
	if ((x86_is_short_jcc(j, M(JS)) || x86_is_short_jcc(j, M(JNS))) && j->target == in->rva) {
		*applied = false;
		return i + 2;
	}
	if (x86_is_nop(j) && j->len == 2) {
		*applied = true;
		return i + 2;
	}
	return 0;
}

struct tsc_measure {
	size_t first, last;      /* instruction indices */
	ZydisRegister apic32, tsc64;
};

/*  mov rS32, [APIC current count]    ; read the current count
 *  sub rA32, rS32                     ; start count - current: rA = APIC register
 *  rdtsc / shl rdx, 20h / or rax, rdx
 *  mov rT, rax / sub rT, rB           ; (or sub rax, rB / mov rT, rax): rT = TSC register */
static bool tsc_measure_at(const struct x86_func *f, size_t i, struct tsc_measure *m)
{
	if (i + 6 >= f->n)
		return false;
	const struct x86_insn *a = &f->insn[i];
	for (size_t k = i + 1; k <= i + 6; k++)
		if (f->insn[k].chunk != a->chunk)
			return false;
	const struct x86_insn *b = a + 1, *c = a + 2, *d = a + 3, *e = a + 4, *g = a + 5, *h = a + 6;
	ZydisRegister scratch = x86_reg(a, 0);
	if (!x86_is(a, M(MOV)) || !a->has_abs_mem || a->abs_mem != APIC_CURRENT_COUNT ||
	    ZydisRegisterGetClass(scratch) != ZYDIS_REGCLASS_GPR32)
		return false;
	if (!x86_is(b, M(SUB)) || x86_reg(b, 1) != scratch || ZydisRegisterGetClass(x86_reg(b, 0)) != ZYDIS_REGCLASS_GPR32)
		return false;
	if (!x86_is(c, M(RDTSC)) || !x86_is(d, M(SHL)) || !is_reg(d, 0, R(RDX)) || !imm_is(d, 1, 0x20, 8))
		return false;
	if (!x86_is(e, M(OR)) || !is_reg(e, 0, R(RAX)) || !is_reg(e, 1, R(RDX)))
		return false;
	ZydisRegister t;
	if (x86_is(g, M(MOV)) && is_reg(g, 1, R(RAX)) && x86_is(h, M(SUB)) && x86_reg(h, 0) == x86_reg(g, 0))
		t = x86_reg(g, 0);
	else if (x86_is(g, M(SUB)) && is_reg(g, 0, R(RAX)) && x86_is(h, M(MOV)) && is_reg(h, 1, R(RAX)))
		t = x86_reg(h, 0);
	else
		return false;
	if (ZydisRegisterGetClass(t) != ZYDIS_REGCLASS_GPR64)
		return false;
	m->first = i;
	m->last = i + 6;
	m->apic32 = x86_reg(b, 0);
	m->tsc64 = t;
	return true;
}

/* Our replacement, recognised: mov ecx, 40000023h / rdmsr / mov r32, eax /
 * mov ecx, 40000022h / rdmsr / shl rdx, 20h / or rax, rdx / mov r64, rax,
 * then NOPs. Returns the number of bytes it covers, 0 if not there. */
static uint32_t tsc_replacement_at(const struct x86_func *f, size_t i)
{
	if (i + 7 >= f->n)
		return 0;
	const struct x86_insn *p = &f->insn[i];
	if (!(x86_is(&p[0], M(MOV)) && is_reg(&p[0], 0, R(ECX)) && imm_is(&p[0], 1, HV_MSR_APIC_FREQUENCY, 32) &&
	      x86_is(&p[1], M(RDMSR)) && x86_is(&p[2], M(MOV)) && is_reg(&p[2], 1, R(EAX)) &&
	      x86_is(&p[3], M(MOV)) && is_reg(&p[3], 0, R(ECX)) && imm_is(&p[3], 1, HV_MSR_TSC_FREQUENCY, 32) &&
	      x86_is(&p[4], M(RDMSR)) && x86_is(&p[5], M(SHL)) && is_reg(&p[5], 0, R(RDX)) &&
	      x86_is(&p[6], M(OR)) && is_reg(&p[6], 0, R(RAX)) && is_reg(&p[6], 1, R(RDX)) &&
	      x86_is(&p[7], M(MOV)) && is_reg(&p[7], 1, R(RAX))))
		return 0;
	size_t k = i + 8;
	while (k < f->n && x86_is_nop(&f->insn[k]) && f->insn[k].chunk == p->chunk)
		k++;
	uint32_t end = k < f->n ? f->insn[k].rva : f->insn[k - 1].rva + f->insn[k - 1].len;
	return end - p->rva;
}

/* The replacement for the measurement, assembled with the Zydis encoder
 * from the registers the original code uses. */
static int build_tsc_replacement(const struct tsc_measure *m, uint32_t room, uint8_t *out)
{
	ZydisRegister a64 = x86_reg64(m->apic32);
	/* rdmsr writes edx:eax and we load ecx: the APIC register must survive
	 * the second rdmsr, the TSC register must not be ecx/edx. */
	if (a64 == R(RAX) || a64 == R(RCX) || a64 == R(RDX) || m->tsc64 == R(RCX) || m->tsc64 == R(RDX))
		return err_set(E_UNSUPPORTED, "timer-scale: APIC/TSC registers %s/%s clash with rdmsr",
			       ZydisRegisterGetString(m->apic32), ZydisRegisterGetString(m->tsc64));
	size_t pos = 0;
	const struct x86_enc_op ecx_apic[] = { X86_R(R(ECX)), X86_I(HV_MSR_APIC_FREQUENCY) };
	const struct x86_enc_op apic_eax[] = { X86_R(m->apic32), X86_R(R(EAX)) };
	const struct x86_enc_op ecx_tsc[] = { X86_R(R(ECX)), X86_I(HV_MSR_TSC_FREQUENCY) };
	const struct x86_enc_op shl[] = { X86_R(R(RDX)), X86_I(0x20) };
	const struct x86_enc_op orr[] = { X86_R(R(RAX)), X86_R(R(RDX)) };
	const struct x86_enc_op tsc_rax[] = { X86_R(m->tsc64), X86_R(R(RAX)) };
	if (x86_encode(out, room, &pos, M(MOV), 2, ecx_apic) < 0 || x86_encode(out, room, &pos, M(RDMSR), 0, NULL) < 0 ||
	    x86_encode(out, room, &pos, M(MOV), 2, apic_eax) < 0 || x86_encode(out, room, &pos, M(MOV), 2, ecx_tsc) < 0 ||
	    x86_encode(out, room, &pos, M(RDMSR), 0, NULL) < 0 || x86_encode(out, room, &pos, M(SHL), 2, shl) < 0 ||
	    x86_encode(out, room, &pos, M(OR), 2, orr) < 0 || x86_encode(out, room, &pos, M(MOV), 2, tsc_rax) < 0)
		return err_prefix("timer-scale: the MSR reads (%u bytes available)", room);
	x86_nop_fill(out + pos, room - pos);
	return 0;
}

struct timer_scale {
	size_t cmp, jz, label;       /* cmp byte [flag],0 ; jz short RTC path ; RTC path start */
	bool jz_applied;
	size_t poll[4];
	bool poll_applied[4];
	size_t npolls;
};

/* cmp byte ptr [rip+HalpScaleWithPmTimer], 0 / jz short RTC, where the RTC
 * path selects RTC register A before the first poll. */
static bool timer_scale_branch(const struct x86_func *f, size_t i, struct timer_scale *ts)
{
	const struct x86_insn *cmp = &f->insn[i], *j = next_in_chunk(f, i);
	unsigned bits;
	ZydisRegister base;
	if (!j || !x86_is(cmp, M(CMP)) || !x86_mem(cmp, 0, &base, NULL, &bits) || base != R(RIP) || bits != 8 ||
	    !imm_is(cmp, 1, 0, 8) || !short_jcc_or_jmp(j, M(JZ), &ts->jz_applied))
		return false;
	long l = x86_index_at(f, j->target);
	if (l < 0)
		return false;
	for (size_t k = (size_t)l; k < f->n && k < (size_t)l + 12; k++)
		if (is_rtc_select_a(f, k, (size_t)l))
			goto ok;
	return false;
ok:
	ts->cmp = i;
	ts->jz = i + 1;
	ts->label = (size_t)l;
	return true;
}

static int match_timer_scale(const struct match_ctx *c, const struct x86_func *f, struct patch_site *s)
{
	struct timer_scale ts;
	memset(&ts, 0, sizeof ts);
	bool apic_init = false, branch = false;
	for (size_t i = 0; i < f->n; i++) {
		apic_init |= is_apic_initial_all_ones(&f->insn[i]);
		if (!branch && timer_scale_branch(f, i, &ts))
			branch = true;
	}
	if (!apic_init || !branch)
		return 0;
	/* the four UIP polls on the RTC path */
	for (size_t i = ts.label; i < f->n; i++) {
		bool ap;
		size_t j = rtc_poll_at(f, i, &ap);
		if (!j)
			continue;
		if (ts.npolls == 4)
			return 0; /* a fifth poll: not the function we know */
		ts.poll_applied[ts.npolls] = ap;
		ts.poll[ts.npolls++] = j;
		i = j;
	}
	if (ts.npolls != 4)
		return 0;
	/* the measurement after the last poll, a few instructions on (past
	 * HalpProcessorFence, a fence), with no branch in between */
	struct tsc_measure m;
	uint8_t after[128];
	uint32_t applied_len = 0, first_rva, len;
	bool meas_applied;
	size_t k = ts.poll[3] + 1;
	for (; k < f->n && k <= ts.poll[3] + 6; k++) {
		if (tsc_measure_at(f, k, &m) || tsc_replacement_at(f, k))
			break;
		if (x86_ends_flow(&f->insn[k]) || x86_is_cond_branch(&f->insn[k]))
			return 0;
	}
	if (k < f->n && tsc_measure_at(f, k, &m)) {
		first_rva = f->insn[m.first].rva;
		len = f->insn[m.last].rva + f->insn[m.last].len - first_rva;
		if (len > sizeof after || build_tsc_replacement(&m, len, after) < 0)
			return len > sizeof after ? err_set(E_INTERNAL, "timer-scale: measurement too long") : -1;
		meas_applied = false;
	} else if (k < f->n && (applied_len = tsc_replacement_at(f, k)) > 0 && applied_len <= sizeof after) {
		first_rva = f->insn[k].rva;
		len = applied_len;
		memcpy(after, pe_ptr(c->pe, first_rva, len), len);
		meas_applied = true;
	} else {
		return 0;
	}
	if (edit_jcc_to_jmp(s, &f->insn[ts.jz], ts.jz_applied, c->pe) < 0)
		return -1;
	static const uint8_t nop2[2] = { 0x66, 0x90 }; /* the recommended 2-byte NOP (Intel SDM vol. 2, NOP) */
	for (size_t p = 0; p < 4; p++)
		if (site_add(s, f->insn[ts.poll[p]].rva, nop2, 2, ts.poll_applied[p]) < 0)
			return -1;
	if (site_add(s, first_rva, after, len, meas_applied) < 0)
		return -1;
	return 1;
}

/* -------------------------------------------------------- timer-source */

/* Value a `mov [rip+g], src` stores: the immediate or the register's
 * tracked constant. */
static bool store_value(const struct x86_func *f, size_t i, uint32_t *g, uint64_t *v)
{
	const struct x86_insn *in = &f->insn[i];
	ZydisRegister base;
	int64_t imm;
	if (!x86_is(in, M(MOV)) || !x86_mem(in, 0, &base, NULL, NULL) || base != R(RIP) || !in->has_mem_rva)
		return false;
	*g = in->mem_rva;
	if (x86_imm(in, 1, &imm)) {
		*v = (uint64_t)imm & 0xFFFFFFFF;
		return true;
	}
	struct x86_regs r;
	x86_regs_track(&r, f, straight_line_start(f, i, 8), i);
	return x86_reg(in, 1) != R(NONE) && x86_regs_get(&r, x86_reg(in, 1), v);
}

static bool stores_value(const struct x86_func *f, uint32_t g, uint64_t v)
{
	for (size_t i = 0; i < f->n; i++) {
		uint32_t gg;
		uint64_t vv;
		if (store_value(f, i, &gg, &vv) && gg == g && vv == v)
			return true;
	}
	return false;
}

/*  mov eax, 2 / mov [HalpStallExecutionProcessorSource], eax /
 *  mov [HalpQueryPerformanceCounterSource], eax — where the HPET branch
 *  stores 4 to both  ->  mov eax, 1 (the immediate changed in place). */
static int match_timer_source(const struct match_ctx *c, const struct x86_func *f, struct patch_site *s)
{
	int found = 0;
	for (size_t i = 0; i + 2 < f->n; i++) {
		const struct x86_insn *mv = &f->insn[i];
		bool applied;
		if (!x86_is(mv, M(MOV)) || !is_reg(mv, 0, R(EAX)))
			continue;
		if (imm_is(mv, 1, 2, 32))
			applied = false;
		else if (imm_is(mv, 1, 1, 32))
			applied = true;
		else
			continue;
		uint32_t g[2];
		size_t ng = 0;
		for (size_t k = i + 1; k < f->n && k <= i + 4 && ng < 2; k++) {
			const struct x86_insn *st = &f->insn[k];
			ZydisRegister base;
			if (st->chunk != mv->chunk || x86_ends_flow(st) || x86_is_cond_branch(st))
				break;
			if (x86_is(st, M(MOV)) && is_reg(st, 1, R(EAX)) && x86_mem(st, 0, &base, NULL, NULL) &&
			    base == R(RIP) && st->has_mem_rva) {
				g[ng++] = st->mem_rva;
				continue;
			}
			if (x86_reg64(x86_reg(st, 0)) == R(RAX))
				break; /* eax rewritten */
		}
		if (ng != 2 || g[0] == g[1] || !stores_value(f, g[0], 4) || !stores_value(f, g[1], 4))
			continue;
		if (!found++) {
			uint8_t after[16];
			const uint8_t *cur = pe_ptr(c->pe, mv->rva, mv->len);
			unsigned off = mv->zi.raw.imm[0].offset, sz = mv->zi.raw.imm[0].size / 8;
			if (!cur || mv->len > sizeof after || sz != 4 || off + sz > mv->len)
				return err_set(E_INTERNAL, "timer-source: unexpected encoding at %#x", mv->rva);
			memcpy(after, cur, mv->len);
			put_le32(after + off, 1);
			if (site_add(s, mv->rva, after, mv->len, applied) < 0)
				return -1;
		}
	}
	return found;
}

/* ---------------------------------------------------------- acpi-mode */

/* KUSER_SHARED_DATA at 0FFFFF78000000000h (ntddk.h KI_USER_SHARED_DATA),
 * TickCount at +320h. 1E8480h = 2,000,000 100-ns units: 200 ms. */
#define KUSER_TICK_COUNT 0xFFFFF78000000320ull
#define ACPI_TIMEOUT_100NS 0x1E8480u

static bool acpi_function_anchors(const struct x86_func *f)
{
	bool timeout = false, tick = false, bugcheck = false;
	for (size_t i = 0; i < f->n; i++) {
		const struct x86_insn *in = &f->insn[i];
		timeout |= has_imm(in, ACPI_TIMEOUT_100NS, 32);
		tick |= has_imm(in, KUSER_TICK_COUNT, 64) || (in->has_abs_mem && in->abs_mem == KUSER_TICK_COUNT);
		if (x86_calls(in, "KeBugCheckEx"))
			bugcheck |= is_bugcheck_call(f, straight_line_start(f, i, 12), i, 0xA5, 0x11, 6);
	}
	return timeout && tick && bugcheck;
}

static int match_acpi_mode(const struct match_ctx *c, const struct x86_func *f, struct patch_site *s)
{
	if (!acpi_function_anchors(f))
		return 0;
	int found = 0;
	uint8_t nops[128];
	memset(nops, 0x90, sizeof nops);
	for (size_t i = 0; i + 2 < f->n; i++) {
		const struct x86_insn *call = &f->insn[i], *t = next_in_chunk(f, i), *j = t ? next_in_chunk(f, i + 1) : NULL;
		if (j && x86_is(call, M(CALL)) && x86_is(t, M(TEST)) && is_reg(t, 0, R(AL)) && imm_is(t, 1, 1, 8) &&
		    x86_is_short_jcc(j, M(JZ)) && j->target < call->rva) {
			/* READ_PM1_CONTROL() & 1 (SCI_EN, ACPI spec 4.8.3.2.1), polled with a back-edge */
			if (!found++ && site_add(s, call->rva, nops, j->rva + j->len - call->rva, false) < 0)
				return -1;
		}
	}
	if (found)
		return found;
	/* Recogniser: our NOP run (one-byte 0x90 only, 7..16 bytes: a call,
	 * test al,1 and jz short) right after the time-out's conditional jump. */
	for (size_t i = 1; i < f->n; i++) {
		if (!x86_is_cond_branch(&f->insn[i - 1]) || f->insn[i].len != 1 || !x86_is_nop(&f->insn[i]))
			continue;
		size_t k = i;
		while (k < f->n && f->insn[k].len == 1 && x86_is_nop(&f->insn[k]) && f->insn[k].chunk == f->insn[i].chunk)
			k++;
		uint32_t len = (uint32_t)(k - i);
		if (len >= 7 && len <= 16) {
			if (!found++ && site_add(s, f->insn[i].rva, nops, len, true) < 0)
				return -1;
		}
	}
	return found;
}

/* --------------------------------------------------- loader-integrity */

/* STATUS_INVALID_IMAGE_HASH (ntstatus.h; MS-ERREF 2.3.1): what winload
 * returns when an image's hash is not in a catalog it trusts. */
#define STATUS_INVALID_IMAGE_HASH 0xC0000428u

static bool is_and_d7(const struct x86_insn *in)
{
	return x86_is(in, M(AND)) && ZydisRegisterGetClass(x86_reg(in, 0)) == ZYDIS_REGCLASS_GPR32 &&
	       imm_is(in, 1, 0xFFFFFFD7, 32);
}

/* The hash check's verdict tested against the policy: `test m32, r32`
 * (the validation flags the hash routine wrote through its out parameter,
 * the policy mask in a register) with a conditional jump right after.
 * 6.1.7601: test [rsp+30h], esi / jnz; 10.0.19041: test [rbp-48h], edi /
 * jnz (doc/patches.md, loader-integrity). */
static bool is_hash_check(const struct x86_func *f, size_t i)
{
	const struct x86_insn *t = &f->insn[i], *j = next_in_chunk(f, i);
	if (!j || !x86_is(t, M(TEST)) || !x86_is_cond_branch(j))
		return false;
	unsigned bits;
	for (int m = 0; m < 2; m++)
		if (x86_mem(t, m, NULL, NULL, &bits) && bits == 32 &&
		    ZydisRegisterGetClass(x86_reg(t, 1 - m)) == ZYDIS_REGCLASS_GPR32)
			return true;
	return false;
}

/* mov r32, 0C0000428h: r32 in *reg. */
static bool loads_image_hash_status(const struct x86_insn *in, ZydisRegister *reg)
{
	*reg = x86_reg(in, 0);
	return x86_is(in, M(MOV)) && ZydisRegisterGetClass(*reg) == ZYDIS_REGCLASS_GPR32 &&
	       imm_is(in, 1, STATUS_INVALID_IMAGE_HASH, 32);
}

/* The anchors of ImgpValidateImageHash, all in the one .pdata function:
 * (1) `and r32, 0FFFFFFD7h` (clears two validation-policy flags;
 * EfiGuard's anchor), (2) a hash check (is_hash_check), (3) on a path from
 * that check, `mov r32, 0C0000428h` whose register is what the function
 * returns (carried to a ret in eax). A function with the flag arithmetic
 * but no such status returned after the check is not the site. */
static bool loader_integrity_anchors(const struct x86_func *f)
{
	bool mask = false;
	for (size_t i = 0; i < f->n && !mask; i++)
		mask = is_and_d7(&f->insn[i]);
	if (!mask)
		return false;
	bool *reach = xcalloc(f->n ? f->n : 1, sizeof *reach), ok = false;
	if (!reach) return false;   /* E_NOMEM set: patch_apply fails (err_nomem_count) */
	for (size_t i = 0; i + 1 < f->n; i++)
		if (is_hash_check(f, i) && !reach[i + 1])
			flow_reach(f, i + 1, reach);
	for (size_t i = 0; i < f->n && !ok; i++) {
		ZydisRegister r;
		ok = reach[i] && loads_image_hash_status(&f->insn[i], &r) && flow_value_returned(f, i, r);
	}
	free(reach);
	return ok;
}

/* winload's ImgpValidateImageHash: its start becomes xor eax, eax / ret
 * (STATUS_SUCCESS), assembled with the Zydis encoder. Recognised as
 * applied when the function starts with exactly that. */
static int match_loader_integrity(const struct match_ctx *c, const struct x86_func *f, struct patch_site *s)
{
	if (!loader_integrity_anchors(f))
		return 0;
	uint8_t code[16];
	size_t pos = 0;
	const struct x86_enc_op xor_eax[] = { X86_R(R(EAX)), X86_R(R(EAX)) };
	if (x86_encode(code, sizeof code, &pos, M(XOR), 2, xor_eax) < 0 ||
	    x86_encode(code, sizeof code, &pos, M(RET), 0, NULL) < 0)
		return -1;
	long b = x86_index_at(f, f->begin);
	bool applied = b >= 0 && (size_t)b + 1 < f->n && x86_is(&f->insn[b], M(XOR)) &&
		       is_reg(&f->insn[b], 0, R(EAX)) && is_reg(&f->insn[b], 1, R(EAX)) &&
		       x86_is(&f->insn[b + 1], M(RET)) && f->insn[b + 1].zi.operand_count_visible == 0;
	if (applied)
		pos = f->insn[b].len + f->insn[b + 1].len;
	if (edit_function_start(f, s, applied ? pe_ptr(c->pe, f->begin, (uint32_t)pos) : code, pos, applied) < 0)
		return -1;
	return 1;
}

/* ------------------------------------------------------------ catalog */

/* Byte prefilters (the matcher confirms by decoding). */
static const struct byte_pattern apic_initial_disp[] = {
	{ 4, { 0x80, 0x03, 0xFE, 0xFF }, { 0xFF, 0xFF, 0xFF, 0xFF } }, /* disp32 of 0FFFFFFFFFFFE0380h */
};
static const struct byte_pattern kuser_tick[] = {
	{ 8, { 0x20, 0x03, 0x00, 0x00, 0x80, 0xF7, 0xFF, 0xFF }, { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF } },
	{ 4, { 0x80, 0x84, 0x1E, 0x00 }, { 0xFF, 0xFF, 0xFF, 0xFF } },
};
/* and r/m32, imm8 (83 /4 ib, sign-extended D7h) or imm32 (81 /4 id),
 * register form: ModRM mod=11, reg=100 -> E0..E7 (Intel SDM vol. 2, AND). */
static const struct byte_pattern and_d7[] = {
	{ 3, { 0x83, 0xE0, 0xD7 }, { 0xFF, 0xF8, 0xFF } },
	{ 6, { 0x81, 0xE0, 0xD7, 0xFF, 0xFF, 0xFF }, { 0xFF, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF } },
};

const struct patch_entry patch_catalog[] = {
#define CANDIDATES(how, name, strings, patterns, n) { how, name, strings, patterns, n }
#define PATCH(id, kind, from, to, cand, anchors, match) { id, kind, from, to, cand, anchors, match },
#include "patch_catalog.def"
#undef PATCH
#undef CANDIDATES
};
const size_t patch_catalog_n = sizeof patch_catalog / sizeof patch_catalog[0];
