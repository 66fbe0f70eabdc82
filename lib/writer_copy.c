/* writer_copy.c - moving the source's bytes into the output, the part of a
 * conversion whose cost grows with the data (issue 12).
 *
 * What it does per range the format writers ask for (wctx_copy):
 *  - 1 MiB pieces the source knows to be zero (unallocated in the image,
 *    holes of a raw file, zeroed in the overlay) are neither read nor
 *    written;
 *  - pieces nothing was written to and that lie plainly in the input file
 *    (raw, fixed VHD, VHDX FULLY_PRESENT blocks: overlay_map) are copied
 *    file to file with copy_file_range(2): the kernel copies page cache to
 *    page cache (a reflink on XFS/btrfs) instead of two copies through a
 *    user buffer. Each 64 KiB of it is first probed (its first 4 KiB,
 *    the rest only if those are zero) so that zero pieces stay holes,
 *    exactly as the buffered path leaves them;
 *  - everything else (edited pieces, differencing and dynamic VHD inputs)
 *    is read through the overlay into a 1 MiB buffer and written with
 *    pwrite, leaving zero 64 KiB pieces as holes.
 * So the output bytes do not depend on the path taken. Writeback of the
 * output is started every 32 MiB (sync_file_range WRITE) and waited for
 * 64 MiB behind, so the device works while the stream runs, dirty memory
 * stays bounded, writers are not throttled in bulk, and the final fsync
 * finds little left to do.
 */
#include "writer_int.h"
#include "overlay.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define PIECE       (64u << 10)     /* hole grain (as wctx_pwrite_sparse) */
#define PROBE       4096u           /* bytes read to tell a piece holds data */
#define READ_PIECE  (1u << 20)      /* asked of the source at once */
#define RUN_MAX     (64ull << 20)   /* longest copy_file_range call */
#define WB_WINDOW   (32ull << 20)   /* start writeback every ... */
#define WB_LAG      (64ull << 20)   /* ... and wait for it this far behind */

static int src_error(struct wctx *w)
{
	w->src_failed = true;
	return -1;
}

/* pread of exactly len bytes of the input: a short read means the input
 * shrank (writer_stream then explains it with disk_check_unchanged). */
static int pread_in(struct wctx *w, int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) return src_error(w), err_errno(E_IO, "read error in the input at %llu", (unsigned long long)off);
		if (n == 0) return src_error(w), err_set(E_IO, "the input ended at %llu while it was read", (unsigned long long)off);
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

/* ---- writeback ------------------------------------------------------------- */

static void wb_note(struct wctx *w, uint64_t end)
{
	if (end > w->wb_hi) w->wb_hi = end;
	if (w->wb_off || w->wb_hi - w->wb_started < WB_WINDOW) return;
	/* start writing what was written since the last call ... */
	if (sync_file_range(w->fd, (off64_t)w->wb_started, (off64_t)(w->wb_hi - w->wb_started), SYNC_FILE_RANGE_WRITE) < 0) {
		w->wb_off = true;   /* not supported here: fsync does it all */
		return;
	}
	w->wb_started = w->wb_hi;
	/* ... and wait for what was started a window or two ago */
	if (w->wb_started > w->wb_waited + WB_LAG) {
		uint64_t to = w->wb_started - WB_LAG;
		sync_file_range(w->fd, (off64_t)w->wb_waited, (off64_t)(to - w->wb_waited), SYNC_FILE_RANGE_WAIT_BEFORE);
		w->wb_waited = to;
	}
}

/* ---- file to file ---------------------------------------------------------- */

/* Copies len bytes at src of fd to dst of the output: copy_file_range, or
 * (other file systems, old kernels) pread + pwrite through the buffer. */
static int copy_fd(struct wctx *w, int fd, uint64_t src, uint64_t dst, uint64_t len)
{
	while (len) {
		if (!w->no_cfr) {
			loff_t si = (loff_t)src, di = (loff_t)dst;
			ssize_t n = copy_file_range(fd, &si, w->fd, &di, len, 0);
			if (n > 0) {
				src += (uint64_t)n, dst += (uint64_t)n, len -= (uint64_t)n;
				continue;
			}
			if (n == 0) return src_error(w), err_set(E_IO, "the input ended at %llu while it was read", (unsigned long long)src);
			if (errno == EINTR) continue;
			if (errno == ENOSPC || errno == EDQUOT)
				return err_set(E_NOSPACE, "no space left on the device for '%s'", w->path);
			/* EXDEV, EOPNOTSUPP, EINVAL...: no in-kernel copy between
			 * these files; EIO: pread and pwrite tell which side failed */
			w->no_cfr = true;
		}
		size_t n = len < READ_PIECE ? (size_t)len : READ_PIECE;
		if (pread_in(w, fd, w->buf, n, src) < 0 || wctx_pwrite(w, w->buf, n, dst) < 0) return -1;
		src += n, dst += n, len -= n;
	}
	return 0;
}

