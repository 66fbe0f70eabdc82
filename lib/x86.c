/* x86.c - Zydis decode/format/encode for the patch engine (x86.h). */
#include "x86.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe.h"
#include "util.h"

/* Runtime address used for decoding: the RVA itself (image base 0), so
 * rip-relative and branch targets come out as RVAs. Results outside
 * [0, SizeOfImage) are not resolved. */

static ZydisDecoder g_dec;
static ZydisFormatter g_fmt;
static bool g_init;

static void x86_init(void)
{
	if (g_init)
		return;
	ZydisDecoderInit(&g_dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	ZydisFormatterInit(&g_fmt, ZYDIS_FORMATTER_STYLE_INTEL);
	ZydisFormatterSetProperty(&g_fmt, ZYDIS_FORMATTER_PROP_FORCE_SIZE, ZYAN_FALSE);
	g_init = true;
}

static bool decode_one(const uint8_t *p, size_t len, ZydisDecodedInstruction *zi, ZydisDecodedOperand *op)
{
	x86_init();
	return ZYAN_SUCCESS(ZydisDecoderDecodeFull(&g_dec, p, len, zi, op));
}

/* ---- fact resolution ---- */

static const char *import_at_slot(const struct pe *pe, uint32_t slot)
{
	for (size_t i = 0; i < pe->nimports; i++)
		if (pe->imports[i].iat_rva == slot && pe->imports[i].name)
			return pe->imports[i].name;
	return NULL;
}

static const char *export_at(const struct pe *pe, uint32_t rva)
{
	for (size_t i = 0; i < pe->nexports; i++)
		if (pe->exports[i].rva == rva && pe->exports[i].name)
			return pe->exports[i].name;
	return NULL;
}

bool x86_rip_jmp_slot(const uint8_t *p, uint32_t rva, uint32_t *slot)
{
	if (p[0] != 0xFF || p[1] != 0x25)
		return false;
	*slot = rva + X86_RIP_JMP_LEN + get_le32(p + 2);   /* disp32 after opcode and ModRM */
	return true;
}

/* An import thunk (x86_rip_jmp_slot; the linker's stub for a
 * non-__declspec(dllimport) call) at rva: the import's name. */
static const char *thunk_import(const struct pe *pe, uint32_t rva)
{
	const uint8_t *p = pe_ptr(pe, rva, X86_RIP_JMP_LEN);
	uint32_t slot;
	if (!p || !x86_rip_jmp_slot(p, rva, &slot))
		return NULL;
	return import_at_slot(pe, slot);
}

static const char *callee_name(const struct pe *pe, uint32_t rva)
{
	const char *n = export_at(pe, rva);
	return n ? n : thunk_import(pe, rva);
}

/* The UTF-16LE string at rva as UTF-8, when it is a plausible string:
 * 2..512 printable units followed by a NUL. */
static char *utf16_string_at(const struct pe *pe, uint32_t rva)
{
	size_t n = 0;
	for (;;) {
		const uint8_t *u = pe_ptr(pe, rva + 2 * (uint32_t)n, 2);
		if (!u || n > 512)
			return NULL;
		uint16_t c = get_le16(u);
		if (c == 0)
			break;
		if (c < 0x20 || c == 0xFFFF)
			return NULL;
		n++;
	}
	if (n < 2)
		return NULL;
	return utf16le_to_utf8(pe_ptr(pe, rva, 2 * (uint32_t)n), n);
}

static void resolve_facts(const struct pe *pe, struct x86_insn *in)
{
	const ZydisDecodedInstruction *zi = &in->zi;
	for (int i = 0; i < zi->operand_count_visible; i++) {
		const ZydisDecodedOperand *o = &in->op[i];
		ZyanU64 abs;
		if (o->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && o->imm.is_relative) {
			if (ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(zi, o, in->rva, &abs)) && abs < pe->size_of_image) {
				in->has_target = true;
				in->target = (uint32_t)abs;
			}
		} else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->mem.base == ZYDIS_REGISTER_RIP) {
			if (ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(zi, o, in->rva, &abs)) && abs < pe->size_of_image) {
				in->has_mem_rva = true;
				in->mem_rva = (uint32_t)abs;
			}
		} else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->mem.base == ZYDIS_REGISTER_NONE &&
			   o->mem.index == ZYDIS_REGISTER_NONE && o->mem.disp.has_displacement) {
			in->has_abs_mem = true;
			in->abs_mem = (uint64_t)o->mem.disp.value;
		}
	}
	bool branch = zi->meta.category == ZYDIS_CATEGORY_CALL || zi->meta.category == ZYDIS_CATEGORY_UNCOND_BR;
	if (branch && in->has_target)
		in->callee = callee_name(pe, in->target);
	else if (branch && in->has_mem_rva)
		in->callee = import_at_slot(pe, in->mem_rva);
	if (zi->mnemonic == ZYDIS_MNEMONIC_LEA && in->has_mem_rva)
		in->ustr = utf16_string_at(pe, in->mem_rva);
}

