/* x86.h - the Zydis layer of the patch engine: decode a whole function
 * (every .pdata chunk) once into instructions carrying resolved facts, so
 * the catalog's anchors are small predicates over an array instead of
 * decode loops of their own. Also formatting (Intel syntax, for reports),
 * encoding (replacement code, through ZydisEncoderEncodeInstruction) and a
 * tiny straight-line register-constant tracker (for "ecx = 79h at the call
 * to KeBugCheckEx", whether set by mov, lea [zero+imm] or xor).
 *
 * Only 64-bit code (PE32+ AMD64 images) is decoded.
 */
#ifndef GEN2PREP_X86_H
#define GEN2PREP_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <Zydis/Zydis.h>

struct pe;

struct x86_insn {
	uint32_t rva;
	uint8_t len;
	bool valid;                 /* false: undecodable byte, len 1 */
	uint8_t chunk;              /* index into x86_func.chunks */
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand op[ZYDIS_MAX_OPERAND_COUNT]; /* visible first, then hidden */
	/* Resolved facts (only the ones that apply are set). */
	bool has_target;            /* relative jmp/jcc/call: absolute RVA */
	uint32_t target;
	bool has_mem_rva;           /* rip-relative memory operand (or lea): absolute RVA */
	uint32_t mem_rva;
	bool has_abs_mem;           /* memory operand with no base/index: absolute VA */
	uint64_t abs_mem;
	const char *callee;         /* call/jmp target name: export, "dll!name" import
				       (IAT slot or jmp [IAT] thunk); points into pe */
	char *ustr;                 /* lea r, [rip+x] at a UTF-16 string: its UTF-8 text */
};

struct x86_func {
	uint32_t begin, end;        /* primary chunk [begin, end) */
	size_t nchunks;
	uint32_t chunk_begin[16], chunk_end[16];
	size_t n;
	struct x86_insn *insn;      /* every chunk's instructions, in RVA order */
};

/* Decodes every chunk of the function containing rva. -1 with err set
 * (E_NOTFOUND when rva is in no .pdata function, E_UNSUPPORTED for
 * non-AMD64 images). */
int x86_decode_function(const struct pe *pe, uint32_t rva, struct x86_func *f);
void x86_func_free(struct x86_func *f);

/* Index of the instruction starting at rva, -1 if none. */
long x86_index_at(const struct x86_func *f, uint32_t rva);
/* True when rva is an instruction boundary (or the end of a chunk). */
bool x86_is_boundary(const struct x86_func *f, uint32_t rva);
/* The chunk [begin,end) containing rva; false if none. */
bool x86_chunk_of(const struct x86_func *f, uint32_t rva, uint32_t *begin, uint32_t *end);

/* Decodes a byte buffer (replacement code, or bytes read back) as 64-bit
 * code at runtime address rva, formatting each instruction in Intel syntax
 * joined by "; ". Returns the instruction count, -1 when some bytes do not
 * decode. */
int x86_format_bytes(const uint8_t *p, size_t len, uint32_t rva, char *out, size_t outsz);
/* One instruction, Intel syntax, targets as absolute RVAs. */
void x86_format(const struct x86_insn *in, char *out, size_t outsz);

/* ---- predicates (all false on an invalid instruction) ---- */
bool x86_is(const struct x86_insn *in, ZydisMnemonic m);
/* Short (rel8, 2-byte) conditional/unconditional jump with mnemonic m. */
bool x86_is_short_jcc(const struct x86_insn *in, ZydisMnemonic m);
bool x86_is_cond_branch(const struct x86_insn *in);
/* Ends straight-line flow: ret, jmp, int3, hlt, ud2, or a call to a
 * noreturn routine is NOT included (callers decide). */
bool x86_ends_flow(const struct x86_insn *in);
/* Operand i (visible) is a register: returns it, else ZYDIS_REGISTER_NONE. */
ZydisRegister x86_reg(const struct x86_insn *in, int i);
/* Operand i is an immediate: stores its value (sign-extended to 64). */
bool x86_imm(const struct x86_insn *in, int i, int64_t *v);
/* Operand i is memory [base + disp] (no index); base may be NONE. */
bool x86_mem(const struct x86_insn *in, int i, ZydisRegister *base, int64_t *disp, unsigned *size_bits);
/* The 64-bit register enclosing r (eax -> rax, r9d -> r9), NONE if not a GPR. */
ZydisRegister x86_reg64(ZydisRegister r);
/* Call/jmp to a routine named name ("KeBugCheckEx", matched with or
 * without a "dll!" prefix). */
bool x86_calls(const struct x86_insn *in, const char *name);
bool x86_is_nop(const struct x86_insn *in);

/* ---- straight-line register constants ---- */
struct x86_regs {
	uint64_t val[16];
	uint64_t known[16];         /* bit mask of known bits */
};
void x86_regs_reset(struct x86_regs *r);
/* Applies one instruction's effect: mov/lea/xor/sub/and-with-0 give
 * constants, every other register write forgets, calls clobber the
 * volatile registers (x64 calling convention). */
void x86_regs_step(struct x86_regs *r, const struct x86_insn *in);
/* Value of (the low bits of) reg when fully known. */
bool x86_regs_get(const struct x86_regs *r, ZydisRegister reg, uint64_t *v);

/* Tracks registers from instruction `from` up to (not including) `to`. */
void x86_regs_track(struct x86_regs *r, const struct x86_func *f, size_t from, size_t to);

/* ---- encoder ---- */
/* Tiny operand builders for x86_encode(). */
struct x86_enc_op {
	char kind;                  /* 'r' register, 'i' immediate, 'm' memory */
	ZydisRegister reg;          /* 'r', or base of 'm' */
	int64_t imm;                /* 'i', or displacement of 'm' */
	uint16_t size;              /* 'm' size in bytes */
};
#define X86_R(r) ((struct x86_enc_op){ 'r', (r), 0, 0 })
#define X86_I(v) ((struct x86_enc_op){ 'i', ZYDIS_REGISTER_NONE, (int64_t)(v), 0 })
#define X86_M(b, d, sz) ((struct x86_enc_op){ 'm', (b), (d), (sz) })
/* Encodes one instruction with the Zydis encoder, appending to buf at *pos
 * (cap bytes). -1 with err set when it cannot be encoded or does not fit. */
int x86_encode(uint8_t *buf, size_t cap, size_t *pos, ZydisMnemonic m,
	       int nops, const struct x86_enc_op *ops);
/* Fills with the recommended multi-byte NOP forms (ZydisEncoderNopFill). */
void x86_nop_fill(uint8_t *p, size_t len);

/* `jmp qword ptr [rip+disp32]`, FF 25 disp32 (Intel SDM vol. 2A "JMP",
 * FF /4 with ModRM 00 100 101; 2.2.1.6 "RIP-Relative Addressing": the
 * target is read from next RIP + disp32), the linker's thunk for a call
 * into an import: when p[0..X86_RIP_JMP_LEN) is one, at RVA rva, true
 * with *slot the RVA of the qword it jumps through. */
#define X86_RIP_JMP_LEN 6
bool x86_rip_jmp_slot(const uint8_t *p, uint32_t rva, uint32_t *slot);

#endif
