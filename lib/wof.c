/* wof.c - see wof.h.
 *
 * Sources for the layout (Microsoft documents the ioctl structures, not the
 * bytes on disk; both readers below agree, and so do the Windows-made files
 * they were written against):
 *  - MS-FSCC 2.1.2.1 REPARSE_DATA_BUFFER: the reparse point header.
 *  - ntifs.h WOF_EXTERNAL_INFO, FILE_PROVIDER_EXTERNAL_INFO_V1 (docs.microsoft
 *    .com, ns-ntifs-_wof_external_info / _file_provider_external_info_v1):
 *    versions, provider ids 1 (WIM) and 2 (FILE), algorithms 0-3 and their
 *    chunk sizes (XPRESS 4/8/16 KiB, LZX 32 KiB).
 *  - ntfs-3g-system-compression (E. Biggers), system_compression.c, and
 *    ntfs2btrfs (M. Harmstone), ntfs2btrfs.cpp/decomp.cpp: the reparse data
 *    on disk is the two structures above without the ioctl's Flags field
 *    (16 bytes after the header), and the stream layout.
 * The chunks are in wimlib's XPRESS (Huffman) and LZX formats with the chunk
 * size as the block size (LZX: a 32 KiB window), decompressed here with
 * wimlib's public API; no compression code of our own.
 */
#include "wof.h"
#include "util.h"

#include <wimlib.h>

/* REPARSE_DATA_BUFFER (MS-FSCC 2.1.2.1): ReparseTag at 0 (4 bytes),
 * ReparseDataLength at 4 (2), Reserved at 6 (2), data from 8. Tags with
 * bit 31 (Microsoft) set have no GUID: the data follows the header. */
#define RP_TAG 0
#define RP_DATA_LEN 4
#define RP_HEADER 8
/* WOF data: WOF_EXTERNAL_INFO {Version, Provider}, then for the file
 * provider FILE_PROVIDER_EXTERNAL_INFO_V1 {Version, Algorithm} (4 bytes
 * each, little endian), offsets from the start of the data. */
#define WOF_VERSION 0
#define WOF_PROVIDER 4
#define WOF_EXTERNAL_INFO_SIZE 8
#define FP_VERSION 8
#define FP_ALGORITHM 12
#define FP_INFO_END 16
#define WOF_CURRENT_VERSION 1
#define WOF_PROVIDER_WIM 1
#define WOF_PROVIDER_FILE 2
#define FILE_PROVIDER_CURRENT_VERSION 1

static const struct { const char *name; uint32_t chunk; } algorithms[] = {
	[WOF_XPRESS4K] = { "XPRESS4K", 4096 },
	[WOF_LZX] = { "LZX", 32768 },
	[WOF_XPRESS8K] = { "XPRESS8K", 8192 },
	[WOF_XPRESS16K] = { "XPRESS16K", 16384 },
};
#define NALGORITHMS (sizeof algorithms / sizeof *algorithms)

const char *wof_algorithm_name(uint32_t algorithm)
{
	return algorithm < NALGORITHMS ? algorithms[algorithm].name : "unknown";
}

uint32_t wof_reparse_tag(const uint8_t *rp, size_t len)
{
	return len >= RP_HEADER ? get_le32(rp + RP_TAG) : 0;
}

/* Tags from MS-FSCC 2.1.2.1 that a Windows volume commonly holds. */
const char *wof_reparse_tag_name(uint32_t tag)
{
	switch (tag) {
	case 0xA000000Cu: return "symbolic link";
	case 0xA0000003u: return "junction (mount point)";
	case 0x80000013u: return "deduplicated file (Data Deduplication)";
	case 0x8000001Bu: return "app execution alias";
	case WOF_REPARSE_TAG: return "WOF (compressed or WIMBoot file)";
	default:
		/* IO_REPARSE_TAG_CLOUD_*: 0x9000001A with bits 12-15 varying */
		if ((tag & 0xFFFF0FFFu) == 0x9000001Au) return "cloud file placeholder (OneDrive)";
		return "reparse point";
	}
}

