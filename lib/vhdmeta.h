/* vhdmeta.h - our own read-only parse of the structure of a VHD or VHDX
 * file (headers, metadata, block allocation table), owned by the disk
 * module. libvhdi reads the data; this parse answers what libvhdi does not
 * expose: which blocks are allocated, the VHDX metadata items, and whether
 * every allocated block lies inside the file (a truncated image is refused
 * at open time instead of failing halfway through a conversion).
 *
 * Every number comes from an untrusted file: all offsets are range-checked
 * against the file size before use, and memory is bounded by the file size
 * (one byte per payload block, whose BAT entry must itself be in the file).
 */
#ifndef GEN2PREP_VHDMETA_H
#define GEN2PREP_VHDMETA_H

#include <stdbool.h>
#include <stdint.h>
#include "guid.h"

struct vhdmeta;

struct vhdmeta_info {
	bool vhdx;
	bool differencing;
	bool fixed;
	uint64_t virtual_size;
	uint32_t block_size;            /* 0 for fixed VHD */
	uint32_t logical_sector_size;   /* 0 when the format does not say (VHD) */
	uint32_t physical_sector_size;
	struct guid disk_id;            /* VHDX Page 83 id / VHD footer unique id */
	struct guid data_write_guid;    /* VHDX current header's DataWriteGuid (2.2.2); zero for VHD */
	char *parent_locator;           /* VHDX differencing: the parent's path as recorded (2.6.2.6.3, UTF-8;
	                                   relative_path first), else NULL; owned by the vhdmeta */
	struct guid parent_linkage;     /* VHDX differencing: parent_linkage (the parent's DataWriteGuid) */
	uint64_t payload_blocks;
	uint64_t allocated_blocks;      /* blocks with data in this file */
};

/* Reads len bytes at off of the image file; 0 or -1 (err set). */
typedef int (*vhdmeta_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);

/* Parses the file; NULL with err set (E_FORMAT, E_UNSUPPORTED). fd >= 0
 * enables SEEK_DATA checks of allocated ranges (sparse fixed images);
 * -1 disables them (fuzzing). */
struct vhdmeta *vhdmeta_parse_with(vhdmeta_read_fn rd, void *ctx, int fd, uint64_t file_size, bool vhdx);
struct vhdmeta *vhdmeta_parse(int fd, uint64_t file_size, bool vhdx);
const struct vhdmeta_info *vhdmeta_info(const struct vhdmeta *m);
/* For [off, off+len) inside the virtual size: 0 reads as zeros, 1 may hold
 * data in this file, 2 nothing in this file but a differencing parent
 * decides. */
int vhdmeta_maybe_allocated(const struct vhdmeta *m, uint64_t off, uint64_t len);
/* Where the bytes of virtual offset off lie in the file, when they lie
 * there as they are: a VHDX payload block in state FULLY_PRESENT ([MS-VHDX]
 * 2.5.1.1: every sector of the block is in the file, at FileOffsetMB +
 * the offset in the block) of a file without a parent, the sectors of a
 * dynamic VHD block whose sector bitmap bits are set (the bitmap is read:
 * bs / 4096 bytes, once per block), or a fixed VHD (identity). Returns the
 * length of that run (up to len, within one block) and *file_off; 0 when
 * off is not stored plainly (differencing VHD; a clear bitmap bit: see
 * vhdmeta_zero_run; unallocated; out of range). */
uint64_t vhdmeta_map(const struct vhdmeta *m, uint64_t off, uint64_t len, uint64_t *file_off);
/* Bytes from off (up to len, within one block) that read as zeros because
 * their dynamic VHD block's bitmap bits are clear (VHD, "Block Allocation
 * Table and Data Blocks"); 0 when off is anything else. */
uint64_t vhdmeta_zero_run(const struct vhdmeta *m, uint64_t off, uint64_t len);
void vhdmeta_free(struct vhdmeta *m);

/* For a file that has neither a VHDX identifier nor a VHD footer: does it
 * hold what is left of one? 1 a VHDX header or region table (by signature;
 * "(CRC-32C valid)" when it checks), 2 a VHD dynamic header, 0 nothing;
 * what was found (and where) in out; -1 with E_NOMEM set when out of
 * memory. Reads at most 4 x 64 KiB. */
int vhdmeta_damaged(int fd, uint64_t file_size, char *out, size_t n);
/* Which container a file is, by its signatures alone (doc/formats.md, VHDX
 * and VHD): "vhdxfile" at offset 0, else a VHD footer cookie "conectix" at
 * the end (512 or 511 bytes back) or its copy at 0. Never an error. */
enum vhdmeta_format { VHDMETA_NONE = 0, VHDMETA_VHDX, VHDMETA_VHD };
enum vhdmeta_format vhdmeta_detect(int fd, uint64_t file_size);

#endif
