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
#include "crc32c.h"
#include "overlay.h"
#include "util.h"

#include <stdlib.h>

#define MB                  (1ull << 20)
#define VHDX_LOG_OFF        (1 * MB)
#define VHDX_LOG_LEN        (1 * MB)
#define VHDX_META_OFF       (2 * MB)
#define VHDX_META_LEN       (1 * MB)
#define VHDX_BAT_OFF        (3 * MB)
#define VHDX_DEFAULT_BLOCK  (32u << 20)
#define VHDX_MAX_SIZE       (64ull << 40)   /* 2.6.2.2 */

/* 2.5.1.1 payload block states, 2.5.1.2 sector bitmap states */
#define PAYLOAD_BLOCK_NOT_PRESENT   0
#define PAYLOAD_BLOCK_FULLY_PRESENT 6

/* GUIDs in on-disk byte order (first three fields little-endian). */
static const uint8_t GUID_BAT_REGION[16] =      /* 2DC27766-F623-4200-9D64-115E9BFD4A08 */
	{0x66,0x77,0xc2,0x2d,0x23,0xf6,0x00,0x42,0x9d,0x64,0x11,0x5e,0x9b,0xfd,0x4a,0x08};
static const uint8_t GUID_METADATA_REGION[16] = /* 8B7CA206-4790-4B9A-B8FE-575F050F886E */
	{0x06,0xa2,0x7c,0x8b,0x90,0x47,0x9a,0x4b,0xb8,0xfe,0x57,0x5f,0x05,0x0f,0x88,0x6e};
static const uint8_t GUID_FILE_PARAMS[16] =     /* CAA16737-FA36-4D43-B3B6-33F0AA44E76B */
	{0x37,0x67,0xa1,0xca,0x36,0xfa,0x43,0x4d,0xb3,0xb6,0x33,0xf0,0xaa,0x44,0xe7,0x6b};
static const uint8_t GUID_VDISK_SIZE[16] =      /* 2FA54224-CD1B-4876-B211-5DBED83BF4B8 */
	{0x24,0x42,0xa5,0x2f,0x1b,0xcd,0x76,0x48,0xb2,0x11,0x5d,0xbe,0xd8,0x3b,0xf4,0xb8};
static const uint8_t GUID_PAGE83[16] =          /* BECA12AB-B2E6-4523-93EF-C309E000C746 */
	{0xab,0x12,0xca,0xbe,0xe6,0xb2,0x23,0x45,0x93,0xef,0xc3,0x09,0xe0,0x00,0xc7,0x46};
static const uint8_t GUID_LOGICAL_SS[16] =      /* 8141BF1D-A96F-4709-BA47-F233A8FAAB5F */
	{0x1d,0xbf,0x41,0x81,0x6f,0xa9,0x09,0x47,0xba,0x47,0xf2,0x33,0xa8,0xfa,0xab,0x5f};
static const uint8_t GUID_PHYSICAL_SS[16] =     /* CDA348C7-445D-4471-9CC9-E9885251C556 */
	{0xc7,0x48,0xa3,0xcd,0x5d,0x44,0x71,0x44,0x9c,0xc9,0xe9,0x88,0x52,0x51,0xc5,0x56};

struct vhdx_geom {
	uint64_t size;
	uint32_t bs, lss, pss;
	uint64_t nblocks, ratio, bat_entries, bat_len, data_off;
};

/* 2.5: ChunkRatio = 2^23 * LogicalSectorSize / BlockSize; a dynamic or
 * fixed file's BAT holds PayloadBlocks entries with a sector bitmap entry
 * after every ChunkRatio of them: PayloadBlocks + floor((PayloadBlocks -
 * 1) / ChunkRatio) entries. Payload block i is BAT entry
 * i + floor(i / ChunkRatio). */
static void geom_init(struct vhdx_geom *g, uint64_t size, uint32_t bs, uint32_t lss, uint32_t pss)
{
	g->size = size;
	g->bs = bs, g->lss = lss, g->pss = pss;
	g->nblocks = (size + bs - 1) / bs;
	g->ratio = ((uint64_t)1 << 23) * lss / bs;
	g->bat_entries = g->nblocks + (g->nblocks - 1) / g->ratio;
	g->bat_len = (g->bat_entries * 8 + MB - 1) / MB * MB;
	g->data_off = VHDX_BAT_OFF + g->bat_len;
}

static uint64_t bat_index(const struct vhdx_geom *g, uint64_t block)
{
	return block + block / g->ratio;
}

