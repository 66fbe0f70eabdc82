/* writer.c - see writer.h. Owns the atomic output (temporary file beside
 * OUT, fsync, rename, fsync of the directory), the registration that lets
 * a signal handler remove the temporary file, and the block reader the
 * format writers share.
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

/* ---- temporary file registration ----------------------------------------- */

/* Written before the flag is raised and only read by the handler after it
 * sees the flag: no allocation, no locking in the handler. */
static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_active;

void writer_cleanup_tmp(void)
{
	if (tmp_active) {
		unlink(tmp_path);
		tmp_active = 0;
	}
}

/* Creates "OUT.gen2prep-XXXXXX" with signals blocked, so that a SIGINT can
 * never see a created file that is not registered yet. */
static int create_tmp(const char *path)
{
	sigset_t block, old;
	if (strlen(path) + sizeof ".gen2prep-XXXXXX" > sizeof tmp_path)
		return err_set(E_USAGE, "output path too long");
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	snprintf(tmp_path, sizeof tmp_path, "%s.gen2prep-XXXXXX", path);
	int fd = mkostemp(tmp_path, O_CLOEXEC);
	int saved = errno;
	if (fd >= 0) tmp_active = 1;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (fd < 0) {
		errno = saved;
		char *d = xstrdup(path);
		err_errno(E_OUTPUT, "cannot create the output in '%s'", dirname(d));
		free(d);
		return -1;
	}
	/* mkstemp makes 0600; an image is an ordinary file: 0666 & ~umask */
	mode_t um = umask(0);
	umask(um);
	fchmod(fd, 0666 & ~um);
	return fd;
}

static void drop_tmp(int fd)
{
	if (fd >= 0) close(fd);
	writer_cleanup_tmp();
}

static void fsync_dir_of(const char *path)
{
	char *d = xstrdup(path);
	int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);   /* best effort: the rename is already done */
		close(dfd);
	}
	free(d);
}

/* rename without replacing when !overwrite (RENAME_NOREPLACE closes the
 * race with another process creating OUT meanwhile). */
static int publish(const char *path, bool overwrite)
{
	if (!overwrite) {
		if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
			goto done;
		if (errno == EEXIST)
			return err_set(E_EXISTS, "output '%s' already exists", path);
		if (errno != EINVAL && errno != ENOSYS)
			return err_errno(E_OUTPUT, "cannot rename the output to '%s'", path);
		/* file system without RENAME_NOREPLACE: checked before, rename */
	}
	if (rename(tmp_path, path) < 0)
		return err_errno(E_OUTPUT, "cannot rename the output to '%s'", path);
done:
	tmp_active = 0;
	fsync_dir_of(path);
	return 0;
}

/* ---- shared block I/O ------------------------------------------------------ */

/* A VHDX block is 32 MiB, but what it holds is often a few pages (NTFS
 * metadata, a hive, the end of a file): asking the source once per block
 * read and zero-checked all 32 MiB whenever one page of it was allocated
 * (1 TiB fixture of tests/scale.sh, VHDX out: 481 MB read, 105 MB for the
 * same disk with 1 MiB raw chunks). The block is asked about piece by
 * piece; runs of pieces that may hold data are read in one call, the
 * others are zero-filled without reading. */
#define READ_PIECE (1u << 20)

/* Reads [off, off+len) into buf, skipping pieces known to be zero; 1 when
 * a read piece holds a non-zero byte, 0 when all is zero, -1 on error. */
static int read_pieces(struct wctx *w, uint8_t *buf, size_t len, uint64_t off)
{
	int any = 0;
	size_t i = 0;
	while (i < len) {
		size_t n = len - i < READ_PIECE ? len - i : READ_PIECE;
		int r = overlay_maybe_data(w->src, off + i, n);
		if (r < 0)
			return -1;
		if (r == 0) {
			memset(buf + i, 0, n);
			i += n;
			continue;
		}
		/* extend the run over following pieces that may hold data */
		while (i + n < len) {
			size_t m = len - i - n < READ_PIECE ? len - i - n : READ_PIECE;
			int q = overlay_maybe_data(w->src, off + i + n, m);
			if (q < 0)
				return -1;
			if (q == 0)
				break;
			n += m;
		}
		if (overlay_read(w->src, buf + i, n, off + i) < 0)
			return -1;
		if (!any && !is_zero(buf + i, n))
			any = 1;
		i += n;
	}
	return any;
}

int wctx_read_block(struct wctx *w, void *buf, size_t len, uint64_t off)
{
	int r = overlay_maybe_data(w->src, off, len);
	if (r > 0)
		r = len <= READ_PIECE ? (overlay_read(w->src, buf, len, off) < 0 ? -1 : !is_zero(buf, len))
				      : read_pieces(w, buf, len, off);
	if (r < 0)
		return -1;
	w->done += len;
	if (w->done > w->size) w->done = w->size;
	progress_update(w->opts->progress, "writing output", w->done, w->size);
	return r;
}

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

int wctx_copy_plain(struct wctx *w, uint32_t chunk)
{
	uint8_t *buf = xmalloc(chunk);
	int rc = 0;
	for (uint64_t off = 0; off < w->size && rc == 0; off += chunk) {
		size_t n = w->size - off < chunk ? (size_t)(w->size - off) : chunk;
		int r = wctx_read_block(w, buf, n, off);
		if (r < 0) rc = -1;
		else if (r > 0) rc = wctx_pwrite_sparse(w, buf, n, off);
	}
	free(buf);
	return rc;
}

int wctx_truncate(struct wctx *w, uint64_t size)
{
	if (ftruncate(w->fd, (off_t)size) < 0) {
		if (errno == EFBIG)
			return err_set(E_NOSPACE, "'%s': the file system cannot hold a file of %llu bytes", w->path,
				       (unsigned long long)size);
		return err_errno(E_IO, "cannot size '%s'", w->path);
	}
	return 0;
}

/* ---- the stream ------------------------------------------------------------ */

int writer_stream(struct overlay *src, const char *path, const struct writer_opts *opts)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!opts->overwrite)
			return err_set(E_EXISTS, "output '%s' already exists (--overwrite replaces it)", path);
		if (S_ISDIR(st.st_mode))
			return err_set(E_EXISTS, "output '%s' is a directory", path);
	}
	int fd = create_tmp(path);
	if (fd < 0)
		return -1;
	struct wctx w = { .src = src, .opts = opts, .path = path, .fd = fd, .size = overlay_size(src) };
	int r;
	progress_update(opts->progress, "writing output", 0, w.size);
	switch (opts->format) {
	case OUT_VHDX: r = writer_vhdx_write(&w); break;
	case OUT_VHD: r = writer_vhd_write(&w); break;
	case OUT_RAW: r = writer_raw_write(&w); break;
	default: r = err_set(E_INTERNAL, "unknown output format %d", (int)opts->format);
	}
	if (r == 0 && fsync(fd) < 0)
		r = errno == ENOSPC || errno == EDQUOT
			? err_set(E_NOSPACE, "no space left on the device for '%s'", path)
			: err_errno(E_OUTPUT, "cannot flush '%s'", path);
	if (r == 0) {
		int c = close(fd);
		fd = -1;
		if (c < 0)
			r = err_errno(E_OUTPUT, "cannot close '%s'", path);
	}
	if (r == 0)
		r = publish(path, opts->overwrite);
	if (r < 0) {
		drop_tmp(fd);
		return -1;
	}
	progress_update(opts->progress, "writing output", w.size, w.size);
	return 0;
}
