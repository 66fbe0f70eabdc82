/* vhdmeta.c - see vhdmeta.h. Layout facts are cited where they are used:
 * "VHD" is the Virtual Hard Disk Image Format Specification (Microsoft,
 * 2006, v1.0), "MS-VHDX" is [MS-VHDX] v20160714 (section numbers given).
 */
#include "vhdmeta.h"
#include "crc32c.h"
#include <stdio.h>
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

enum blk { BLK_ZERO = 0, BLK_DATA = 1, BLK_PARENT = 2 };

struct vhdmeta {
	struct vhdmeta_info info;
	int fd;
	uint64_t *block_off;   /* file offset of each payload block's data, 0 if none */
	uint8_t *block_state;  /* enum blk per payload block */
};

/* ---- shared helpers ---------------------------------------------------- */

struct rd {
	vhdmeta_read_fn fn;
	void *ctx;
	uint64_t size;
};

static int rd_at(const struct rd *r, void *buf, size_t len, uint64_t off, const char *what)
{
	if (!range_ok(off, len, r->size))
		return err_set(E_FORMAT, "%s at offset %llu is past the end of the file (%llu bytes)", what,
			       (unsigned long long)off, (unsigned long long)r->size);
	return r->fn(r->ctx, buf, len, off);
}

static bool pow2(uint64_t v) { return v && !(v & (v - 1)); }

static struct vhdmeta *meta_alloc(int fd, uint64_t blocks)
{
	struct vhdmeta *m = xcalloc(1, sizeof *m);
	m->fd = fd;
	m->info.payload_blocks = blocks;
	if (blocks) {
		m->block_off = xcalloc(blocks, sizeof *m->block_off);
		m->block_state = xcalloc(blocks, 1);
	}
	return m;
}

/* ---- VHDX -------------------------------------------------------------- */

/* MS-VHDX 2.2: fixed positions of the header section. */
#define VHDX_HEADER1_OFF   (64u * 1024)
#define VHDX_HEADER2_OFF   (128u * 1024)
#define VHDX_HEADER_SIZE   4096u
#define VHDX_REGION1_OFF   (192u * 1024)
#define VHDX_REGION2_OFF   (256u * 1024)
#define VHDX_REGION_SIZE   (64u * 1024)
#define VHDX_MAX_VSIZE     (64ull << 40)   /* 2.6.2.2: at most 64 TB */

/* GUIDs in on-disk (mixed-endian) byte order. */
static const uint8_t GUID_BAT_REGION[16] =      /* 2DC27766-F623-4200-9D64-115E9BFD4A08, 2.3.1 */
	{0x66,0x77,0xc2,0x2d,0x23,0xf6,0x00,0x42,0x9d,0x64,0x11,0x5e,0x9b,0xfd,0x4a,0x08};
static const uint8_t GUID_METADATA_REGION[16] = /* 8B7CA206-4790-4B9A-B8FE-575F050F886E, 2.3.1 */
	{0x06,0xa2,0x7c,0x8b,0x90,0x47,0x9a,0x4b,0xb8,0xfe,0x57,0x5f,0x05,0x0f,0x88,0x6e};
static const uint8_t GUID_FILE_PARAMS[16] =     /* CAA16737-FA36-4D43-B3B6-33F0AA44E76B, 2.6.2.1 */
	{0x37,0x67,0xa1,0xca,0x36,0xfa,0x43,0x4d,0xb3,0xb6,0x33,0xf0,0xaa,0x44,0xe7,0x6b};
static const uint8_t GUID_VDISK_SIZE[16] =      /* 2FA54224-CD1B-4876-B211-5DBED83BF4B8, 2.6.2.2 */
	{0x24,0x42,0xa5,0x2f,0x1b,0xcd,0x76,0x48,0xb2,0x11,0x5d,0xbe,0xd8,0x3b,0xf4,0xb8};
static const uint8_t GUID_PAGE83[16] =          /* BECA12AB-B2E6-4523-93EF-C309E000C746, 2.6.2.3 */
	{0xab,0x12,0xca,0xbe,0xe6,0xb2,0x23,0x45,0x93,0xef,0xc3,0x09,0xe0,0x00,0xc7,0x46};