/* Checks the header and the WOF_EXTERNAL_INFO; *data, *dlen: the data. */
static int wof_header(const uint8_t *rp, size_t len, const char *path, const uint8_t **data, size_t *dlen)
{
	if (len < RP_HEADER)
		return err_set(E_FORMAT, "%s: reparse point of %zu bytes is shorter than its header", path, len);
	uint32_t tag = get_le32(rp + RP_TAG);
	if (tag != WOF_REPARSE_TAG)
		return err_set(E_UNSUPPORTED, "%s: is a %s (reparse tag 0x%08X), not a plain file: its data cannot be read",
			       path, wof_reparse_tag_name(tag), tag);
	size_t n = get_le16(rp + RP_DATA_LEN);
	if (n > len - RP_HEADER)
		return err_set(E_FORMAT, "%s: WOF reparse point claims %zu data bytes, holds %zu", path, n, len - RP_HEADER);
	if (n < WOF_EXTERNAL_INFO_SIZE)
		return err_set(E_FORMAT, "%s: WOF reparse data of %zu bytes is too short", path, n);
	*data = rp + RP_HEADER;
	*dlen = n;
	return 0;
}

int wof_parse_reparse(const uint8_t *rp, size_t len, const char *path, struct wof_info *w)
{
	const uint8_t *d = NULL;
	size_t n = 0;
	if (wof_header(rp, len, path, &d, &n) < 0) return -1;
	uint32_t version = get_le32(d + WOF_VERSION), provider = get_le32(d + WOF_PROVIDER);
	if (version != WOF_CURRENT_VERSION)
		return err_set(E_UNSUPPORTED, "%s: WOF reparse point version %u (only %u is known)", path, version,
			       WOF_CURRENT_VERSION);
	if (provider == WOF_PROVIDER_WIM)
		return err_set(E_UNSUPPORTED, "%s: WIMBoot file (WOF WIM provider): its data is in a WIM file outside "
			       "this volume", path);
	if (provider != WOF_PROVIDER_FILE)
		return err_set(E_UNSUPPORTED, "%s: unknown WOF provider %u (known: 1 WIM, 2 file)", path, provider);
	if (n < FP_INFO_END)
		return err_set(E_FORMAT, "%s: WOF file provider data of %zu bytes is too short (%d needed)", path, n,
			       FP_INFO_END);
	uint32_t fpv = get_le32(d + FP_VERSION), alg = get_le32(d + FP_ALGORITHM);
	if (fpv != FILE_PROVIDER_CURRENT_VERSION)
		return err_set(E_UNSUPPORTED, "%s: WOF file provider version %u (only %u is known)", path, fpv,
			       FILE_PROVIDER_CURRENT_VERSION);
	if (alg >= NALGORITHMS)
		return err_set(E_UNSUPPORTED, "%s: unknown WOF compression algorithm %u "
			       "(known: 0 XPRESS4K, 1 LZX, 2 XPRESS8K, 3 XPRESS16K)", path, alg);
	w->algorithm = alg;
	w->chunk_size = algorithms[alg].chunk;
	return 0;
}

/* The chunk table (system_compression.c; decomp.cpp): one entry per chunk
 * but the first, whose offset is implicitly 0; entries are 4 bytes when the
 * uncompressed size fits 32 bits (<= 4 GiB - 1), else 8; offsets count from
 * the end of the table; the last chunk ends at the end of the stream. */
static uint64_t nchunks(const struct wof_info *w, uint64_t usize)
{
	return usize / w->chunk_size + (usize % w->chunk_size != 0);
}

static unsigned entry_size(uint64_t usize) { return usize <= UINT32_MAX ? 4 : 8; }

static uint64_t table_size(const struct wof_info *w, uint64_t usize)
{
	uint64_t n = nchunks(w, usize);
	return n ? (n - 1) * entry_size(usize) : 0;
}

uint64_t wof_max_stream_size(const struct wof_info *w, uint64_t usize)
{
	return table_size(w, usize) + usize;
}