int wctx_flush_run(struct wctx *w)
{
	if (!w->run_len) return 0;
	uint64_t end = w->run_dst + w->run_len;
	int r = copy_fd(w, w->run_fd, w->run_src, w->run_dst, w->run_len);
	w->run_len = 0;
	if (r == 0) wb_note(w, end);
	return r;
}

/* Queues a copy, merged with the pending one when both ends continue it. */
static int run_add(struct wctx *w, int fd, uint64_t src, uint64_t dst, uint64_t len)
{
	if (w->run_len && fd == w->run_fd && src == w->run_src + w->run_len && dst == w->run_dst + w->run_len &&
	    w->run_len + len <= RUN_MAX) {
		w->run_len += len;
		return 0;
	}
	if (wctx_flush_run(w) < 0) return -1;
	w->run_fd = fd, w->run_src = src, w->run_dst = dst, w->run_len = len;
	return 0;
}

/* 1 when [src, src+n) of fd holds a non-zero byte: its first PROBE bytes
 * are read, the rest only when those are zero. */
static int probe(struct wctx *w, int fd, uint64_t src, size_t n)
{
	size_t first = n < PROBE ? n : PROBE;
	if (pread_in(w, fd, w->buf, first, src) < 0) return -1;
	if (!is_zero(w->buf, first)) return 1;
	if (n == first) return 0;
	if (pread_in(w, fd, w->buf, n - first, src + first) < 0) return -1;
	return !is_zero(w->buf, n - first);
}

/* A piece stored plainly at src of fd: its non-zero 64 KiB pieces copied
 * to dst (pieces counted from piece_base, the start of the request). */
static int copy_direct(struct wctx *w, int fd, uint64_t src, size_t n, uint64_t dst)
{
	int any = 0;
	for (size_t j = 0; j < n; j += PIECE) {
		size_t pn = n - j < PIECE ? n - j : PIECE;
		int r = probe(w, fd, src + j, pn);
		if (r < 0) return -1;
		if (r == 0) continue;
		any = 1;
		if (run_add(w, fd, src + j, dst + j, pn) < 0) return -1;
	}
	return any;
}

/* A piece read through the overlay (edited, or not plain in the file). */
static int copy_buffered(struct wctx *w, uint64_t off, size_t n, uint64_t dst)
{
	/* the pending copy first: without copy_file_range it goes through buf */
	if (wctx_flush_run(w) < 0) return -1;
	if (overlay_read(w->src, w->buf, n, off) < 0) return src_error(w);
	if (is_zero(w->buf, n)) return 0;
	if (wctx_pwrite_sparse(w, w->buf, n, dst) < 0) return -1;
	wb_note(w, dst + n);
	return 1;
}

int wctx_copy(struct wctx *w, uint64_t off, size_t len, uint64_t dst)
{
	if (!w->buf && !(w->buf = xmalloc(READ_PIECE))) return err_prefix("copy buffer");
	int any = 0;
	for (size_t i = 0; i < len;) {
		size_t n = len - i < READ_PIECE ? len - i : READ_PIECE;
		int r = overlay_maybe_data(w->src, off + i, n);
		if (r < 0) return src_error(w);
		if (r > 0) {
			int fd = -1;
			uint64_t foff = 0;
			if (overlay_map(w->src, off + i, n, &fd, &foff) == n)
				r = copy_direct(w, fd, foff, n, dst + i);
			else
				r = copy_buffered(w, off + i, n, dst + i);
			if (r < 0) return -1;
			any |= r;
		}
		i += n;
	}
	w->done += len;
	if (w->done > w->size) w->done = w->size;
	progress_update(w->opts->progress, "writing output", w->done, w->size);
	return any;
}

int wctx_copy_plain(struct wctx *w, uint32_t chunk)
{
	int rc = 0;
	for (uint64_t off = 0; off < w->size && rc == 0; off += chunk) {
		size_t n = w->size - off < chunk ? (size_t)(w->size - off) : chunk;
		if (wctx_copy(w, off, n, off) < 0) rc = -1;
	}
	if (rc == 0) rc = wctx_flush_run(w);
	return rc;
}
