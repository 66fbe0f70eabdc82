/* sparse_disk.h - shared by fuzz_fat32 and fuzz_partition: turns a fuzzer
 * input into a sparse raw disk in a memfd and opens it as disk + overlay.
 *
 * Input: records, each u32 offset in 512-byte units (little endian), u16
 * length, then that many bytes; everything not covered reads as zeros. A
 * length with bit 15 set is a fill record: (length & 0x7fff) sectors of the
 * one byte that follows (NTFS $LogFile is megabytes of 0xFF; seeds stay
 * small). The disk has a fixed size (the structures we parse sit at
 * far-apart offsets a fuzzer could not reach in a flat input).
 * fuzz/sparse_encode.py turns an image into this form (seed corpora). */
#ifndef FUZZ_SPARSE_DISK_H
#define FUZZ_SPARSE_DISK_H


#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk.h"
#include "overlay.h"
#include "util.h"

struct sparse_disk {
	int fd;
	struct disk *d;
	struct overlay *o;
};

/* Writes the records of (data, len) into fd, a file of size bytes (already
 * sized); records outside it are dropped. 0 or -1. */
static inline int sparse_fill(int fd, const uint8_t *data, size_t len, uint64_t size)
{
	static uint8_t run[65536];
	uint64_t filled = 0;   /* fill records stop at 32 MiB an input: speed */
	size_t i = 0;
	while (i + 6 <= len) {
		uint64_t off = (uint64_t)get_le32(data + i) * 512;
		size_t n = get_le16(data + i + 4);
		i += 6;
		if (n & 0x8000) {
			if (i >= len)
				break;
			n = (n & 0x7fff) * 512;
			memset(run, data[i++], sizeof run);
			if (!range_ok(off, n, size) || (filled += n) > (32u << 20))
				continue;
			for (size_t k = 0; k < n; k += sizeof run) {
				size_t c = n - k < sizeof run ? n - k : sizeof run;
				if (pwrite(fd, run, c, (off_t)(off + k)) != (ssize_t)c)
					return -1;
			}
			continue;
		}
		if (n > len - i)
			n = len - i;
		if (range_ok(off, n, size) && pwrite(fd, data + i, n, (off_t)off) != (ssize_t)n)
			return -1;
		i += n;
	}
	return 0;
}

static inline int sparse_disk_open(struct sparse_disk *s, const uint8_t *data, size_t len, uint64_t size)
{
	static int fd = -1;
	char path[64];
	if (fd < 0 && (fd = memfd_create("fuzzdisk", 0)) < 0)
		return -1;
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	if (sparse_fill(fd, data, len, size) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	s->fd = fd;
	s->d = disk_open(path);
	s->o = s->d ? overlay_new(s->d) : NULL;
	return s->o ? 0 : -1;
}

/* The same with the file size taken from the input: u32 LE size in 512-byte
 * units (at most max bytes), then the records. The file is opened by
 * disk_open, so its format (raw, VHD, VHDX) is detected from the content:
 * fuzz_disk and fuzz_inspect take whole image files this way. */
static inline int sparse_image_open(struct sparse_disk *s, const uint8_t *data, size_t len, uint64_t max)
{
	if (len < 4)
		return -1;
	uint64_t size = (uint64_t)get_le32(data) * 512;
	return sparse_disk_open(s, data + 4, len - 4, size < max ? size : max);
}

static inline void sparse_disk_close(struct sparse_disk *s)
{
	if (s->o)
		overlay_free(s->o);
	if (s->d)
		disk_close(s->d);
	s->o = NULL;
	s->d = NULL;
}

#endif