static const uint8_t GUID_LOGICAL_SS[16] =      /* 8141BF1D-A96F-4709-BA47-F233A8FAAB5F, 2.6.2.4 */
	{0x1d,0xbf,0x41,0x81,0x6f,0xa9,0x09,0x47,0xba,0x47,0xf2,0x33,0xa8,0xfa,0xab,0x5f};
static const uint8_t GUID_PHYSICAL_SS[16] =     /* CDA348C7-445D-4471-9CC9-E9885251C556, 2.6.2.5 */
	{0xc7,0x48,0xa3,0xcd,0x5d,0x44,0x71,0x44,0x9c,0xc9,0xe9,0x88,0x52,0x51,0xc5,0x56};

static const uint8_t GUID_PARENT_LOCATOR[16] =  /* A8D35F2D-B30B-454D-ABF7-D3D84834AB0C, 2.6.2.6 */
	{0x2d,0x5f,0xd3,0xa8,0x0b,0xb3,0x4d,0x45,0xab,0xf7,0xd3,0xd8,0x48,0x34,0xab,0x0c};

/* MS-VHDX 2.2.2 header: Signature "head" u32, Checksum u32, SequenceNumber
 * u64, FileWriteGuid, DataWriteGuid, LogGuid, LogVersion u16, Version u16,
 * LogLength u32, LogOffset u64; CRC-32C over the 4 KiB with Checksum = 0. */
static bool vhdx_header_valid(uint8_t *h)
{
	if (memcmp(h, "head", 4))
		return false;
	uint32_t want = get_le32(h + 4);
	put_le32(h + 4, 0);
	uint32_t got = crc32c(h, VHDX_HEADER_SIZE);
	put_le32(h + 4, want);
	return got == want && get_le16(h + 66) == 1;   /* Version MUST be 1 */
}

static int vhdx_pick_header(const struct rd *r)
{
	uint8_t *h1 = xmalloc(VHDX_HEADER_SIZE), *h2 = xmalloc(VHDX_HEADER_SIZE);
	int rc = -1;
	if (rd_at(r, h1, VHDX_HEADER_SIZE, VHDX_HEADER1_OFF, "VHDX header 1") < 0 ||
	    rd_at(r, h2, VHDX_HEADER_SIZE, VHDX_HEADER2_OFF, "VHDX header 2") < 0)
		goto out;
	bool v1 = vhdx_header_valid(h1), v2 = vhdx_header_valid(h2);
	if (!v1 && !v2) {
		err_set(E_FORMAT, "no valid VHDX header (bad signature or CRC-32C in both copies)");
		goto out;
	}
	/* 2.2.2.1: the current header is the valid one with the greater
	 * SequenceNumber. */
	const uint8_t *cur = !v2 ? h1 : !v1 ? h2 : (get_le64(h1 + 8) >= get_le64(h2 + 8) ? h1 : h2);
	/* A non-zero LogGuid means the log holds entries that must be
	 * replayed before the file reads correctly (2.3.3); neither we nor
	 * libvhdi replay, so reading would return stale blocks. */
	static const uint8_t zero16[16];
	if (memcmp(cur + 48, zero16, 16)) {
		err_set(E_UNSUPPORTED, "the VHDX log is not empty (the image was not closed cleanly): "
			"attach it once in Hyper-V or run 'qemu-img check -r all' on a copy");
		goto out;
	}
	rc = 0;
out:
	free(h1);
	free(h2);
	return rc;
}

struct vhdx_regions {
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
};

/* MS-VHDX 2.2.3 region table: Signature "regi", Checksum (CRC-32C over
 * 64 KiB), EntryCount (<= 2047), Reserved; entries of 32 bytes: Guid,
 * FileOffset u64, Length u32, Required bit 0. */
