/* fat32.h - the FAT32 file system of the EFI system partition: a small
 * writer (what no Debian library does without a mount) and a reader with a
 * structure check (for verify and for reading BCD from an image's ESP).
 * Microsoft FAT specification (fatgen103, "FAT: General Overview of On-Disk
 * Format" 1.03) is the reference for every field.
 */
#ifndef GEN2PREP_FAT32_H
#define GEN2PREP_FAT32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct overlay;
struct fat32_builder;

/* A builder for a volume of size bytes (>= the FAT32 minimum of 65525
 * clusters) with the given sector size, volume id and label (at most 11
 * bytes); timestamps are taken from build_epoch(). NULL with err
 * (E_NOSPACE: too small; E_USAGE: a longer label). */
struct fat32_builder *fat32_new(uint64_t size, uint32_t sector_size, uint32_t volume_id, const char *label);
/* Paths are '/'-separated from the root; long names kept (LFN entries with
 * an 8.3 alias); parents must exist. */
int fat32_mkdir(struct fat32_builder *b, const char *path);
int fat32_add_file(struct fat32_builder *b, const char *path, const void *data, size_t len);
/* Writes the whole file system into the overlay at off (writes every
 * metadata sector; leaves unused data clusters zero). */
int fat32_write(struct fat32_builder *b, struct overlay *o, uint64_t off);
void fat32_free(struct fat32_builder *b);
/* Minimum volume size for a FAT32 volume with this sector size. */
uint64_t fat32_min_size(uint32_t sector_size);
/* The geometry fat32_new would give a volume of size bytes: its data
 * cluster count and cluster size in bytes. -1 (E_NOSPACE, E_UNSUPPORTED)
 * when no FAT32 of that size and sector size can be built (fewer than
 * 65,525 clusters, fatgen103). */
int fat32_geometry(uint64_t size, uint32_t sector_size, uint32_t *clusters, uint32_t *cluster_bytes);

/* The FAT a volume's first sector (512 bytes) names: "fat32", "fat16" or
 * "fat12" by BS_FilSysType, NULL without the 0x55AA signature or a FAT
 * name. Informative only (fatgen103 decides the type by cluster count),
 * enough to tell a FAT volume from NTFS. */
const char *fat_boot_kind(const uint8_t *sector);

/* Reader. */
struct fat32_vol;
struct fat32_vol *fat32_open(struct overlay *o, uint64_t off, uint64_t size);
void fat32_close(struct fat32_vol *v);
/* Case-insensitive path lookup. 1 found, 0 absent, -1 error. */
int fat32_stat(struct fat32_vol *v, const char *path, bool *is_dir, uint64_t *size);
int fat32_read_file(struct fat32_vol *v, const char *path, size_t max, uint8_t **data, size_t *len);
/* Structure check: boot sector, backup boot sector, FSInfo, both FATs
 * equal, every directory's and file's cluster chain in bounds and not
 * cross-linked. 0 clean, -1 with the first problem in err. */
int fat32_check(struct fat32_vol *v);

#endif