/* ---- function decoding ---- */

static int decode_chunk(const struct pe *pe, struct x86_func *f, size_t ci, size_t *cap)
{
	uint32_t b = f->chunk_begin[ci], e = f->chunk_end[ci];
	const uint8_t *p = pe_ptr(pe, b, e - b);
	if (!p)
		return err_set(E_FORMAT, "function chunk %#x-%#x is outside the file's section data", b, e);
	for (uint32_t off = 0; off < e - b;) {
		if (f->n == *cap) {
			size_t c = *cap ? *cap * 2 : 256;
			struct x86_insn *v = xrealloc(f->insn, c * sizeof *f->insn);
			if (!v) return err_prefix("decoding the function at %#x", f->begin);
			f->insn = v, *cap = c;
		}
		struct x86_insn *in = &f->insn[f->n++];
		memset(in, 0, sizeof *in);
		in->rva = b + off;
		in->chunk = (uint8_t)ci;
		if (decode_one(p + off, e - b - off, &in->zi, in->op)) {
			in->valid = true;
			in->len = in->zi.length;
			resolve_facts(pe, in);
		} else {
			in->len = 1;
		}
		off += in->len;
	}
	return 0;
}

int x86_decode_function(const struct pe *pe, uint32_t rva, struct x86_func *f)
{
	memset(f, 0, sizeof *f);
	if (pe->machine != PE_MACHINE_AMD64 || !pe->pe32plus)
		return err_set(E_UNSUPPORTED, "not an AMD64 PE32+ image");
	const struct pe_function *ch[16];
	size_t n = pe_function_chunks(pe, rva, ch, 16);
	if (n == 0)
		return err_set(E_NOTFOUND, "RVA %#x is in no .pdata function", rva);
	/* pe_function_chunks returns them in .pdata order (sorted by begin). */
	for (size_t i = 0; i < n; i++) {
		if (ch[i]->end <= ch[i]->begin || ch[i]->end - ch[i]->begin > 0x100000)
			return err_set(E_FORMAT, "implausible .pdata entry %#x-%#x", ch[i]->begin, ch[i]->end);
		f->chunk_begin[i] = ch[i]->begin;
		f->chunk_end[i] = ch[i]->end;
		if (ch[i]->begin == ch[i]->primary_begin) {
			f->begin = ch[i]->begin;
			f->end = ch[i]->end;
		}
	}
	f->nchunks = n;
	if (!f->end) {
		f->begin = ch[0]->primary_begin;
		f->end = ch[0]->end;
	}
	size_t cap = 0;
	/* a string operand that could not be copied (utf16_string_at) would
	 * read as "no string": out of memory fails the decoding instead */
	unsigned long nomem = err_nomem_count();
	for (size_t i = 0; i < n; i++)
		if (decode_chunk(pe, f, i, &cap) < 0 || err_nomem_count() != nomem) {
			if (err_nomem_count() != nomem) err_prefix("decoding the function at %#x", f->begin);
			x86_func_free(f);
			return -1;
		}
	return 0;
}

void x86_func_free(struct x86_func *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->insn[i].ustr);
	free(f->insn);
	memset(f, 0, sizeof *f);
}

long x86_index_at(const struct x86_func *f, uint32_t rva)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (f->insn[mid].rva < rva)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->n && f->insn[lo].rva == rva ? (long)lo : -1;
}

bool x86_is_boundary(const struct x86_func *f, uint32_t rva)
{
	for (size_t i = 0; i < f->nchunks; i++)
		if (rva == f->chunk_end[i])
			return true;
	return x86_index_at(f, rva) >= 0;
}

