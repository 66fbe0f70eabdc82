/* writer_diff.c - convert --differencing: a differencing VHDX whose parent
 * is the input, holding only what the conversion wrote (issue 12, 2).
 * [MS-VHDX] v20240423 section numbers; doc/formats.md, Differencing VHDX
 * output says the same in prose.
 *
 * The child has the layout of writer_vhdx.c (header section, log, metadata,
 * BAT at 3 MB) and then, chunk by chunk in virtual order, the payload
 * blocks the overlay wrote to, each followed, where the chunk has a
 * partially present block, by the chunk's sector bitmap block. Only the
 * ranges written through the overlay (overlay_foreach_written: the
 * partition table, the ESP, NTFS clusters, hives, patched files) are read
 * and written: the work is O(changes), whatever the size of the disk. The
 * BAT region keeps its full size (2.5: entries for every block) but only
 * the 4 KiB pages that hold a present entry are written; the rest stays a
 * hole of the sparse file and reads as 0, PAYLOAD_BLOCK_NOT_PRESENT
 * (2.5.1.1: for a differencing file "the parent virtual disk SHOULD be
 * inspected") and SB_BLOCK_NOT_PRESENT (2.5.1.2).
 */
#include "writer_int.h"
#include "overlay.h"
#include "util.h"
#include "vhdx_format.h"
#include "win32_name.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* Hyper-V makes differencing VHDX files with 2 MiB blocks (doc/formats.md,
 * VHDX BAT); a small block keeps a changed sector's block small. */
#define DIFF_DEFAULT_BLOCK  (2u << 20)
#define SB_BLOCK_SIZE       VHDX_MB   /* 2.4: sector bitmap blocks are 1 MB */
#define SB_PRESENT          6u        /* 2.5.1.2 SB_BLOCK_PRESENT */
#define BAT_PAGE            4096u

struct range { uint64_t off, len; };

struct dctx {
	struct wctx *w;
	uint32_t bs, lss;
	uint64_t ratio, chunk_bytes, nblocks;
	struct range *r;               /* written ranges, sorted, disjoint */
	size_t nr, cap;
	uint64_t next;                 /* next free 1 MB-aligned file offset */
	uint64_t pos;                  /* virtual bytes before it are written */
	uint8_t *bat_page;             /* the BAT page being filled */
	uint64_t bat_page_no;          /* its number, UINT64_MAX: none */
	uint8_t *bitmap;               /* the current chunk's sector bitmap (1 MB) */
};

static int add_range(void *ctx, uint64_t off, uint64_t len)
{
	struct dctx *d = ctx;
	if (d->nr == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 64;
		struct range *r = xrealloc(d->r, cap * sizeof *d->r);
		if (!r) return err_prefix("list of written ranges");
		d->r = r, d->cap = cap;
	}
	d->r[d->nr++] = (struct range){ off, len };
	return 0;
}

/* ---- BAT: written page by page, only pages with a present entry -------- */

static int bat_flush(struct dctx *d)
{
	if (d->bat_page_no == UINT64_MAX) return 0;
	int rc = wctx_pwrite(d->w, d->bat_page, BAT_PAGE, VHDX_BAT_OFF + d->bat_page_no * BAT_PAGE);
	memset(d->bat_page, 0, BAT_PAGE);
	d->bat_page_no = UINT64_MAX;
	return rc;
}

/* Entries arrive in increasing index order (blocks of a chunk, then the
 * chunk's bitmap entry, 2.5: "the sector bitmap block entry associated
 * with a chunk follows the entries for the payload blocks in that chunk"). */
static int bat_set(struct dctx *d, uint64_t index, uint64_t entry)
{
	uint64_t page = index * 8 / BAT_PAGE;
	if (page != d->bat_page_no) {
		if (bat_flush(d) < 0) return -1;
		d->bat_page_no = page;
	}
	le64 e;
	le64_set(&e, entry);
	memcpy(d->bat_page + index * 8 % BAT_PAGE, &e, sizeof e);
	return 0;
}

/* ---- payload ------------------------------------------------------------ */

