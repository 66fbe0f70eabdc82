/* sparse_disk.h - shared by fuzz_fat32 and fuzz_partition: turns a fuzzer
 * input into a sparse raw disk in a memfd and opens it as disk + overlay.
 *
 * Input: records, each u32 offset in 512-byte units (little endian), u16
 * length, then that many bytes; everything not covered reads as zeros. The
 * disk has a fixed size (the structures we parse sit at far-apart offsets a
 * fuzzer could not reach in a flat input). */
#ifndef FUZZ_SPARSE_DISK_H
#define FUZZ_SPARSE_DISK_H


#include <stdio.h>
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

static inline int sparse_disk_open(struct sparse_disk *s, const uint8_t *data, size_t len, uint64_t size)
{
	static int fd = -1;
	char path[64];
	if (fd < 0 && (fd = memfd_create("fuzzdisk", 0)) < 0)
		return -1;
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	size_t i = 0;
	while (i + 6 <= len) {
		uint64_t off = (uint64_t)get_le32(data + i) * 512;
		size_t n = get_le16(data + i + 4);
		i += 6;
		if (n > len - i)
			n = len - i;
		if (range_ok(off, n, size) && pwrite(fd, data + i, n, (off_t)off) != (ssize_t)n)
			return -1;
		i += n;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	s->fd = fd;
	s->d = disk_open(path);
	s->o = s->d ? overlay_new(s->d) : NULL;
	return s->o ? 0 : -1;
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
