/* output_id.c - see output_id.h.
 *
 * [MS-VHDX] v20240423 2.2.2 (Headers): DataWriteGuid "MUST change" before
 * the first modification of the user-visible data of the virtual disk;
 * a differencing child records its parent's DataWriteGuid (2.6.2.6.3
 * parent_linkage) and trusts the parent only while they are equal. So two
 * outputs whose data differ must not share it: a child made over output A
 * would otherwise pass for a child of A re-converted with other options.
 * Outputs stay deterministic (same input and options, same bytes:
 * DESIGN.md), so the GUID is a hash, not random: of the input's identity
 * and of what the conversion changed (the overlay), which together fix
 * the virtual data. Hashing the whole output while streaming would be
 * exact for any input too, but costs a read of every byte (the copy path
 * moves data with copy_file_range, never through memory);
 * doc/notes-diff.md says what the input identity covers. */
#include "output_id.h"
#include "overlay.h"
#include "sha256.h"
#include "util.h"

#include <stdlib.h>

#define PIECE (1u << 20)

struct hctx {
	struct overlay *o;
	struct sha256 s;
	uint8_t *buf;
};

static void put64(struct sha256 *s, uint64_t v)
{
	uint8_t b[8];
	put_le64(b, v);
	sha256_update(s, b, sizeof b);
}

/* One written range: its place, then per 1 MiB piece either "Z" and the
 * length (known zeros, not read) or "D" and the bytes. */
static int hash_range(void *ctx, uint64_t off, uint64_t len)
{
	struct hctx *h = ctx;
	put64(&h->s, off);
	put64(&h->s, len);
	while (len) {
		size_t n = len < PIECE ? (size_t)len : PIECE;
		int m = overlay_maybe_data(h->o, off, n);
		if (m < 0) return -1;
		if (!m) {
			sha256_update(&h->s, "Z", 1);
			put64(&h->s, n);
		} else {
			if (overlay_read(h->o, h->buf, n, off) < 0) return -1;
			sha256_update(&h->s, "D", 1);
			sha256_update(&h->s, h->buf, n);
		}
		off += n, len -= n;
	}
	return 0;
}

int output_write_guid(struct overlay *o, const struct guid *in_data, struct writer_opts *wo)
{
	struct hctx h = { .o = o, .buf = xmalloc(PIECE) };
	if (!h.buf) return err_prefix("output identity buffer");
	sha256_init(&h.s);
	sha256_update(&h.s, wo->file_write_guid.b, 16);
	sha256_update(&h.s, in_data->b, 16);
	put64(&h.s, (uint64_t)wo->format);
	put64(&h.s, wo->fixed);
	put64(&h.s, wo->block_size);
	put64(&h.s, wo->logical_sector_size);
	put64(&h.s, wo->physical_sector_size);
	put64(&h.s, wo->parent != NULL);
	put64(&h.s, overlay_size(o));
	int rc = overlay_foreach_written(o, hash_range, &h);
	free(h.buf);
	if (rc) return -1;
	uint8_t d[32];
	sha256_final(&h.s, d);
	guid_derive(&wo->file_write_guid, "output content", d, sizeof d);
	return 0;
}
