/* vhdmeta.c - see vhdmeta.h. Layout facts are cited where they are used:
 * "VHD" is the Virtual Hard Disk Image Format Specification (Microsoft,
 * 2006, v1.0), "MS-VHDX" is [MS-VHDX] v20160714 (section numbers given).
 */
#include "vhdmeta.h"
#include "crc32c.h"
#include <stdio.h>
#include "util.h"
#include "vhd_format.h"
#include "vhdx_format.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

enum blk { BLK_ZERO = 0, BLK_DATA = 1, BLK_PARENT = 2 };

struct vhdmeta {
	struct vhdmeta_info info;
	int fd;
	uint64_t *block_off;   /* file offset of each payload block's data, 0 if none */
	uint8_t *block_state;  /* enum blk per payload block */
	/* dynamic VHD: per block, whether its sector bitmap has every bit
	 * set (enum full; looked up once, when the block is first mapped) */
	uint8_t *vhd_full;
	uint32_t vhd_bitmap;   /* bytes of a block's sector bitmap, padded */
	struct vhd_bm {        /* the bits of the last block looked at */
		uint64_t block;    /* UINT64_MAX: none */
		size_t len;        /* bs / 4096: one bit per sector */
		uint8_t bits[];
	} *bm;
};

enum full { FULL_UNKNOWN = 0, FULL_YES = 1, FULL_NO = 2 };

/* ---- shared helpers ---------------------------------------------------- */

struct rd {
	vhdmeta_read_fn fn;
	void *ctx;
	uint64_t size;
};

static int rd_at(const struct rd *r, void *buf, size_t len, uint64_t off, const char *what)
{
	if (!range_ok(off, len, r->size))
		return err_set(E_FORMAT, "%s at offset %llu is past the end of the file (%llu bytes): the image is truncated", what,
			       (unsigned long long)off, (unsigned long long)r->size);
	return r->fn(r->ctx, buf, len, off);
}

static bool pow2(uint64_t v) { return v && !(v & (v - 1)); }

static struct vhdmeta *meta_alloc(int fd, uint64_t blocks)
{
	struct vhdmeta *m = xcalloc(1, sizeof *m);
	if (!m) goto fail;
	m->fd = fd;
	m->info.payload_blocks = blocks;
	if (blocks) {
		m->block_off = xcalloc(blocks, sizeof *m->block_off);
		m->block_state = m->block_off ? xcalloc(blocks, 1) : NULL;
		if (!m->block_state) goto fail;
	}
	return m;
fail:
	vhdmeta_free(m);
	err_prefix("block table of %llu blocks", (unsigned long long)blocks);
	return NULL;
}

/* ---- VHDX -------------------------------------------------------------- */

/* doc/formats.md, VHDX headers: the valid header with the greater
 * sequence number is current (MS-VHDX 2.2.2.1). h is VHDX_HEADER_SIZE
 * bytes. */
static bool vhdx_header_valid(const void *h)
{
	struct vhdx_header hd;
	memcpy(&hd, h, sizeof hd);
	return !memcmp(hd.signature, "head", 4) &&
	       vhdx_checksum(h, sizeof hd, offsetof(struct vhdx_header, checksum)) == le32_get(&hd.checksum) &&
	       le16_get(&hd.version) == 1;   /* Version MUST be 1 */
}

static int vhdx_pick_header(const struct rd *r, struct guid *data_write)
{
	struct vhdx_header *h = xmalloc(2 * sizeof *h);
	if (!h) return err_prefix("VHDX headers");
	int rc = -1;
	if (rd_at(r, &h[0], sizeof *h, VHDX_HEADER1_OFF, "VHDX header 1") < 0 ||
	    rd_at(r, &h[1], sizeof *h, VHDX_HEADER2_OFF, "VHDX header 2") < 0)
		goto out;
	bool v1 = vhdx_header_valid(&h[0]), v2 = vhdx_header_valid(&h[1]);
	if (!v1 && !v2) {
		err_set(E_FORMAT, "no valid VHDX header (bad signature or CRC-32C in both copies)");
		goto out;
	}
	const struct vhdx_header *cur = !v2 ? &h[0] : !v1 ? &h[1] :
		le64_get(&h[0].sequence_number) >= le64_get(&h[1].sequence_number) ? &h[0] : &h[1];
	/* A non-zero LogGuid means the log holds entries that must be
	 * replayed before the file reads correctly (2.3.3); neither we nor
	 * libvhdi replay, so reading would return stale blocks. */
	if (!guid_is_zero(&cur->log_guid)) {
		err_set(E_UNSUPPORTED, "the VHDX log is not empty (the image was not closed cleanly): "
			"attach it once in Hyper-V or run 'qemu-img check -r all' on a copy");
		goto out;
	}
	/* 2.2.2 DataWriteGuid: changed by every write a reader of the
	 * virtual disk can see; a differencing child names its parent by it
	 * (2.6.2.6.3 parent_linkage) */
	*data_write = cur->data_write_guid;
	rc = 0;
out:
	free(h);
	return rc;
}