static int vhdx_region_table_parse(const uint8_t *t, struct vhdx_regions *out)
{
	uint32_t n = get_le32(t + 8);
	if (n > 2047)
		return err_set(E_FORMAT, "VHDX region table has %u entries (max 2047)", n);
	memset(out, 0, sizeof *out);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + 16 + 32 * (size_t)i;
		uint64_t off = get_le64(e + 16);
		uint32_t len = get_le32(e + 24);
		bool required = get_le32(e + 28) & 1;
		if (!memcmp(e, GUID_BAT_REGION, 16)) {
			out->bat_off = off, out->bat_len = len;
		} else if (!memcmp(e, GUID_METADATA_REGION, 16)) {
			out->meta_off = off, out->meta_len = len;
		} else if (required) {
			return err_set(E_UNSUPPORTED, "VHDX has an unknown required region");
		}
	}
	/* 2.2.3.1: FileOffset and Length MUST be multiples of 1 MB. */
	if (!out->bat_len || !out->meta_len)
		return err_set(E_FORMAT, "VHDX region table lacks the BAT or metadata region");
	if ((out->bat_off | out->meta_off | out->bat_len | out->meta_len) & ((1u << 20) - 1))
		return err_set(E_FORMAT, "VHDX region not aligned to 1 MB");
	return 0;
}

static bool vhdx_region_table_valid(uint8_t *t)
{
	if (memcmp(t, "regi", 4))
		return false;
	uint32_t want = get_le32(t + 4);
	put_le32(t + 4, 0);
	uint32_t got = crc32c(t, VHDX_REGION_SIZE);
	put_le32(t + 4, want);
	return got == want;
}

static int vhdx_read_regions(const struct rd *r, struct vhdx_regions *reg)
{
	uint8_t *t = xmalloc(VHDX_REGION_SIZE);
	int rc = -1;
	if (rd_at(r, t, VHDX_REGION_SIZE, VHDX_REGION1_OFF, "VHDX region table") < 0)
		goto out;
	if (!vhdx_region_table_valid(t)) {
		/* 2.2.3: the second copy is used when the first is corrupt */
		if (rd_at(r, t, VHDX_REGION_SIZE, VHDX_REGION2_OFF, "VHDX region table 2") < 0)
			goto out;
		if (!vhdx_region_table_valid(t)) {
			err_set(E_FORMAT, "no valid VHDX region table (bad signature or CRC-32C)");
			goto out;
		}
	}
	rc = vhdx_region_table_parse(t, reg);
out:
	free(t);
	return rc;
}

struct vhdx_items {
	uint32_t block_size, lss, pss;
	bool leave_allocated, has_parent;
	uint64_t vsize;
	struct guid page83;
	unsigned found;   /* bit per required item */
};

/* Reads one metadata item value of exactly len bytes (MS-VHDX 2.6.1.1:
 * Offset >= 64 KiB, item entirely inside the metadata region). */
static int vhdx_item(const struct rd *r, const struct vhdx_regions *reg, const uint8_t *e,
		     void *val, uint32_t len)
{
	uint32_t off = get_le32(e + 16), ilen = get_le32(e + 20);
	if (ilen < len || off < 65536 || !range_ok(off, ilen, reg->meta_len))
		return err_set(E_FORMAT, "VHDX metadata item outside its region or too short");
	return rd_at(r, val, len, reg->meta_off + off, "VHDX metadata item");
}

/* MS-VHDX 2.6.1: metadata table (64 KiB at the start of the metadata
 * region): Signature "metadata", Reserved u16, EntryCount u16 (<= 2047),
 * Reserved2; entries of 32 bytes: ItemId, Offset u32, Length u32, flags
 * (IsUser bit 0, IsVirtualDisk bit 1, IsRequired bit 2), Reserved2. */