/* 2.2.1: Signature "vhdxfile", Creator: UTF-16 string, up to 512 bytes. */
static int write_identifier(struct wctx *w)
{
	uint8_t buf[8 + 512] = { 'v', 'h', 'd', 'x', 'f', 'i', 'l', 'e' };
	const char *creator = "gen2prep " PACKAGE_VERSION;
	for (size_t i = 0; creator[i] && i < 255; i++)
		put_le16(buf + 8 + 2 * i, (uint8_t)creator[i]);
	return wctx_pwrite(w, buf, sizeof buf, 0);
}

/* 2.2.2: two headers; the current one is the valid header with the greater
 * SequenceNumber, so both are written valid (sequence 1 and 2). Checksum:
 * CRC-32C over the 4 KB header with the Checksum field zero. */
static int write_headers(struct wctx *w)
{
	struct guid data_write;
	struct guid file_write = w->opts->file_write_guid;
	if (guid_is_zero(&file_write))
		guid_derive(&file_write, "gen2prep vhdx file write", w->opts->disk_id.b, 16);
	guid_derive(&data_write, "gen2prep vhdx data write", file_write.b, 16);
	for (int i = 0; i < 2; i++) {
		uint8_t h[4096] = { 'h', 'e', 'a', 'd' };
		put_le64(h + 8, (uint64_t)i + 1);         /* SequenceNumber */
		memcpy(h + 16, file_write.b, 16);         /* FileWriteGuid */
		memcpy(h + 32, data_write.b, 16);         /* DataWriteGuid */
		/* LogGuid (48) zero: no log entries to replay */
		put_le16(h + 64, 0);                      /* LogVersion */
		put_le16(h + 66, 1);                      /* Version */
		put_le32(h + 68, (uint32_t)VHDX_LOG_LEN); /* LogLength */
		put_le64(h + 72, VHDX_LOG_OFF);           /* LogOffset */
		put_le32(h + 4, crc32c(h, sizeof h));
		if (wctx_pwrite(w, h, sizeof h, (uint64_t)(64 + 64 * i) * 1024) < 0)
			return -1;
	}
	return 0;
}

/* 2.2.3: region table (64 KB, CRC-32C over all of it): BAT and metadata,
 * both Required (2.2.3.1: a reader must understand them). Written twice. */
static int write_region_tables(struct wctx *w, const struct vhdx_geom *g)
{
	uint8_t *t = xcalloc(1, 64 * 1024);
	memcpy(t, "regi", 4);
	put_le32(t + 8, 2);                       /* EntryCount */
	uint8_t *e = t + 16;
	memcpy(e, GUID_BAT_REGION, 16);
	put_le64(e + 16, VHDX_BAT_OFF);
	put_le32(e + 24, (uint32_t)g->bat_len);
	put_le32(e + 28, 1);                      /* Required */
	e += 32;
	memcpy(e, GUID_METADATA_REGION, 16);
	put_le64(e + 16, VHDX_META_OFF);
	put_le32(e + 24, (uint32_t)VHDX_META_LEN);
	put_le32(e + 28, 1);
	put_le32(t + 4, crc32c(t, 64 * 1024));
	int rc = wctx_pwrite(w, t, 64 * 1024, 192 * 1024);
	if (!rc) rc = wctx_pwrite(w, t, 64 * 1024, 256 * 1024);
	free(t);
	return rc;
}

/* 2.6.1: metadata table (Signature "metadata", EntryCount at 10, entries of
 * 32 bytes from offset 32: ItemId, Offset, Length, flags IsUser bit 0 /
 * IsVirtualDisk bit 1 / IsRequired bit 2), items from 64 KB on.
 * 2.6.2: every required system item: File Parameters (BlockSize,
 * LeaveBlockAllocated bit 0, HasParent bit 1), Virtual Disk Size, Page 83
 * Data (the Virtual Disk ID), Logical and Physical Sector Size. */
