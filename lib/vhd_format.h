/* vhd_format.h - the VHD on-disk layout, declared once for the reader
 * (vhdmeta.c, disk.c) and the writer (writer_vhd.c): "Virtual Hard Disk
 * Image Format Specification" (Microsoft, October 2006, v1.0), section
 * names given. All fields big-endian. doc/formats.md, VHD.
 */
#ifndef GEN2PREP_VHD_FORMAT_H
#define GEN2PREP_VHD_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include "ondisk.h"

#define VHD_COOKIE         "conectix"   /* footer */
#define VHD_SPARSE_COOKIE  "cxsparse"   /* dynamic disk header */
#define VHD_DISK_FIXED        2u
#define VHD_DISK_DYNAMIC      3u
#define VHD_DISK_DIFFERENCING 4u
#define VHD_BAT_UNUSED     0xFFFFFFFFu  /* BAT entry of a block not allocated */
#define VHD_MAX_SIZE       (2040ull << 30)   /* at most 2040 GB */

/* "Hard Disk Footer Format": at the end of every VHD (511 bytes long in
 * images made before Virtual PC 2004), copied at offset 0 of a dynamic
 * disk. */
struct vhd_footer {
	uint8_t cookie[8];              /* "conectix" */
	be32 features;                  /* bit 1 reserved, always set */
	be32 version;                   /* 0x00010000 */
	be64 data_offset;               /* the dynamic header; all ones if fixed */
	be32 timestamp;                 /* seconds since 2000-01-01 00:00:00 UTC */
	uint8_t creator_app[4];
	be32 creator_version;
	uint8_t creator_host_os[4];
	be64 original_size;
	be64 current_size;
	be16 cylinders;                 /* "Disk Geometry" */
	uint8_t heads;
	uint8_t sectors_per_track;
	be32 disk_type;                 /* VHD_DISK_* */
	be32 checksum;                  /* vhd_checksum */
	uint8_t unique_id[16];
	uint8_t saved_state;
	uint8_t reserved[427];
} ONDISK;
_Static_assert(sizeof(struct vhd_footer) == 512, "VHD Hard Disk Footer Format");

/* "Dynamic Disk Header Format". A block is its sector bitmap (one bit a
 * sector, padded to 512 bytes) followed by its data; the BAT holds one
 * be32 sector offset a block (VHD_BAT_UNUSED when unallocated). */
struct vhd_dyn_header {
	uint8_t cookie[8];              /* "cxsparse" */
	be64 data_offset;               /* unused: all ones */
	be64 table_offset;              /* the BAT */
	be32 header_version;            /* 0x00010000 */
	be32 max_table_entries;
	be32 block_size;
	be32 checksum;                  /* vhd_checksum */
	uint8_t parent_unique_id[16];
	be32 parent_timestamp;
	be32 reserved;
	uint8_t parent_unicode_name[512];
	uint8_t parent_locators[8][24];
	uint8_t reserved2[256];
} ONDISK;
_Static_assert(sizeof(struct vhd_dyn_header) == 1024, "VHD Dynamic Disk Header Format");

#define VHD_FOOTER_CHECKSUM_OFF offsetof(struct vhd_footer, checksum)
#define VHD_DYN_CHECKSUM_OFF    offsetof(struct vhd_dyn_header, checksum)

/* "Checksum" (footer and dynamic header): one's complement of the sum of
 * the n bytes at p, the 4-byte checksum field at skip taken as zero. */
static inline uint32_t vhd_checksum(const void *p, size_t n, size_t skip)
{
	const uint8_t *b = p;
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i++)
		if (i < skip || i >= skip + 4)
			sum += b[i];
	return ~sum;
}

#endif