/* Copies [off, off+len) of the overlay (all inside block b, stored at
 * file offset at) and marks its sectors present in the chunk's bitmap:
 * 2.4, bit n (LSB first) of the bitmap is the chunk's sector n, 1 = "the
 * payload data for the corresponding virtual sector should be retrieved
 * from this file". Overlay ranges are whole 4 KiB pages (or end at the
 * disk's end, a multiple of the logical sector size), so whole sectors. */
static int copy_piece(struct dctx *d, uint64_t b, uint64_t at, uint64_t off, uint64_t len)
{
	struct wctx *w = d->w;
	uint64_t in_chunk = off % d->chunk_bytes;
	for (uint64_t s = in_chunk / d->lss; s < (in_chunk + len) / d->lss; s++)
		d->bitmap[s / 8] |= (uint8_t)(1u << (s % 8));
	while (len) {
		size_t n = len < VHDX_MB ? (size_t)len : VHDX_MB;
		if (overlay_read(w->src, w->buf, n, off) < 0) {
			w->src_failed = true;
			return -1;
		}
		if (wctx_pwrite_sparse(w, w->buf, n, at + (off - b * d->bs)) < 0) return -1;
		off += n, len -= n;
	}
	return 0;
}

/* The length of block b inside the disk (the last one may be short). */
static uint64_t block_len(const struct dctx *d, uint64_t b)
{
	uint64_t start = b * d->bs;
	return d->w->size - start < d->bs ? d->w->size - start : d->bs;
}

/* Where the next unwritten byte of range i is. */
static uint64_t cur(const struct dctx *d, size_t i)
{
	return d->r[i].off > d->pos ? d->r[i].off : d->pos;
}

/* Writes block b from the ranges r[*i..] that meet it; *i moves past the
 * ranges that end inside it. Returns 1 when the block is only partly
 * written (PARTIALLY_PRESENT), 0 when every sector is (FULLY_PRESENT:
 * 2.5.1.1, "the sector bitmap MUST NOT be inspected"). */
static int write_block(struct dctx *d, uint64_t b, size_t *i)
{
	uint64_t bstart = b * d->bs, bend = bstart + block_len(d, b), covered = 0, at = d->next;
	while (*i < d->nr && cur(d, *i) < bend) {
		uint64_t s = cur(d, *i), rend = d->r[*i].off + d->r[*i].len;
		uint64_t e = rend < bend ? rend : bend;
		if (copy_piece(d, b, at, s, e - s) < 0) return -1;
		covered += e - s;
		d->pos = e;
		if (rend > bend) break;   /* continues in the next block */
		(*i)++;
	}
	d->pos = bend;
	d->next += d->bs;
	unsigned state = covered == bend - bstart ? VHDX_PAYLOAD_FULLY_PRESENT : VHDX_PAYLOAD_PARTIALLY_PRESENT;
	if (bat_set(d, vhdx_bat_index(b, d->ratio), VHDX_BAT_ENTRY(state, at)) < 0) return -1;
	return state == VHDX_PAYLOAD_PARTIALLY_PRESENT;
}

/* One chunk: its written blocks, then its sector bitmap block when a
 * block is partial (2.5.1.2: SB_BLOCK_PRESENT is required then). */
static int write_chunk(struct dctx *d, uint64_t chunk, size_t *i)
{
	uint64_t cend = (chunk + 1) * d->chunk_bytes;
	bool partial = false;
	memset(d->bitmap, 0, SB_BLOCK_SIZE);
	while (*i < d->nr && cur(d, *i) < cend) {
		uint64_t b = cur(d, *i) / d->bs;
		int r = write_block(d, b, i);
		if (r < 0) return -1;
		partial |= r;
		d->w->done = b * d->bs;
		progress_update(d->w->opts->progress, "writing output", d->w->done, d->w->size);
	}
	if (!partial) return 0;
	uint64_t at = d->next;
	d->next += SB_BLOCK_SIZE;
	if (wctx_pwrite_sparse(d->w, d->bitmap, SB_BLOCK_SIZE, at) < 0) return -1;
	/* the chunk's bitmap entry: BAT index (chunk + 1) * (ChunkRatio + 1) - 1 (2.5) */
	return bat_set(d, (chunk + 1) * (d->ratio + 1) - 1, VHDX_BAT_ENTRY(SB_PRESENT, at));
}

