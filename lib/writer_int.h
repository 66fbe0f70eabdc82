/* writer_int.h - what writer.c gives the format writers (writer_vhdx.c,
 * writer_vhd.c, writer_raw.c): the open temporary output, the source, and
 * the block reader that skips data-less ranges. Internal to the writer
 * module. */
#ifndef GEN2PREP_WRITER_INT_H
#define GEN2PREP_WRITER_INT_H

#include <stddef.h>
#include <stdint.h>
#include "writer.h"

struct wctx {
	struct overlay *src;
	const struct writer_opts *opts;
	const char *path;      /* final OUT (for messages) */
	int fd;                /* the temporary output */
	uint64_t size;         /* virtual size to write */
	uint64_t done;         /* bytes of the source consumed (progress) */
};

/* Reads [off, off+len) of the source into buf (len <= the buffer; bytes
 * past the virtual size read as zero). Returns 1 when buf holds data, 0
 * when the range reads as zeros (buf then undefined; unallocated ranges are
 * not even read), -1 on error. Advances the progress by len. */
int wctx_read_block(struct wctx *w, void *buf, size_t len, uint64_t off);
/* pwrite of everything, ENOSPC -> E_NOSPACE naming OUT. */
int wctx_pwrite(struct wctx *w, const void *buf, size_t len, uint64_t off);
/* Like wctx_pwrite, but leaves holes for the all-zero 64 KiB pieces of
 * buf: a mostly empty block costs its data, not its size, on a sparse
 * file system. The file must reach past off+len by the end (truncate). */
int wctx_pwrite_sparse(struct wctx *w, const void *buf, size_t len, uint64_t off);
/* Copies the source's [0, w->size) to the same offsets of the output in
 * chunk-sized pieces, leaving pieces that read as zero as holes (raw and
 * fixed VHD: the data area is a plain image). */
int wctx_copy_plain(struct wctx *w, uint32_t chunk);
/* Sets the output file's size (holes read as zero). */
int wctx_truncate(struct wctx *w, uint64_t size);

int writer_raw_write(struct wctx *w);
int writer_vhd_write(struct wctx *w);
int writer_vhdx_write(struct wctx *w);

#endif
