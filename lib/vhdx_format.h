/* vhdx_format.h - the VHDX on-disk layout, declared once for the reader
 * (vhdmeta.c, disk.c) and the writer (writer_vhdx.c). Section numbers are
 * those of [MS-VHDX] v20160714; doc/formats.md, VHDX says what each
 * structure was checked against. All fields little-endian.
 */
#ifndef GEN2PREP_VHDX_FORMAT_H
#define GEN2PREP_VHDX_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "crc32c.h"
#include "guid.h"
#include "ondisk.h"

#define VHDX_MB            (1ull << 20)
/* 2.2: fixed places in the 1 MiB header section */
#define VHDX_IDENTIFIER_OFF 0u
#define VHDX_HEADER1_OFF   (64u * 1024)
#define VHDX_HEADER2_OFF   (128u * 1024)
#define VHDX_HEADER_SIZE   4096u
#define VHDX_REGION1_OFF   (192u * 1024)
#define VHDX_REGION2_OFF   (256u * 1024)
#define VHDX_REGION_SIZE   (64u * 1024)
#define VHDX_MAX_ENTRIES   2047u               /* 2.2.3.1, 2.6.1.1: what fits in 64 KiB */
#define VHDX_META_TABLE_SIZE (64u * 1024)     /* 2.6.1: items start after the table */
#define VHDX_MAX_VSIZE     (64ull << 40)      /* 2.6.2.2: at most 64 TB */

/* 2.2.1 File Type Identifier: "vhdxfile", then the creator as UTF-16. */
struct vhdx_identifier {
	uint8_t signature[8];
	le16 creator[256];
} ONDISK;
_Static_assert(sizeof(struct vhdx_identifier) == 520, "MS-VHDX 2.2.1");

/* 2.2.2 Headers: Checksum is CRC-32C over the 4 KiB with the field zero;
 * the current header is the valid one with the greater SequenceNumber
 * (2.2.2.1); a non-zero LogGuid means the log must be replayed (2.3). */
struct vhdx_header {
	uint8_t signature[4];           /* "head" */
	le32 checksum;
	le64 sequence_number;
	struct guid file_write_guid;
	struct guid data_write_guid;
	struct guid log_guid;
	le16 log_version;               /* 0 */
	le16 version;                   /* MUST be 1 */
	le32 log_length;                /* multiple of 1 MiB */
	le64 log_offset;                /* multiple of 1 MiB, at least 1 MiB */
	uint8_t reserved[4016];
} ONDISK;
_Static_assert(sizeof(struct vhdx_header) == VHDX_HEADER_SIZE, "MS-VHDX 2.2.2");

/* 2.2.3.1 Region Table Header: Checksum is CRC-32C over the 64 KiB table. */
struct vhdx_region_header {
	uint8_t signature[4];           /* "regi" */
	le32 checksum;
	le32 entry_count;               /* <= 2047 */
	le32 reserved;
} ONDISK;
_Static_assert(sizeof(struct vhdx_region_header) == 16, "MS-VHDX 2.2.3.1");

/* 2.2.3.2 Region Table Entry: offset and length multiples of 1 MiB; an
 * unknown region with Required set makes the file unreadable. */
struct vhdx_region_entry {
	struct guid guid;
	le64 file_offset;
	le32 length;
	le32 required;                  /* bit 0 */
} ONDISK;
_Static_assert(sizeof(struct vhdx_region_entry) == 32, "MS-VHDX 2.2.3.2");

/* 2.6.1.1 Metadata Table Header */
struct vhdx_meta_header {
	uint8_t signature[8];           /* "metadata" */
	le16 reserved;
	le16 entry_count;               /* <= 2047 */
	le32 reserved2[5];
} ONDISK;
_Static_assert(sizeof(struct vhdx_meta_header) == 32, "MS-VHDX 2.6.1.1");

/* 2.6.1.2 Metadata Table Entry: Offset from the region start, >= 64 KiB. */
struct vhdx_meta_entry {
	struct guid item_id;
	le32 offset;
	le32 length;
	le32 flags;                     /* VHDX_META_* */
	le32 reserved2;
} ONDISK;
_Static_assert(sizeof(struct vhdx_meta_entry) == 32, "MS-VHDX 2.6.1.2");

#define VHDX_META_IS_USER         1u
#define VHDX_META_IS_VIRTUAL_DISK 2u
#define VHDX_META_IS_REQUIRED     4u

/* 2.6.2.1 File Parameters */
struct vhdx_file_params {
	le32 block_size;                /* power of two, 1 MiB .. 256 MiB */
	le32 flags;                     /* VHDX_PARAMS_* */
} ONDISK;
_Static_assert(sizeof(struct vhdx_file_params) == 8, "MS-VHDX 2.6.2.1");

#define VHDX_PARAMS_LEAVE_ALLOCATED 1u
#define VHDX_PARAMS_HAS_PARENT      2u

/* 2.6.2.6.1 Parent Locator Header, then KeyValueCount entries (2.6.2.6.2)
 * whose offsets count from the item's start; keys and values UTF-16LE
 * without NUL, lengths in bytes, all > 0. */