struct vhdx_regions {
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
};

/* doc/formats.md, VHDX region table. t is VHDX_REGION_SIZE bytes: the
 * header and at most 2047 entries fit in it. */
static int vhdx_region_table_parse(const uint8_t *t, struct vhdx_regions *out)
{
	struct vhdx_region_header hdr;
	memcpy(&hdr, t, sizeof hdr);
	uint32_t n = le32_get(&hdr.entry_count);
	if (n > VHDX_MAX_ENTRIES)
		return err_set(E_FORMAT, "VHDX region table has %u entries (max 2047)", n);
	memset(out, 0, sizeof *out);
	for (uint32_t i = 0; i < n; i++) {
		struct vhdx_region_entry e;
		memcpy(&e, t + sizeof hdr + sizeof e * (size_t)i, sizeof e);
		uint64_t off = le64_get(&e.file_offset);
		uint32_t len = le32_get(&e.length);
		if (guid_eq(&e.guid, &VHDX_REGION_BAT)) {
			out->bat_off = off, out->bat_len = len;
		} else if (guid_eq(&e.guid, &VHDX_REGION_METADATA)) {
			out->meta_off = off, out->meta_len = len;
		} else if (le32_get(&e.required) & 1) {
			return err_set(E_UNSUPPORTED, "VHDX has an unknown required region");
		}
	}
	/* 2.2.3.2: FileOffset and Length MUST be multiples of 1 MB. */
	if (!out->bat_len || !out->meta_len)
		return err_set(E_FORMAT, "VHDX region table lacks the BAT or metadata region");
	if ((out->bat_off | out->meta_off | out->bat_len | out->meta_len) & (VHDX_MB - 1))
		return err_set(E_FORMAT, "VHDX region not aligned to 1 MB");
	return 0;
}

static bool vhdx_region_table_valid(const void *t)
{
	struct vhdx_region_header hdr;
	memcpy(&hdr, t, sizeof hdr);
	return !memcmp(hdr.signature, "regi", 4) &&
	       vhdx_checksum(t, VHDX_REGION_SIZE, offsetof(struct vhdx_region_header, checksum)) ==
		       le32_get(&hdr.checksum);
}

static int vhdx_read_regions(const struct rd *r, struct vhdx_regions *reg)
{
	uint8_t *t = xmalloc(VHDX_REGION_SIZE);
	if (!t) return err_prefix("VHDX region table");
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
	struct vhdx_locator loc;   /* differencing: the Parent Locator (2.6.2.6) */
	unsigned found;   /* ITEM_* bits */
};

enum { ITEM_PARAMS = 1, ITEM_SIZE = 2, ITEM_PAGE83 = 4, ITEM_LSS = 8, ITEM_PSS = 16, ITEM_LOCATOR = 32,
       ITEMS_REQUIRED = ITEM_PARAMS | ITEM_SIZE | ITEM_LSS | ITEM_PSS };

/* Reads one metadata item value of exactly len bytes (MS-VHDX 2.6.1.2:
 * Offset >= 64 KiB, item entirely inside the metadata region). */
static int vhdx_item(const struct rd *r, const struct vhdx_regions *reg, const struct vhdx_meta_entry *e,
		     void *val, uint32_t len)
{
	uint32_t off = le32_get(&e->offset), ilen = le32_get(&e->length);
	if (ilen < len || off < VHDX_META_TABLE_SIZE || !range_ok(off, ilen, reg->meta_len))
		return err_set(E_FORMAT, "VHDX metadata item outside its region or too short");
	return rd_at(r, val, len, reg->meta_off + off, "VHDX metadata item");
}

