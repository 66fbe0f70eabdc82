/* writer.h - stream an overlay into an output image, once, atomically.
 *
 * The output is written to a file without a name in OUT's folder
 * (O_TMPFILE), fsynced, then linked as OUT (and the folder fsynced): until
 * the image is complete nothing in the folder names it, so no error, signal
 * or SIGKILL leaves anything behind. --overwrite links to a temporary name
 * and renames it over OUT. Where the file system has no O_TMPFILE, a named
 * temporary file "OUT.gen2prep-XXXXXX" is used and removed on error and on
 * SIGINT/SIGTERM/SIGHUP (writer_out.c). A lock on OUT's name (writer_lock)
 * keeps two runs from writing the same OUT.
 * Blocks that read as zero are left unallocated in dynamic outputs (VHDX
 * BAT state NOT_PRESENT, VHD BAT 0xFFFFFFFF) and as holes in raw outputs.
 *
 * Module split: writer.c owns the temp-file/rename/signal logic and the
 * streaming loop; writer_vhdx.c, writer_vhd.c, writer_raw.c own their
 * formats (only writer_vhdx knows VHDX).
 */
#ifndef GEN2PREP_WRITER_H
#define GEN2PREP_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include "guid.h"
#include "progress.h"

struct overlay;

enum out_format { OUT_VHDX, OUT_VHD, OUT_RAW };

/* --differencing (writer_diff.c): OUT is a differencing VHDX whose parent
 * is the input file, holding only the ranges written through the overlay. */
struct writer_parent {
	const char *path;             /* the parent (IN) as given; OUT records it relative to OUT's folder */
	struct guid data_write_guid;  /* the parent's DataWriteGuid: the child's parent_linkage */
	struct guid disk_id;          /* the parent's Virtual Disk ID, kept by the child */
	uint64_t size;                /* the parent's virtual size: the child's must equal it */
};

/* The relative_path a differencing child at path child records for the
 * parent file parent (MS-VHDX 2.6.2.6.3): from child's folder to parent,
 * symbolic links resolved, "\" between names, ".." up (".\NAME" in the
 * same folder); malloc'd. Reads no disk, only the folders' names
 * (realpath). NULL with E_USAGE when Hyper-V could not open the parent by
 * it: a name on the way (below the common folder) or the file's that
 * Windows does not allow (win32_name.h), a "\" in a name, more than the
 * 65535 bytes of UTF-16 a locator value holds (2.6.2.6.2); E_OUTPUT when
 * parent or a folder cannot be resolved (missing); E_NOMEM. */
char *writer_diff_relative_path(const char *child, const char *parent);

struct writer_opts {
	enum out_format format;
	bool fixed;                   /* -o subformat=fixed (VHDX/VHD) */
	uint32_t block_size;          /* 0 = default (VHDX 32 MiB, VHD 2 MiB) */
	uint32_t logical_sector_size; /* kept from the input (512 for Gen1) */
	uint32_t physical_sector_size;/* 0 = 4096 for VHDX */
	struct guid disk_id;          /* VHDX Virtual Disk ID / VHD unique id */
	struct guid file_write_guid;  /* VHDX header FileWriteGuid/DataWriteGuid seed */
	uint64_t timestamp;           /* VHD footer timestamp source (unix seconds) */
	bool overwrite;               /* replace an existing OUT */
	const struct progress *progress;
	const struct writer_parent *parent;   /* non-NULL: differencing VHDX over it (format OUT_VHDX) */
};

/* "vhdx", "vhd", "raw"/"img"; -1 (E_USAGE) otherwise. */
int out_format_parse(const char *name, enum out_format *out);
/* From OUT's extension (.vhdx, .vhd, .raw, .img, .bin); -1 if unknown. */
int out_format_from_path(const char *path, enum out_format *out);
const char *out_format_name(enum out_format f);

/* Streams the whole overlay to path. Refuses an existing path without
 * overwrite (E_EXISTS) and a path that is the input (caller's check, by
 * st_dev/st_ino). Takes the lock on path unless the caller holds it.
 * Returns 0; -1 when writing failed (E_OUTPUT, E_NOSPACE, E_EXISTS ...);
 * -2 when reading the source failed or the input changed while it was
 * read (an input error: the message names the input). Nothing is left
 * behind on either error. */
int writer_stream(struct overlay *src, const char *path, const struct writer_opts *opts);

/* Locks the name path for this process, so that a second run writing the
 * same OUT fails at once: -1 with E_OUTPUT ("being written by another
 * gen2prep (process N)"), or E_OUTPUT naming the folder when it is not
 * there. No file is created; the lock ends with the process
 * (writer_out.c). Idempotent for the same path. */
int writer_lock(const char *path);
void writer_unlock(void);
bool writer_locked(const char *path);

/* Writes buf (len bytes) as the whole file path the same way: nameless
 * until complete and fsynced, then linked (overwrite: renamed over an
 * existing path; otherwise E_EXISTS). mode 0: 0666 & ~umask. For the
 * small files other commands write (patch -o/--in-place, --nanabox).
 * E_OUTPUT / E_NOSPACE / E_EXISTS naming path. */
int writer_save_buffer(const char *path, const void *buf, size_t len, bool overwrite, unsigned mode);

/* Removes any temporary output name still registered (called from signal
 * handlers and atexit by the CLI). Async-signal-safe. */
void writer_cleanup_tmp(void);

#endif
