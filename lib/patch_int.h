/* patch_int.h - what the engine (patch.c) and the catalog (patch_catalog.c)
 * share: a catalog entry is data (id, binary, versions, how to find
 * candidate functions) plus one small matcher made of anchor predicates
 * over a decoded function (x86.h); the engine does everything else
 * (candidates, decoding, uniqueness, checks, writing, checksum, report).
 */
#ifndef GEN2PREP_PATCH_INT_H
#define GEN2PREP_PATCH_INT_H

#include "patch.h"
#include "x86.h"

/* One byte range a site replaces. `applied` is set by the matcher when it
 * recognised our own edit there already (the recogniser), else the range
 * holds the original instructions the anchors accepted. */
struct site_edit {
	uint32_t rva, len;
	uint8_t after[128];
	bool applied;
};

struct patch_site {
	uint32_t func_begin, func_end;
	size_t nedits;
	struct site_edit edit[PATCH_MAX_EDITS];
};

/* How the engine finds candidate functions before decoding them: a cheap
 * byte-level prefilter over the executable sections that may over-match
 * (the matcher decides), never under-match. */
enum cand_how {
	CAND_EXPORT,     /* the function of export `name` */
	CAND_CALLERS,    /* functions referencing export/IAT slot/thunk of `name` */
	CAND_UTF16_REFS, /* functions referencing one of `strings` (UTF-16LE) */
	CAND_BYTES,      /* functions containing one of `patterns` */
};

struct byte_pattern {           /* bytes[i] & mask[i] == want[i] */
	uint8_t len;
	uint8_t want[12], mask[12];
};

struct cand_spec {
	enum cand_how how;
	const char *name;
	const char *const *strings;              /* NULL-terminated */
	const struct byte_pattern *patterns;     /* npatterns */
	size_t npatterns;
};

struct match_ctx {
	const struct pe *pe;
	unsigned version;
};

struct patch_entry {
	const char *id;
	enum pe_kind kind;
	unsigned min_version, max_version;       /* (major << 8) | minor, inclusive */
	struct cand_spec cand;
	const char *anchors;                     /* one line, for "not found" messages */
	/* Anchors + edit builder + already-applied recogniser in one: returns
	 * the number of sites f holds (original or already patched; the first
	 * one filled in), 0 when none, -1 with err set on a hard error (e.g.
	 * the replacement does not fit). */
	int (*match)(const struct match_ctx *c, const struct x86_func *f, struct patch_site *site);
};

extern const struct patch_entry patch_catalog[];
extern const size_t patch_catalog_n;

#define VER(maj, min) (((unsigned)(maj) << 8) | (unsigned)(min))

/* Helpers for matchers (patch.c). */
/* Adds an edit replacing the whole instructions [insn i, insn j] of f
 * with `after` (len bytes, must equal the range); returns 0 or -1. */
int site_add(struct patch_site *s, uint32_t rva, const uint8_t *after, uint32_t len, bool applied);
/* Walking back from idx over at most `window` instructions: the index after
 * the nearest instruction that ends straight-line flow or is a call (its
 * register effects are unknown to us), else idx - window. */
size_t straight_line_start(const struct x86_func *f, size_t idx, size_t window);
/* Call at index ci to KeBugCheckEx whose BugCheckCode/Parameter1/Parameter2
 * (ecx, rdx, r8) equal the given values (-1 = don't care), tracking
 * register constants from instruction `from` to the call. */
bool is_bugcheck_call(const struct x86_func *f, size_t from, size_t ci, int64_t code, int64_t p1, int64_t p2);

/* Flow inside one decoded function (patch_flow.c): fall-through within a
 * chunk and jump targets inside f; calls return. */
/* Marks reach[k] (f->n flags, caller-zeroed or accumulated) for every
 * instruction reachable from index `from`, `from` included. */
void flow_reach(const struct x86_func *f, size_t from, bool *reach);
/* True when the value instruction i leaves in register r reaches a `ret`
 * in eax/rax on some path, carried by register copies (mov r32/r64, r) and
 * not overwritten on the way (calls clobber the volatile registers). */
bool flow_value_returned(const struct x86_func *f, size_t i, ZydisRegister r);

#endif