/* The Parent Locator item (2.6.2.6; lib/vhdx_locator.c; doc/formats.md,
 * VHDX parent locator): at most 64 KiB
 * (its offsets and lengths are 16 and 32 bits; Hyper-V's are a few hundred
 * bytes). */
static int vhdx_take_locator(const struct rd *r, const struct vhdx_regions *reg, const struct vhdx_meta_entry *e,
			     struct vhdx_items *it)
{
	uint32_t len = le32_get(&e->length);
	if (it->found & ITEM_LOCATOR) return err_set(E_FORMAT, "VHDX has two parent locators");
	if (len > 65536) return err_set(E_FORMAT, "VHDX parent locator of %u bytes", len);
	uint8_t *item = xmalloc(len ? len : 1);
	int rc = vhdx_item(r, reg, e, item, len);
	if (rc == 0) rc = vhdx_locator_parse(item, len, &it->loc);
	free(item);
	if (rc == 0) it->found |= ITEM_LOCATOR;
	return rc;
}

/* One system item of the metadata table (doc/formats.md, VHDX metadata)
 * into it. 0 or -1. */
static int vhdx_take_item(const struct rd *r, const struct vhdx_regions *reg, const struct vhdx_meta_entry *e,
			  struct vhdx_items *it)
{
	struct vhdx_file_params fp;
	le64 v64;
	le32 v32;
	const struct guid *id = &e->item_id;
	if (guid_eq(id, &VHDX_ITEM_FILE_PARAMS)) {
		if (vhdx_item(r, reg, e, &fp, sizeof fp) < 0) return -1;
		it->block_size = le32_get(&fp.block_size);
		it->leave_allocated = le32_get(&fp.flags) & VHDX_PARAMS_LEAVE_ALLOCATED;
		it->has_parent = le32_get(&fp.flags) & VHDX_PARAMS_HAS_PARENT;
		it->found |= ITEM_PARAMS;
	} else if (guid_eq(id, &VHDX_ITEM_VDISK_SIZE)) {
		if (vhdx_item(r, reg, e, &v64, sizeof v64) < 0) return -1;
		it->vsize = le64_get(&v64);
		it->found |= ITEM_SIZE;
	} else if (guid_eq(id, &VHDX_ITEM_PAGE83)) {
		if (vhdx_item(r, reg, e, &it->page83, sizeof it->page83) < 0) return -1;
		it->found |= ITEM_PAGE83;
	} else if (guid_eq(id, &VHDX_ITEM_LOGICAL_SS) || guid_eq(id, &VHDX_ITEM_PHYSICAL_SS)) {
		if (vhdx_item(r, reg, e, &v32, sizeof v32) < 0) return -1;
		bool logical = guid_eq(id, &VHDX_ITEM_LOGICAL_SS);
		*(logical ? &it->lss : &it->pss) = le32_get(&v32);
		it->found |= logical ? ITEM_LSS : ITEM_PSS;
	} else if (guid_eq(id, &VHDX_ITEM_PARENT_LOCATOR)) {
		return vhdx_take_locator(r, reg, e, it);
	} else if (le32_get(&e->flags) & VHDX_META_IS_REQUIRED) {
		/* An unknown system item marked required: we cannot know what it
		 * changes (2.6.1.2 IsRequired). */
		return err_set(E_UNSUPPORTED, "VHDX has an unknown required metadata item");
	}
	return 0;
}

/* 2.6.2.1: BlockSize a power of two, 1 MB .. 256 MB. 2.6.2.4/5: sector
 * sizes 512 or 4096. 2.6.2.2: size a multiple of the logical sector size,
 * at most 64 TB. */
static int vhdx_items_check(const struct vhdx_items *it)
{
	if ((it->found & ITEMS_REQUIRED) != ITEMS_REQUIRED)
		return err_set(E_FORMAT, "VHDX metadata lacks a required item (file parameters, size or sector size)");
	if (!vhdx_block_size_ok(it->block_size))
		return err_set(E_FORMAT, "VHDX block size %u invalid", it->block_size);
	if (!vhdx_sector_size_ok(it->lss) || !vhdx_sector_size_ok(it->pss))
		return err_set(E_FORMAT, "VHDX sector sizes %u/%u invalid", it->lss, it->pss);
	if (!vhdx_size_ok(it->vsize, it->lss))
		return err_set(E_FORMAT, "VHDX virtual size %llu invalid", (unsigned long long)it->vsize);
	/* 2.6.2.6: "When the HasParent field ... is set, there MUST be a parent locator" */
	if (it->has_parent && !(it->found & ITEM_LOCATOR))
		return err_set(E_FORMAT, "a differencing VHDX without a parent locator");
	return 0;
}

