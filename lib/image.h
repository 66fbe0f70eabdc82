/* image.h - the one way every command opens a disk image (issue 8):
 * disk_open (VHD, VHDX with its parents, raw; read-only) and a
 * copy-on-write overlay over it, with one error convention, so the same
 * unreadable file gives the same message and exit status in inspect,
 * convert, verify and bcd.
 */
#ifndef GEN2PREP_IMAGE_H
#define GEN2PREP_IMAGE_H

struct disk;
struct overlay;

/* Opens path read-only; *disk receives the disk under the overlay. NULL on
 * error with the message naming the file (disk.h); a file that cannot be read or
 * parsed, or one smaller than a 512-byte sector (not a disk image), is
 * E_FORMAT ("unreadable input", exit 3 everywhere), E_NOMEM and
 * the overlay's temporary file errors keep their codes. */
struct overlay *image_open(const char *path, struct disk **disk);
/* Frees both (either may be NULL). */
void image_close(struct overlay *o, struct disk *d);

#endif
