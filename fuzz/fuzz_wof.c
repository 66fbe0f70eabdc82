/* fuzz_wof.c - libFuzzer harness: wof_parse_reparse, then wof_decompress
 * (wimlib's decompressors under our chunk table) on arbitrary bytes, and
 * wof_chunk on a table claiming a file over 4 GiB (8-byte entries).
 *
 * Input: 1 byte n, n bytes of reparse point; 3 bytes (LE) uncompressed size
 * (at most 16 MiB); the rest is the WofCompressedData stream. Seeds:
 * tests/wof.sh writes some to build-fuzz/corpus/wof. */
#include <stdint.h>
#include <stdlib.h>
#include "util.h"
#include "wof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4) return 0;
	size_t n = data[0];
	if (size < 1 + n + 3) return 0;
	const uint8_t *rp = data + 1, *u = data + 1 + n, *s = u + 3;
	size_t slen = size - (1 + n + 3);
	struct wof_info w;
	wof_reparse_tag(rp, n);
	if (wof_parse_reparse(rp, n, "fuzz", &w) == 0) {
		uint64_t usize = (uint64_t)u[0] | ((uint64_t)u[1] << 8) | ((uint64_t)u[2] << 16);
		if (slen <= wof_max_stream_size(&w, usize)) {
			uint8_t *out = malloc(usize ? usize : 1);
			wof_decompress(&w, s, slen, out, usize, "fuzz");
			free(out);
		}
		/* a file of 4 GiB + usize: 8-byte table entries */
		uint64_t off, stored;
		uint32_t ulen;
		uint64_t big = (1ull << 32) + usize;
		uint64_t chunks = big / w.chunk_size + (big % w.chunk_size != 0);
		wof_chunk(&w, s, slen, big, usize % chunks, &off, &stored, &ulen, "fuzz");
	}
	err_clear();
	return 0;
}
