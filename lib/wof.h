/* wof.h - files compressed by the Windows Overlay Filter's file provider
 * ("system compression", CompactOS, `compact /exe`; Windows 8.1 and later).
 *
 * Such a file is an NTFS reparse point with tag IO_REPARSE_TAG_WOF
 * (0x80000017); its unnamed data stream is sparse zeros of the file's real
 * size and its content is in the named data stream "WofCompressedData":
 * a table of chunk offsets followed by the chunks, each compressed with
 * XPRESS (Huffman) or LZX, or stored raw. This module owns that format
 * (doc/formats.md, WOF-compressed files); lib/ntfs.c reads the attributes
 * and calls it. The decompression itself is wimlib's public API
 * (wimlib_decompress).
 */
#ifndef GEN2PREP_WOF_H
#define GEN2PREP_WOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WOF_REPARSE_TAG 0x80000017u          /* IO_REPARSE_TAG_WOF (MS-FSCC 2.1.2.1) */
#define WOF_STREAM_NAME "WofCompressedData"  /* the named data stream with the chunks */
#define WOF_REPARSE_MAX 16384u               /* MAXIMUM_REPARSE_DATA_BUFFER_SIZE */

enum wof_algorithm { WOF_XPRESS4K = 0, WOF_LZX = 1, WOF_XPRESS8K = 2, WOF_XPRESS16K = 3 };

struct wof_info {
	uint32_t algorithm;          /* enum wof_algorithm */
	uint32_t chunk_size;         /* uncompressed bytes per chunk: 4096, 32768, 8192, 16384 */
};

/* "XPRESS4K", "LZX", "XPRESS8K", "XPRESS16K", or "unknown". */
const char *wof_algorithm_name(uint32_t algorithm);

/* The tag of a reparse point attribute value (REPARSE_DATA_BUFFER), 0 when
 * rp is shorter than its 8-byte header. */
uint32_t wof_reparse_tag(const uint8_t *rp, size_t len);

/* A short description of a reparse tag for messages ("symbolic link",
 * "WOF (compressed or WIMBoot file)", "reparse tag"). */
const char *wof_reparse_tag_name(uint32_t tag);

/* Parses the reparse point attribute value rp[len] of the file path (named
 * in errors). 0 with *w set when it describes a file-provider compressed
 * file; -1 with err set: E_FORMAT (truncated, lengths inconsistent),
 * E_UNSUPPORTED (another tag, WOF version, the WIM provider (WIMBoot), an
 * unknown provider, file-provider version or algorithm). */
int wof_parse_reparse(const uint8_t *rp, size_t len, const char *path, struct wof_info *w);

/* The largest valid WofCompressedData stream for a file of usize bytes:
 * the chunk table plus every chunk stored raw. */
uint64_t wof_max_stream_size(const struct wof_info *w, uint64_t usize);

/* Where chunk i (0-based) of a usize-byte file lies in the stream s[slen]:
 * *off from the start of the stream, *stored bytes, *ulen bytes once
 * decompressed (stored == ulen: kept raw). 0, or -1 with E_FORMAT naming
 * path when the table or offsets do not fit the stream. */
int wof_chunk(const struct wof_info *w, const uint8_t *s, uint64_t slen, uint64_t usize, uint64_t i,
	      uint64_t *off, uint64_t *stored, uint32_t *ulen, const char *path);

/* Decompresses the whole stream s[slen] into out[usize] (usize = size of
 * the file's unnamed data stream). 0, or -1 with err set naming path:
 * E_FORMAT for a table or chunk that is corrupt, E_NOMEM. */
int wof_decompress(const struct wof_info *w, const uint8_t *s, uint64_t slen, uint8_t *out, uint64_t usize,
		   const char *path);

#endif
