/* fuzz_vhdx_bat - libFuzzer harness for lib/vhdmeta.c, our own parse of
 * VHDX headers / region tables / metadata / BAT and of VHD footers /
 * dynamic headers / BAT.
 *
 * A VHDX keeps its structures at 64 KiB .. several MiB, far beyond what a
 * fuzzer mutates well, so the input describes a sparse file:
 *   byte 0      flags: bit 0 VHD instead of VHDX, bit 1 fix up the CRC-32C
 *               of both headers and region tables (lets mutations get past
 *               the checksums), bit 2 fix up the VHD footer checksum
 *   bytes 1-4   file size in KiB (little endian, capped at 64 MiB)
 *   then        records: u32 offset in 512-byte units, u16 length, bytes
 * Everything not covered by a record reads as zeros. Then every
 * maybe_allocated query shape is run on what parsed.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "util.h"
#include "vhdmeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

struct rec { uint64_t off; const uint8_t *p; size_t n; };
struct vfile {
	struct rec recs[64];
	int nrec;
	uint64_t size;
	uint8_t fix[5][65536];   /* fixed-up copies of headers / region tables */
	uint64_t fix_off[5];
	size_t fix_len[5];
	int nfix;
};

static void copy_in(uint8_t *dst, uint64_t off, size_t len, const uint8_t *src, uint64_t soff, size_t slen)
{
	uint64_t s = soff > off ? soff : off;
	uint64_t e = soff + slen < off + len ? soff + slen : off + len;
	if (s < e) memcpy(dst + (s - off), src + (s - soff), (size_t)(e - s));
}

static int vread(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct vfile *v = ctx;
	memset(buf, 0, len);
	for (int i = 0; i < v->nrec; i++)
		copy_in(buf, off, len, v->recs[i].p, v->recs[i].off, v->recs[i].n);
	for (int i = 0; i < v->nfix; i++)
		copy_in(buf, off, len, v->fix[i], v->fix_off[i], v->fix_len[i]);
	return 0;
}

static void add_fix(struct vfile *v, uint64_t off, size_t len, size_t crc_field)
{
	if (v->nfix == 5 || !range_ok(off, len, v->size)) return;
	uint8_t *b = v->fix[v->nfix];
	vread(v, b, len, off);
	put_le32(b + crc_field, 0);
	put_le32(b + crc_field, crc32c(b, len));
	v->fix_off[v->nfix] = off;
	v->fix_len[v->nfix] = len;
	v->nfix++;
}

static void add_vhd_fix(struct vfile *v)
{
	if (v->nfix == 5 || v->size < 512) return;
	uint8_t *b = v->fix[v->nfix];
	vread(v, b, 512, v->size - 512);
	put_be32(b + 64, 0);
	uint32_t sum = 0;
	for (int i = 0; i < 512; i++) sum += b[i];
	put_be32(b + 64, ~sum);
	v->fix_off[v->nfix] = v->size - 512;
	v->fix_len[v->nfix] = 512;
	v->nfix++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct vfile v;
	if (len < 5) return 0;
	memset(&v, 0, offsetof(struct vfile, fix));
	v.nfix = 0;
	uint8_t flags = data[0];
	v.size = (uint64_t)(get_le32(data + 1) & ((1u << 16) - 1)) * 1024;
	size_t i = 5;
	while (i + 6 <= len && v.nrec < 64) {
		uint64_t off = (uint64_t)get_le32(data + i) * 512;
		size_t n = get_le16(data + i + 4);
		i += 6;
		if (n > len - i) n = len - i;
		v.recs[v.nrec++] = (struct rec){ off, data + i, n };
		i += n;
	}
	bool vhd = flags & 1;
	if (!vhd && (flags & 2)) {
		add_fix(&v, 64 * 1024, 4096, 4);
		add_fix(&v, 128 * 1024, 4096, 4);
		add_fix(&v, 192 * 1024, 65536, 4);
		add_fix(&v, 256 * 1024, 65536, 4);
	}
	if (vhd && (flags & 4))
		add_vhd_fix(&v);
	struct vhdmeta *m = vhdmeta_parse_with(vread, &v, -1, v.size, !vhd);
	if (!m) {
		err_clear();
		return 0;
	}
	const struct vhdmeta_info *mi = vhdmeta_info(m);
	uint64_t vs = mi->virtual_size;
	uint64_t bs = mi->block_size ? mi->block_size : 4096;
	(void)vhdmeta_maybe_allocated(m, 0, vs);
	(void)vhdmeta_maybe_allocated(m, vs / 2, bs * 3 + 7);
	(void)vhdmeta_maybe_allocated(m, vs ? vs - 1 : 0, 1);
	(void)vhdmeta_maybe_allocated(m, vs, 4096);
	(void)vhdmeta_maybe_allocated(m, UINT64_MAX - 10, 20);
	for (uint64_t b = 0; b < 64 && b * bs < vs; b++)
		(void)vhdmeta_maybe_allocated(m, b * bs, bs);
	vhdmeta_free(m);
	return 0;
}