bool x86_chunk_of(const struct x86_func *f, uint32_t rva, uint32_t *begin, uint32_t *end)
{
	for (size_t i = 0; i < f->nchunks; i++)
		if (rva >= f->chunk_begin[i] && rva < f->chunk_end[i]) {
			*begin = f->chunk_begin[i];
			*end = f->chunk_end[i];
			return true;
		}
	return false;
}

/* ---- formatting ---- */

static void format_zi(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *op, uint32_t rva,
		      char *out, size_t outsz)
{
	x86_init();
	if (!ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&g_fmt, zi, op, zi->operand_count_visible, out, outsz,
							   rva, ZYAN_NULL)))
		msg_printf(out, outsz, "(bad)");
}

void x86_format(const struct x86_insn *in, char *out, size_t outsz)
{
	if (!in->valid) {
		msg_printf(out, outsz, "(bad)");
		return;
	}
	format_zi(&in->zi, in->op, in->rva, out, outsz);
}

int x86_format_bytes(const uint8_t *p, size_t len, uint32_t rva, char *out, size_t outsz)
{
	size_t used = 0;
	int count = 0, rc = 0;
	if (outsz)
		out[0] = 0;
	for (size_t off = 0; off < len;) {
		ZydisDecodedInstruction zi;
		ZydisDecodedOperand op[ZYDIS_MAX_OPERAND_COUNT];
		char one[96];
		size_t step;
		if (decode_one(p + off, len - off, &zi, op)) {
			format_zi(&zi, op, rva + (uint32_t)off, one, sizeof one);
			step = zi.length;
		} else {
			snprintf(one, sizeof one, "(bad %02x)", p[off]);   /* fits: 9 chars */
			step = 1;
			rc = -1;
		}
		/* text for a report: one that does not fit ends in " ..." */
		text_append(out, outsz, &used, "%s%s", count ? "; " : "", one);
		off += step;
		count++;
	}
	return rc < 0 ? -1 : count;
}

/* ---- predicates ---- */

bool x86_is(const struct x86_insn *in, ZydisMnemonic m)
{
	return in->valid && in->zi.mnemonic == m;
}

bool x86_is_short_jcc(const struct x86_insn *in, ZydisMnemonic m)
{
	return x86_is(in, m) && in->len == 2 && in->has_target &&
	       (in->zi.meta.category == ZYDIS_CATEGORY_COND_BR || in->zi.meta.category == ZYDIS_CATEGORY_UNCOND_BR);
}

bool x86_is_cond_branch(const struct x86_insn *in)
{
	return in->valid && in->zi.meta.category == ZYDIS_CATEGORY_COND_BR;
}

bool x86_ends_flow(const struct x86_insn *in)
{
	if (!in->valid)
		return true;
	switch (in->zi.meta.category) {
	case ZYDIS_CATEGORY_RET:
	case ZYDIS_CATEGORY_UNCOND_BR:
		return true;
	default:
		break;
	}
	return in->zi.mnemonic == ZYDIS_MNEMONIC_INT3 || in->zi.mnemonic == ZYDIS_MNEMONIC_HLT ||
	       in->zi.mnemonic == ZYDIS_MNEMONIC_UD2;
}

ZydisRegister x86_reg(const struct x86_insn *in, int i)
{
	if (!in->valid || i >= in->zi.operand_count_visible || in->op[i].type != ZYDIS_OPERAND_TYPE_REGISTER)
		return ZYDIS_REGISTER_NONE;
	return in->op[i].reg.value;
}

bool x86_imm(const struct x86_insn *in, int i, int64_t *v)
{
	if (!in->valid || i >= in->zi.operand_count_visible || in->op[i].type != ZYDIS_OPERAND_TYPE_IMMEDIATE)
		return false;
	*v = in->op[i].imm.is_signed ? in->op[i].imm.value.s : (int64_t)in->op[i].imm.value.u;
	return true;
}

bool x86_mem(const struct x86_insn *in, int i, ZydisRegister *base, int64_t *disp, unsigned *size_bits)
{
	if (!in->valid || i >= in->zi.operand_count_visible || in->op[i].type != ZYDIS_OPERAND_TYPE_MEMORY ||
	    in->op[i].mem.index != ZYDIS_REGISTER_NONE)
		return false;
	if (base)
		*base = in->op[i].mem.base;
	if (disp)
		*disp = in->op[i].mem.disp.has_displacement ? in->op[i].mem.disp.value : 0;
	if (size_bits)
		*size_bits = in->op[i].size;
	return true;
}

