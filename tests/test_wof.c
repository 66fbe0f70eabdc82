/* test_wof.c - lib/wof.c: the WOF reparse data and WofCompressedData
 * stream of WOF-compressed files. Streams are built here with wimlib's
 * compressor (its public API, not lib/wof.c) and a chunk table written from
 * the layout in doc/formats.md, WofCompressedData chunk table, then decoded
 * by wof_decompress; broken reparse data and tables must fail with the
 * reason and the file's name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wimlib.h>
#include "util.h"
#include "wof.h"

static const char *P = "\\Windows\\System32\\ntoskrnl.exe";

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* A reparse point attribute value: tag, data length, reserved, words. */
static size_t reparse(uint8_t *b, uint32_t tag, const uint32_t *w, size_t nw)
{
	put32(b, tag);
	b[4] = (uint8_t)(4 * nw); b[5] = 0; b[6] = b[7] = 0;
	for (size_t i = 0; i < nw; i++) put32(b + 8 + 4 * i, w[i]);
	return 8 + 4 * nw;
}

static void expect_error(int rc, enum err_code code, const char *needle)
{
	assert_int_equal(rc, -1);
	assert_int_equal(err_code(), code);
	if (!strstr(err_msg(), needle) || !strstr(err_msg(), P)) fail_msg("message '%s' lacks '%s' or the path", err_msg(), needle);
	err_clear();
}

static void parse_valid(void **st)
{
	static const uint32_t chunk[] = { 4096, 32768, 8192, 16384 };
	static const char *name[] = { "XPRESS4K", "LZX", "XPRESS8K", "XPRESS16K" };
	for (uint32_t a = 0; a < 4; a++) {
		uint8_t b[64];
		uint32_t w[] = { 1, 2, 1, a };
		size_t n = reparse(b, WOF_REPARSE_TAG, w, 4);
		assert_int_equal(n, 24);
		struct wof_info wi;
		assert_int_equal(wof_parse_reparse(b, n, P, &wi), 0);
		assert_int_equal(wi.algorithm, a);
		assert_int_equal(wi.chunk_size, chunk[a]);
		assert_string_equal(wof_algorithm_name(a), name[a]);
		assert_int_equal(wof_reparse_tag(b, n), 0x80000017u);
	}
}

static void parse_refused(void **st)
{
	uint8_t b[64];
	struct wof_info wi;
	size_t n;
	uint32_t unknown_alg[] = { 1, 2, 1, 4 }, wim[] = { 1, 1, 1, 0 }, prov3[] = { 1, 3, 1, 0 };
	uint32_t v2[] = { 2, 2, 1, 0 }, fpv2[] = { 1, 2, 2, 0 }, ok[] = { 1, 2, 1, 1 };
	n = reparse(b, WOF_REPARSE_TAG, unknown_alg, 4);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_UNSUPPORTED, "unknown WOF compression algorithm 4");
	n = reparse(b, WOF_REPARSE_TAG, wim, 4);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_UNSUPPORTED, "WIMBoot");
	n = reparse(b, WOF_REPARSE_TAG, prov3, 4);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_UNSUPPORTED, "unknown WOF provider 3");
	n = reparse(b, WOF_REPARSE_TAG, v2, 4);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_UNSUPPORTED, "WOF reparse point version 2");
	n = reparse(b, WOF_REPARSE_TAG, fpv2, 4);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_UNSUPPORTED, "file provider version 2");
	/* other reparse points: named, not read */
	n = reparse(b, 0xA000000Cu, ok, 4);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_UNSUPPORTED, "symbolic link (reparse tag 0xA000000C)");
	n = reparse(b, 0x80000013u, ok, 0);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_UNSUPPORTED, "deduplicated");
	n = reparse(b, 0x9000601Au, ok, 0);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_UNSUPPORTED, "cloud file");
	/* lengths */
	n = reparse(b, WOF_REPARSE_TAG, ok, 4);
	expect_error(wof_parse_reparse(b, 7, P, &wi), E_FORMAT, "shorter than its header");
	expect_error(wof_parse_reparse(b, n - 1, P, &wi), E_FORMAT, "claims 16 data bytes, holds 15");
	n = reparse(b, WOF_REPARSE_TAG, ok, 1);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_FORMAT, "too short");
	n = reparse(b, WOF_REPARSE_TAG, ok, 3);
	expect_error(wof_parse_reparse(b, n, P, &wi), E_FORMAT, "file provider data of 12 bytes");
	assert_int_equal(wof_reparse_tag(b, 7), 0);
}

