/* patch_flow.c - control and data flow inside one decoded function, for
 * anchors that are about what a function does on a path rather than what
 * one instruction is: "from this test, some path loads 0C0000428h into a
 * register that is what the function returns" (doc/patches.md,
 * loader-integrity). Only what the decoded function itself shows is used:
 * flow stays inside f's .pdata chunks; a call is assumed to return and to
 * clobber the volatile registers (x64 calling convention: rax, rcx, rdx,
 * r8-r11, "x64 calling convention / Caller/callee saved registers").
 */
#include "patch_int.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Work bound for one query: a function of a few thousand instructions is
 * walked whole; a pathological one stops here (the anchor then fails). */
#define FLOW_MAX_STEPS 200000u

/* Index of the instruction that follows in straight line (same chunk, no
 * gap), -1 when none. */
static long fallthrough(const struct x86_func *f, size_t k)
{
	const struct x86_insn *a = &f->insn[k];
	if (k + 1 >= f->n || f->insn[k + 1].chunk != a->chunk || f->insn[k + 1].rva != a->rva + a->len)
		return -1;
	return (long)k + 1;
}

/* Successors of instruction k inside f: up to two (fall-through, branch
 * target). ret, int3, hlt, ud2, undecodable bytes and indirect jumps end
 * the path; a jump out of f ends it too. Returns the count. */
static int successors(const struct x86_func *f, size_t k, long out[2])
{
	const struct x86_insn *in = &f->insn[k];
	int n = 0;
	if (!in->valid || in->zi.meta.category == ZYDIS_CATEGORY_RET || in->zi.mnemonic == ZYDIS_MNEMONIC_INT3 ||
	    in->zi.mnemonic == ZYDIS_MNEMONIC_HLT || in->zi.mnemonic == ZYDIS_MNEMONIC_UD2)
		return 0;
	bool jump = in->zi.meta.category == ZYDIS_CATEGORY_UNCOND_BR || x86_is_cond_branch(in);
	if (jump && in->has_target) {
		long t = x86_index_at(f, in->target);
		if (t >= 0)
			out[n++] = t;
	}
	if (in->zi.meta.category != ZYDIS_CATEGORY_UNCOND_BR) {
		long t = fallthrough(f, k);
		if (t >= 0)
			out[n++] = t;
	}
	return n;
}

void flow_reach(const struct x86_func *f, size_t from, bool *reach)
{
	if (from >= f->n)
		return;
	size_t *stack = xmalloc(f->n * sizeof *stack), sp = 0;
	if (!stack) return;   /* E_NOMEM set: patch_apply fails (err_nomem_count) */
	if (!reach[from]) {
		reach[from] = true;
		stack[sp++] = from;
	}
	while (sp) {
		long next[2];
		int n = successors(f, stack[--sp], next);
		for (int i = 0; i < n; i++)
			if (!reach[next[i]]) {
				reach[next[i]] = true;
				stack[sp++] = (size_t)next[i];
			}
	}
	free(stack);
}

/* 0..15 for a general-purpose register of any width (al, ax, eax, rax ->
 * 0), -1 otherwise. */
static int gpr(ZydisRegister r)
{
	ZydisRegister r64 = x86_reg64(r);
	if (r64 < ZYDIS_REGISTER_RAX || r64 > ZYDIS_REGISTER_R15)
		return -1;
	return (int)(r64 - ZYDIS_REGISTER_RAX);
}

/* The set of registers holding the value after instruction in, given the
 * set before it (bit i = gpr i). A full-width register copy carries the
 * value along; any other write to a register drops it from the set. */
static uint16_t carry(const struct x86_insn *in, uint16_t held)
{
	if (x86_is(in, ZYDIS_MNEMONIC_MOV)) {
		ZydisRegister d = x86_reg(in, 0), s = x86_reg(in, 1);
		ZydisRegisterClass dc = ZydisRegisterGetClass(d), sc = ZydisRegisterGetClass(s);
		bool wide = (dc == ZYDIS_REGCLASS_GPR32 || dc == ZYDIS_REGCLASS_GPR64) &&
			    (sc == ZYDIS_REGCLASS_GPR32 || sc == ZYDIS_REGCLASS_GPR64);
		if (wide && gpr(d) >= 0 && gpr(s) >= 0) {
			uint16_t bit = (uint16_t)(1u << gpr(d));
			return (held >> gpr(s)) & 1 ? held | bit : held & (uint16_t)~bit;
		}
	}
	if (in->zi.meta.category == ZYDIS_CATEGORY_CALL)
		held &= (uint16_t)~0x0F07u; /* rax rcx rdx, r8-r11 */
	for (int i = 0; i < in->zi.operand_count; i++) {
		const ZydisDecodedOperand *op = &in->op[i];
		if (op->type == ZYDIS_OPERAND_TYPE_REGISTER && (op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
		    gpr(op->reg.value) >= 0)
			held &= (uint16_t)~(1u << gpr(op->reg.value));
	}
	return held;
}

bool flow_value_returned(const struct x86_func *f, size_t i, ZydisRegister r)
{
	if (i >= f->n || gpr(r) < 0)
		return false;
	/* Breadth over (instruction, register set) states; seen[k] is the
	 * union of sets already walked from k, a state adding nothing new is
	 * dropped (the walk only removes or copies, so this terminates). */
	uint16_t *seen = xcalloc(f->n, sizeof *seen);
	/* a state is queued only by a state that added to some seen[k]: at most
	 * 16 per instruction, each queuing two */
	size_t cap = 32 * f->n + 4, head = 0, tail = 0;
	size_t *qi = seen ? xmalloc(cap * sizeof *qi) : NULL;
	uint16_t *qs = qi ? xmalloc(cap * sizeof *qs) : NULL;
	bool found = false;
	if (!qs) {   /* E_NOMEM set: patch_apply fails (err_nomem_count) */
		free(seen);
		free(qi);
		return false;
	}
	long next[2];
	int n = successors(f, i, next);
	uint16_t start = (uint16_t)(1u << gpr(r));
	for (int k = 0; k < n && tail < cap; k++)
		qi[tail] = (size_t)next[k], qs[tail++] = start;
	for (unsigned steps = 0; head < tail && !found && steps < FLOW_MAX_STEPS; steps++) {
		size_t k = qi[head];
		uint16_t held = qs[head++];
		if ((held & (uint16_t)~seen[k]) == 0)
			continue;
		seen[k] |= held;
		const struct x86_insn *in = &f->insn[k];
		if (in->valid && in->zi.meta.category == ZYDIS_CATEGORY_RET) {
			found = held & 1; /* eax/rax */
			continue;
		}
		held = carry(in, held);
		if (!held)
			continue;
		n = successors(f, k, next);
		for (int s = 0; s < n && tail < cap; s++)
			qi[tail] = (size_t)next[s], qs[tail++] = held;
	}
	free(seen);
	free(qi);
	free(qs);
	return found;
}
