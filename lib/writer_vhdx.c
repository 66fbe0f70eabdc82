/* writer_vhdx.c - VHDX output per [MS-VHDX] v20160714 (section numbers
 * below). The only module that writes VHDX.
 *
 * Layout (every region 1 MB aligned, 2.1):
 *   0        file type identifier "vhdxfile" + creator (2.2.1), 64 KB
 *   64 KB    header 1, 128 KB header 2 (2.2.2)
 *   192 KB   region table 1, 256 KB region table 2 (2.2.3)
 *   1 MB     log, 1 MB, empty (LogGuid zero: nothing to replay, 2.3)
 *   2 MB     metadata region, 1 MB (2.6)
 *   3 MB     BAT region, rounded up to 1 MB (2.5)
 *   then     payload blocks in virtual order, each BlockSize bytes
 * The blocks are streamed once; the BAT, metadata and headers are written
 * last, into the space reserved for them.
 */
#include "writer_int.h"
#include "overlay.h"
#include "util.h"
#include "vhdx_format.h"

#include <stddef.h>
#include <stdlib.h>

#define MB                  VHDX_MB
#define VHDX_DEFAULT_BLOCK  (32u << 20)

struct vhdx_geom {
	uint64_t size;
	uint32_t bs, lss, pss;
	uint64_t nblocks, ratio, bat_entries, bat_len, data_off;
};

/* doc/formats.md, VHDX BAT: a dynamic or fixed file's BAT holds a sector
 * bitmap entry after every ChunkRatio payload entries (MS-VHDX 2.5). */
static void geom_init(struct vhdx_geom *g, uint64_t size, uint32_t bs, uint32_t lss, uint32_t pss)
{
	g->size = size;
	g->bs = bs, g->lss = lss, g->pss = pss;
	g->nblocks = (size + bs - 1) / bs;
	g->ratio = vhdx_chunk_ratio(lss, bs);
	g->bat_entries = vhdx_bat_entries(g->nblocks, g->ratio, false);
	g->bat_len = (g->bat_entries * 8 + MB - 1) / MB * MB;
	g->data_off = VHDX_BAT_OFF + g->bat_len;
}

/* 2.2.1: Signature "vhdxfile", Creator: UTF-16 string, up to 512 bytes. */
int vhdx_write_identifier(struct wctx *w)
{
	struct vhdx_identifier id = { .signature = { 'v', 'h', 'd', 'x', 'f', 'i', 'l', 'e' } };
	const char *creator = "gen2prep " PACKAGE_VERSION;
	for (size_t i = 0; creator[i] && i < 255; i++)
		le16_set(&id.creator[i], (uint8_t)creator[i]);
	return wctx_pwrite(w, &id, sizeof id, VHDX_IDENTIFIER_OFF);
}

/* 2.2.2: two headers; the current one is the valid header with the greater
 * SequenceNumber, so both are written valid (sequence 1 and 2). Checksum:
 * CRC-32C over the 4 KB header with the Checksum field zero. */
int vhdx_write_headers(struct wctx *w)
{
	struct guid data_write;
	struct guid file_write = w->opts->file_write_guid;
	if (guid_is_zero(&file_write))
		guid_derive(&file_write, "gen2prep vhdx file write", w->opts->disk_id.b, 16);
	guid_derive(&data_write, "gen2prep vhdx data write", file_write.b, 16);
	static const uint32_t at[2] = { VHDX_HEADER1_OFF, VHDX_HEADER2_OFF };
	for (int i = 0; i < 2; i++) {
		struct vhdx_header h = { .signature = { 'h', 'e', 'a', 'd' } };
		le64_set(&h.sequence_number, (uint64_t)i + 1);
		h.file_write_guid = file_write;
		h.data_write_guid = data_write;
		/* LogGuid zero: no log entries to replay */
		le16_set(&h.log_version, 0);
		le16_set(&h.version, 1);
		le32_set(&h.log_length, (uint32_t)VHDX_LOG_LEN);
		le64_set(&h.log_offset, VHDX_LOG_OFF);
		le32_set(&h.checksum, vhdx_checksum(&h, sizeof h, offsetof(struct vhdx_header, checksum)));
		if (wctx_pwrite(w, &h, sizeof h, at[i]) < 0)
			return -1;
	}
	return 0;
}

