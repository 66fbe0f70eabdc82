/* writer_vhd.c - VHD output, fixed and dynamic, per the "Virtual Hard Disk
 * Image Format Specification" (Microsoft, October 2006, v1.0). All fields
 * are big-endian.
 *
 * Dynamic layout written here:
 *   0      footer copy (512)
 *   512    dynamic disk header (1024)
 *   1536   BAT (Max Table Entries u32, padded to a 512-byte boundary)
 *   ...    blocks, in virtual order, only those holding data: each is the
 *          sector bitmap (one bit per sector, padded to 512 bytes; all ones:
 *          every sector is present) followed by Block Size bytes of data
 *   end    footer (512)
 * Fixed: the virtual disk followed by the footer.
 */
#include "writer_int.h"
#include "overlay.h"
#include "util.h"

#include <stdlib.h>

#define VHD_MAX_SIZE      (2040ull << 30)   /* spec: up to 2040 GB */
#define VHD_DEFAULT_BLOCK (2u << 20)        /* spec: default block size 2 MB */
#define VHD_EPOCH         946684800ull      /* 2000-01-01 00:00:00 UTC */

/* Footer checksum / dynamic header checksum: one's complement of the sum
 * of all bytes, the checksum field itself taken as zero (spec, "Checksum"). */
static uint32_t vhd_checksum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i++) sum += p[i];
	return ~sum;
}

/* Spec appendix "CHS Calculation": geometry from the total sector count,
 * capped at 65535 cylinders x 16 heads x 255 sectors. */
static void vhd_chs(uint64_t size, uint16_t *cyl, uint8_t *heads, uint8_t *spt)
{
	uint64_t total = size / 512, cth;
	uint32_t s, h;
	if (total > 65535ull * 16 * 255)
		total = 65535ull * 16 * 255;
	if (total >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = total / s;
	} else {
		s = 17;
		cth = total / s;
		h = (uint32_t)((cth + 1023) / 1024);
		if (h < 4) h = 4;
		if (cth >= h * 1024ull || h > 16) {
			s = 31;
			h = 16;
			cth = total / s;
		}
		if (cth >= h * 1024ull) {
			s = 63;
			h = 16;
			cth = total / s;
		}
	}
	*cyl = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*spt = (uint8_t)s;
}

/* "Hard Disk Footer Format". Creator Application "win " / host "Wi2k":
 * readers disagree on the disk size of a VHD (Virtual PC rounds it to the
 * CHS geometry, Hyper-V uses Current Size); qemu (block/vpc.c) uses Current
 * Size only for a few creator applications, among them Hyper-V's "win ".
 * Our images are made for Hyper-V, whose size semantics we declare so
 * that every reader sees exactly Current Size bytes. */
static void vhd_footer(uint8_t f[512], const struct wctx *w, bool fixed)
{
	uint16_t cyl;
	uint8_t heads, spt;
	uint64_t ts = w->opts->timestamp > VHD_EPOCH ? w->opts->timestamp - VHD_EPOCH : 0;
	memset(f, 0, 512);
	memcpy(f, "conectix", 8);
	put_be32(f + 8, 2);                         /* Features: reserved bit always set */
	put_be32(f + 12, 0x00010000);               /* File Format Version 1.0 */
	put_be64(f + 16, fixed ? UINT64_MAX : 512); /* Data Offset: the dynamic header */
	put_be32(f + 24, (uint32_t)(ts > UINT32_MAX ? UINT32_MAX : ts));
	memcpy(f + 28, "win ", 4);                  /* Creator Application (see above) */
	put_be32(f + 32, 0x000a0000);               /* Creator Version */
	memcpy(f + 36, "Wi2k", 4);                  /* Creator Host OS: Windows */
	put_be64(f + 40, w->size);                  /* Original Size */
	put_be64(f + 48, w->size);                  /* Current Size */
	vhd_chs(w->size, &cyl, &heads, &spt);
	f[56] = (uint8_t)(cyl >> 8);
	f[57] = (uint8_t)cyl;
	f[58] = heads;
	f[59] = spt;
	put_be32(f + 60, fixed ? 2 : 3);            /* Disk Type */
	memcpy(f + 68, w->opts->disk_id.b, 16);     /* Unique Id */
	f[84] = 0;                                  /* Saved State */
	put_be32(f + 64, vhd_checksum(f, 512));
}

