/* overlay.h - copy-on-write layer over a read-only disk.
 *
 * Every edit of a conversion (partition table, ESP, NTFS writes) goes to the
 * overlay; the input is only ever read. Reads see overlay data where written,
 * the disk elsewhere, zeros past the disk's end (the overlay can grow the
 * virtual size, e.g. to append an ESP). Written data lives in an unlinked
 * temporary file (in TMPDIR) indexed by 4 KiB pages, so memory stays small
 * whatever is written.
 */
#ifndef GEN2PREP_OVERLAY_H
#define GEN2PREP_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct disk;
struct overlay;

#define OVERLAY_PAGE 4096u

/* The overlay does not own the disk: close the overlay first. */
struct overlay *overlay_new(struct disk *d);
void overlay_free(struct overlay *o);

uint64_t overlay_size(const struct overlay *o);
uint32_t overlay_sector_size(const struct overlay *o);   /* logical sector size of the disk */
/* Grows the virtual size; the new area reads as zeros. Shrinks only by
 * less than 4096 bytes, before any write (a raw image's partial last
 * sector, plan warning partial-sector); else E_INTERNAL. */
int overlay_resize(struct overlay *o, uint64_t new_size);

int overlay_read(struct overlay *o, void *buf, size_t len, uint64_t off);
/* Range must lie inside overlay_size(): -1 (E_INTERNAL) otherwise. */
int overlay_write(struct overlay *o, const void *buf, size_t len, uint64_t off);
/* Makes [off, off+len) read as zeros (same rules as overlay_write). */
int overlay_zero(struct overlay *o, uint64_t off, uint64_t len);

/* 0 when the range is known to read as zeros without reading (unwritten and
 * unallocated in the disk, or past its end, or explicitly zeroed), 1 when it
 * may hold data, -1 on error. */
int overlay_maybe_data(struct overlay *o, uint64_t off, uint64_t len);
/* True when any byte of the range was written through the overlay. */
bool overlay_touched(const struct overlay *o, uint64_t off, uint64_t len);
/* Calls fn for each maximal run of written pages, in order (for reports and
 * for tests that compare the output with the input outside edited ranges). */
int overlay_foreach_written(const struct overlay *o,
			    int (*fn)(void *ctx, uint64_t off, uint64_t len), void *ctx);
uint64_t overlay_bytes_written(const struct overlay *o);
/* disk_map for a range nothing was written to through the overlay (and
 * inside the disk): the length of the plain run at off, 0 otherwise. */
uint64_t overlay_map(struct overlay *o, uint64_t off, uint64_t len, int *fd, uint64_t *file_off);
/* disk_check_unchanged of the disk below (E_FORMAT naming the input). */
int overlay_source_unchanged(const struct overlay *o);

#endif