static int write_metadata(struct wctx *w, const struct vhdx_geom *g)
{
	struct item { const uint8_t *id; uint32_t len, flags; uint8_t val[16]; } it[5] = {
		{ GUID_FILE_PARAMS, 8, 4, { 0 } },
		{ GUID_VDISK_SIZE, 8, 6, { 0 } },
		{ GUID_PAGE83, 16, 6, { 0 } },
		{ GUID_LOGICAL_SS, 4, 6, { 0 } },
		{ GUID_PHYSICAL_SS, 4, 6, { 0 } },
	};
	put_le32(it[0].val, g->bs);
	put_le32(it[0].val + 4, w->opts->fixed ? 1 : 0);
	put_le64(it[1].val, g->size);
	memcpy(it[2].val, w->opts->disk_id.b, 16);
	put_le32(it[3].val, g->lss);
	put_le32(it[4].val, g->pss);

	uint8_t *m = xcalloc(1, 65536 + 64);
	memcpy(m, "metadata", 8);
	put_le16(m + 10, 5);
	uint32_t off = 65536;
	for (int i = 0; i < 5; i++) {
		uint8_t *e = m + 32 + 32 * i;
		memcpy(e, it[i].id, 16);
		put_le32(e + 16, off);
		put_le32(e + 20, it[i].len);
		put_le32(e + 24, it[i].flags);
		memcpy(m + off, it[i].val, it[i].len);
		off += it[i].len;
	}
	int rc = wctx_pwrite(w, m, off, VHDX_META_OFF);
	free(m);
	return rc;
}

/* Streams the payload blocks, fills the BAT (2.5.1: State bits 0-2,
 * FileOffsetMB bits 20-63). Dynamic: a block that reads as zero is
 * NOT_PRESENT and takes no space. Fixed: every block FULLY_PRESENT at its
 * place (zero blocks stay holes of the sparse output file). */
static int write_blocks(struct wctx *w, const struct vhdx_geom *g, uint8_t *bat)
{
	uint8_t *buf = xmalloc(g->bs);
	uint64_t next = g->data_off;
	int rc = 0;
	for (uint64_t b = 0; b < g->nblocks && rc == 0; b++) {
		uint64_t off = b * g->bs;
		size_t n = g->size - off < g->bs ? (size_t)(g->size - off) : g->bs;
		int r = wctx_read_block(w, buf, n, off);
		if (r < 0) { rc = -1; break; }
		uint64_t entry = PAYLOAD_BLOCK_NOT_PRESENT;
		if (r > 0 || w->opts->fixed) {
			entry = PAYLOAD_BLOCK_FULLY_PRESENT | ((next / MB) << 20);
			if (r > 0) {
				if (n < g->bs) memset(buf + n, 0, g->bs - n);
				rc = wctx_pwrite_sparse(w, buf, g->bs, next);
			}
			next += g->bs;
		}
		put_le64(bat + 8 * bat_index(g, b), entry);
	}
	free(buf);
	if (!rc) rc = wctx_truncate(w, next);
	return rc;
}

int writer_vhdx_write(struct wctx *w)
{
	uint32_t bs = w->opts->block_size ? w->opts->block_size : VHDX_DEFAULT_BLOCK;
	uint32_t lss = w->opts->logical_sector_size ? w->opts->logical_sector_size : overlay_sector_size(w->src);
	uint32_t pss = w->opts->physical_sector_size ? w->opts->physical_sector_size : 4096;
	/* 2.6.2.1: BlockSize a power of two, 1 MB .. 256 MB; 2.6.2.4/5:
	 * sectors 512 or 4096; 2.6.2.2: size a multiple of the logical sector
	 * size, at most 64 TB. */
	if (bs < MB || bs > (256u << 20) || (bs & (bs - 1)))
		return err_set(E_USAGE, "VHDX block size %u is not a power of two between 1 and 256 MiB", bs);
	if ((lss != 512 && lss != 4096) || (pss != 512 && pss != 4096))
		return err_set(E_UNSUPPORTED, "VHDX sector sizes must be 512 or 4096 (got %u/%u)", lss, pss);
	if (w->size == 0 || w->size % lss || w->size > VHDX_MAX_SIZE)
		return err_set(E_UNSUPPORTED, "VHDX cannot hold a disk of %llu bytes (multiple of %u, at most 64 TiB)",
			       (unsigned long long)w->size, lss);
	struct vhdx_geom g;
	geom_init(&g, w->size, bs, lss, pss);
	uint8_t *bat = xcalloc(1, g.bat_len);
	int rc = write_blocks(w, &g, bat);
	if (!rc) rc = wctx_pwrite(w, bat, g.bat_len, VHDX_BAT_OFF);
	free(bat);
	if (!rc) rc = write_metadata(w, &g);
	if (!rc) rc = write_region_tables(w, &g);
	if (!rc) rc = write_headers(w);
	if (!rc) rc = write_identifier(w);
	return rc;
}
