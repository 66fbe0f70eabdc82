/* disk.h - read-only access to an input disk image: raw, VHD (fixed,
 * dynamic, differencing) and VHDX (fixed, dynamic, differencing).
 *
 * VHD and VHDX are read with libvhdi; differencing parents are resolved from
 * the child's parent locator relative to the child's folder and opened
 * recursively. The format is detected from content (VHDX: "vhdxfile" at 0;
 * VHD: "conectix" footer at the end, or at 0 for dynamic copies), never from
 * the extension. Files are opened O_RDONLY: the input is never modified.
 */
#ifndef GEN2PREP_DISK_H
#define GEN2PREP_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "guid.h"

enum disk_format { DISK_RAW, DISK_VHD, DISK_VHDX };

struct disk_info {
	enum disk_format format;
	const char *format_name;    /* "raw", "vhd", "vhdx" */
	const char *subformat;      /* "fixed", "dynamic", "differencing" ("fixed" for raw) */
	uint64_t virtual_size;      /* bytes */
	uint32_t logical_sector_size;  /* 512 for raw and VHD */
	uint32_t physical_sector_size;
	uint32_t block_size;        /* dynamic/differencing block size, 0 if none */
	struct guid disk_id;        /* VHDX Virtual Disk ID / VHD unique id; zero for raw */
	struct guid data_write_guid;/* VHDX: DataWriteGuid of the current header (MS-VHDX 2.2.2), what a
	                               differencing child's parent_linkage names; zero otherwise */
	char *parent_path;          /* resolved parent file (differencing), else NULL */
	char *parent_locator;       /* the parent path as the child records it (UTF-8, whole) */
	bool parent_by_name;        /* the recorded relative path led nowhere: the parent
				       was found by its file name beside the child, where
				       Hyper-V does not look (MS-VHDX 2.6.2.6) */
	struct guid parent_linkage; /* what the child names and the parent is: MS-VHDX
				       2.6.2.6.3 parent_linkage = the parent's DataWriteGuid,
				       VHD: Parent Unique Id */
	int chain_depth;            /* 0 for a base disk */
};

struct disk;

/* Opens path read-only. NULL with err set: E_IO (cannot open), E_FORMAT
 * (corrupt / truncated image), E_NOTFOUND ("parent disk '...' of '...' not
 * found"). */
struct disk *disk_open(const char *path);
const struct disk_info *disk_info(const struct disk *d);
/* Reads len bytes at off. Bytes past virtual_size read as zero. 0 or -1. */
int disk_read(struct disk *d, void *buf, size_t len, uint64_t off);
/* 0 when [off, off+len) is known to read as zeros without reading it
 * (unallocated in every layer of a dynamic/differencing image, or a hole in a
 * sparse raw file); 1 when it may hold data; -1 on error. Lets the streaming
 * writer do work proportional to the data, not the virtual size. */
int disk_maybe_allocated(struct disk *d, uint64_t off, uint64_t len);
/* Identity of the input used to derive deterministic ids: the sha256 of
 * the first and last MiB plus virtual size (cheap, stable). */
/* Returns 0, or -1 with E_NOMEM set. */
int disk_fingerprint(struct disk *d, uint8_t out[32]);
/* Where [off, off+len) of the virtual disk lies plainly in a file (raw
 * image, fixed VHD, VHDX FULLY_PRESENT block without a parent: see
 * vhdmeta_map): returns the length of the run starting at off (<= len,
 * within the virtual size) with *fd and *file_off; 0 when it does not (the
 * caller reads through disk_read). Lets the output stream read without
 * libvhdi's copy and copy file to file (copy_file_range). */
uint64_t disk_map(struct disk *d, uint64_t off, uint64_t len, int *fd, uint64_t *file_off);
/* 0 when no file of the image (the disk and its differencing parents)
 * changed since disk_open: same size, modification and change times. -1
 * with E_FORMAT "'PATH' changed while it was read ..." otherwise: a copy
 * still being written or a file truncated under us is an input error.
 * Block devices are not checked (their size is fixed; times mean nothing). */
int disk_check_unchanged(struct disk *d);
void disk_close(struct disk *d);

/* E_NOTFOUND: the differencing disk child records its parent as locator
 * and no file is there. The message names where the recorded path leads
 * (MS-VHDX 2.6.2.6.3 relative_path from child's folder: where Hyper-V
 * looks), the fallback gen2prep also tries (the file's name beside child),
 * and the disk it needs: linkage (may be NULL: unknown), the parent's
 * DataWriteGuid for a VHDX (parent_linkage), its unique id for a VHD.
 * Returns -1. */
int disk_parent_missing(const char *child, const char *locator, const struct guid *linkage, bool vhdx);

#endif