ZydisRegister x86_reg64(ZydisRegister r)
{
	if (r == ZYDIS_REGISTER_NONE)
		return r;
	ZydisRegisterClass c = ZydisRegisterGetClass(r);
	if (c != ZYDIS_REGCLASS_GPR8 && c != ZYDIS_REGCLASS_GPR16 && c != ZYDIS_REGCLASS_GPR32 &&
	    c != ZYDIS_REGCLASS_GPR64)
		return ZYDIS_REGISTER_NONE;
	return ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
}

bool x86_calls(const struct x86_insn *in, const char *name)
{
	if (!in->valid || !in->callee)
		return false;
	if (in->zi.meta.category != ZYDIS_CATEGORY_CALL && in->zi.meta.category != ZYDIS_CATEGORY_UNCOND_BR)
		return false;
	const char *c = strchr(in->callee, '!');
	return strcmp(c ? c + 1 : in->callee, name) == 0;
}

bool x86_is_nop(const struct x86_insn *in)
{
	return x86_is(in, ZYDIS_MNEMONIC_NOP);
}

/* ---- register constants ---- */

static int gpr_index(ZydisRegister r)
{
	ZydisRegister r64 = x86_reg64(r);
	if (r64 == ZYDIS_REGISTER_NONE)
		return -1;
	int id = ZydisRegisterGetId(r64);
	return id >= 0 && id < 16 ? id : -1;
}

/* Bits of the 64-bit register that r names, and where they start. */
static void reg_part(ZydisRegister r, uint64_t *mask, unsigned *shift)
{
	*shift = 0;
	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR8:
		*mask = 0xFF;
		if (r == ZYDIS_REGISTER_AH || r == ZYDIS_REGISTER_CH || r == ZYDIS_REGISTER_DH ||
		    r == ZYDIS_REGISTER_BH)
			*shift = 8;
		break;
	case ZYDIS_REGCLASS_GPR16:
		*mask = 0xFFFF;
		break;
	case ZYDIS_REGCLASS_GPR32:
		*mask = 0xFFFFFFFF;
		break;
	default:
		*mask = ~(uint64_t)0;
		break;
	}
}

void x86_regs_reset(struct x86_regs *r)
{
	memset(r, 0, sizeof *r);
}

bool x86_regs_get(const struct x86_regs *r, ZydisRegister reg, uint64_t *v)
{
	int i = gpr_index(reg);
	if (i < 0)
		return false;
	uint64_t mask;
	unsigned shift;
	reg_part(reg, &mask, &shift);
	if (((r->known[i] >> shift) & mask) != mask)
		return false;
	*v = (r->val[i] >> shift) & mask;
	return true;
}

/* Writes v into the part of the register reg names. A 32-bit write zero-
 * extends (Intel SDM vol. 1, 3.4.1.1); 8/16-bit writes keep the rest. */
static void reg_write(struct x86_regs *r, ZydisRegister reg, bool known, uint64_t v)
{
	int i = gpr_index(reg);
	if (i < 0)
		return;
	uint64_t mask;
	unsigned shift;
	reg_part(reg, &mask, &shift);
	if (ZydisRegisterGetClass(reg) == ZYDIS_REGCLASS_GPR32) {
		r->val[i] = known ? (v & mask) : 0;
		r->known[i] = known ? ~(uint64_t)0 : 0;
		return;
	}
	r->val[i] = (r->val[i] & ~(mask << shift)) | ((v & mask) << shift);
	if (known)
		r->known[i] |= mask << shift;
	else
		r->known[i] &= ~(mask << shift);
}