static int write_payload(struct dctx *d)
{
	size_t i = 0;
	while (i < d->nr) {
		uint64_t chunk = cur(d, i) / d->chunk_bytes;
		if (write_chunk(d, chunk, &i) < 0) return -1;
	}
	return bat_flush(d);
}

/* ---- parent locator ----------------------------------------------------- */

/* Splits an absolute path into its names (in place): count. */
static size_t split_names(char *p, char **names, size_t max)
{
	size_t n = 0;
	for (char *t = strtok(p, "/"); t && n < max; t = strtok(NULL, "/")) names[n++] = t;
	return n;
}

/* E_USAGE naming parent and the name when a name of the path that
 * relative_path spells cannot be used on Windows: Hyper-V opens the
 * parent by relative_path (2.6.2.6.3) through the Win32 file API
 * (win32_name.h: [MS-FSCC] 2.1.5.2). */
static int check_win32_names(const char *parent, char *const *names, size_t n)
{
	char why[64];
	for (size_t i = 0; i < n; i++)
		if (win32_name_why(names[i], why, sizeof why))
			return err_set(E_USAGE, "'%s': the name '%s' has a %s, which Windows does not allow in a file or folder "
				       "name: Hyper-V could not open the parent (rename it)", parent, names[i], why);
	return 0;
}

/* writer.h. IN is taken with symbolic links resolved: the file that holds
 * the data. */
char *writer_diff_relative_path(const char *child, const char *parent)
{
	char *cd = xstrdup(child), *pd = NULL, *pb = NULL, *out = NULL;
	char cr[PATH_MAX], pr[PATH_MAX], pf[PATH_MAX], *cn[PATH_MAX / 2], *pn[PATH_MAX / 2];
	if (!cd) return NULL;   /* E_NOMEM set */
	if (!realpath(parent, pf)) {
		/* the parent is IN: an input error, mapped as disk_open maps a
		 * failed open (not an output refusal, exit 7) */
		err_errno(errno == ENOENT ? E_NOTFOUND : E_IO, "cannot resolve the path of '%s'", parent);
		free(cd);
		return NULL;
	}
	pd = xstrdup(pf), pb = xstrdup(pf);
	if (!pd || !pb) {
		err_prefix("parent locator path");
		goto done;
	}
	const char *base = basename(pb);
	if (!realpath(dirname(cd), cr) || !realpath(dirname(pd), pr)) {
		err_errno(E_OUTPUT, "cannot resolve the folders of '%s' and '%s'", child, parent);
		goto done;
	}
	if (strchr(pr, '\\') || strchr(base, '\\')) {
		err_set(E_USAGE, "'%s': a '\\' in the parent's path cannot be written in a VHDX parent locator (it separates names)", parent);
		goto done;
	}
	size_t nc = split_names(cr, cn, PATH_MAX / 2), np = split_names(pr, pn, PATH_MAX / 2), k = 0;
	while (k < nc && k < np && !strcmp(cn[k], pn[k])) k++;
	if (check_win32_names(parent, pn + k, np - k) < 0 || check_win32_names(parent, (char *const[]){ (char *)base }, 1) < 0)
		goto done;
	out = xcalloc(1, 3 * (nc - k) + PATH_MAX + strlen(base) + 4);
	if (!out) goto done;   /* E_NOMEM set */
	/* fits: 3 bytes a "..\\", the names of pr and a "\\" each within
	 * PATH_MAX (pr's own length), ".\\" + base + NUL in the rest */
	for (size_t i = k; i < nc; i++) strcat(out, "..\\");   /* fits: see above */
	if (k == nc) strcat(out, ".\\");   /* fits: see above */
	for (size_t i = k; i < np; i++) strcat(strcat(out, pn[i]), "\\");   /* fits: see above */
	strcat(out, base);   /* fits: see above */
	/* 2.6.2.6.2: ValueLength is 16 bits (bytes of UTF-16LE) */
	if (2 * utf8_utf16_units(out) > UINT16_MAX) {
		err_set(E_USAGE, "the path from the output to '%s' is too long for a VHDX parent locator", parent);
		free(out);
		out = NULL;
	}
done:
	free(cd), free(pd), free(pb);
	return out;
}