/* doc/formats.md, VHDX metadata: the 64 KiB table at the start of the
 * metadata region (header, at most 2047 entries of 32 bytes). */
static int vhdx_read_metadata(const struct rd *r, const struct vhdx_regions *reg, struct vhdx_items *it)
{
	uint8_t *t = xmalloc(VHDX_META_TABLE_SIZE);
	struct vhdx_meta_header hdr;
	int rc = -1;
	memset(it, 0, sizeof *it);
	if (!t) return err_prefix("VHDX metadata table");
	if (reg->meta_len < VHDX_META_TABLE_SIZE) {
		err_set(E_FORMAT, "VHDX metadata region too small");
		goto out;
	}
	if (rd_at(r, t, VHDX_META_TABLE_SIZE, reg->meta_off, "VHDX metadata table") < 0)
		goto out;
	memcpy(&hdr, t, sizeof hdr);
	if (memcmp(hdr.signature, "metadata", 8)) {
		err_set(E_FORMAT, "VHDX metadata table signature missing");
		goto out;
	}
	uint16_t n = le16_get(&hdr.entry_count);
	if (n > VHDX_MAX_ENTRIES) {
		err_set(E_FORMAT, "VHDX metadata table has %u entries (max 2047)", n);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		struct vhdx_meta_entry e;
		memcpy(&e, t + sizeof hdr + sizeof e * (size_t)i, sizeof e);
		if (le32_get(&e.flags) & VHDX_META_IS_USER)
			continue;   /* user metadata: not ours to interpret */
		if (vhdx_take_item(r, reg, &e, it) < 0)
			goto out;
	}
	rc = vhdx_items_check(it);
out:
	if (rc < 0) {
		free(it->loc.path);
		it->loc.path = NULL;
	}
	free(t);
	return rc;
}

/* One payload block's BAT entry e (doc/formats.md, VHDX BAT) into m. */
static int vhdx_bat_block(struct vhdmeta *m, const struct vhdx_items *it, uint64_t blk, uint64_t e,
			  uint64_t file_size)
{
	uint64_t bs = it->block_size, nblocks = m->info.payload_blocks;
	unsigned state = VHDX_BAT_STATE(e);
	uint64_t foff = VHDX_BAT_OFFSET(e);
	uint64_t need = nblocks - 1 == blk ? m->info.virtual_size - blk * bs : bs;
	switch (state) {
	case VHDX_PAYLOAD_NOT_PRESENT: case VHDX_PAYLOAD_UNDEFINED: case VHDX_PAYLOAD_UNMAPPED:
	case VHDX_PAYLOAD_ZERO:
		/* ZERO reads as zeros even over a parent (2.5.1.1); we still let
		 * the parent decide so that we never claim zeros where a reader
		 * might return parent data. */
		m->block_state[blk] = it->has_parent ? BLK_PARENT : BLK_ZERO;
		return 0;
	case VHDX_PAYLOAD_FULLY_PRESENT: case VHDX_PAYLOAD_PARTIALLY_PRESENT:
		if (state == VHDX_PAYLOAD_PARTIALLY_PRESENT && !it->has_parent)
			return err_set(E_FORMAT, "VHDX block %llu PARTIALLY_PRESENT without a parent",
				       (unsigned long long)blk);
		if (foff < VHDX_MB || !range_ok(foff, need, file_size))
			return err_set(E_FORMAT, "VHDX block %llu at file offset %llu lies past the end of the file "
				       "(%llu bytes): the image is truncated", (unsigned long long)blk,
				       (unsigned long long)foff, (unsigned long long)file_size);
		m->block_state[blk] = BLK_DATA;
		m->block_off[blk] = foff;
		m->info.allocated_blocks++;
		return 0;
	}
	return 1;   /* invalid state: the caller names the entry */
}

/* doc/formats.md, VHDX BAT: payload and sector bitmap entries interleave,
 * one bitmap entry after every ChunkRatio payload entries (MS-VHDX 2.5). */