/* Offset (from the end of the table) where chunk i starts. */
static uint64_t chunk_start(const uint8_t *s, uint64_t usize, uint64_t i)
{
	if (i == 0) return 0;
	const uint8_t *e = s + (i - 1) * entry_size(usize);
	return entry_size(usize) == 4 ? get_le32(e) : get_le64(e);
}

int wof_chunk(const struct wof_info *w, const uint8_t *s, uint64_t slen, uint64_t usize, uint64_t i,
	      uint64_t *off, uint64_t *stored, uint32_t *ulen, const char *path)
{
	uint64_t n = nchunks(w, usize), table = table_size(w, usize);
	if (i >= n) return err_set(E_INTERNAL, "%s: WOF chunk %llu of %llu", path, (unsigned long long)i, (unsigned long long)n);
	if (slen < table)
		return err_set(E_FORMAT, "%s: WofCompressedData of %llu bytes is shorter than its chunk table (%llu bytes)",
			       path, (unsigned long long)slen, (unsigned long long)table);
	uint64_t data = slen - table;
	uint64_t start = chunk_start(s, usize, i);
	uint64_t end = i + 1 < n ? chunk_start(s, usize, i + 1) : data;
	*ulen = i + 1 < n ? w->chunk_size : (uint32_t)(usize - i * w->chunk_size);
	if (start > end || end > data)
		return err_set(E_FORMAT, "%s: WofCompressedData chunk %llu of %llu is corrupt: bytes %llu-%llu "
			       "outside the %llu bytes after the chunk table", path, (unsigned long long)i,
			       (unsigned long long)n, (unsigned long long)start, (unsigned long long)end,
			       (unsigned long long)data);
	/* a chunk that did not shrink is stored raw: never larger, never empty */
	if (end == start || end - start > *ulen)
		return err_set(E_FORMAT, "%s: WofCompressedData chunk %llu of %llu is corrupt: %llu stored bytes "
			       "for %u", path, (unsigned long long)i, (unsigned long long)n,
			       (unsigned long long)(end - start), *ulen);
	*off = table + start;
	*stored = end - start;
	return 0;
}

static int new_decompressor(const struct wof_info *w, const char *path, struct wimlib_decompressor **d)
{
	enum wimlib_compression_type t = w->algorithm == WOF_LZX ? WIMLIB_COMPRESSION_TYPE_LZX
								 : WIMLIB_COMPRESSION_TYPE_XPRESS;
	int rc = wimlib_create_decompressor(t, w->chunk_size, d);
	if (rc == WIMLIB_ERR_NOMEM) return err_set(E_NOMEM, "%s: no memory for a %s decompressor", path,
						   wof_algorithm_name(w->algorithm));
	if (rc) return err_set(E_INTERNAL, "%s: wimlib cannot make a %s decompressor: %s", path,
			       wof_algorithm_name(w->algorithm), wimlib_get_error_string(rc));
	return 0;
}

int wof_decompress(const struct wof_info *w, const uint8_t *s, uint64_t slen, uint8_t *out, uint64_t usize,
		   const char *path)
{
	uint64_t n = nchunks(w, usize);
	if (n == 0) return 0;
	struct wimlib_decompressor *d = NULL;
	if (new_decompressor(w, path, &d) < 0) return -1;
	int rc = 0;
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		uint64_t off, stored;
		uint32_t ulen;
		if (wof_chunk(w, s, slen, usize, i, &off, &stored, &ulen, path) < 0) { rc = -1; break; }
		uint8_t *dst = out + i * w->chunk_size;
		if (stored == ulen) memcpy(dst, s + off, ulen);
		else if (wimlib_decompress(s + off, (size_t)stored, dst, ulen, d) != 0)
			rc = err_set(E_FORMAT, "%s: WofCompressedData chunk %llu of %llu is corrupt: %s data does not "
				     "decompress to %u bytes", path, (unsigned long long)i, (unsigned long long)n,
				     wof_algorithm_name(w->algorithm), ulen);
	}
	wimlib_free_decompressor(d);
	return rc;
}