/* The WofCompressedData stream of data[len] (wimlib's compressor). */
static uint8_t *make_stream(const struct wof_info *w, const uint8_t *data, size_t len, size_t *slen, size_t *nraw)
{
	size_t cs = w->chunk_size, n = (len + cs - 1) / cs, table = n ? (n - 1) * 4 : 0;
	struct wimlib_compressor *c = NULL;
	assert_int_equal(wimlib_create_compressor(w->algorithm == WOF_LZX ? WIMLIB_COMPRESSION_TYPE_LZX
						 : WIMLIB_COMPRESSION_TYPE_XPRESS, cs, 0, &c), 0);
	uint8_t *s = calloc(1, table + len + 1);
	size_t pos = table;
	*nraw = 0;
	for (size_t i = 0; i < n; i++) {
		size_t ul = i + 1 < n ? cs : len - i * cs;
		if (i) put32(s + (i - 1) * 4, (uint32_t)(pos - table));
		size_t cl = wimlib_compress(data + i * cs, ul, s + pos, ul - 1, c);
		if (!cl) { memcpy(s + pos, data + i * cs, ul); cl = ul; (*nraw)++; }
		pos += cl;
	}
	wimlib_free_compressor(c);
	*slen = pos;
	return s;
}

/* Half text-like (compresses), half pseudo-random (stored raw), with x86
 * CALL opcodes (0xE8) for LZX's E8 translation near chunk ends. */
static uint8_t *sample(size_t len, unsigned seed)
{
	uint8_t *d = malloc(len + 1);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		bool noisy = (i / 20000) % 2;
		d[i] = noisy ? (uint8_t)(x >> 16) : (uint8_t)("E8 call 0123456789 abcdef\n"[i % 26]);
		if (i % 97 == 3) d[i] = 0xE8;
	}
	return d;
}

static void round_trip(void **st)
{
	for (uint32_t a = 0; a < 4; a++) {
		struct wof_info w = { a, 0 };
		static const uint32_t cs[] = { 4096, 32768, 8192, 16384 };
		w.chunk_size = cs[a];
		size_t sizes[] = { 1, 255, w.chunk_size - 1, w.chunk_size, w.chunk_size + 1, 5 * w.chunk_size + 123, 200000 };
		for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
			size_t len = sizes[k], slen, nraw;
			uint8_t *d = sample(len, (unsigned)(a * 10 + k));
			uint8_t *s = make_stream(&w, d, len, &slen, &nraw);
			assert_true(slen <= wof_max_stream_size(&w, len));
			uint8_t *out = malloc(len);
			if (wof_decompress(&w, s, slen, out, len, P) != 0)
				fail_msg("%s %zu bytes: %s", wof_algorithm_name(a), len, err_msg());
			assert_memory_equal(out, d, len);
			if (len == 200000) assert_true(nraw > 0 && nraw < (len + w.chunk_size - 1) / w.chunk_size);
			free(d); free(s); free(out);
		}
	}
	struct wof_info w = { WOF_XPRESS4K, 4096 };
	assert_int_equal(wof_decompress(&w, NULL, 0, NULL, 0, P), 0);   /* empty file */
}