static int vhdx_read_metadata(const struct rd *r, const struct vhdx_regions *reg, struct vhdx_items *it)
{
	uint8_t *t = xmalloc(65536);
	uint8_t v[16];
	int rc = -1;
	memset(it, 0, sizeof *it);
	if (reg->meta_len < 65536 || rd_at(r, t, 65536, reg->meta_off, "VHDX metadata table") < 0) {
		if (reg->meta_len < 65536) err_set(E_FORMAT, "VHDX metadata region too small");
		goto out;
	}
	if (memcmp(t, "metadata", 8)) {
		err_set(E_FORMAT, "VHDX metadata table signature missing");
		goto out;
	}
	uint16_t n = get_le16(t + 10);
	if (n > 2047) {
		err_set(E_FORMAT, "VHDX metadata table has %u entries (max 2047)", n);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = t + 32 + 32 * (size_t)i;
		uint32_t flags = get_le32(e + 24);
		if (flags & 1)
			continue;   /* user metadata: not ours to interpret */
		if (!memcmp(e, GUID_FILE_PARAMS, 16)) {
			if (vhdx_item(r, reg, e, v, 8) < 0) goto out;
			it->block_size = get_le32(v);
			it->leave_allocated = get_le32(v + 4) & 1;
			it->has_parent = get_le32(v + 4) & 2;
			it->found |= 1;
		} else if (!memcmp(e, GUID_VDISK_SIZE, 16)) {
			if (vhdx_item(r, reg, e, v, 8) < 0) goto out;
			it->vsize = get_le64(v);
			it->found |= 2;
		} else if (!memcmp(e, GUID_PAGE83, 16)) {
			if (vhdx_item(r, reg, e, v, 16) < 0) goto out;
			memcpy(it->page83.b, v, 16);
			it->found |= 4;
		} else if (!memcmp(e, GUID_LOGICAL_SS, 16)) {
			if (vhdx_item(r, reg, e, v, 4) < 0) goto out;
			it->lss = get_le32(v);
			it->found |= 8;
		} else if (!memcmp(e, GUID_PHYSICAL_SS, 16)) {
			if (vhdx_item(r, reg, e, v, 4) < 0) goto out;
			it->pss = get_le32(v);
			it->found |= 16;
		} else if (!memcmp(e, GUID_PARENT_LOCATOR, 16)) {
			continue;   /* libvhdi reads the parent locator */
		} else if (flags & 4) {
			/* unknown system item marked required: we cannot know
			 * what it changes (2.6.1.2 IsRequired) */
			err_set(E_UNSUPPORTED, "VHDX has an unknown required metadata item");
			goto out;
		}
	}
	if ((it->found & 0x1b) != 0x1b) {
		err_set(E_FORMAT, "VHDX metadata lacks a required item (file parameters, size or sector size)");
		goto out;
	}
	/* 2.6.2.1: BlockSize a power of two, 1 MB .. 256 MB. 2.6.2.4/5:
	 * sector sizes 512 or 4096. 2.6.2.2: size a multiple of the logical
	 * sector size, at most 64 TB. */
	if (!pow2(it->block_size) || it->block_size < (1u << 20) || it->block_size > (256u << 20)) {
		err_set(E_FORMAT, "VHDX block size %u invalid", it->block_size);
		goto out;
	}
	if ((it->lss != 512 && it->lss != 4096) || (it->pss != 512 && it->pss != 4096)) {
		err_set(E_FORMAT, "VHDX sector sizes %u/%u invalid", it->lss, it->pss);
		goto out;
	}
	if (it->vsize == 0 || it->vsize > VHDX_MAX_VSIZE || it->vsize % it->lss) {
		err_set(E_FORMAT, "VHDX virtual size %llu invalid", (unsigned long long)it->vsize);
		goto out;
	}
	rc = 0;
out:
	free(t);
	return rc;
}

/* MS-VHDX 2.5: BAT entries are u64: State bits 0-2, FileOffsetMB bits
 * 20-63. Payload states (2.5.1.1): NOT_PRESENT 0, UNDEFINED 1, ZERO 2,
 * UNMAPPED 3, FULLY_PRESENT 6, PARTIALLY_PRESENT 7 (differencing only).
 * Entries interleave: after every ChunkRatio payload entries comes one
 * sector bitmap entry, ChunkRatio = 2^23 * LogicalSectorSize / BlockSize
 * (2.5). */
