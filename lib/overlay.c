/* overlay.c - see overlay.h.
 *
 * Three layers, checked in this order for every 4 KiB page:
 *   1. the page index (open-addressing hash page -> slot): a slot is the
 *      page's place in the unlinked temp file, or OV_ZERO_PAGE for a page
 *      that was written and later zeroed;
 *   2. zero extents: page-aligned byte ranges made zero by overlay_zero()
 *      (kept as a sorted list so that zeroing gigabytes costs nothing);
 *   3. the disk (zeros past its end).
 * overlay_zero() marks indexed pages of its range as OV_ZERO_PAGE, so a
 * write after a zero lands in layer 1 and wins, and a zero after a write
 * wins too. Reads group consecutive disk pages into one disk_read().
 */
#include "overlay.h"
#include "disk.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define OV_EMPTY     UINT64_MAX        /* hash key: free bucket */
#define OV_ZERO_PAGE UINT64_MAX        /* hash value: page reads as zeros */

struct zext { uint64_t s, e; };        /* [s, e), page aligned */

struct overlay {
	struct disk *d;
	uint64_t size;
	uint32_t sector;
	int fd;
	uint64_t next_slot;
	/* page index */
	uint64_t *keys, *vals;
	size_t cap, count;
	/* sorted copy of keys, rebuilt lazily for range queries */
	uint64_t *sorted;
	size_t nsorted;
	bool sorted_dirty;
	/* zero extents, sorted, disjoint, non-adjacent */
	struct zext *zx;
	size_t nzx, capzx;
};

/* ---- temp file ---------------------------------------------------------- */

static int open_tmp(void)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir) dir = "/tmp";
	/* O_TMPFILE: never visible in the directory, gone when closed */
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char *path = xasprintf("%s/gen2prep-overlay-XXXXXX", dir);
	if (!path) return err_prefix("overlay temporary file name");
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	else
		err_errno(E_IO, "cannot create the overlay's temporary file in '%s'", dir);
	free(path);
	return fd;
}

/* ---- page index --------------------------------------------------------- */

static size_t bucket(const struct overlay *o, uint64_t page)
{
	return (size_t)((page * 0x9E3779B97F4A7C15ull) >> 17) & (o->cap - 1);
}

static uint64_t *index_find(const struct overlay *o, uint64_t page)
{
	if (!o->count) return NULL;
	for (size_t i = bucket(o, page);; i = (i + 1) & (o->cap - 1)) {
		if (o->keys[i] == page) return &o->vals[i];
		if (o->keys[i] == OV_EMPTY) return NULL;
	}
}

static int index_grow(struct overlay *o)
{
	size_t oldcap = o->cap, cap = oldcap ? oldcap * 2 : 1024;
	uint64_t *ok = o->keys, *ov = o->vals;
	uint64_t *nk = xmalloc(cap * sizeof *o->keys), *nv = nk ? xmalloc(cap * sizeof *o->vals) : NULL;
	if (!nv) {   /* the index stays as it was */
		free(nk);
		return err_prefix("overlay page index");
	}
	o->cap = cap, o->keys = nk, o->vals = nv;
	for (size_t i = 0; i < o->cap; i++) o->keys[i] = OV_EMPTY;
	for (size_t i = 0; i < oldcap; i++) {
		if (ok[i] == OV_EMPTY) continue;
		size_t j = bucket(o, ok[i]);
		while (o->keys[j] != OV_EMPTY) j = (j + 1) & (o->cap - 1);
		o->keys[j] = ok[i];
		o->vals[j] = ov[i];
	}
	free(ok);
	free(ov);
	return 0;
}

/* Returns the value cell for page, inserting it (value v) if absent;
 * NULL with E_NOMEM set when the index cannot grow. */
static uint64_t *index_insert(struct overlay *o, uint64_t page, uint64_t v, bool *inserted)
{
	uint64_t *cell = index_find(o, page);
	*inserted = false;
	if (cell) return cell;
	if ((o->count + 1) * 2 > o->cap && index_grow(o) < 0) return NULL;
	size_t i = bucket(o, page);
	while (o->keys[i] != OV_EMPTY) i = (i + 1) & (o->cap - 1);
	o->keys[i] = page;
	o->vals[i] = v;
	o->count++;
	o->sorted_dirty = true;
	*inserted = true;
	return &o->vals[i];
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int sorted_refresh(struct overlay *o)
{
	if (!o->sorted_dirty) return 0;
	uint64_t *v = xmalloc((o->count ? o->count : 1) * sizeof *o->sorted);
	if (!v) return err_prefix("overlay page list");   /* still dirty: the old list is not used */
	free(o->sorted);
	o->sorted = v;
	o->nsorted = 0;
	for (size_t i = 0; i < o->cap; i++)
		if (o->keys[i] != OV_EMPTY) o->sorted[o->nsorted++] = o->keys[i];
	qsort(o->sorted, o->nsorted, sizeof *o->sorted, cmp_u64);
	o->sorted_dirty = false;
	return 0;
}

/* first index in sorted with value >= page */
static size_t sorted_lower(const struct overlay *o, uint64_t page)
{
	size_t lo = 0, hi = o->nsorted;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->sorted[mid] < page) lo = mid + 1; else hi = mid;
	}
	return lo;
}