/* 4-byte entries up to 4 GiB - 1 bytes, 8-byte entries from 4 GiB on. */
static void table_width(void **st)
{
	struct wof_info w = { WOF_XPRESS4K, 4096 };
	uint64_t n = ((uint64_t)UINT32_MAX + 4095) / 4096;
	assert_int_equal(wof_max_stream_size(&w, UINT32_MAX), (n - 1) * 4 + UINT32_MAX);
	assert_int_equal(wof_max_stream_size(&w, 1ull << 32), (n - 1) * 8 + (1ull << 32));
	/* a 5 GiB LZX file: read chunk locations from an 8-byte table */
	struct wof_info l = { WOF_LZX, 32768 };
	uint64_t usize = 5ull << 30, chunks = usize / 32768, table = (chunks - 1) * 8;
	uint64_t slen = table + chunks * 100;
	uint8_t *s = calloc(1, table);
	for (uint64_t i = 1; i < chunks; i++) put64(s + (i - 1) * 8, i * 100);
	uint64_t off, stored;
	uint32_t ulen;
	assert_int_equal(wof_chunk(&l, s, slen, usize, 0, &off, &stored, &ulen, P), 0);
	assert_int_equal(off, table); assert_int_equal(stored, 100); assert_int_equal(ulen, 32768);
	assert_int_equal(wof_chunk(&l, s, slen, usize, chunks - 1, &off, &stored, &ulen, P), 0);
	assert_int_equal(off, table + (chunks - 1) * 100); assert_int_equal(stored, 100);
	put64(s + 7 * 8, (uint64_t)1 << 40);   /* chunk 8 starts past the end */
	expect_error(wof_chunk(&l, s, slen, usize, 8, &off, &stored, &ulen, P), E_FORMAT, "chunk 8 of 163840 is corrupt");
	free(s);
}

static void corrupt_streams(void **st)
{
	struct wof_info w = { WOF_XPRESS4K, 4096 };
	size_t len = 5 * 4096 + 10, slen, nraw;
	uint8_t *d = sample(len, 7), *out = malloc(len);
	uint8_t *s = make_stream(&w, d, len, &slen, &nraw);
	uint8_t *c = malloc(slen);
	/* shorter than the table */
	expect_error(wof_decompress(&w, s, 10, out, len, P), E_FORMAT, "shorter than its chunk table");
	/* an offset past the end of the data */
	memcpy(c, s, slen); put32(c + 4, 0xFFFFFFF0u);
	expect_error(wof_decompress(&w, c, slen, out, len, P), E_FORMAT, "chunk 1 of 6 is corrupt");
	/* offsets going backwards */
	memcpy(c, s, slen); put32(c + 8, 1);
	expect_error(wof_decompress(&w, c, slen, out, len, P), E_FORMAT, "chunk 2 of 6 is corrupt");
	/* an empty chunk (two equal offsets) */
	memcpy(c, s, slen); put32(c + 4, get_le32(c));
	expect_error(wof_decompress(&w, c, slen, out, len, P), E_FORMAT, "0 stored bytes");
	/* a chunk larger than its uncompressed size */
	uint8_t big[5 * 4 + 4200] = { 0 };
	for (int i = 0; i < 5; i++) put32(big + 4 * i, 4097 + i);
	expect_error(wof_decompress(&w, big, sizeof big, out, len, P), E_FORMAT, "4097 stored bytes for 4096");
	/* a compressed chunk whose Huffman code lengths are invalid (all 15) */
	memcpy(c, s, slen); memset(c + 5 * 4, 0xFF, 256);
	expect_error(wof_decompress(&w, c, slen, out, len, P), E_FORMAT, "does not decompress");
	/* the stream cut short: the last chunk shrinks to nothing or less */
	expect_error(wof_decompress(&w, s, slen - (slen - 5 * 4 - get_le32(s + 16)), out, len, P), E_FORMAT, "chunk 5 of 6");
	free(d); free(out); free(s); free(c);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(parse_valid),
		cmocka_unit_test(parse_refused),
		cmocka_unit_test(round_trip),
		cmocka_unit_test(table_width),
		cmocka_unit_test(corrupt_streams),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