static int vhdx_read_bat(const struct rd *r, const struct vhdx_regions *reg,
			 const struct vhdx_items *it, struct vhdmeta *m)
{
	uint64_t bs = it->block_size, nblocks = m->info.payload_blocks;
	uint64_t ratio = ((uint64_t)1 << 23) * it->lss / bs;
	uint64_t total = it->has_parent ? ((nblocks + ratio - 1) / ratio) * (ratio + 1)
					: nblocks + (nblocks - 1) / ratio;
	if (total > reg->bat_len / 8)
		return err_set(E_FORMAT, "VHDX BAT region (%u bytes) too small for %llu entries", reg->bat_len,
			       (unsigned long long)total);
	if (!range_ok(reg->bat_off, total * 8, r->size))
		return err_set(E_FORMAT, "VHDX BAT extends past the end of the file");

	enum { CHUNK = 8192 };
	uint8_t *buf = xmalloc(CHUNK * 8);
	int rc = -1;
	for (uint64_t base = 0; base < total; base += CHUNK) {
		uint64_t cnt = total - base < CHUNK ? total - base : CHUNK;
		if (rd_at(r, buf, cnt * 8, reg->bat_off + base * 8, "VHDX BAT") < 0)
			goto out;
		for (uint64_t k = 0; k < cnt; k++) {
			uint64_t idx = base + k;
			if (idx % (ratio + 1) == ratio)
				continue;   /* sector bitmap entry */
			uint64_t blk = idx - idx / (ratio + 1);
			if (blk >= nblocks)
				continue;   /* padding of the last chunk (differencing) */
			uint64_t e = get_le64(buf + 8 * k);
			unsigned state = e & 7;
			uint64_t foff = (e >> 20) << 20;
			uint64_t need = nblocks - 1 == blk ? m->info.virtual_size - blk * bs : bs;
			switch (state) {
			case 0: case 1: case 3:
				m->block_state[blk] = it->has_parent ? BLK_PARENT : BLK_ZERO;
				break;
			case 2:
				/* ZERO reads as zeros even over a parent (2.5.1.1); we
				 * still let the parent decide so that we never claim
				 * zeros where a reader might return parent data. */
				m->block_state[blk] = it->has_parent ? BLK_PARENT : BLK_ZERO;
				break;
			case 6: case 7:
				if (state == 7 && !it->has_parent) {
					err_set(E_FORMAT, "VHDX block %llu PARTIALLY_PRESENT without a parent",
						(unsigned long long)blk);
					goto out;
				}
				if (foff < (1u << 20) || !range_ok(foff, need, r->size)) {
					err_set(E_FORMAT, "VHDX block %llu at file offset %llu lies past the end of the file "
						"(%llu bytes): the image is truncated", (unsigned long long)blk,
						(unsigned long long)foff, (unsigned long long)r->size);
					goto out;
				}
				m->block_state[blk] = BLK_DATA;
				m->block_off[blk] = foff;
				m->info.allocated_blocks++;
				break;
			default:
				err_set(E_FORMAT, "VHDX BAT entry %llu has invalid state %u", (unsigned long long)idx, state);
				goto out;
			}
		}
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

static struct vhdmeta *vhdx_parse(const struct rd *r, int fd)
{
	struct vhdx_regions reg;
	struct vhdx_items it;
	uint8_t sig[8];
	if (rd_at(r, sig, 8, 0, "VHDX file type identifier") < 0)
		return NULL;
	if (memcmp(sig, "vhdxfile", 8)) {
		err_set(E_FORMAT, "not a VHDX file (no \"vhdxfile\" signature)");
		return NULL;
	}
	if (vhdx_pick_header(r) < 0 || vhdx_read_regions(r, &reg) < 0)
		return NULL;
	if (!range_ok(reg.meta_off, reg.meta_len, r->size)) {
		err_set(E_FORMAT, "VHDX metadata region lies past the end of the file");
		return NULL;
	}
	if (vhdx_read_metadata(r, &reg, &it) < 0)
		return NULL;
	uint64_t nblocks = (it.vsize + it.block_size - 1) / it.block_size;
	/* Each payload block needs a BAT entry (8 bytes) inside the BAT region,
	 * itself inside the file: this bounds the allocation below. */
	if (nblocks > reg.bat_len / 8) {
		err_set(E_FORMAT, "VHDX BAT region too small for the virtual size");
		return NULL;
	}
	struct vhdmeta *m = meta_alloc(fd, nblocks);
	m->info.vhdx = true;
	m->info.differencing = it.has_parent;
	m->info.fixed = it.leave_allocated && !it.has_parent;
	m->info.virtual_size = it.vsize;
	m->info.block_size = it.block_size;
	m->info.logical_sector_size = it.lss;
	m->info.physical_sector_size = it.pss;
	m->info.disk_id = it.page83;
	if (vhdx_read_bat(r, &reg, &it, m) < 0) {
		vhdmeta_free(m);
		return NULL;
	}
	return m;
}

/* ---- VHD --------------------------------------------------------------- */

/* VHD "Hard Disk Footer Format": big-endian; Cookie "conectix" 0, Features
 * 8, Version 12, Data Offset 16 (u64), Time Stamp 24, Creator Application
 * 28, Creator Version 32, Creator Host OS 36, Original Size 40 (u64),
 * Current Size 48 (u64), Disk Geometry 56, Disk Type 60 (2 fixed, 3
 * dynamic, 4 differencing), Checksum 64 (one's complement of the byte sum
 * with the field zero), Unique Id 68 (16), Saved State 84. */
static uint32_t vhd_checksum(const uint8_t *p, size_t n, size_t skip)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i++)
		if (i < skip || i >= skip + 4)
			sum += p[i];
	return ~sum;
}

