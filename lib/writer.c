/* writer.c - see writer.h. Owns the stream (format writer, fsync,
 * publication through writer_out.c) and the block reader the format
 * writers share.
 */
#include "writer.h"
#include "writer_int.h"
#include "overlay.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- format names -------------------------------------------------------- */

int out_format_parse(const char *name, enum out_format *out)
{
	if (!ascii_casecmp(name, "vhdx")) *out = OUT_VHDX;
	else if (!ascii_casecmp(name, "vhd") || !ascii_casecmp(name, "vpc")) *out = OUT_VHD;
	else if (!ascii_casecmp(name, "raw") || !ascii_casecmp(name, "img")) *out = OUT_RAW;
	else return err_set(E_USAGE, "unknown output format '%s' (vhdx, vhd or raw)", name);
	return 0;
}

int out_format_from_path(const char *path, enum out_format *out)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	if (!dot || (slash && dot < slash))
		return err_set(E_USAGE, "cannot tell the output format from '%s': use -O", path);
	if (!ascii_casecmp(dot, ".vhdx")) *out = OUT_VHDX;
	else if (!ascii_casecmp(dot, ".vhd")) *out = OUT_VHD;
	else if (!ascii_casecmp(dot, ".raw") || !ascii_casecmp(dot, ".img") || !ascii_casecmp(dot, ".bin"))
		*out = OUT_RAW;
	else return err_set(E_USAGE, "cannot tell the output format from '%s': use -O", path);
	return 0;
}

const char *out_format_name(enum out_format f)
{
	switch (f) {
	case OUT_VHDX: return "vhdx";
	case OUT_VHD: return "vhd";
	case OUT_RAW: return "raw";
	}
	return "?";
}

/* ---- shared block I/O (the copying itself: writer_copy.c) ------------------ */

int wctx_pwrite(struct wctx *w, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(w->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) {
			if (errno == ENOSPC || errno == EDQUOT)
				return err_set(E_NOSPACE, "no space left on the device for '%s'", w->path);
			return err_errno(E_OUTPUT, "write error on '%s'", w->path);
		}
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

int wctx_pwrite_sparse(struct wctx *w, const void *buf, size_t len, uint64_t off)
{
	const size_t piece = 64 * 1024;
	const uint8_t *p = buf;
	size_t i = 0;
	while (i < len) {
		/* one pwrite per run of non-zero pieces */
		size_t n = len - i < piece ? len - i : piece;
		if (is_zero(p + i, n)) {
			i += n;
			continue;
		}
		size_t run = n;
		while (i + run < len) {
			size_t m = len - i - run < piece ? len - i - run : piece;
			if (is_zero(p + i + run, m)) break;
			run += m;
		}
		if (wctx_pwrite(w, p + i, run, off + i) < 0)
			return -1;
		i += run;
	}
	return 0;
}

int wctx_truncate(struct wctx *w, uint64_t size)
{
	if (ftruncate(w->fd, (off_t)size) < 0) {
		if (errno == EFBIG)
			return err_set(E_NOSPACE, "'%s': the file system cannot hold a file of %llu bytes", w->path,
				       (unsigned long long)size);
		return err_errno(E_OUTPUT, "cannot size '%s'", w->path);
	}
	return 0;
}

/* ---- the stream ------------------------------------------------------------ */

static int write_format(struct wctx *w)
{
	switch (w->opts->format) {
	case OUT_VHDX: return w->opts->parent ? writer_diff_write(w) : writer_vhdx_write(w);
	case OUT_VHD: return writer_vhd_write(w);
	case OUT_RAW: return writer_raw_write(w);
	}
	return err_set(E_INTERNAL, "unknown output format %d", (int)w->opts->format);
}

static int flush_out(struct wctx *w)
{
	if (fsync(w->fd) == 0) return 0;
	if (errno == ENOSPC || errno == EDQUOT) return err_set(E_NOSPACE, "no space left on the device for '%s'", w->path);
	return err_errno(E_OUTPUT, "cannot flush '%s'", w->path);
}

/* Writes, checks that the input did not change meanwhile (a source read
 * that failed is first explained by such a change), flushes. */
static int stream_into(struct wctx *w)
{
	int r = write_format(w);
	if (r == 0) r = wctx_flush_run(w);
	if (r < 0 && !w->src_failed) return -1;
	if (overlay_source_unchanged(w->src) < 0 || r < 0) {
		w->src_failed = true;
		return -1;
	}
	return flush_out(w);
}

int writer_stream(struct overlay *src, const char *path, const struct writer_opts *opts)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!opts->overwrite)
			return err_set(E_EXISTS, "output '%s' already exists (--overwrite replaces it)", path);
		if (S_ISDIR(st.st_mode))
			return err_set(E_EXISTS, "output '%s' is a directory", path);
	}
	bool took_lock = !writer_locked(path);
	if (took_lock && writer_lock(path) < 0)
		return -1;
	struct wout out;
	int r = wout_create(&out, path);
	if (r == 0) {
		struct wctx w = { .src = src, .opts = opts, .path = path, .fd = out.fd, .size = overlay_size(src) };
		progress_update(opts->progress, "writing output", 0, w.size);
		r = stream_into(&w);
		if (r == 0) r = wout_publish(&out, opts->overwrite);
		if (r < 0 && w.src_failed) r = -2;
		if (r == 0) progress_update(opts->progress, "writing output", w.size, w.size);
		free(w.buf);
	}
	wout_discard(&out);
	if (took_lock) writer_unlock();
	return r;
}