/* Appends one key/value entry i (2.6.2.6.2: offsets from the item's
 * start, UTF-16LE, no NUL, lengths in bytes). */
static int locator_entry(uint8_t *item, size_t *used, size_t i, const char *key, const char *val)
{
	size_t kn, vn;
	uint8_t *k = utf8_to_utf16le(key, &kn), *v = k ? utf8_to_utf16le(val, &vn) : NULL;
	if (!v) {
		free(k);
		return err_prefix("parent locator entry %s", key);
	}
	struct vhdx_locator_entry e;
	le32_set(&e.key_offset, (uint32_t)*used);
	memcpy(item + *used, k, kn * 2);
	*used += kn * 2;
	le32_set(&e.value_offset, (uint32_t)*used);
	memcpy(item + *used, v, vn * 2);
	*used += vn * 2;
	le16_set(&e.key_length, (uint16_t)(kn * 2));
	le16_set(&e.value_length, (uint16_t)(vn * 2));
	memcpy(item + sizeof(struct vhdx_locator_header) + sizeof e * i, &e, sizeof e);
	free(k), free(v);
	return 0;
}

/* 2.6.2.6.1 header and the entries of the VHDX locator (2.6.2.6.3):
 * parent_linkage, "the parent's DataWriteGuid", lower case in braces, and
 * relative_path, which an implementation evaluates first. Left out:
 * absolute_win32_path and volume_path "MUST begin with \\?\" and name a
 * Windows drive, share or volume GUID, which a Linux path does not give
 * (one of the three paths is enough); parent_linkage2 serves merges only
 * (note <12>). */
static uint8_t *parent_locator(const struct wctx *w, uint32_t *len)
{
	const struct writer_parent *p = w->opts->parent;
	/* convert checked the same path before IN was read (convert_args.c);
	 * checked again for other callers */
	char *rel = writer_diff_relative_path(w->path, p->path);
	if (!rel) return NULL;
	char gs[GUID_STR_LEN + 1], link[GUID_STR_LEN + 3];
	snprintf(link, sizeof link, "{%s}", guid_to_str(&p->data_write_guid, gs));   /* fits: {GUID} */
	size_t cap = sizeof(struct vhdx_locator_header) + 2 * sizeof(struct vhdx_locator_entry) +
		     4 * (strlen("parent_linkage") + strlen(link) + strlen("relative_path") + strlen(rel)) + 16;
	uint8_t *item = xcalloc(1, cap);
	if (!item) {
		free(rel);
		err_prefix("parent locator");
		return NULL;
	}
	struct vhdx_locator_header h = { .locator_type = VHDX_LOCATOR_TYPE };
	le16_set(&h.key_value_count, 2);
	memcpy(item, &h, sizeof h);
	size_t used = sizeof h + 2 * sizeof(struct vhdx_locator_entry);
	if (locator_entry(item, &used, 0, "parent_linkage", link) < 0 ||
	    locator_entry(item, &used, 1, "relative_path", rel) < 0) {
		free(item);
		item = NULL;
	}
	free(rel);
	*len = (uint32_t)used;
	return item;
}

/* ---- the file ----------------------------------------------------------- */