static int vhd_read_footer(const struct rd *r, uint8_t f[512])
{
	/* at the end (512 bytes, or 511 for images made before Virtual PC
	 * 2004), else the copy at offset 0 of a dynamic disk */
	memset(f, 0, 512);
	if (r->size >= 512 && rd_at(r, f, 512, r->size - 512, "VHD footer") == 0 && !memcmp(f, "conectix", 8))
		return 0;
	if (r->size >= 511 && rd_at(r, f, 511, r->size - 511, "VHD footer") == 0 && !memcmp(f, "conectix", 8)) {
		f[511] = 0;
		return 0;
	}
	if (r->size >= 512 && rd_at(r, f, 512, 0, "VHD footer copy") == 0 && !memcmp(f, "conectix", 8))
		return 0;
	return err_set(E_FORMAT, "no VHD footer (\"conectix\") found");
}

/* VHD "Dynamic Disk Header Format" (1024 bytes, big-endian): Cookie
 * "cxsparse" 0, Data Offset 8, Table Offset 16 (u64), Header Version 24,
 * Max Table Entries 28, Block Size 32, Checksum 36, Parent Unique ID 40,
 * ... BAT: u32 sector offsets, 0xFFFFFFFF = unallocated. Each block is a
 * sector bitmap (one bit per sector, padded to a 512-byte boundary)
 * followed by the data. */