/* The constant an instruction writes to its first operand, if any. */
static bool const_result(const struct x86_regs *r, const struct x86_insn *in, uint64_t *v)
{
	ZydisRegister dst = x86_reg(in, 0);
	int64_t imm;
	if (dst == ZYDIS_REGISTER_NONE)
		return false;
	switch (in->zi.mnemonic) {
	case ZYDIS_MNEMONIC_MOV:
		if (x86_imm(in, 1, &imm)) {
			*v = (uint64_t)imm;
			return true;
		}
		return x86_reg(in, 1) != ZYDIS_REGISTER_NONE && x86_regs_get(r, x86_reg(in, 1), v);
	case ZYDIS_MNEMONIC_XOR:
	case ZYDIS_MNEMONIC_SUB:
		if (x86_reg(in, 1) == dst) {
			*v = 0;
			return true;
		}
		return false;
	case ZYDIS_MNEMONIC_LEA: {
		const ZydisDecodedOperand *m = &in->op[1];
		uint64_t b = 0, x = 0;
		if (m->type != ZYDIS_OPERAND_TYPE_MEMORY || m->mem.base == ZYDIS_REGISTER_RIP)
			return false;
		if (m->mem.base != ZYDIS_REGISTER_NONE && !x86_regs_get(r, m->mem.base, &b))
			return false;
		if (m->mem.index != ZYDIS_REGISTER_NONE && !x86_regs_get(r, m->mem.index, &x))
			return false;
		*v = b + x * (m->mem.scale ? m->mem.scale : 1) + (uint64_t)m->mem.disp.value;
		return true;
	}
	default:
		return false;
	}
}

void x86_regs_step(struct x86_regs *r, const struct x86_insn *in)
{
	if (!in->valid) {
		x86_regs_reset(r);
		return;
	}
	uint64_t v = 0;
	bool known = const_result(r, in, &v);
	for (int i = 0; i < in->zi.operand_count; i++) {
		const ZydisDecodedOperand *o = &in->op[i];
		if (o->type == ZYDIS_OPERAND_TYPE_REGISTER && (o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			reg_write(r, o->reg.value, false, 0);
	}
	if (in->zi.meta.category == ZYDIS_CATEGORY_CALL) {
		/* x64 calling convention: rax, rcx, rdx, r8-r11 are volatile. */
		static const ZydisRegister vol[] = { ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX,
						     ZYDIS_REGISTER_R8, ZYDIS_REGISTER_R9, ZYDIS_REGISTER_R10,
						     ZYDIS_REGISTER_R11 };
		for (size_t i = 0; i < sizeof vol / sizeof vol[0]; i++)
			reg_write(r, vol[i], false, 0);
	}
	if (known)
		reg_write(r, x86_reg(in, 0), true, v);
}

void x86_regs_track(struct x86_regs *r, const struct x86_func *f, size_t from, size_t to)
{
	x86_regs_reset(r);
	for (size_t i = from; i < to && i < f->n; i++)
		x86_regs_step(r, &f->insn[i]);
}

/* ---- encoder ---- */

int x86_encode(uint8_t *buf, size_t cap, size_t *pos, ZydisMnemonic m, int nops, const struct x86_enc_op *ops)
{
	ZydisEncoderRequest req;
	memset(&req, 0, sizeof req);
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.mnemonic = m;
	req.operand_count = (ZyanU8)nops;
	for (int i = 0; i < nops && i < ZYDIS_ENCODER_MAX_OPERANDS; i++) {
		ZydisEncoderOperand *o = &req.operands[i];
		switch (ops[i].kind) {
		case 'r':
			o->type = ZYDIS_OPERAND_TYPE_REGISTER;
			o->reg.value = ops[i].reg;
			break;
		case 'i':
			o->type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
			o->imm.s = ops[i].imm;
			break;
		default:
			o->type = ZYDIS_OPERAND_TYPE_MEMORY;
			o->mem.base = ops[i].reg;
			o->mem.displacement = ops[i].imm;
			o->mem.size = ops[i].size;
			break;
		}
	}
	uint8_t tmp[ZYDIS_MAX_INSTRUCTION_LENGTH];
	ZyanUSize len = sizeof tmp;
	if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, tmp, &len)))
		return err_set(E_INTERNAL, "Zydis cannot encode %s", ZydisMnemonicGetString(m));
	if (*pos > cap || len > cap - *pos)
		return err_set(E_NOSPACE, "replacement code does not fit in %zu bytes", cap);
	memcpy(buf + *pos, tmp, len);
	*pos += len;
	return 0;
}

void x86_nop_fill(uint8_t *p, size_t len)
{
	if (len)
		ZydisEncoderNopFill(p, len);
}