static int diff_check(const struct wctx *w, uint32_t bs, uint32_t lss, uint32_t pss)
{
	if (!vhdx_block_size_ok(bs))
		return err_set(E_USAGE, "VHDX block size %u is not a power of two between 1 and 256 MiB", bs);
	if (!vhdx_sector_size_ok(lss) || !vhdx_sector_size_ok(pss))
		return err_set(E_UNSUPPORTED, "VHDX sector sizes must be 512 or 4096 (got %u/%u)", lss, pss);
	/* the plan refuses a grown disk (output-differencing-grows): the
	 * child keeps its parent's Virtual Disk Size (doc/formats.md,
	 * Differencing VHDX output) */
	if (w->size != w->opts->parent->size || !vhdx_size_ok(w->size, lss))
		return err_set(E_INTERNAL, "differencing child of %llu bytes over a parent of %llu bytes",
			       (unsigned long long)w->size, (unsigned long long)w->opts->parent->size);
	return 0;
}

static int write_structures(struct wctx *w, const struct dctx *d, uint64_t bat_len, uint32_t pss, uint8_t *loc, uint32_t loc_len)
{
	/* 2.6.2.1 HasParent; LeaveBlockAllocated is ignored with it: 0.
	 * 2.6.1.2 IsVirtualDisk: "when forking, an implementation MUST copy
	 * all metadata items with this field set" - size, Virtual Disk ID,
	 * both sector sizes come from the parent (2.6.2.4: the logical sector
	 * sizes of parent and child MUST be the same). */
	struct vhdx_meta_values mv = { .block_size = d->bs, .flags = VHDX_PARAMS_HAS_PARENT, .lss = d->lss, .pss = pss,
				       .size = w->size, .disk_id = &w->opts->parent->disk_id,
				       .parent_locator = loc, .parent_locator_len = loc_len };
	int rc = vhdx_write_metadata(w, &mv);
	if (!rc) rc = vhdx_write_region_tables(w, bat_len);
	if (!rc) rc = vhdx_write_headers(w);
	if (!rc) rc = vhdx_write_identifier(w);
	return rc;
}

int writer_diff_write(struct wctx *w)
{
	struct dctx d = { .w = w, .bat_page_no = UINT64_MAX };
	d.bs = w->opts->block_size ? w->opts->block_size : DIFF_DEFAULT_BLOCK;
	d.lss = w->opts->logical_sector_size ? w->opts->logical_sector_size : overlay_sector_size(w->src);
	uint32_t pss = w->opts->physical_sector_size ? w->opts->physical_sector_size : 4096;
	if (diff_check(w, d.bs, d.lss, pss) < 0) return -1;
	/* 2.4: a chunk is 2^23 sectors; ChunkRatio blocks per chunk (2.5) */
	d.ratio = vhdx_chunk_ratio(d.lss, d.bs);
	d.chunk_bytes = d.ratio * d.bs;
	d.nblocks = (w->size + d.bs - 1) / d.bs;
	/* 2.5: a differencing file's BAT reaches the last chunk's bitmap entry */
	uint64_t bat_len = (vhdx_bat_entries(d.nblocks, d.ratio, true) * 8 + VHDX_MB - 1) / VHDX_MB * VHDX_MB;
	if (bat_len > UINT32_MAX) return err_set(E_UNSUPPORTED, "VHDX BAT of %llu bytes", (unsigned long long)bat_len);
	d.next = VHDX_BAT_OFF + bat_len;
	if (!w->buf) w->buf = xmalloc(VHDX_MB);
	d.bat_page = xcalloc(1, BAT_PAGE);
	d.bitmap = xmalloc(SB_BLOCK_SIZE);
	int rc = !w->buf || !d.bat_page || !d.bitmap ? err_prefix("differencing VHDX buffers") : 0;
	/* the locator first: a parent path it cannot spell is refused before
	 * any payload is written */
	uint32_t loc_len = 0;
	uint8_t *loc = rc ? NULL : parent_locator(w, &loc_len);
	if (!loc) rc = -1;
	if (!rc) rc = overlay_foreach_written(w->src, add_range, &d);
	if (!rc) rc = write_payload(&d);
	/* the BAT region and the last block reach the file's end (holes) */
	if (!rc) rc = wctx_truncate(w, d.next);
	if (!rc) rc = write_structures(w, &d, bat_len, pss, loc, loc_len);
	free(loc), free(d.r), free(d.bat_page), free(d.bitmap);
	return rc;
}
