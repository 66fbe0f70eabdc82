/* ntfs.h - an NTFS volume inside an overlay, through libntfs-3g with a
 * custom struct ntfs_device_operations (no FUSE, no loop device, no kernel
 * mount). Paths use '\' or '/', are looked up without case (Windows and its
 * boot manager match names case-insensitively) and a case variant of an
 * existing name is never created (doc/formats.md, NTFS naming).
 */
#ifndef GEN2PREP_NTFS_H
#define GEN2PREP_NTFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct overlay;
/* $VOLUME_NAME is at most 256 bytes, 128 UTF-16 units ($AttrDef of
 * volumes Windows formats; the ntfs crate's VOLUME_NAME_MAX_SIZE), so at
 * most 384 bytes of UTF-8: every valid label fits; a longer one from a
 * crafted volume is refused by ntfs_probe, never cut (doc/formats.md,
 * NTFS volume label). */
#define NTFS_LABEL_MAX_UTF8 (128 * 3)

struct ntfs_vol;

/* What the boot sector and $Volume say before any mount decision. */
struct ntfs_probe {
	bool is_ntfs;             /* "NTFS    " OEM id */
	bool bitlocker;           /* "-FVE-FS-" OEM id */
	bool dirty;               /* $Volume VOLUME_IS_DIRTY */
	bool hibernated;          /* hiberfil.sys starts with "hibr"/"HIBR"/"wake"/"WAKE" */
	char label[NTFS_LABEL_MAX_UTF8 + 1];   /* UTF-8, "" if none */
	uint64_t serial;
	enum ntfs_logfile {       /* $LogFile restart area (ntfs-3g logfile.c checks) */
		NTFS_LOGFILE_CLEAN = 0,   /* empty, or no client in use / RESTART_VOLUME_IS_CLEAN */
		NTFS_LOGFILE_UNCLEAN,     /* a client in use without the clean flag: not shut down */
		NTFS_LOGFILE_CACHED,      /* restart page 2.0: metadata kept cached by Windows 8+ */
		NTFS_LOGFILE_DAMAGED,     /* restart pages inconsistent or unreadable */
	} logfile;
	uint64_t total_sectors;   /* boot sector 0x28 */
	uint16_t bytes_per_sector;/* boot sector 0x0B */
};
/* "clean", "unclean", "cached", "damaged" */
const char *ntfs_logfile_name(enum ntfs_logfile s);

/* Reads the boot sector (and, when NTFS, mounts read-only to read $Volume
 * flags, the label and hiberfil.sys). 0 or -1. */
int ntfs_probe(struct overlay *o, uint64_t off, uint64_t size, struct ntfs_probe *out);

/* Mounts the volume at [off, off+size) of the overlay. rw refuses dirty or
 * hibernated volumes (E_BLOCKED). NULL with err set. */
struct ntfs_vol *ntfs_open(struct overlay *o, uint64_t off, uint64_t size, bool rw);
/* Unmounts (flushing writes to the overlay when rw). 0 or -1. */
int ntfs_close(struct ntfs_vol *v);

/* 1 exists, 0 not, -1 error. is_dir/size optional. */
int ntfs_stat(struct ntfs_vol *v, const char *path, bool *is_dir, uint64_t *size);
/* The path with the names' case as stored on disk (malloc'd), NULL if absent. */
char *ntfs_real_path(struct ntfs_vol *v, const char *path);
/* Reads a whole file as Windows sees it: the unnamed data stream, or for a
 * WOF-compressed file (wof.h) the WofCompressedData stream decompressed.
 * Refuses files over max bytes (E_UNSUPPORTED) so memory stays bounded; a
 * corrupt WOF stream is E_FORMAT, another reparse point (link, dedup,
 * WIMBoot, cloud) or an unknown WOF algorithm E_UNSUPPORTED, naming path. */
int ntfs_read_file(struct ntfs_vol *v, const char *path, size_t max, uint8_t **data, size_t *len);
/* Replaces the file's data (existing file: same name and case; else created
 * in the existing parent, which must exist). rw volumes only. A WOF file
 * becomes a plain one (reparse point and WofCompressedData removed); a file
 * with another reparse point is refused (E_UNSUPPORTED). */
int ntfs_write_file(struct ntfs_vol *v, const char *path, const void *data, size_t len);
/* Creates a directory if no case variant exists. */
int ntfs_mkdir(struct ntfs_vol *v, const char *path);

/* The names (hard links) of the file at path: every $FILE_NAME in the
 * Win32 or POSIX namespace (DOS 8.3 aliases are not counted), as full
 * paths "\\dir\\name" joined by ", " into out (truncated to n). Returns
 * the count (1 for a file with one name), 0 when path does not exist, -1
 * on error. */
int ntfs_link_names(struct ntfs_vol *v, const char *path, char *out, size_t n);

/* An NTFS name is at most 255 UTF-16 units, each at most 3 bytes of UTF-8
 * (a surrogate pair, 2 units, is 4): every stored name fits. */
#define NTFS_NAME_MAX_UTF8 (255 * 3)

struct ntfs_dirent {
	char name[NTFS_NAME_MAX_UTF8 + 1];   /* UTF-8, as stored */
	bool is_dir;
	uint64_t size;
};
/* Lists a directory (Win32 names; DOS 8.3 duplicates and $-metafiles at
 * the root are skipped). Returns the count; *out malloc'd. */
int ntfs_list(struct ntfs_vol *v, const char *path, struct ntfs_dirent **out);

#endif