static int vhd_read_dynamic(const struct rd *r, const uint8_t *f, struct vhdmeta **out, int fd)
{
	uint8_t h[1024];
	uint64_t hoff = get_be64(f + 16);
	if (rd_at(r, h, sizeof h, hoff, "VHD dynamic header") < 0)
		return -1;
	if (memcmp(h, "cxsparse", 8))
		return err_set(E_FORMAT, "VHD dynamic header signature \"cxsparse\" missing");
	if (vhd_checksum(h, sizeof h, 36) != get_be32(h + 36))
		return err_set(E_FORMAT, "VHD dynamic header checksum mismatch");
	uint64_t vsize = get_be64(f + 48);
	uint64_t bat = get_be64(h + 16);
	uint32_t max_entries = get_be32(h + 28), bs = get_be32(h + 32);
	if (!pow2(bs) || bs < 4096 || bs > (256u << 20))
		return err_set(E_FORMAT, "VHD block size %u invalid", bs);
	uint64_t nblocks = vsize / bs + (vsize % bs != 0);   /* no overflow near 2^64 */
	if (max_entries < nblocks)
		return err_set(E_FORMAT, "VHD BAT has %u entries, %llu needed", max_entries, (unsigned long long)nblocks);
	if (!range_ok(bat, nblocks * 4, r->size))
		return err_set(E_FORMAT, "VHD BAT extends past the end of the file");

	bool diff = get_be32(f + 60) == 4;
	uint64_t bitmap = ((uint64_t)bs / 512 / 8 + 511) / 512 * 512;
	struct vhdmeta *m = meta_alloc(fd, nblocks);
	uint8_t *buf = xmalloc(nblocks ? nblocks * 4 : 1);
	if (rd_at(r, buf, nblocks * 4, bat, "VHD BAT") < 0)
		goto fail;
	for (uint64_t b = 0; b < nblocks; b++) {
		uint32_t sec = get_be32(buf + 4 * b);
		if (sec == 0xFFFFFFFFu) {
			m->block_state[b] = diff ? BLK_PARENT : BLK_ZERO;
			continue;
		}
		uint64_t data = (uint64_t)sec * 512 + bitmap;
		uint64_t need = b == nblocks - 1 ? vsize - b * bs : bs;
		if (!range_ok(data, need, r->size)) {
			err_set(E_FORMAT, "VHD block %llu lies past the end of the file: the image is truncated",
				(unsigned long long)b);
			goto fail;
		}
		m->block_state[b] = BLK_DATA;
		m->block_off[b] = data;
		m->info.allocated_blocks++;
	}
	free(buf);
	m->info.differencing = diff;
	m->info.block_size = bs;
	*out = m;
	return 0;
fail:
	free(buf);
	vhdmeta_free(m);
	return -1;
}

static struct vhdmeta *vhd_parse(const struct rd *r, int fd)
{
	uint8_t f[512];
	if (vhd_read_footer(r, f) < 0)
		return NULL;
	if (vhd_checksum(f, 512, 64) != get_be32(f + 64)) {
		err_set(E_FORMAT, "VHD footer checksum mismatch");
		return NULL;
	}
	uint32_t type = get_be32(f + 60);
	uint64_t vsize = get_be64(f + 48);
	struct vhdmeta *m = NULL;
	if (type == 2) {
		/* fixed: the data is the file minus the footer */
		if (vsize > r->size - 512) {
			err_set(E_FORMAT, "fixed VHD is truncated: %llu bytes of data expected, %llu present",
				(unsigned long long)vsize, (unsigned long long)(r->size - 512));
			return NULL;
		}
		m = meta_alloc(fd, 0);
		m->info.fixed = true;
	} else if (type == 3 || type == 4) {
		if (vhd_read_dynamic(r, f, &m, fd) < 0)
			return NULL;
	} else {
		err_set(E_FORMAT, "VHD disk type %u unknown", type);
		return NULL;
	}
	m->info.virtual_size = vsize;
	memcpy(m->info.disk_id.b, f + 68, 16);
	return m;
}

/* ---- public ------------------------------------------------------------ */

static int fd_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	int fd = *(int *)ctx;
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) return err_errno(E_IO, "read error at %llu", (unsigned long long)off);
		if (n == 0) return err_set(E_FORMAT, "unexpected end of file at %llu", (unsigned long long)off);
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

struct vhdmeta *vhdmeta_parse_with(vhdmeta_read_fn fn, void *ctx, int fd, uint64_t file_size, bool vhdx)
{
	struct rd r = { fn, ctx, file_size };
	return vhdx ? vhdx_parse(&r, fd) : vhd_parse(&r, fd);
}

struct vhdmeta *vhdmeta_parse(int fd, uint64_t file_size, bool vhdx)
{
	return vhdmeta_parse_with(fd_read, &fd, fd, file_size, vhdx);
}

/* What is left of a VHDX whose file type identifier is damaged: its
 * headers (MS-VHDX 2.2.2, "head" at 64 KiB and 128 KiB) and region tables
 * (2.2.3, "regi" at 192 KiB and 256 KiB), each named with whether its
 * CRC-32C still holds. */
