/* writer_int.h - what writer.c gives the format writers (writer_vhdx.c,
 * writer_vhd.c, writer_raw.c): the open temporary output, the source, and
 * the block reader that skips data-less ranges. Internal to the writer
 * module. */
#ifndef GEN2PREP_WRITER_INT_H
#define GEN2PREP_WRITER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "writer.h"
#include "vhdx_format.h"

/* The output file (writer_out.c): nameless (O_TMPFILE) until published,
 * or the named fallback "OUT.gen2prep-XXXXXX". */
struct wout {
	const char *path;      /* final OUT */
	int fd;
	bool named;            /* fallback: a temporary name exists */
};

/* Creates the output file in OUT's folder: E_OUTPUT naming the folder. */
int wout_create(struct wout *o, const char *path);
/* Gives the complete (fsync'ed) file the name OUT: E_EXISTS when OUT
 * appeared meanwhile and !overwrite, E_OUTPUT otherwise. Atomic. */
int wout_publish(struct wout *o, bool overwrite);
/* Closes and forgets an unpublished output (nothing stays behind). */
void wout_discard(struct wout *o);

struct wctx {
	struct overlay *src;
	const struct writer_opts *opts;
	const char *path;      /* final OUT (for messages) */
	int fd;                /* the temporary output */
	uint64_t size;         /* virtual size to write */
	uint64_t done;         /* bytes of the source consumed (progress) */
	bool src_failed;       /* the error came from reading the source */
	/* writer_copy.c state */
	uint8_t *buf;          /* 1 MiB, for probes and buffered pieces */
	bool no_cfr;           /* copy_file_range refused: pread + pwrite */
	int run_fd;            /* pending copy: run_len bytes from run_src of */
	uint64_t run_src, run_dst, run_len;   /* run_fd to run_dst */
	bool wb_off;           /* sync_file_range not supported */
	uint64_t wb_hi, wb_started, wb_waited;   /* writeback marks (bytes) */
};

/* Copies [off, off+len) of the source to offset dst of the output
 * (writer_copy.c): pieces that read as zero are skipped and 64 KiB pieces
 * of zeros left as holes (so the file must reach past dst+len by the end:
 * truncate); untouched plain input ranges go file to file
 * (copy_file_range). Returns 1 when any byte was non-zero, 0 when all read
 * as zero (nothing written), -1 on error (w->src_failed when reading the
 * source failed). Advances the progress by len. A copy may stay pending:
 * wctx_flush_run before the output is complete. */
int wctx_copy(struct wctx *w, uint64_t off, size_t len, uint64_t dst);
int wctx_flush_run(struct wctx *w);
/* pwrite of everything, ENOSPC -> E_NOSPACE naming OUT. */
int wctx_pwrite(struct wctx *w, const void *buf, size_t len, uint64_t off);
/* Like wctx_pwrite, but leaves holes for the all-zero 64 KiB pieces of
 * buf: a mostly empty block costs its data, not its size, on a sparse
 * file system. The file must reach past off+len by the end (truncate). */
int wctx_pwrite_sparse(struct wctx *w, const void *buf, size_t len, uint64_t off);
/* Copies the source's [0, w->size) to the same offsets of the output in
 * chunk-sized requests of wctx_copy (raw and fixed VHD: the data area is a
 * plain image), pending copy flushed. */
int wctx_copy_plain(struct wctx *w, uint32_t chunk);
/* Sets the output file's size (holes read as zero). */
int wctx_truncate(struct wctx *w, uint64_t size);

/* VHDX layout shared by writer_vhdx.c and writer_diff.c ([MS-VHDX] 2.1:
 * every structure 1 MB aligned): log, metadata region, then the BAT. */
#define VHDX_LOG_OFF        (1 * VHDX_MB)
#define VHDX_LOG_LEN        (1 * VHDX_MB)
#define VHDX_META_OFF       (2 * VHDX_MB)
#define VHDX_META_LEN       (1 * VHDX_MB)
#define VHDX_BAT_OFF        (3 * VHDX_MB)

struct vhdx_meta_values {
	uint32_t block_size, flags;   /* File Parameters (2.6.2.1) */
	uint32_t lss, pss;            /* sector sizes (2.6.2.4, 2.6.2.5) */
	uint64_t size;                /* Virtual Disk Size (2.6.2.2) */
	const struct guid *disk_id;   /* Virtual Disk ID (2.6.2.3) */
	const void *parent_locator;   /* Parent Locator item (2.6.2.6), NULL: none */
	uint32_t parent_locator_len;
};
/* writer_vhdx.c: the fixed structures, written after the blocks (2.2.1
 * identifier, 2.2.2 both headers with GUIDs derived from the options,
 * 2.2.3 both region tables, 2.6 metadata). E_OUTPUT / E_NOSPACE. */
int vhdx_write_identifier(struct wctx *w);
int vhdx_write_headers(struct wctx *w);
int vhdx_write_region_tables(struct wctx *w, uint64_t bat_len);
int vhdx_write_metadata(struct wctx *w, const struct vhdx_meta_values *v);

int writer_raw_write(struct wctx *w);
int writer_vhd_write(struct wctx *w);
int writer_vhdx_write(struct wctx *w);
int writer_diff_write(struct wctx *w);

#endif
