/* writer_raw.c - raw output: the virtual disk byte for byte, as a sparse
 * file (the file is sized first, blocks that read as zero stay holes). */
#include "writer_int.h"
#include "util.h"

#include <stdlib.h>

#define RAW_CHUNK (1u << 20)

int writer_raw_write(struct wctx *w)
{
	uint32_t chunk = w->opts->block_size ? w->opts->block_size : RAW_CHUNK;
	if (chunk > (64u << 20)) chunk = 64u << 20;
	if (wctx_truncate(w, w->size) < 0)
		return -1;
	int rc = wctx_copy_plain(w, chunk);
	return rc;
}