/* ---- zero extents ------------------------------------------------------- */

/* first extent with e > off */
static size_t zext_lower(const struct overlay *o, uint64_t off)
{
	size_t lo = 0, hi = o->nzx;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->zx[mid].e <= off) lo = mid + 1; else hi = mid;
	}
	return lo;
}

static bool zext_covers(const struct overlay *o, uint64_t off)
{
	size_t i = zext_lower(o, off);
	return i < o->nzx && o->zx[i].s <= off;
}

static int zext_add(struct overlay *o, uint64_t s, uint64_t e)
{
	size_t i = o->nzx ? zext_lower(o, s) : 0;
	/* merge with a touching predecessor */
	if (i > 0 && o->zx[i - 1].e == s) i--;
	size_t j = i;
	while (j < o->nzx && o->zx[j].s <= e) {
		if (o->zx[j].s < s) s = o->zx[j].s;
		if (o->zx[j].e > e) e = o->zx[j].e;
		j++;
	}
	/* replace zx[i..j) by [s, e) */
	if (j == i) {
		if (o->nzx == o->capzx) {
			size_t cap = o->capzx ? o->capzx * 2 : 16;
			void *zx = xrealloc(o->zx, cap * sizeof *o->zx);
			if (!zx) return err_prefix("overlay zero extents");
			o->zx = zx, o->capzx = cap;
		}
		memmove(o->zx + i + 1, o->zx + i, (o->nzx - i) * sizeof *o->zx);
		o->nzx++;
	} else if (j > i + 1) {
		memmove(o->zx + i + 1, o->zx + j, (o->nzx - j) * sizeof *o->zx);
		o->nzx -= j - i - 1;
	}
	o->zx[i].s = s;
	o->zx[i].e = e;
	return 0;
}

/* ---- public ------------------------------------------------------------- */

struct overlay *overlay_new(struct disk *d)
{
	int fd = open_tmp();
	if (fd < 0) return NULL;
	struct overlay *o = xcalloc(1, sizeof *o);
	if (!o) {
		close(fd);
		err_prefix("overlay");
		return NULL;
	}
	const struct disk_info *di = disk_info(d);
	o->d = d;
	o->size = di->virtual_size;
	o->sector = di->logical_sector_size ? di->logical_sector_size : 512;
	o->fd = fd;
	return o;
}

void overlay_free(struct overlay *o)
{
	if (!o) return;
	close(o->fd);
	free(o->keys);
	free(o->vals);
	free(o->sorted);
	free(o->zx);
	free(o);
}

uint64_t overlay_size(const struct overlay *o) { return o->size; }
uint32_t overlay_sector_size(const struct overlay *o) { return o->sector; }

int overlay_resize(struct overlay *o, uint64_t new_size)
{
	/* shrinking only drops the partial sector a raw image may end with
	 * (plan warning partial-sector): less than one 4096-byte sector, cut
	 * before any edit, so no written byte lies past the new end */
	if (new_size < o->size && o->size - new_size >= 4096)
		return err_set(E_INTERNAL, "overlay cannot shrink (%llu -> %llu)", (unsigned long long)o->size,
			       (unsigned long long)new_size);
	o->size = new_size;
	return 0;
}