static int vhdx_read_bat(const struct rd *r, const struct vhdx_regions *reg,
			 const struct vhdx_items *it, struct vhdmeta *m)
{
	uint64_t nblocks = m->info.payload_blocks;
	uint64_t ratio = vhdx_chunk_ratio(it->lss, it->block_size);
	uint64_t total = vhdx_bat_entries(nblocks, ratio, it->has_parent);
	if (total > reg->bat_len / 8)
		return err_set(E_FORMAT, "VHDX BAT region (%u bytes) too small for %llu entries", reg->bat_len,
			       (unsigned long long)total);
	if (!range_ok(reg->bat_off, total * 8, r->size))
		return err_set(E_FORMAT, "VHDX BAT extends past the end of the file (%llu bytes): the image is truncated",
			       (unsigned long long)r->size);

	enum { CHUNK = 8192 };
	le64 *buf = xmalloc(CHUNK * sizeof *buf);
	if (!buf) return err_prefix("VHDX BAT");
	int rc = -1;
	for (uint64_t base = 0; base < total; base += CHUNK) {
		uint64_t cnt = total - base < CHUNK ? total - base : CHUNK;
		if (rd_at(r, buf, cnt * sizeof *buf, reg->bat_off + base * sizeof *buf, "VHDX BAT") < 0)
			goto out;
		for (uint64_t k = 0; k < cnt; k++) {
			uint64_t idx = base + k;
			if (idx % (ratio + 1) == ratio)
				continue;   /* sector bitmap entry */
			uint64_t blk = idx - idx / (ratio + 1);
			if (blk >= nblocks)
				continue;   /* padding of the last chunk (differencing) */
			int b = vhdx_bat_block(m, it, blk, le64_get(&buf[k]), r->size);
			if (b > 0)
				err_set(E_FORMAT, "VHDX BAT entry %llu has invalid state %u", (unsigned long long)idx,
					VHDX_BAT_STATE(le64_get(&buf[k])));
			if (b)
				goto out;
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
	if (rd_at(r, sig, sizeof sig, VHDX_IDENTIFIER_OFF, "VHDX file type identifier") < 0)
		return NULL;
	if (memcmp(sig, "vhdxfile", sizeof sig)) {
		err_set(E_FORMAT, "not a VHDX file (no \"vhdxfile\" signature)");
		return NULL;
	}
	struct guid data_write;
	if (vhdx_pick_header(r, &data_write) < 0 || vhdx_read_regions(r, &reg) < 0)
		return NULL;
	if (!range_ok(reg.meta_off, reg.meta_len, r->size)) {
		err_set(E_FORMAT, "VHDX metadata region lies past the end of the file (%llu bytes): the image is truncated",
			(unsigned long long)r->size);
		return NULL;
	}
	if (vhdx_read_metadata(r, &reg, &it) < 0)
		return NULL;
	uint64_t nblocks = (it.vsize + it.block_size - 1) / it.block_size;
	/* Each payload block needs a BAT entry (8 bytes) inside the BAT region,
	 * itself inside the file: this bounds the allocation below. */
	if (nblocks > reg.bat_len / 8) {
		err_set(E_FORMAT, "VHDX BAT region too small for the virtual size");
		free(it.loc.path);
		return NULL;
	}
	struct vhdmeta *m = meta_alloc(fd, nblocks);
	if (!m) return NULL;
	m->info.vhdx = true;
	m->info.differencing = it.has_parent;
	m->info.fixed = it.leave_allocated && !it.has_parent;
	m->info.virtual_size = it.vsize;
	m->info.block_size = it.block_size;
	m->info.logical_sector_size = it.lss;
	m->info.physical_sector_size = it.pss;
	m->info.disk_id = it.page83;
	m->info.data_write_guid = data_write;
	m->info.parent_locator = it.loc.path;
	m->info.parent_linkage = it.loc.linkage;
	if (vhdx_read_bat(r, &reg, &it, m) < 0) {
		vhdmeta_free(m);
		return NULL;
	}
	return m;
}

/* ---- VHD --------------------------------------------------------------- */

/* The footer (doc/formats.md, VHD): at the end (512 bytes, or 511 in
 * images made before Virtual PC 2004), else the copy at offset 0 of a
 * dynamic disk. 0 with *f filled, or -1 (err set). */
static int vhd_read_footer(const struct rd *r, struct vhd_footer *f)
{
	static const struct { uint64_t back; size_t len; const char *what; } at[] = {
		{ 512, 512, "VHD footer" }, { 511, 511, "VHD footer" }, { 0, 512, "VHD footer copy" },
	};
	for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
		uint64_t off = at[i].back ? r->size - at[i].back : 0;
		memset(f, 0, sizeof *f);
		if (r->size >= at[i].len && r->size >= at[i].back && rd_at(r, f, at[i].len, off, at[i].what) == 0 &&
		    !memcmp(f->cookie, VHD_COOKIE, 8))
			return 0;
	}
	memset(f, 0, sizeof *f);
	return err_set(E_FORMAT, "no VHD footer (\"conectix\") found");
}

/* The dynamic disk header and BAT (doc/formats.md, VHD) of the disk whose
 * footer is f: each block's data follows its sector bitmap. */
static int vhd_read_dynamic(const struct rd *r, const struct vhd_footer *f, struct vhdmeta **out, int fd)
{
	struct vhd_dyn_header h;
	if (rd_at(r, &h, sizeof h, be64_get(&f->data_offset), "VHD dynamic header") < 0)
		return -1;
	if (memcmp(h.cookie, VHD_SPARSE_COOKIE, 8))
		return err_set(E_FORMAT, "VHD dynamic header signature \"cxsparse\" missing");
	if (vhd_checksum(&h, sizeof h, VHD_DYN_CHECKSUM_OFF) != be32_get(&h.checksum))
		return err_set(E_FORMAT, "VHD dynamic header checksum mismatch");
	uint64_t vsize = be64_get(&f->current_size);
	uint64_t bat = be64_get(&h.table_offset);
	uint32_t max_entries = be32_get(&h.max_table_entries), bs = be32_get(&h.block_size);
	if (!pow2(bs) || bs < 4096 || bs > (256u << 20))
		return err_set(E_FORMAT, "VHD block size %u invalid", bs);
	uint64_t nblocks = vsize / bs + (vsize % bs != 0);   /* no overflow near 2^64 */
	if (max_entries < nblocks)
		return err_set(E_FORMAT, "VHD BAT has %u entries, %llu needed", max_entries, (unsigned long long)nblocks);
	if (!range_ok(bat, nblocks * 4, r->size))
		return err_set(E_FORMAT, "VHD BAT extends past the end of the file (%llu bytes): the image is truncated",
			       (unsigned long long)r->size);

	bool diff = be32_get(&f->disk_type) == VHD_DISK_DIFFERENCING;
	uint64_t bitmap = ((uint64_t)bs / 512 / 8 + 511) / 512 * 512;
	struct vhdmeta *m = meta_alloc(fd, nblocks);
	be32 *buf = m ? xmalloc(nblocks ? nblocks * sizeof *buf : 1) : NULL;
	if (!buf) {
		err_prefix("VHD BAT");
		goto fail;
	}
	if (rd_at(r, buf, nblocks * sizeof *buf, bat, "VHD BAT") < 0)
		goto fail;
	for (uint64_t b = 0; b < nblocks; b++) {
		uint32_t sec = be32_get(&buf[b]);
		if (sec == VHD_BAT_UNUSED) {
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
	if (!diff && nblocks) {
		/* a cache only: without it (out of memory) blocks are not
		 * mapped in place and read through libvhdi */
		m->vhd_full = xcalloc(nblocks, 1);
		m->vhd_bitmap = (uint32_t)bitmap;
		m->bm = xmalloc(sizeof *m->bm + bs / 4096);
		if (m->bm) {
			m->bm->block = UINT64_MAX;
			m->bm->len = bs / 4096;
		}
	}
	*out = m;
	return 0;
fail:
	free(buf);
	vhdmeta_free(m);
	return -1;
}

static struct vhdmeta *vhd_parse(const struct rd *r, int fd)
{
	struct vhd_footer f;
	if (vhd_read_footer(r, &f) < 0)
		return NULL;
	if (vhd_checksum(&f, sizeof f, VHD_FOOTER_CHECKSUM_OFF) != be32_get(&f.checksum)) {
		err_set(E_FORMAT, "VHD footer checksum mismatch");
		return NULL;
	}
	uint32_t type = be32_get(&f.disk_type);
	uint64_t vsize = be64_get(&f.current_size);
	struct vhdmeta *m = NULL;
	if (type == VHD_DISK_FIXED) {
		/* fixed: the data is the file minus the footer */
		if (vsize > r->size - 512) {
			err_set(E_FORMAT, "fixed VHD is truncated: %llu bytes of data expected, %llu present",
				(unsigned long long)vsize, (unsigned long long)(r->size - 512));
			return NULL;
		}
		m = meta_alloc(fd, 0);
		if (!m) return NULL;
		m->info.fixed = true;
	} else if (type == VHD_DISK_DYNAMIC || type == VHD_DISK_DIFFERENCING) {
		if (vhd_read_dynamic(r, &f, &m, fd) < 0)
			return NULL;
	} else {
		err_set(E_FORMAT, "VHD disk type %u unknown", type);
		return NULL;
	}
	m->info.virtual_size = vsize;
	memcpy(m->info.disk_id.b, f.unique_id, 16);
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
	if (!b) return SIZE_MAX;   /* E_NOMEM set */
	for (size_t i = 0; i < sizeof at / sizeof *at && used < n; i++) {
		if (!range_ok(at[i].off, at[i].len, r->size) || rd_at(r, b, at[i].len, at[i].off, at[i].what) < 0) {
			err_clear();
			continue;
		}
		if (memcmp(b, at[i].sig, 4)) continue;
		bool ok = at[i].len == VHDX_HEADER_SIZE ? vhdx_header_valid(b) : vhdx_region_table_valid(b);
		text_append(out, n, &used, "%s%s '%s' at %u KiB%s", used ? ", " : "", at[i].what, at[i].sig,
			    at[i].off >> 10, ok ? " (CRC-32C valid)" : "");
	}
	free(b);
	return used;
}

int vhdmeta_damaged(int fd, uint64_t file_size, char *out, size_t n)
{
	struct rd r = { .fn = fd_read, .ctx = &fd, .size = file_size };
	struct vhd_dyn_header h;
	out[0] = 0;
	size_t used = vhdx_remains(&r, out, n, 0);
	if (used == SIZE_MAX) return err_prefix("looking for a damaged VHDX header");
	if (used) return 1;
	/* VHD 2006, "Dynamic Disk Header Format": "cxsparse" 1024 bytes at
	 * the footer copy's Data Offset, 512 for every VHD writer seen */
	if (file_size >= 512 + sizeof h && rd_at(&r, &h, sizeof h, 512, "VHD dynamic header") == 0 &&
	    !memcmp(h.cookie, VHD_SPARSE_COOKIE, 8)) {
		bool sum_ok = vhd_checksum(&h, sizeof h, VHD_DYN_CHECKSUM_OFF) == be32_get(&h.checksum);
		msg_printf(out, n, "VHD dynamic disk header 'cxsparse' at offset 512%s, but no 'conectix' footer at the end "
			   "nor its copy at offset 0", sum_ok ? " (checksum valid)" : "");
		return 2;
	}
	err_clear();
	return 0;
}

enum vhdmeta_format vhdmeta_detect(int fd, uint64_t file_size)
{
	struct rd r = { fd_read, &fd, file_size };
	struct vhd_footer f;
	uint8_t sig[8];
	enum vhdmeta_format k = VHDMETA_NONE;
	/* MS-VHDX 2.2.1: the file type identifier starts with "vhdxfile" */
	if (file_size >= sizeof sig && rd_at(&r, sig, sizeof sig, VHDX_IDENTIFIER_OFF, "VHDX identifier") == 0 &&
	    !memcmp(sig, "vhdxfile", sizeof sig))
		k = VHDMETA_VHDX;
	else if (vhd_read_footer(&r, &f) == 0)
		k = VHDMETA_VHD;
	err_clear();
	return k;
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

/* Dynamic VHD (VHD, "Block Allocation Table and Data Blocks"): a block is
 * its sector bitmap, padded to 512 bytes, then its data; a set bit (the
 * block's first sector is the high bit of byte 0) means the sector holds
 * data, a clear one that it was never written and reads as zeros. So the
 * set runs are the data, plainly, in the file, and the clear runs zeros;
 * a block whose bits are all set (every block qemu-img allocates) is one
 * plain run. Read here rather than by libvhdi, which makes one range per
 * sector of a 0xff byte and searches them linearly on every read
 * (doc/notes-speed.md). A bitmap that cannot be read is left to libvhdi
 * (the reader that then reports the error). */

/* The bits of block b's sectors (bs / 4096 bytes; the last block read is
 * kept), or NULL when they cannot be read. */
static const uint8_t *vhd_bits(const struct vhdmeta *m, uint64_t b)
{
	struct vhd_bm *c = m->bm;
	if (!c || m->fd < 0) return NULL;
	if (c->block == b) return c->bits;
	c->block = UINT64_MAX;
	ssize_t r = pread(m->fd, c->bits, c->len, (off_t)(m->block_off[b] - m->vhd_bitmap));
	if (r != (ssize_t)c->len) return NULL;
	c->block = b;
	return c->bits;
}

static bool vhd_block_full(const struct vhdmeta *m, uint64_t b)
{
	if (!m->vhd_full) return false;
	if (m->vhd_full[b] == FULL_UNKNOWN) {
		const uint8_t *bits = vhd_bits(m, b);
		bool full = bits != NULL;
		for (size_t k = 0; full && k < m->bm->len; k++) full = bits[k] == 0xff;
		if (bits) m->vhd_full[b] = full ? FULL_YES : FULL_NO;
		return full;
	}
	return m->vhd_full[b] == FULL_YES;
}

/* Bytes from offset in of block b (at most len, inside the block) whose
 * sectors' bits all equal want; 0 when the first differs or the bitmap
 * cannot be read. */
static uint64_t vhd_bit_run(const struct vhdmeta *m, uint64_t b, uint64_t in, uint64_t len, int want)
{
	const uint8_t *bits = vhd_bits(m, b);
	if (!bits) return 0;
	uint64_t end = in + len, s = in / 512, send = (end + 511) / 512;
	while (s < send && ((bits[s / 8] >> (7 - s % 8)) & 1) == want) s++;
	uint64_t stop = s * 512 < end ? s * 512 : end;
	return stop > in ? stop - in : 0;
}

/* The dynamic VHD block holding off, with data (BLK_DATA); UINT64_MAX
 * otherwise. *in: the offset in the block, *n: len clipped to it. */
static uint64_t vhd_dyn_block(const struct vhdmeta *m, uint64_t off, uint64_t len, uint64_t *in, uint64_t *n)
{
	/* vhd_full: a dynamic VHD (block_size >= 4096) */
	if (m->info.vhdx || !m->vhd_full || off >= m->info.virtual_size || !len) return UINT64_MAX;
	uint64_t bs = m->info.block_size, b = off / bs;
	if (b >= m->info.payload_blocks || m->block_state[b] != BLK_DATA) return UINT64_MAX;
	if (len > m->info.virtual_size - off) len = m->info.virtual_size - off;
	*in = off - b * bs;
	*n = bs - *in < len ? bs - *in : len;
	return b;
}

uint64_t vhdmeta_zero_run(const struct vhdmeta *m, uint64_t off, uint64_t len)
{
	uint64_t in, n, b = vhd_dyn_block(m, off, len, &in, &n);
	if (b == UINT64_MAX || vhd_block_full(m, b)) return 0;
	return vhd_bit_run(m, b, in, n, 0);
}

uint64_t vhdmeta_map(const struct vhdmeta *m, uint64_t off, uint64_t len, uint64_t *file_off)
{
	uint64_t vs = m->info.virtual_size;
	if (off >= vs || !len || m->info.differencing) return 0;
	if (len > vs - off) len = vs - off;
	if (!m->info.payload_blocks) {   /* fixed VHD: the disk, then the footer */
		*file_off = off;
		return m->info.vhdx ? 0 : len;
	}
	uint64_t bs = m->info.block_size, b = off / bs;
	if (b >= m->info.payload_blocks || m->block_state[b] != BLK_DATA) return 0;
	uint64_t in = off - b * bs, n = bs - in < len ? bs - in : len;
	if (!m->info.vhdx && !vhd_block_full(m, b)) n = vhd_bit_run(m, b, in, n, 1);
	*file_off = m->block_off[b] + in;
	return n;
}

void vhdmeta_free(struct vhdmeta *m)
{
	if (!m) return;
	free(m->info.parent_locator);
	free(m->block_off);
	free(m->block_state);
	free(m->vhd_full);
	free(m->bm);
	free(m);
}
