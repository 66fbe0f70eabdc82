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
#include "vhd_format.h"

#include <stdlib.h>

#define VHD_DEFAULT_BLOCK (2u << 20)        /* spec: default block size 2 MB */
#define VHD_EPOCH         946684800ull      /* 2000-01-01 00:00:00 UTC */

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

/* "Hard Disk Footer Format" (doc/formats.md, VHD). Creator Application
 * "win " / host "Wi2k": readers disagree on the disk size of a VHD
 * (Virtual PC rounds it to the CHS geometry, Hyper-V uses Current Size);
 * qemu (block/vpc.c) uses Current Size only for a few creator applications,
 * among them Hyper-V's "win ". Our images are made for Hyper-V, whose size
 * semantics we declare so that every reader sees exactly Current Size
 * bytes. */
static void vhd_footer(struct vhd_footer *f, const struct wctx *w, bool fixed)
{
	uint16_t cyl;
	uint8_t heads, spt;
	uint64_t ts = w->opts->timestamp > VHD_EPOCH ? w->opts->timestamp - VHD_EPOCH : 0;
	memset(f, 0, sizeof *f);
	memcpy(f->cookie, VHD_COOKIE, 8);
	be32_set(&f->features, 2);                      /* reserved bit always set */
	be32_set(&f->version, 0x00010000);              /* File Format Version 1.0 */
	be64_set(&f->data_offset, fixed ? UINT64_MAX : 512);   /* the dynamic header */
	be32_set(&f->timestamp, (uint32_t)(ts > UINT32_MAX ? UINT32_MAX : ts));
	memcpy(f->creator_app, "win ", 4);              /* see above */
	be32_set(&f->creator_version, 0x000a0000);
	memcpy(f->creator_host_os, "Wi2k", 4);          /* Windows */
	be64_set(&f->original_size, w->size);
	be64_set(&f->current_size, w->size);
	vhd_chs(w->size, &cyl, &heads, &spt);
	be16_set(&f->cylinders, cyl);
	f->heads = heads;
	f->sectors_per_track = spt;
	be32_set(&f->disk_type, fixed ? VHD_DISK_FIXED : VHD_DISK_DYNAMIC);
	memcpy(f->unique_id, w->opts->disk_id.b, 16);
	f->saved_state = 0;
	be32_set(&f->checksum, vhd_checksum(f, sizeof *f, VHD_FOOTER_CHECKSUM_OFF));
}

static int vhd_fixed(struct wctx *w)
{
	const uint32_t chunk = VHD_DEFAULT_BLOCK;
	struct vhd_footer footer;
	if (wctx_truncate(w, w->size + sizeof footer) < 0)
		return -1;
	int rc = wctx_copy_plain(w, chunk);
	if (rc) return -1;
	vhd_footer(&footer, w, true);
	return wctx_pwrite(w, &footer, sizeof footer, w->size);
}

/* "Dynamic Disk Header Format" (doc/formats.md, VHD). */
static void vhd_dyn_header(struct vhd_dyn_header *h, uint64_t bat_off, uint32_t entries, uint32_t bs)
{
	memset(h, 0, sizeof *h);
	memcpy(h->cookie, VHD_SPARSE_COOKIE, 8);
	be64_set(&h->data_offset, UINT64_MAX);     /* unused, all ones */
	be64_set(&h->table_offset, bat_off);
	be32_set(&h->header_version, 0x00010000);
	be32_set(&h->max_table_entries, entries);
	be32_set(&h->block_size, bs);
	be32_set(&h->checksum, vhd_checksum(h, sizeof *h, VHD_DYN_CHECKSUM_OFF));
}

static int vhd_dynamic(struct wctx *w, uint32_t bs)
{
	uint64_t nblocks = (w->size + bs - 1) / bs;
	uint64_t bat_off = 1536, bat_len = (nblocks * 4 + 511) / 512 * 512;
	uint32_t bitmap = (bs / 512 / 8 + 511) / 512 * 512;
	uint64_t next = bat_off + bat_len;   /* next block's file offset (512-aligned) */
	be32 *bat = xmalloc(bat_len);
	uint8_t *bm = bat ? xmalloc(bitmap) : NULL;
	struct vhd_dyn_header hdr;
	struct vhd_footer footer;
	int rc = 0;
	if (!bm) {
		free(bat);
		return err_prefix("VHD block table");
	}
	memset(bat, 0xff, bat_len);          /* VHD_BAT_UNUSED: block not allocated */
	memset(bm, 0xff, bitmap);
	for (uint64_t b = 0; b < nblocks && rc == 0; b++) {
		uint64_t off = b * bs;
		size_t n = w->size - off < bs ? (size_t)(w->size - off) : bs;
		/* the data after the bitmap if the block holds any, else nothing */
		int r = wctx_copy(w, off, n, next + bitmap);
		if (r < 0) { rc = -1; break; }
		if (r == 0) continue;
		if (next / 512 > UINT32_MAX - 1) {
			rc = err_set(E_UNSUPPORTED, "VHD output too large for 32-bit sector offsets");
			break;
		}
		be32_set(&bat[b], (uint32_t)(next / 512));
		rc = wctx_pwrite(w, bm, bitmap, next);
		next += bitmap + bs;   /* last block: full size on disk, tail a hole */
	}
	if (!rc) rc = wctx_flush_run(w);
	if (!rc) {
		vhd_footer(&footer, w, false);
		vhd_dyn_header(&hdr, bat_off, (uint32_t)nblocks, bs);
		rc = wctx_pwrite(w, bat, bat_len, bat_off);
		if (!rc) rc = wctx_pwrite(w, &hdr, sizeof hdr, sizeof footer);
		if (!rc) rc = wctx_pwrite(w, &footer, sizeof footer, 0);
		if (!rc) rc = wctx_pwrite(w, &footer, sizeof footer, next);
	}
	free(bat);
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