static int tmp_pread(struct overlay *o, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(o->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) return n < 0 ? err_errno(E_IO, "overlay temporary file read") :
				   err_set(E_IO, "overlay temporary file is short");
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

static int tmp_pwrite(struct overlay *o, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(o->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) return err_errno(E_IO, "overlay temporary file write (TMPDIR full?)");
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

/* Where the bytes of one page come from. */
enum src { SRC_DISK, SRC_ZERO, SRC_SLOT };

static enum src page_source(const struct overlay *o, uint64_t page, uint64_t *slot)
{
	const uint64_t *v = index_find(o, page);
	if (v) {
		*slot = *v;
		return *v == OV_ZERO_PAGE ? SRC_ZERO : SRC_SLOT;
	}
	return zext_covers(o, page * OVERLAY_PAGE) ? SRC_ZERO : SRC_DISK;
}

/* Reads without range check; bytes past the disk read as zero. */
static int read_any(struct overlay *o, uint8_t *buf, size_t len, uint64_t off)
{
	if (!o->count && !o->nzx)
		return disk_read(o->d, buf, len, off);
	while (len) {
		uint64_t page = off / OVERLAY_PAGE, slot = 0;
		enum src s = page_source(o, page, &slot);
		/* extend over following pages with the same source (disk or zero) */
		uint64_t end = (page + 1) * OVERLAY_PAGE, slot2;
		/* extend over following pages with the same source: disk, zero,
		 * or slots that follow each other in the temp file (pages
		 * written in order) */
		for (uint64_t next = slot + 1; end < off + len; end += OVERLAY_PAGE, next++) {
			if (page_source(o, end / OVERLAY_PAGE, &slot2) != s) break;
			if (s == SRC_SLOT && slot2 != next) break;
		}
		size_t n = (size_t)((end < off + len ? end : off + len) - off);
		int r = 0;
		if (s == SRC_DISK)
			r = disk_read(o->d, buf, n, off);
		else if (s == SRC_ZERO)
			memset(buf, 0, n);
		else
			r = tmp_pread(o, buf, n, slot * OVERLAY_PAGE + off % OVERLAY_PAGE);
		if (r < 0) return -1;
		buf += n, off += n, len -= n;
	}
	return 0;
}

int overlay_read(struct overlay *o, void *buf, size_t len, uint64_t off)
{
	/* the overlay reads zeros past its own end, like the disk does */
	if (off >= o->size) {
		memset(buf, 0, len);
		return 0;
	}
	size_t inside = len;
	if (len > o->size - off) {
		inside = (size_t)(o->size - off);
		memset((uint8_t *)buf + inside, 0, len - inside);
	}
	return read_any(o, buf, inside, off);
}

static int check_range(const struct overlay *o, const char *what, uint64_t off, uint64_t len)
{
	if (!range_ok(off, len, o->size))
		return err_set(E_INTERNAL, "overlay %s of %llu bytes at %llu is outside the disk (%llu bytes)", what,
			       (unsigned long long)len, (unsigned long long)off, (unsigned long long)o->size);
	return 0;
}

/* Writes part of one page. */
static int write_page(struct overlay *o, uint64_t page, const uint8_t *data, size_t in, size_t n)
{
	uint64_t *cell = index_find(o, page);
	if (cell && *cell != OV_ZERO_PAGE)
		return tmp_pwrite(o, data, n, *cell * OVERLAY_PAGE + in);
	uint8_t pg[OVERLAY_PAGE];
	if (n < OVERLAY_PAGE && read_any(o, pg, OVERLAY_PAGE, page * OVERLAY_PAGE) < 0)
		return -1;
	memcpy(pg + in, data, n);
	uint64_t slot = o->next_slot;
	if (tmp_pwrite(o, pg, OVERLAY_PAGE, slot * OVERLAY_PAGE) < 0)
		return -1;
	o->next_slot++;
	bool ins;
	uint64_t *c = index_insert(o, page, slot, &ins);
	if (!c) return -1;
	*c = slot;
	return 0;
}

int overlay_write(struct overlay *o, const void *buf, size_t len, uint64_t off)
{
	if (check_range(o, "write", off, len) < 0)
		return -1;
	const uint8_t *p = buf;
	while (len) {
		uint64_t page = off / OVERLAY_PAGE;
		size_t in = (size_t)(off % OVERLAY_PAGE);
		size_t n = OVERLAY_PAGE - in < len ? OVERLAY_PAGE - in : len;
		if (write_page(o, page, p, in, n) < 0)
			return -1;
		p += n, off += n, len -= n;
	}
	return 0;
}

static int write_zeros(struct overlay *o, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[OVERLAY_PAGE];
	while (len) {
		size_t n = len < OVERLAY_PAGE ? (size_t)len : OVERLAY_PAGE;
		if (overlay_write(o, zeros, n, off) < 0) return -1;
		off += n, len -= n;
	}
	return 0;
}

int overlay_zero(struct overlay *o, uint64_t off, uint64_t len)
{
	if (check_range(o, "zero", off, len) < 0)
		return -1;
	uint64_t end = off + len;
	uint64_t ps = (off + OVERLAY_PAGE - 1) / OVERLAY_PAGE, pe = end / OVERLAY_PAGE;
	if (ps >= pe)   /* no whole page inside: plain writes */
		return write_zeros(o, off, len);
	if (write_zeros(o, off, ps * OVERLAY_PAGE - off) < 0 ||
	    write_zeros(o, pe * OVERLAY_PAGE, end - pe * OVERLAY_PAGE) < 0)
		return -1;
	/* indexed whole pages of the range become zero pages */
	if (pe - ps <= o->count) {
		for (uint64_t p = ps; p < pe; p++) {
			uint64_t *v = index_find(o, p);
			if (v) *v = OV_ZERO_PAGE;
		}
	} else {
		for (size_t i = 0; i < o->cap; i++)
			if (o->keys[i] != OV_EMPTY && o->keys[i] >= ps && o->keys[i] < pe)
				o->vals[i] = OV_ZERO_PAGE;
	}
	return zext_add(o, ps * OVERLAY_PAGE, pe * OVERLAY_PAGE);
}

/* Calls disk_maybe_allocated on the parts of [off, end) that no zero
 * extent covers. */
static int disk_gaps_maybe(struct overlay *o, uint64_t off, uint64_t end)
{
	size_t i = zext_lower(o, off);
	while (off < end) {
		uint64_t gap_end = end;
		if (i < o->nzx && o->zx[i].s <= off) {   /* inside an extent: skip it */
			off = o->zx[i].e;
			i++;
			continue;
		}
		if (i < o->nzx && o->zx[i].s < end)
			gap_end = o->zx[i].s;
		int r = disk_maybe_allocated(o->d, off, gap_end - off);
		if (r != 0) return r;
		off = gap_end;
	}
	return 0;
}

int overlay_maybe_data(struct overlay *o, uint64_t off, uint64_t len)
{
	if (off >= o->size || !len) return 0;
	if (len > o->size - off) len = o->size - off;
	uint64_t end = off + len;
	if (o->count) {
		if (sorted_refresh(o) < 0) return -1;
		uint64_t pe = (end + OVERLAY_PAGE - 1) / OVERLAY_PAGE;
		for (size_t i = sorted_lower(o, off / OVERLAY_PAGE); i < o->nsorted && o->sorted[i] < pe; i++)
			if (*index_find(o, o->sorted[i]) != OV_ZERO_PAGE)
				return 1;
	}
	/* zero pages of the index may still shadow disk data: being
	 * conservative there only costs a read */
	return disk_gaps_maybe(o, off, end);
}

bool overlay_touched(const struct overlay *o, uint64_t off, uint64_t len)
{
	if (!len) return false;
	uint64_t end = off + len < off ? UINT64_MAX : off + len;
	size_t z = zext_lower(o, off);
	if (z < o->nzx && o->zx[z].s < end)
		return true;
	uint64_t pe = (end + OVERLAY_PAGE - 1) / OVERLAY_PAGE;
	if (pe - off / OVERLAY_PAGE <= 64) {
		for (uint64_t p = off / OVERLAY_PAGE; p < pe; p++)
			if (index_find(o, p)) return true;
		return false;
	}
	if (sorted_refresh((struct overlay *)o) < 0) {   /* cache only: logically const */
		err_clear();   /* no memory for the cache: the index itself answers */
		for (size_t k = 0; k < o->cap; k++)
			if (o->keys[k] != OV_EMPTY && o->keys[k] >= off / OVERLAY_PAGE && o->keys[k] < pe) return true;
		return false;
	}
	size_t i = sorted_lower(o, off / OVERLAY_PAGE);
	return i < o->nsorted && o->sorted[i] < pe;
}

int overlay_foreach_written(const struct overlay *o,
			    int (*fn)(void *ctx, uint64_t off, uint64_t len), void *ctx)
{
	struct overlay *m = (struct overlay *)o;   /* sorted cache only */
	if (sorted_refresh(m) < 0) return -1;
	size_t i = 0, z = 0;
	bool have = false;
	uint64_t rs = 0, re = 0;
	while (i < m->nsorted || z < m->nzx) {
		uint64_t s, e;
		if (z >= m->nzx || (i < m->nsorted && m->sorted[i] * OVERLAY_PAGE < m->zx[z].s)) {
			s = m->sorted[i] * OVERLAY_PAGE;
			e = s + OVERLAY_PAGE;
			i++;
		} else {
			s = m->zx[z].s;
			e = m->zx[z].e;
			z++;
		}
		if (have && s <= re) {
			if (e > re) re = e;
			continue;
		}
		if (have) {
			int r = fn(ctx, rs, (re < m->size ? re : m->size) - rs);
			if (r) return r;
		}
		rs = s, re = e, have = true;
	}
	/* the last page may extend past a size that is not page aligned */
	return have ? fn(ctx, rs, (re < m->size ? re : m->size) - rs) : 0;
}

static int add_len(void *ctx, uint64_t off, uint64_t len)
{
	*(uint64_t *)ctx += len;
	return 0;
}

uint64_t overlay_bytes_written(const struct overlay *o)
{
	uint64_t n = 0;
	overlay_foreach_written(o, add_len, &n);
	return n;
}

int overlay_source_unchanged(const struct overlay *o)
{
	return disk_check_unchanged(o->d);
}

uint64_t overlay_map(struct overlay *o, uint64_t off, uint64_t len, int *fd, uint64_t *file_off)
{
	if (overlay_touched(o, off, len)) return 0;
	return disk_map(o->d, off, len, fd, file_off);
}