static int vhd_fixed(struct wctx *w)
{
	const uint32_t chunk = VHD_DEFAULT_BLOCK;
	uint8_t footer[512];
	if (wctx_truncate(w, w->size + 512) < 0)
		return -1;
	int rc = wctx_copy_plain(w, chunk);
	if (rc) return -1;
	vhd_footer(footer, w, true);
	return wctx_pwrite(w, footer, 512, w->size);
}

/* "Dynamic Disk Header Format" (1024 bytes). */
static void vhd_dyn_header(uint8_t h[1024], uint64_t bat_off, uint32_t entries, uint32_t bs)
{
	memset(h, 0, 1024);
	memcpy(h, "cxsparse", 8);
	put_be64(h + 8, UINT64_MAX);     /* Data Offset: unused, all ones */
	put_be64(h + 16, bat_off);       /* Table Offset */
	put_be32(h + 24, 0x00010000);    /* Header Version */
	put_be32(h + 28, entries);       /* Max Table Entries */
	put_be32(h + 32, bs);            /* Block Size */
	put_be32(h + 36, vhd_checksum(h, 1024));
}

static int vhd_dynamic(struct wctx *w, uint32_t bs)
{
	uint64_t nblocks = (w->size + bs - 1) / bs;
	uint64_t bat_off = 1536, bat_len = (nblocks * 4 + 511) / 512 * 512;
	uint32_t bitmap = (bs / 512 / 8 + 511) / 512 * 512;
	uint64_t next = bat_off + bat_len;   /* next block's file offset (512-aligned) */
	uint8_t *bat = xmalloc(bat_len);
	uint8_t *buf = xmalloc(bs);
	uint8_t *bm = xmalloc(bitmap);
	uint8_t hdr[1024], footer[512];
	int rc = 0;
	memset(bat, 0xff, bat_len);          /* 0xFFFFFFFF: block not allocated */
	memset(bm, 0xff, bitmap);
	for (uint64_t b = 0; b < nblocks && rc == 0; b++) {
		uint64_t off = b * bs;
		size_t n = w->size - off < bs ? (size_t)(w->size - off) : bs;
		int r = wctx_read_block(w, buf, n, off);
		if (r < 0) { rc = -1; break; }
		if (r == 0) continue;
		if (n < bs) memset(buf + n, 0, bs - n);   /* last block: full size on disk */
		if (next / 512 > UINT32_MAX - 1) {
			rc = err_set(E_UNSUPPORTED, "VHD output too large for 32-bit sector offsets");
			break;
		}
		put_be32(bat + 4 * b, (uint32_t)(next / 512));
		rc = wctx_pwrite(w, bm, bitmap, next);
		if (!rc) rc = wctx_pwrite_sparse(w, buf, bs, next + bitmap);
		next += bitmap + bs;
	}
	if (!rc) {
		vhd_footer(footer, w, false);
		vhd_dyn_header(hdr, bat_off, (uint32_t)nblocks, bs);
		rc = wctx_pwrite(w, bat, bat_len, bat_off);
		if (!rc) rc = wctx_pwrite(w, hdr, sizeof hdr, 512);
		if (!rc) rc = wctx_pwrite(w, footer, 512, 0);
		if (!rc) rc = wctx_pwrite(w, footer, 512, next);
	}
	free(bat);
	free(buf);
	free(bm);
	return rc;
}

int writer_vhd_write(struct wctx *w)
{
	if (w->size % 512)
		return err_set(E_UNSUPPORTED, "VHD needs a size that is a multiple of 512 bytes (%llu)",
			       (unsigned long long)w->size);
	if (w->size > VHD_MAX_SIZE)
		return err_set(E_UNSUPPORTED, "the disk (%llu GiB) is larger than VHD allows (2040 GiB): use VHDX",
			       (unsigned long long)(w->size >> 30));
	if (w->opts->logical_sector_size && w->opts->logical_sector_size != 512)
		return err_set(E_UNSUPPORTED, "VHD has 512-byte sectors only; the disk has %u-byte sectors: use VHDX",
			       w->opts->logical_sector_size);
	if (w->opts->fixed)
		return vhd_fixed(w);
	uint32_t bs = w->opts->block_size ? w->opts->block_size : VHD_DEFAULT_BLOCK;
	if (bs < 4096 || bs > (256u << 20) || (bs & (bs - 1)))
		return err_set(E_USAGE, "VHD block size %u is not a power of two between 4 KiB and 256 MiB", bs);
	return vhd_dynamic(w, bs);
}