struct vhdx_locator_header {
	struct guid locator_type;       /* VHDX_LOCATOR_TYPE (2.6.2.6.3) */
	le16 reserved;
	le16 key_value_count;
} ONDISK;
_Static_assert(sizeof(struct vhdx_locator_header) == 20, "MS-VHDX 2.6.2.6.1");

struct vhdx_locator_entry {
	le32 key_offset;
	le32 value_offset;
	le16 key_length;
	le16 value_length;
} ONDISK;
_Static_assert(sizeof(struct vhdx_locator_entry) == 12, "MS-VHDX 2.6.2.6.2");

/* What a differencing child says of its parent (vhdx_locator.c). */
struct vhdx_locator {
	char *path;                     /* UTF-8, malloc'd: relative_path, else volume_path, else absolute_win32_path */
	struct guid linkage;            /* parent_linkage: the parent's DataWriteGuid */
	bool has_linkage;
};
/* Parses a Parent Locator item of len bytes (2.6.2.6): 0, or -1 with
 * E_FORMAT (malformed, no parent_linkage or no path) / E_UNSUPPORTED (a
 * locator type other than VHDX). On success out->path is the caller's to
 * free; on -1 it is NULL and nothing is left allocated. */
int vhdx_locator_parse(const uint8_t *item, size_t len, struct vhdx_locator *out);

/* 2.5 BAT entry (u64): State bits 0-2, FileOffsetMB bits 20-63.
 * Payload states 2.5.1.1; sector bitmap states 2.5.1.2. */
#define VHDX_BAT_STATE(e)       ((unsigned)((e) & 7))
#define VHDX_BAT_OFFSET(e)      (((e) >> 20) << 20)
#define VHDX_BAT_ENTRY(state, off) ((uint64_t)(state) | (((off) / VHDX_MB) << 20))
enum vhdx_payload_state {
	VHDX_PAYLOAD_NOT_PRESENT = 0,
	VHDX_PAYLOAD_UNDEFINED = 1,
	VHDX_PAYLOAD_ZERO = 2,
	VHDX_PAYLOAD_UNMAPPED = 3,
	VHDX_PAYLOAD_FULLY_PRESENT = 6,
	VHDX_PAYLOAD_PARTIALLY_PRESENT = 7,   /* differencing only */
};

/* 2.5: one sector bitmap entry follows every ChunkRatio payload entries,
 * ChunkRatio = 2^23 * LogicalSectorSize / BlockSize. */
static inline uint64_t vhdx_chunk_ratio(uint32_t logical_sector_size, uint32_t block_size)
{
	return ((uint64_t)1 << 23) * logical_sector_size / block_size;
}

/* 2.5: BAT entries for nblocks (>= 1) payload blocks. Dynamic and fixed
 * files: PayloadBlocks + floor((PayloadBlocks - 1) / ChunkRatio); a
 * differencing file has every chunk's bitmap entry:
 * ceil(PayloadBlocks / ChunkRatio) * (ChunkRatio + 1). */
static inline uint64_t vhdx_bat_entries(uint64_t nblocks, uint64_t ratio, bool differencing)
{
	return differencing ? (nblocks + ratio - 1) / ratio * (ratio + 1) : nblocks + (nblocks - 1) / ratio;
}
/* 2.5: the BAT index of payload block i: i + floor(i / ChunkRatio). */
static inline uint64_t vhdx_bat_index(uint64_t block, uint64_t ratio) { return block + block / ratio; }

/* 2.6.2.1 BlockSize, 2.6.2.4/2.6.2.5 sector sizes, 2.6.2.2 virtual size. */
static inline bool vhdx_block_size_ok(uint32_t bs)
{
	return bs >= VHDX_MB && bs <= (256u << 20) && !(bs & (bs - 1));
}
static inline bool vhdx_sector_size_ok(uint32_t s) { return s == 512 || s == 4096; }
static inline bool vhdx_size_ok(uint64_t size, uint32_t lss)
{
	return size && size <= VHDX_MAX_VSIZE && size % lss == 0;
}

/* 2.2.2, 2.2.3.1: CRC-32C over the n bytes at p with the 4-byte Checksum
 * field at offset field taken as zero (p is not changed). */
static inline uint32_t vhdx_checksum(const void *p, size_t n, size_t field)
{
	static const uint8_t zero[4];
	const uint8_t *b = p;
	uint32_t crc = crc32c_update(0, b, field);
	crc = crc32c_update(crc, zero, 4);
	return crc32c_update(crc, b + field + 4, n - field - 4);
}

/* Region (2.2.3.2) and metadata item (2.6.2) GUIDs, in on-disk order. */
extern const struct guid VHDX_REGION_BAT, VHDX_REGION_METADATA;
extern const struct guid VHDX_ITEM_FILE_PARAMS, VHDX_ITEM_VDISK_SIZE, VHDX_ITEM_PAGE83,
	VHDX_ITEM_LOGICAL_SS, VHDX_ITEM_PHYSICAL_SS, VHDX_ITEM_PARENT_LOCATOR;
/* 2.6.2.6.3: the one parent locator type defined, VHDX (vhdx_locator.c) */
extern const struct guid VHDX_LOCATOR_TYPE;

#endif