static size_t vhdx_remains(const struct rd *r, char *out, size_t n, size_t used)
{
	static const struct { uint32_t off, len; const char *sig, *what; } at[] = {
		{ VHDX_HEADER1_OFF, VHDX_HEADER_SIZE, "head", "VHDX header" },
		{ VHDX_HEADER2_OFF, VHDX_HEADER_SIZE, "head", "VHDX header" },
		{ VHDX_REGION1_OFF, VHDX_REGION_SIZE, "regi", "VHDX region table" },
		{ VHDX_REGION2_OFF, VHDX_REGION_SIZE, "regi", "VHDX region table" },
	};
	uint8_t *b = xmalloc(VHDX_REGION_SIZE);
	for (size_t i = 0; i < sizeof at / sizeof *at && used < n; i++) {
		if (!range_ok(at[i].off, at[i].len, r->size) || rd_at(r, b, at[i].len, at[i].off, at[i].what) < 0) {
			err_clear();
			continue;
		}
		if (memcmp(b, at[i].sig, 4)) continue;
		bool ok = at[i].len == VHDX_HEADER_SIZE ? vhdx_header_valid(b) : vhdx_region_table_valid(b);
		used += snprintf(out + used, n - used, "%s%s '%s' at %u KiB%s", used ? ", " : "", at[i].what, at[i].sig,
				 at[i].off >> 10, ok ? " (CRC-32C valid)" : "");
	}
	free(b);
	return used;
}

int vhdmeta_damaged(int fd, uint64_t file_size, char *out, size_t n)
{
	struct rd r = { .fn = fd_read, .ctx = &fd, .size = file_size };
	uint8_t h[1024];
	out[0] = 0;
	size_t used = vhdx_remains(&r, out, n, 0);
	if (used) return 1;
	/* VHD 2006, "Dynamic Disk Header Format": "cxsparse" 1024 bytes at
	 * the footer copy's Data Offset, 512 for every VHD writer seen */
	if (file_size >= 1536 && rd_at(&r, h, sizeof h, 512, "VHD dynamic header") == 0 && !memcmp(h, "cxsparse", 8)) {
		snprintf(out, n, "VHD dynamic disk header 'cxsparse' at offset 512%s, but no 'conectix' footer at the end "
			 "nor its copy at offset 0", vhd_checksum(h, sizeof h, 36) == get_be32(h + 36) ? " (checksum valid)" : "");
		return 2;
	}
	err_clear();
	return 0;
}

const struct vhdmeta_info *vhdmeta_info(const struct vhdmeta *m)
{
	return &m->info;
}

/* A sparse file's holes read as zeros (lseek(2) SEEK_DATA): lets a fixed
 * image or a block written full of zeros cost nothing to stream. */
static bool file_has_data(int fd, uint64_t off, uint64_t len)
{
	if (fd < 0) return true;
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0) return errno != ENXIO;
	return (uint64_t)d < off + len;
}

int vhdmeta_maybe_allocated(const struct vhdmeta *m, uint64_t off, uint64_t len)
{
	uint64_t vs = m->info.virtual_size;
	if (off >= vs || !len) return 0;
	if (len > vs - off) len = vs - off;
	if (!m->info.payload_blocks)   /* fixed VHD: identity mapping */
		return file_has_data(m->fd, off, len) ? 1 : 0;
	uint64_t bs = m->info.block_size, end = off + len;
	int result = 0;
	for (uint64_t b = off / bs; b < m->info.payload_blocks && b * bs < end; b++) {
		uint64_t s = b * bs > off ? b * bs : off;
		uint64_t e = (b + 1) * bs < end ? (b + 1) * bs : end;
		switch (m->block_state[b]) {
		case BLK_DATA:
			if (file_has_data(m->fd, m->block_off[b] + (s - b * bs), e - s))
				return 1;
			/* a hole in a differencing block: sectors whose bitmap bit
			 * is clear come from the parent */
			if (m->info.differencing)
				result = 2;
			break;
		case BLK_PARENT:
			result = 2;
			break;
		}
	}
	return result;
}

void vhdmeta_free(struct vhdmeta *m)
{
	if (!m) return;
	free(m->block_off);
	free(m->block_state);
	free(m);
}