static void region_entry(uint8_t *at, const struct guid *id, uint64_t off, uint32_t len)
{
	struct vhdx_region_entry e = { .guid = *id };
	le64_set(&e.file_offset, off);
	le32_set(&e.length, len);
	le32_set(&e.required, 1);
	memcpy(at, &e, sizeof e);
}

/* 2.2.3: region table (64 KB, CRC-32C over all of it): BAT and metadata,
 * both Required (2.2.3.2: a reader must understand them). Written twice. */
int vhdx_write_region_tables(struct wctx *w, uint64_t bat_len)
{
	uint8_t *t = xcalloc(1, VHDX_REGION_SIZE);
	if (!t) return err_prefix("VHDX region table");
	struct vhdx_region_header hdr = { .signature = { 'r', 'e', 'g', 'i' } };
	le32_set(&hdr.entry_count, 2);
	memcpy(t, &hdr, sizeof hdr);
	region_entry(t + sizeof hdr, &VHDX_REGION_BAT, VHDX_BAT_OFF, (uint32_t)bat_len);
	region_entry(t + sizeof hdr + sizeof(struct vhdx_region_entry), &VHDX_REGION_METADATA, VHDX_META_OFF,
		     (uint32_t)VHDX_META_LEN);
	le32_set(&hdr.checksum, vhdx_checksum(t, VHDX_REGION_SIZE, offsetof(struct vhdx_region_header, checksum)));
	memcpy(t, &hdr, sizeof hdr);
	int rc = wctx_pwrite(w, t, VHDX_REGION_SIZE, VHDX_REGION1_OFF);
	if (!rc) rc = wctx_pwrite(w, t, VHDX_REGION_SIZE, VHDX_REGION2_OFF);
	free(t);
	return rc;
}

/* doc/formats.md, VHDX metadata: the table (2.6.1), then the item values
 * from 64 KB on: every required system item (2.6.2) - File Parameters,
 * Virtual Disk Size, Page 83 Data (the Virtual Disk ID), Logical and
 * Physical Sector Size - and, for a differencing file, the Parent Locator
 * (2.6.2.6; flags of the table in 2.6.2: IsRequired, not IsVirtualDisk). */
int vhdx_write_metadata(struct wctx *w, const struct vhdx_meta_values *v)
{
	struct vhdx_file_params fp;
	le64 size;
	le32 lss, pss;
	le32_set(&fp.block_size, v->block_size);
	le32_set(&fp.flags, v->flags);
	le64_set(&size, v->size);
	le32_set(&lss, v->lss);
	le32_set(&pss, v->pss);
	const uint32_t sys = VHDX_META_IS_VIRTUAL_DISK | VHDX_META_IS_REQUIRED;
	const struct { const struct guid *id; const void *val; uint32_t len, flags; } it[6] = {
		{ &VHDX_ITEM_FILE_PARAMS, &fp, sizeof fp, VHDX_META_IS_REQUIRED },
		{ &VHDX_ITEM_VDISK_SIZE, &size, sizeof size, sys },
		{ &VHDX_ITEM_PAGE83, v->disk_id, sizeof *v->disk_id, sys },
		{ &VHDX_ITEM_LOGICAL_SS, &lss, sizeof lss, sys },
		{ &VHDX_ITEM_PHYSICAL_SS, &pss, sizeof pss, sys },
		{ &VHDX_ITEM_PARENT_LOCATOR, v->parent_locator, v->parent_locator_len, VHDX_META_IS_REQUIRED },
	};
	int n = v->parent_locator ? 6 : 5;
	uint8_t *m = xcalloc(1, VHDX_META_LEN);
	if (!m) return err_prefix("VHDX metadata");
	struct vhdx_meta_header hdr = { .signature = { 'm', 'e', 't', 'a', 'd', 'a', 't', 'a' } };
	le16_set(&hdr.entry_count, (uint16_t)n);
	memcpy(m, &hdr, sizeof hdr);
	uint32_t off = VHDX_META_TABLE_SIZE;
	int rc = 0;
	for (int i = 0; i < n && !rc; i++) {
		struct vhdx_meta_entry e = { .item_id = *it[i].id };
		if (it[i].len > VHDX_META_LEN - off) {
			rc = err_set(E_INTERNAL, "VHDX metadata items exceed the 1 MiB region");
			break;
		}
		le32_set(&e.offset, off);
		le32_set(&e.length, it[i].len);
		le32_set(&e.flags, it[i].flags);
		memcpy(m + sizeof hdr + sizeof e * i, &e, sizeof e);
		memcpy(m + off, it[i].val, it[i].len);
		off += it[i].len;
	}
	if (!rc) rc = wctx_pwrite(w, m, off, VHDX_META_OFF);
	free(m);
	return rc;
}

/* Streams the payload blocks, fills the BAT (doc/formats.md, VHDX BAT).
 * Dynamic: a block that reads as zero is NOT_PRESENT and takes no space.
 * Fixed: every block FULLY_PRESENT at its place (zero blocks stay holes of
 * the sparse output file). */
static int write_blocks(struct wctx *w, const struct vhdx_geom *g, le64 *bat)
{
	uint64_t next = g->data_off;
	int rc = 0;
	for (uint64_t b = 0; b < g->nblocks && rc == 0; b++) {
		uint64_t off = b * g->bs;
		size_t n = g->size - off < g->bs ? (size_t)(g->size - off) : g->bs;
		/* written at next if it holds data; nothing written otherwise */
		int r = wctx_copy(w, off, n, next);
		if (r < 0) { rc = -1; break; }
		uint64_t entry = VHDX_PAYLOAD_NOT_PRESENT;
		if (r > 0 || w->opts->fixed) {
			entry = VHDX_BAT_ENTRY(VHDX_PAYLOAD_FULLY_PRESENT, next);
			next += g->bs;   /* the last block's tail: zeros, a hole */
		}
		le64_set(&bat[vhdx_bat_index(b, g->ratio)], entry);
	}
	if (!rc) rc = wctx_flush_run(w);
	if (!rc) rc = wctx_truncate(w, next);
	return rc;
}

int writer_vhdx_write(struct wctx *w)
{
	uint32_t bs = w->opts->block_size ? w->opts->block_size : VHDX_DEFAULT_BLOCK;
	uint32_t lss = w->opts->logical_sector_size ? w->opts->logical_sector_size : overlay_sector_size(w->src);
	uint32_t pss = w->opts->physical_sector_size ? w->opts->physical_sector_size : 4096;
	/* doc/formats.md, VHDX metadata: block size, sector sizes, size */
	if (!vhdx_block_size_ok(bs))
		return err_set(E_USAGE, "VHDX block size %u is not a power of two between 1 and 256 MiB", bs);
	if (!vhdx_sector_size_ok(lss) || !vhdx_sector_size_ok(pss))
		return err_set(E_UNSUPPORTED, "VHDX sector sizes must be 512 or 4096 (got %u/%u)", lss, pss);
	if (!vhdx_size_ok(w->size, lss))
		return err_set(E_UNSUPPORTED, "VHDX cannot hold a disk of %llu bytes (multiple of %u, at most 64 TiB)",
			       (unsigned long long)w->size, lss);
	struct vhdx_geom g;
	geom_init(&g, w->size, bs, lss, pss);
	le64 *bat = xcalloc(1, g.bat_len);
	if (!bat) return err_prefix("VHDX BAT");
	int rc = write_blocks(w, &g, bat);
	if (!rc) rc = wctx_pwrite(w, bat, g.bat_len, VHDX_BAT_OFF);
	free(bat);
	struct vhdx_meta_values mv = { .block_size = g.bs, .flags = w->opts->fixed ? VHDX_PARAMS_LEAVE_ALLOCATED : 0,
				       .lss = g.lss, .pss = g.pss, .size = g.size, .disk_id = &w->opts->disk_id };
	if (!rc) rc = vhdx_write_metadata(w, &mv);
	if (!rc) rc = vhdx_write_region_tables(w, g.bat_len);
	if (!rc) rc = vhdx_write_headers(w);
	if (!rc) rc = vhdx_write_identifier(w);
	return rc;
}
