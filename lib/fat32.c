/* fat32.c - FAT32 writer, reader and structure check for the ESP.
 *
 * Every on-disk field here follows "Microsoft Extensible Firmware Initiative
 * FAT32 File System Specification, FAT: General Overview of On-Disk Format",
 * version 1.03 (fatgen103); section names are cited where a field is
 * encoded. The writer lays the volume out deterministically: root directory
 * at cluster 2, then every directory and file in creation order (pre-order
 * walk), each contiguous.
 */
#include "fat32.h"
#include "fat_format.h"
#include "overlay.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RESERVED_SECTORS 32     /* fatgen103 "FAT32 ... BPB_RsvdSecCnt is typically 32" */
#define NUM_FATS 2
#define FSINFO_SECTOR 1
#define BACKUP_BOOT_SECTOR 6
#define MIN_CLUSTERS 65525      /* fatgen103 "FAT Type Determination": >= 65525 is FAT32 */
#define MAX_CLUSTERS 0x0FFFFFF5 /* cluster numbers stay below the BAD/EOC values */
#define READER_MAX_CLUSTERS (1u << 22) /* reader loads the FAT: bound its size (16 MiB) */
#define FAT_EOC 0x0FFFFFFFu
#define FAT_BAD 0x0FFFFFF7u
#define FAT_MASK 0x0FFFFFFFu     /* "FAT32 FAT entries are really 28 bits" */
#define DIRENT 32
#define ATTR_READ_ONLY 0x01
#define ATTR_HIDDEN 0x02
#define ATTR_SYSTEM 0x04
#define ATTR_VOLUME_ID 0x08
#define ATTR_DIRECTORY 0x10
#define ATTR_ARCHIVE 0x20
#define ATTR_LONG_NAME 0x0F
#define LFN_CHARS 13            /* UTF-16 units per long-name entry */
#define LFN_MAX 255
/* a long-name set is at most 20 entries (fatgen103 "Long Directory
 * Entries": 255 characters); read back, its units become at most 3 bytes
 * of UTF-8 each (a surrogate pair: 4 bytes for 2 units); doc/formats.md,
 * FAT long names */
#define LFN_UNITS_MAX (20 * LFN_CHARS)
#define LFN_UTF8_MAX (LFN_UNITS_MAX * 3)
#define MAX_DEPTH 64            /* directory nesting followed by reader/check */
#define MAX_DIR_BYTES (65536 * DIRENT) /* "a directory may not have more than 65536 entries" */

/* ---- names ------------------------------------------------------------- */

/* Characters valid in a short (8.3) name besides A-Z and 0-9 (fatgen103
 * "DIR_Name" notes: $ % ' - _ @ ~ ` ! ( ) { } ^ # &). */
static bool short_char_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("$%'-_@~`!(){}^#&", c));
}

/* Characters a long name may not contain (fatgen103 "Long Directory
 * Entries": the short-name set plus . + , ; = [ ] and space are allowed). */
static bool long_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	if (s[n - 1] == '.' || s[n - 1] == ' ')
		return false; /* Windows strips them: the name would not round-trip */
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || strchr("\"*/:<>?\\|", *p))
			return false;
	return true;
}

/* True when name is already a valid upper-case 8.3 name: then no LFN. */
static bool fits_83(const char *name, uint8_t out[11])
{
	const char *dot = strchr(name, '.');
	size_t base = dot ? (size_t)(dot - name) : strlen(name);
	size_t ext = dot ? strlen(dot + 1) : 0;
	if (base < 1 || base > 8 || ext > 3 || (dot && (ext == 0 || strchr(dot + 1, '.'))))
		return false;
	for (size_t i = 0; i < base; i++)
		if (!short_char_ok((unsigned char)name[i]))
			return false;
	for (size_t i = 0; i < ext; i++)
		if (!short_char_ok((unsigned char)dot[1 + i]))
			return false;
	memset(out, ' ', 11);
	memcpy(out, name, base);
	if (ext)
		memcpy(out + 8, dot + 1, ext);
	return true;
}

/* fatgen103 "Basis-Name Generation Algorithm": upper-case, invalid
 * characters to '_', spaces and leading/embedded periods removed, up to 8
 * characters of the primary part and 3 of the extension (after the last
 * period). *lossy is set when information was lost. */
static void basis_name(const char *name, uint8_t out[11], bool *lossy)
{
	const char *last_dot = strrchr(name, '.');
	if (last_dot == name)
		last_dot = NULL; /* ".foo": a leading period, no extension */
	size_t nb = 0, ne = 0;
	memset(out, ' ', 11);
	*lossy = false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;
		bool in_ext = last_dot && p > last_dot;
		if (p == last_dot)
			continue;
		if (c == ' ' || c == '.') {
			*lossy = true; /* stripped */
			continue;
		}
		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		if (c >= 0x80) {
			/* one '_' per UTF-8 sequence: skip continuation bytes */
			while ((p[1] & 0xC0) == 0x80)
				p++;
			c = '_';
			*lossy = true;
		} else if (!short_char_ok(c)) {
			c = '_';
			*lossy = true;
		}
		if (in_ext) {
			if (ne < 3) out[8 + ne++] = c;
			else *lossy = true;
		} else {
			if (nb < 8) out[nb++] = c;
			else *lossy = true;
		}
	}
	if (nb == 0) {
		out[0] = '_';
		*lossy = true;
	}
}

/* fatgen103 "Numeric-Tail Generation Algorithm": NAME~N, the primary part
 * truncated so that it and "~N" fit 8 characters. */
static void apply_tail(const uint8_t basis[11], unsigned n, uint8_t out[11])
{
	char tail[12];
	int tl = snprintf(tail, sizeof(tail), "~%u", n);
	size_t nb = 0;
	while (nb < 8 && basis[nb] != ' ')
		nb++;
	if (nb > (size_t)(8 - tl))
		nb = (size_t)(8 - tl);
	memcpy(out, basis, 11);
	memset(out, ' ', 8);
	memcpy(out, basis, nb);
	memcpy(out + nb, tail, (size_t)tl);
}

/* fatgen103 "Long Directory Entries": the checksum of the short name that
 * every long entry of the set carries (LDIR_Chksum). */
static uint8_t lfn_checksum(const uint8_t name[11])
{
	uint8_t sum = 0;
	for (int i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) ? 0x80 : 0) + (sum >> 1) + name[i]);
	return sum;
}

/* ---- the builder ------------------------------------------------------- */

struct fnode {
	char *name;               /* long name, UTF-8 (NULL for the root) */
	uint8_t short_name[11];
	bool need_lfn, is_dir;
	uint8_t *data;
	size_t len;
	struct fnode **kids;
	size_t nkids, cap;
	struct fnode *parent;
	uint32_t first_cluster, nclusters;
};

struct fat32_geom {
	uint32_t ss, spc, rsvd, fatsz, total_sectors, clusters;
};

struct fat32_builder {
	struct fat32_geom g;
	uint32_t volume_id;
	uint8_t label[11];
	struct fnode root;
};

/* Cluster size by volume size, fatgen103 "FAT32 DskTableFAT32" (given for
 * 512-byte sectors, here as bytes so it applies to any sector size):
 * up to 260 MiB 512-byte clusters, 8 GiB 4 KiB, 16 GiB 8 KiB, 32 GiB 16 KiB,
 * above 32 KiB. */
static uint32_t cluster_bytes_for(uint64_t size)
{
	if (size <= 532480ULL * 512) return 512;
	if (size <= 16777216ULL * 512) return 4096;
	if (size <= 33554432ULL * 512) return 8192;
	if (size <= 67108864ULL * 512) return 16384;
	return 32768;
}

/* The smallest FAT that holds an entry for every data cluster (plus the two
 * reserved entries), given that the FATs themselves take room from data. */
static int compute_geometry(uint64_t size, uint32_t ss, struct fat32_geom *g)
{
	if (ss != 512 && ss != 1024 && ss != 2048 && ss != 4096)
		return err_set(E_UNSUPPORTED, "FAT32 sector size %u", ss);
	uint64_t total = size / ss;
	if (total > 0xFFFFFFFFULL)
		return err_set(E_NOSPACE, "volume too large for FAT32 (more than 2^32 sectors)");
	memset(g, 0, sizeof(*g));
	g->ss = ss;
	g->rsvd = RESERVED_SECTORS;
	g->total_sectors = (uint32_t)total;
	uint32_t cb = cluster_bytes_for(size);
	g->spc = cb > ss ? cb / ss : 1;
	uint64_t fatsz = 1;
	for (int i = 0; i < 64; i++) {
		if (total <= g->rsvd + NUM_FATS * fatsz)
			return err_set(E_NOSPACE, "volume of %llu bytes too small for FAT32", (unsigned long long)size);
		uint64_t clusters = (total - g->rsvd - NUM_FATS * fatsz) / g->spc;
		uint64_t need = ((clusters + 2) * 4 + ss - 1) / ss;
		if (need <= fatsz) {
			g->clusters = (uint32_t)(clusters > MAX_CLUSTERS ? MAX_CLUSTERS : clusters);
			break;
		}
		fatsz = need;
	}
	g->fatsz = (uint32_t)fatsz;
	if (g->clusters < MIN_CLUSTERS)
		return err_set(E_NOSPACE, "volume of %llu bytes gives %u clusters; FAT32 needs at least %u (fatgen103)",
			       (unsigned long long)size, g->clusters, MIN_CLUSTERS);
	return 0;
}

int fat32_geometry(uint64_t size, uint32_t ss, uint32_t *clusters, uint32_t *cluster_bytes)
{
	struct fat32_geom g;
	if (compute_geometry(size, ss, &g) < 0)
		return -1;
	if (clusters)
		*clusters = g.clusters;
	if (cluster_bytes)
		*cluster_bytes = g.spc * g.ss;
	return 0;
}

uint64_t fat32_min_size(uint32_t ss)
{
	/* one sector per cluster: reserved + 2 FATs + 65525 clusters */
	uint64_t fatsz = ((uint64_t)(MIN_CLUSTERS + 2) * 4 + ss - 1) / ss;
	return (RESERVED_SECTORS + NUM_FATS * fatsz + MIN_CLUSTERS) * ss;
}

/* fatgen103 BS_VolLab: 11 bytes, space-padded. A longer label is
 * E_USAGE, never cut. */
static int set_label(uint8_t out[11], const char *label)
{
	memset(out, ' ', 11);
	if (!label || !*label) {
		memcpy(out, "NO NAME    ", 11);
		return 0;
	}
	if (strlen(label) > 11)
		return err_set(E_USAGE, "FAT32 volume label '%s' is %zu bytes, longer than the 11 a label holds", label, strlen(label));
	for (size_t i = 0; i < 11 && label[i]; i++) {
		unsigned char c = (unsigned char)label[i];
		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		out[i] = (short_char_ok(c) || c == ' ') ? c : '_';
	}
	return 0;
}

struct fat32_builder *fat32_new(uint64_t size, uint32_t sector_size, uint32_t volume_id, const char *label)
{
	struct fat32_geom g;
	uint8_t lab[11];
	if (set_label(lab, label) < 0 || compute_geometry(size, sector_size, &g) < 0)
		return NULL;
	struct fat32_builder *b = xcalloc(1, sizeof(*b));
	if (!b) {
		err_prefix("FAT32 builder");
		return NULL;
	}
	b->g = g;
	b->volume_id = volume_id;
	memcpy(b->label, lab, sizeof lab);
	b->root.is_dir = true;
	return b;
}

static void free_node(struct fnode *n, int depth)
{
	for (size_t i = 0; i < n->nkids; i++) {
		free_node(n->kids[i], depth + 1);
		free(n->kids[i]);
	}
	free(n->kids);
	free(n->name);
	free(n->data);
}

void fat32_free(struct fat32_builder *b)
{
	if (!b)
		return;
	free_node(&b->root, 0);
	free(b);
}

static struct fnode *find_child(struct fnode *dir, const char *name, size_t len)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		struct fnode *k = dir->kids[i];
		if (strlen(k->name) == len && !strncasecmp(k->name, name, len))
			return k;
	}
	return NULL;
}

/* Walks path to its parent directory; *leaf points at the last component. */
static struct fnode *walk_parent(struct fat32_builder *b, const char *path, const char **leaf)
{
	struct fnode *d = &b->root;
	const char *p = path;
	while (*p == '/')
		p++;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			break;
		struct fnode *k = find_child(d, p, (size_t)(slash - p));
		if (!k || !k->is_dir) {
			err_set(E_NOTFOUND, "FAT32: parent directory of '%s' does not exist", path);
			return NULL;
		}
		d = k;
		p = slash + 1;
		while (*p == '/')
			p++;
	}
	*leaf = p;
	return d;
}

static bool short_name_taken(const struct fnode *dir, const uint8_t sn[11])
{
	for (size_t i = 0; i < dir->nkids; i++)
		if (!memcmp(dir->kids[i]->short_name, sn, 11))
			return true;
	return false;
}

/* Chooses the 8.3 name of a new entry: the name itself when it is a valid
 * upper-case 8.3 name, else the basis name, with a numeric tail when the
 * basis lost information or collides with a sibling's short name. */
static int choose_short_name(struct fnode *dir, struct fnode *n)
{
	if (fits_83(n->name, n->short_name)) {
		n->need_lfn = false;
		if (short_name_taken(dir, n->short_name))
			return err_set(E_EXISTS, "FAT32: '%s' clashes with an existing short name", n->name);
		return 0;
	}
	n->need_lfn = true;
	uint8_t basis[11];
	bool lossy;
	basis_name(n->name, basis, &lossy);
	if (!lossy && !short_name_taken(dir, basis)) {
		memcpy(n->short_name, basis, 11);
		return 0;
	}
	for (unsigned i = 1; i < 1000000; i++) {
		apply_tail(basis, i, n->short_name);
		if (!short_name_taken(dir, n->short_name))
			return 0;
	}
	return err_set(E_NOSPACE, "FAT32: no free short name for '%s'", n->name);
}

static int add_node(struct fat32_builder *b, const char *path, bool is_dir, const void *data, size_t len)
{
	const char *leaf;
	struct fnode *dir = walk_parent(b, path, &leaf);
	if (!dir)
		return -1;
	if (!long_name_ok(leaf))
		return err_set(E_USAGE, "FAT32: invalid file name '%s'", leaf);
	size_t units = utf8_utf16_units(leaf);
	if (units > LFN_MAX)
		return err_set(E_USAGE, "FAT32: name longer than %d characters: '%.40s...'", LFN_MAX, leaf);
	if (find_child(dir, leaf, strlen(leaf)))
		return err_set(E_EXISTS, "FAT32: '%s' already exists", path);
	struct fnode *n = xcalloc(1, sizeof(*n));
	if (n && !(n->name = xstrdup(leaf))) {
		free(n);
		n = NULL;
	}
	if (!n) return err_prefix("FAT32: '%s'", path);
	n->is_dir = is_dir;
	n->parent = dir;
	if (choose_short_name(dir, n) < 0) {
		free(n->name);
		free(n);
		return -1;
	}
	struct fnode **kids = dir->kids;
	if (dir->nkids == dir->cap) {
		size_t cap = dir->cap ? dir->cap * 2 : 8;
		if ((kids = xrealloc(dir->kids, cap * sizeof(*dir->kids)))) dir->kids = kids, dir->cap = cap;
	}
	if (kids && !is_dir && len && (n->data = xmalloc(len))) {
		memcpy(n->data, data, len);
		n->len = len;
	}
	if (!kids || (!is_dir && len && !n->data)) {
		free(n->name);
		free(n);
		return err_prefix("FAT32: '%s'", path);
	}
	dir->kids[dir->nkids++] = n;
	return 0;
}

int fat32_mkdir(struct fat32_builder *b, const char *path)
{
	return add_node(b, path, true, NULL, 0);
}

int fat32_add_file(struct fat32_builder *b, const char *path, const void *data, size_t len)
{
	if (len > 0xFFFFFFFFu)
		return err_set(E_NOSPACE, "FAT32: '%s' is larger than 4 GiB - 1", path);
	return add_node(b, path, false, data, len);
}

/* ---- writing ----------------------------------------------------------- */

static size_t lfn_entries(const struct fnode *n)
{
	if (!n->need_lfn)
		return 0;
	size_t units = utf8_utf16_units(n->name);
	return (units + LFN_CHARS - 1) / LFN_CHARS;
}

static size_t dir_entry_count(const struct fnode *d, bool is_root)
{
	size_t n = is_root ? 1 : 2; /* volume label, or "." and ".." */
	for (size_t i = 0; i < d->nkids; i++)
		n += lfn_entries(d->kids[i]) + 1;
	return n;
}

/* Assigns contiguous clusters in pre-order from *next. */
static int assign_clusters(struct fat32_builder *b, struct fnode *n, bool is_root, uint32_t *next, int depth)
{
	uint64_t cb = (uint64_t)b->g.spc * b->g.ss;
	uint64_t bytes = n->is_dir ? dir_entry_count(n, is_root) * DIRENT : n->len;
	if (n->is_dir && bytes > MAX_DIR_BYTES)
		return err_set(E_NOSPACE, "FAT32: directory '%s' has more than 65536 entries", n->name ? n->name : "/");
	uint64_t nc = (bytes + cb - 1) / cb;
	if (n->is_dir && nc == 0)
		nc = 1;
	if (nc > (uint64_t)b->g.clusters + 2 - *next)
		return err_set(E_NOSPACE, "FAT32: the files do not fit in the %llu-byte volume",
			       (unsigned long long)b->g.total_sectors * b->g.ss);
	n->first_cluster = nc ? *next : 0;
	n->nclusters = (uint32_t)nc;
	*next += (uint32_t)nc;
	for (size_t i = 0; i < n->nkids; i++)
		if (assign_clusters(b, n->kids[i], false, next, depth + 1) < 0)
			return -1;
	return 0;
}

/* Directory entry time stamps: fatgen103 "Date and Time Formats"; the
 * date counts from 1980, the time in 2-second units, local time by
 * convention (we use UTC of build_epoch(): deterministic). */
static void dos_time(uint16_t *date, uint16_t *tm)
{
	time_t t = (time_t)build_epoch();
	struct tm g;
	gmtime_r(&t, &g);
	int year = g.tm_year + 1900;
	if (year < 1980) {
		*date = (0 << 9) | (1 << 5) | 1;
		*tm = 0;
		return;
	}
	if (year > 2107)
		year = 2107;
	*date = (uint16_t)(((year - 1980) << 9) | ((g.tm_mon + 1) << 5) | g.tm_mday);
	*tm = (uint16_t)((g.tm_hour << 11) | (g.tm_min << 5) | (g.tm_sec / 2));
}

/* fatgen103 "FAT Directory Structure": every time stamp build_epoch(). */
static void short_record(struct fat_dir_record *r, const uint8_t name[11], uint8_t attr, uint32_t cluster,
			 uint32_t size)
{
	uint16_t d, t;
	dos_time(&d, &t);
	memset(r, 0, sizeof *r);
	memcpy(r->name, name, sizeof r->name);
	r->attr = attr;
	le16_set(&r->crt_time, t);
	le16_set(&r->crt_date, d);
	le16_set(&r->lst_acc_date, d);
	le16_set(&r->fst_clus_hi, (uint16_t)(cluster >> 16));
	le16_set(&r->wrt_time, t);
	le16_set(&r->wrt_date, d);
	le16_set(&r->fst_clus_lo, (uint16_t)cluster);
	le32_set(&r->file_size, size);
}

static void put_short_entry(uint8_t *e, const uint8_t name[11], uint8_t attr, uint32_t cluster, uint32_t size)
{
	struct fat_dir_record r;
	short_record(&r, name, attr, cluster, size);
	memcpy(e, &r, sizeof r);
}

/* fatgen103 "Long Directory Entries": LDIR_Ord (last one | 0x40), 13 UTF-16
 * characters in Name1 (5, offset 1), Name2 (6, offset 14), Name3 (2, offset
 * 28), NUL-terminated when shorter then padded with 0xFFFF; written in
 * reverse order directly before the short entry. Returns entries written. */
static size_t put_lfn_entries(uint8_t *out, const struct fnode *n)
{
	size_t units = 0;
	uint8_t *u = utf8_to_utf16le(n->name, &units);
	if (!u) return SIZE_MAX;   /* E_NOMEM set */
	size_t count = (units + LFN_CHARS - 1) / LFN_CHARS;
	uint8_t sum = lfn_checksum(n->short_name);
	for (size_t k = 0; k < count; k++) {
		size_t ord = count - k; /* first written is the last part */
		struct fat_lfn_record r;
		memset(&r, 0, sizeof r);
		r.ord = (uint8_t)(ord | (k == 0 ? 0x40 : 0));
		r.attr = ATTR_LONG_NAME;
		r.chksum = sum;
		for (int c = 0; c < LFN_CHARS; c++) {
			size_t idx = (ord - 1) * LFN_CHARS + (size_t)c;
			uint16_t v = idx < units ? get_le16(u + 2 * idx) : idx == units ? 0x0000 : 0xFFFF;
			le16_set(fat_lfn_unit(&r, c), v);
		}
		memcpy(out + k * sizeof r, &r, sizeof r);
	}
	free(u);
	return count;
}

static uint8_t *build_dir(const struct fat32_builder *b, const struct fnode *d, bool is_root, size_t *len)
{
	size_t cb = (size_t)b->g.spc * b->g.ss;
	*len = (size_t)d->nclusters * cb;
	uint8_t *buf = xcalloc(1, *len), *e = buf;
	if (!buf) return NULL;
	if (is_root) {
		struct fat_dir_record label;
		short_record(&label, b->label, ATTR_VOLUME_ID, 0, 0);
		/* a volume label has its write time only */
		memset(&label.crt_time, 0, sizeof label.crt_time);
		memset(&label.crt_date, 0, sizeof label.crt_date);
		memset(&label.lst_acc_date, 0, sizeof label.lst_acc_date);
		memcpy(e, &label, sizeof label);
		e += DIRENT;
	} else {
		/* fatgen103 "FAT Directory Structure": "." points at the directory
		 * itself, ".." at its parent, cluster 0 when the parent is root. */
		uint8_t dot[11], dotdot[11];
		memcpy(dot, ".          ", 11);
		memcpy(dotdot, "..         ", 11);
		put_short_entry(e, dot, ATTR_DIRECTORY, d->first_cluster, 0);
		uint32_t up = d->parent && d->parent->parent ? d->parent->first_cluster : 0;
		put_short_entry(e + DIRENT, dotdot, ATTR_DIRECTORY, up, 0);
		e += 2 * DIRENT;
	}
	for (size_t i = 0; i < d->nkids; i++) {
		const struct fnode *k = d->kids[i];
		size_t lfn = k->need_lfn ? put_lfn_entries(e, k) : 0;
		if (lfn == SIZE_MAX) {
			free(buf);
			return NULL;
		}
		e += lfn * DIRENT;
		put_short_entry(e, k->short_name, k->is_dir ? ATTR_DIRECTORY : ATTR_ARCHIVE,
				k->first_cluster, k->is_dir ? 0 : (uint32_t)k->len);
		e += DIRENT;
	}
	return buf;
}

static uint64_t cluster_off(const struct fat32_geom *g, uint64_t vol, uint32_t c)
{
	return vol + ((uint64_t)g->rsvd + (uint64_t)NUM_FATS * g->fatsz) * g->ss +
	       (uint64_t)(c - 2) * g->spc * g->ss;
}

static int write_node(const struct fat32_builder *b, const struct fnode *n, bool is_root,
		      struct overlay *o, uint64_t vol, uint32_t *fat, int depth)
{
	for (uint32_t i = 0; i < n->nclusters; i++)
		fat[n->first_cluster + i] = i + 1 == n->nclusters ? FAT_EOC : n->first_cluster + i + 1;
	if (n->is_dir) {
		size_t len;
		uint8_t *buf = build_dir(b, n, is_root, &len);
		if (!buf) return err_prefix("FAT32 directory '%s'", n->name ? n->name : "\\");
		int rc = overlay_write(o, buf, len, cluster_off(&b->g, vol, n->first_cluster));
		free(buf);
		if (rc < 0)
			return -1;
		for (size_t i = 0; i < n->nkids; i++)
			if (write_node(b, n->kids[i], false, o, vol, fat, depth + 1) < 0)
				return -1;
	} else if (n->len) {
		if (overlay_write(o, n->data, n->len, cluster_off(&b->g, vol, n->first_cluster)) < 0)
			return -1;
	}
	return 0;
}

/* fatgen103 "Boot Sector and BPB Structure" and "FAT32 Structure Starting
 * at Offset 36" (doc/formats.md, FAT32 ESP), into the sector s. */
static void build_boot_sector(const struct fat32_builder *b, uint64_t vol, uint8_t *s)
{
	const struct fat32_geom *g = &b->g;
	struct fat32_boot_sector bs;
	memset(&bs, 0, sizeof bs);
	memcpy(bs.jmp_boot, "\xEB\x58\x90", 3);      /* jump over the BPB */
	memcpy(bs.oem_name, "MSWIN4.1", 8);           /* what the spec recommends */
	le16_set(&bs.bytes_per_sector, (uint16_t)g->ss);
	bs.sectors_per_cluster = (uint8_t)g->spc;
	le16_set(&bs.reserved_sectors, (uint16_t)g->rsvd);
	bs.num_fats = NUM_FATS;
	bs.media = 0xF8;                              /* fixed disk */
	le16_set(&bs.sectors_per_track, 63);          /* geometry hint only */
	le16_set(&bs.num_heads, 255);
	le32_set(&bs.hidden_sectors, (uint32_t)(vol / g->ss));   /* sectors before the volume */
	le32_set(&bs.total_sectors32, g->total_sectors);
	le32_set(&bs.fat_size32, g->fatsz);
	le16_set(&bs.ext_flags, 0);                   /* FATs mirrored */
	le16_set(&bs.fs_version, 0);                  /* 0.0 */
	le32_set(&bs.root_cluster, 2);
	le16_set(&bs.fs_info, FSINFO_SECTOR);
	le16_set(&bs.backup_boot_sector, BACKUP_BOOT_SECTOR);
	bs.drive_number = 0x80;                       /* hard disk */
	bs.boot_signature = 0x29;                     /* the next three fields exist */
	le32_set(&bs.volume_id, b->volume_id);
	memcpy(bs.volume_label, b->label, 11);
	memcpy(bs.fs_type, "FAT32   ", 8);            /* informative only */
	/* boot code: not bootable on BIOS; halt forever if ever run */
	memcpy(bs.boot_code, "\xFA\xF4\xEB\xFD", 4);  /* cli; hlt; jmp $-1 */
	bs.signature[0] = 0x55;
	bs.signature[1] = 0xAA;
	memset(s, 0, g->ss);
	memcpy(s, &bs, sizeof bs);
}

/* fatgen103 "FAT32 FSInfo Sector Structure and Backup Boot Sector". */
static void build_fsinfo(const struct fat32_geom *g, uint32_t free_count, uint32_t next_free, uint8_t *s)
{
	struct fat32_fsinfo fi;
	memset(&fi, 0, sizeof fi);
	le32_set(&fi.lead_sig, FSI_LEAD_SIG);
	le32_set(&fi.struc_sig, FSI_STRUC_SIG);
	le32_set(&fi.free_count, free_count);
	le32_set(&fi.next_free, next_free);
	le32_set(&fi.trail_sig, FSI_TRAIL_SIG);
	memset(s, 0, g->ss);
	memcpy(s, &fi, sizeof fi);
}

int fat32_write(struct fat32_builder *b, struct overlay *o, uint64_t off)
{
	const struct fat32_geom *g = &b->g;
	uint64_t vol_bytes = (uint64_t)g->total_sectors * g->ss;
	if (off % g->ss || !range_ok(off, vol_bytes, overlay_size(o)))
		return err_set(E_INTERNAL, "FAT32 volume at %llu does not fit the disk", (unsigned long long)off);
	uint32_t next = 2;
	if (assign_clusters(b, &b->root, true, &next, 0) < 0)
		return -1;
	size_t fat_bytes = (size_t)g->fatsz * g->ss;
	uint32_t *fat = xcalloc(fat_bytes / 4, 4);
	uint8_t *sec = fat ? xmalloc(g->ss) : NULL;
	int rc = -1;
	if (!sec) goto out;
	/* FAT[0] = media byte in the low 8 bits, FAT[1] = EOC with the "clean
	 * shutdown" and "no error" bits set (fatgen103 "FAT Data Structure"). */
	fat[0] = 0x0FFFFF00u | 0xF8;
	fat[1] = FAT_EOC;
	if (overlay_zero(o, off, vol_bytes) < 0 || write_node(b, &b->root, true, o, off, fat, 0) < 0)
		goto out;
	/* little-endian FAT image in place */
	for (size_t i = 0; i < fat_bytes / 4; i++)
		put_le32(&fat[i], fat[i]);
	for (int f = 0; f < NUM_FATS; f++)
		if (overlay_write(o, fat, fat_bytes, off + ((uint64_t)g->rsvd + (uint64_t)f * g->fatsz) * g->ss) < 0)
			goto out;
	build_boot_sector(b, off, sec);
	if (overlay_write(o, sec, g->ss, off) < 0 ||
	    overlay_write(o, sec, g->ss, off + (uint64_t)BACKUP_BOOT_SECTOR * g->ss) < 0)
		goto out;
	uint32_t used = next - 2;
	build_fsinfo(g, g->clusters - used, next <= g->clusters + 1 ? next : 0xFFFFFFFF, sec);
	if (overlay_write(o, sec, g->ss, off + (uint64_t)FSINFO_SECTOR * g->ss) < 0 ||
	    overlay_write(o, sec, g->ss, off + (uint64_t)(BACKUP_BOOT_SECTOR + 1) * g->ss) < 0)
		goto out;
	rc = 0;
out:
	free(fat);
	free(sec);
	if (rc < 0)
		err_prefix("writing FAT32");
	return rc;
}

/* ---- reading ----------------------------------------------------------- */

const char *fat_boot_kind(const uint8_t *sector)
{
	struct fat32_boot_sector bs;
	memcpy(&bs, sector, sizeof bs);
	if (bs.signature[0] != 0x55 || bs.signature[1] != 0xAA) return NULL;
	if (!memcmp(bs.fs_type, "FAT32   ", 8)) return "fat32";
	if (!memcmp(sector + FAT16_FS_TYPE_OFF, "FAT16   ", 8)) return "fat16";
	if (!memcmp(sector + FAT16_FS_TYPE_OFF, "FAT12   ", 8)) return "fat12";
	return NULL;
}

struct fat32_vol {
	struct overlay *o;
	uint64_t off, size;
	uint32_t ss, spc, cb, rsvd, nfats, fatsz, total, clusters, root;
	uint32_t fsinfo, backup, active_fat;
	bool mirrored;
	uint8_t media;
	uint32_t *fat; /* active FAT, clusters + 2 entries, host order */
};

static int vol_read(struct fat32_vol *v, void *buf, size_t len, uint64_t rel)
{
	if (!range_ok(rel, len, v->size))
		return err_set(E_FORMAT, "FAT32: read outside the volume (offset %llu)", (unsigned long long)rel);
	return overlay_read(v->o, buf, len, v->off + rel);
}

/* fatgen103 "Boot Sector and BPB Structure": every field the layout depends
 * on is checked before use; FAT type by cluster count ("FAT Type
 * Determination"). */
static int parse_bpb(struct fat32_vol *v, const struct fat32_boot_sector *s)
{
	if (s->signature[0] != 0x55 || s->signature[1] != 0xAA)
		return err_set(E_FORMAT, "FAT32: no boot sector signature");
	if (!(s->jmp_boot[0] == 0xEB && s->jmp_boot[2] == 0x90) && s->jmp_boot[0] != 0xE9)
		return err_set(E_FORMAT, "FAT32: no jump instruction in the boot sector");
	v->ss = le16_get(&s->bytes_per_sector);
	v->spc = s->sectors_per_cluster;
	v->rsvd = le16_get(&s->reserved_sectors);
	v->nfats = s->num_fats;
	v->media = s->media;
	v->fatsz = le32_get(&s->fat_size32);
	v->total = le32_get(&s->total_sectors32);
	v->root = le32_get(&s->root_cluster);
	v->fsinfo = le16_get(&s->fs_info);
	v->backup = le16_get(&s->backup_boot_sector);
	uint16_t ext = le16_get(&s->ext_flags);
	v->mirrored = !(ext & 0x80);
	v->active_fat = v->mirrored ? 0 : ext & 0x0F;
	if (v->ss != 512 && v->ss != 1024 && v->ss != 2048 && v->ss != 4096)
		return err_set(E_FORMAT, "FAT32: bytes per sector %u", v->ss);
	if (v->spc == 0 || (v->spc & (v->spc - 1)) || (uint64_t)v->spc * v->ss > 65536)
		return err_set(E_FORMAT, "FAT32: sectors per cluster %u", v->spc);
	if (v->rsvd == 0 || v->nfats == 0 || v->nfats > 4 || v->active_fat >= v->nfats)
		return err_set(E_FORMAT, "FAT32: reserved sectors %u / FAT count %u", v->rsvd, v->nfats);
	if (le16_get(&s->root_entry_count) != 0 || le16_get(&s->total_sectors16) != 0 ||
	    le16_get(&s->fat_size16) != 0 || v->fatsz == 0)
		return err_set(E_FORMAT, "FAT32: FAT12/16 fields set (not FAT32)");
	if ((uint64_t)v->total * v->ss > v->size || v->total == 0)
		return err_set(E_FORMAT, "FAT32: %u sectors do not fit the %llu-byte partition", v->total,
			       (unsigned long long)v->size);
	uint64_t data = (uint64_t)v->rsvd + (uint64_t)v->nfats * v->fatsz;
	if (data >= v->total)
		return err_set(E_FORMAT, "FAT32: FATs larger than the volume");
	uint64_t clusters = (v->total - data) / v->spc;
	if (clusters < MIN_CLUSTERS)
		return err_set(E_FORMAT, "FAT32: %llu clusters is FAT12/16, not FAT32", (unsigned long long)clusters);
	if (clusters > READER_MAX_CLUSTERS)
		return err_set(E_UNSUPPORTED, "FAT32: %llu clusters, more than this reader handles (%u)",
			       (unsigned long long)clusters, READER_MAX_CLUSTERS);
	if ((clusters + 2) * 4 > (uint64_t)v->fatsz * v->ss)
		return err_set(E_FORMAT, "FAT32: FAT too small for %llu clusters", (unsigned long long)clusters);
	v->clusters = (uint32_t)clusters;
	v->cb = v->spc * v->ss;
	if (v->root < 2 || v->root > v->clusters + 1)
		return err_set(E_FORMAT, "FAT32: root cluster %u out of range", v->root);
	return 0;
}

static int load_fat(struct fat32_vol *v, uint32_t index, uint32_t *out)
{
	size_t n = (size_t)v->clusters + 2;
	le32 *raw = xmalloc(n * sizeof *raw);
	if (!raw) return err_prefix("FAT32: FAT of %zu entries", n);
	int rc = vol_read(v, raw, n * sizeof *raw, ((uint64_t)v->rsvd + (uint64_t)index * v->fatsz) * v->ss);
	if (rc == 0)
		for (size_t i = 0; i < n; i++)
			out[i] = le32_get(&raw[i]) & FAT_MASK;
	free(raw);
	return rc;
}

struct fat32_vol *fat32_open(struct overlay *o, uint64_t off, uint64_t size)
{
	struct fat32_vol *v = xcalloc(1, sizeof(*v));
	struct fat32_boot_sector s;
	if (!v) {
		err_prefix("FAT32 volume");
		return NULL;
	}
	v->o = o;
	v->off = off;
	v->size = size;
	if (!range_ok(off, size, overlay_size(o))) {
		err_set(E_FORMAT, "FAT32: volume outside the disk");
		goto fail;
	}
	if (vol_read(v, &s, sizeof(s), 0) < 0 || parse_bpb(v, &s) < 0)
		goto fail;
	v->fat = xmalloc(((size_t)v->clusters + 2) * 4);
	if (!v->fat) {
		err_prefix("FAT32: FAT of %u clusters", v->clusters);
		goto fail;
	}
	if (load_fat(v, v->active_fat, v->fat) < 0)
		goto fail;
	return v;
fail:
	fat32_close(v);
	return NULL;
}

void fat32_close(struct fat32_vol *v)
{
	if (v)
		free(v->fat);
	free(v);
}

static bool cluster_valid(const struct fat32_vol *v, uint32_t c)
{
	return c >= 2 && c <= v->clusters + 1;
}

/* Follows a chain from first; calls back with each cluster. Refuses free
 * or bad entries inside the chain and chains longer than the volume (a
 * loop). Returns the number of clusters or -1. */
static int64_t chain_walk(const struct fat32_vol *v, uint32_t first,
			  int (*fn)(void *ctx, uint32_t c), void *ctx)
{
	uint32_t c = first;
	int64_t n = 0;
	for (;;) {
		if (!cluster_valid(v, c))
			return err_set(E_FORMAT, "FAT32: cluster %u out of range in the chain from %u", c, first);
		if (++n > v->clusters)
			return err_set(E_FORMAT, "FAT32: the chain from cluster %u loops", first);
		if (fn && fn(ctx, c) < 0)
			return -1;
		uint32_t next = v->fat[c];
		if (next >= 0x0FFFFFF8)
			return n;
		if (next == 0 || next == FAT_BAD)
			return err_set(E_FORMAT, "FAT32: chain from cluster %u runs into a %s cluster (%u)", first,
				       next ? "bad" : "free", c);
		c = next;
	}
}

struct read_ctx {
	struct fat32_vol *v;
	uint8_t *buf;
	uint64_t pos, len;
};

static int read_cluster_cb(void *p, uint32_t c)
{
	struct read_ctx *r = p;
	if (r->pos >= r->len)
		return 0;
	uint64_t n = r->len - r->pos < r->v->cb ? r->len - r->pos : r->v->cb;
	uint64_t data = ((uint64_t)r->v->rsvd + (uint64_t)r->v->nfats * r->v->fatsz) * r->v->ss;
	if (vol_read(r->v, r->buf + r->pos, (size_t)n, data + (uint64_t)(c - 2) * r->v->cb) < 0)
		return -1;
	r->pos += n;
	return 0;
}

/* Reads a whole directory (at most 65536 entries). */
static uint8_t *read_dir(struct fat32_vol *v, uint32_t first, size_t *len)
{
	int64_t n = chain_walk(v, first, NULL, NULL);
	if (n < 0)
		return NULL;
	if ((uint64_t)n * v->cb > MAX_DIR_BYTES + (uint64_t)v->cb) {
		err_set(E_FORMAT, "FAT32: directory at cluster %u larger than 65536 entries", first);
		return NULL;
	}
	struct read_ctx r = {v, xmalloc((size_t)n * v->cb), 0, (uint64_t)n * v->cb};
	if (!r.buf) {
		err_prefix("FAT32: directory at cluster %u", first);
		return NULL;
	}
	if (chain_walk(v, first, read_cluster_cb, &r) < 0) {
		free(r.buf);
		return NULL;
	}
	*len = (size_t)r.len;
	return r.buf;
}

struct fat_dirent {
	char name[LFN_UTF8_MAX + 1];  /* long name when present, else 8.3 */
	char short_name[13];
	uint8_t raw_short[11];
	uint8_t attr;
	uint32_t cluster, size;
	bool lfn_mismatch;            /* a long-name set did not belong to this entry */
};

static void format_short(const uint8_t *e, char out[13])
{
	size_t k = 0;
	for (int i = 0; i < 8 && e[i] != ' '; i++)
		out[k++] = (char)((i == 0 && e[0] == 0x05) ? 0xE5 : e[i]);
	if (e[8] != ' ') {
		out[k++] = '.';
		for (int i = 8; i < 11 && e[i] != ' '; i++)
			out[k++] = (char)e[i];
	}
	out[k] = 0;
}

/* Iterates the entries of a directory buffer (fatgen103 "FAT Directory
 * Structure" and "Long Directory Entries"): skips deleted entries and the
 * volume label, stops at the first free (0x00) entry, assembles long names
 * whose ordinals and checksum match the short entry they precede. */
/* A long-name piece (fatgen103 "Long Directory Entries") into the state
 * of dir_foreach: a new set starts at the piece marked last (| 0x40), the
 * others must follow in order with the same checksum. */
struct lfn_state {
	uint16_t lfn[LFN_UNITS_MAX + 1];
	int expect, total;
	uint8_t sum;
	bool pending;
};

static void lfn_piece(struct lfn_state *st, struct fat_lfn_record *r)
{
	int ord = r->ord & 0x1F;
	if (r->ord & 0x40) {
		st->pending = ord >= 1 && ord <= 20;
		st->total = ord;
		st->expect = ord;
		st->sum = r->chksum;
		memset(st->lfn, 0, sizeof(st->lfn));
	} else if (!st->pending || ord != st->expect || r->chksum != st->sum) {
		st->pending = false;
	}
	if (!st->pending)
		return;
	for (int c = 0; c < LFN_CHARS; c++)
		st->lfn[(ord - 1) * LFN_CHARS + c] = le16_get(fat_lfn_unit(r, c));
	st->expect = ord - 1;
}

/* The short entry r with the long name st holds for it, if any. */
static int dirent_of(const struct fat_dir_record *r, const struct lfn_state *st, struct fat_dirent *d)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->raw_short, r->name, 11);
	format_short(r->name, d->short_name);
	d->attr = r->attr;
	d->cluster = ((uint32_t)le16_get(&r->fst_clus_hi) << 16) | le16_get(&r->fst_clus_lo);
	d->size = le32_get(&r->file_size);
	bool lfn_ok = st->pending && st->expect == 0 && st->sum == lfn_checksum(r->name);
	if (st->pending && !lfn_ok)
		d->lfn_mismatch = true;
	if (lfn_ok) {
		uint8_t u8[sizeof(st->lfn)];
		size_t n = 0;
		while (n < (size_t)st->total * LFN_CHARS && st->lfn[n] != 0 && st->lfn[n] != 0xFFFF)
			n++;
		for (size_t i = 0; i < n; i++)
			put_le16(u8 + 2 * i, st->lfn[i]);
		char *s = utf16le_to_utf8(u8, n);
		if (!s) return err_prefix("FAT32: long name of '%s'", d->short_name);
		str_copy(d->name, sizeof(d->name), s, "FAT32 long name");   /* fits: LFN_UTF8_MAX */
		free(s);
	} else {
		str_copy(d->name, sizeof(d->name), d->short_name, "FAT32 short name");   /* 12 bytes */
	}
	return 0;
}

static int dir_foreach(const uint8_t *buf, size_t len,
		       int (*fn)(void *ctx, const struct fat_dirent *d), void *ctx)
{
	struct lfn_state st = { .pending = false };
	for (size_t off = 0; off + DIRENT <= len; off += DIRENT) {
		struct fat_dir_record r;
		memcpy(&r, buf + off, sizeof r);
		if (r.name[0] == 0x00)
			break;
		if (r.name[0] == 0xE5) {
			st.pending = false;
			continue;
		}
		if ((r.attr & 0x3F) == ATTR_LONG_NAME) {
			struct fat_lfn_record l;
			memcpy(&l, buf + off, sizeof l);
			lfn_piece(&st, &l);
			continue;
		}
		if (r.attr & ATTR_VOLUME_ID) {
			st.pending = false;
			continue;
		}
		struct fat_dirent d;
		if (dirent_of(&r, &st, &d) < 0)
			return -1;
		st.pending = false;
		int rc = fn(ctx, &d);
		if (rc)
			return rc;
	}
	return 0;
}

struct find_ctx {
	const char *name;
	size_t len;
	struct fat_dirent found;
	bool hit;
};

static int find_cb(void *p, const struct fat_dirent *d)
{
	struct find_ctx *f = p;
	if ((strlen(d->name) == f->len && !strncasecmp(d->name, f->name, f->len)) ||
	    (strlen(d->short_name) == f->len && !strncasecmp(d->short_name, f->name, f->len))) {
		f->found = *d;
		f->hit = true;
		return 1;
	}
	return 0;
}

/* Looks path up from the root: 1 found (entry in *out; the root reads as a
 * directory with cluster = root), 0 absent, -1 error. */
static int lookup(struct fat32_vol *v, const char *path, struct fat_dirent *out)
{
	memset(out, 0, sizeof(*out));
	out->attr = ATTR_DIRECTORY;
	out->cluster = v->root;
	const char *p = path;
	for (int depth = 0;; depth++) {
		while (*p == '/')
			p++;
		if (!*p)
			return 1;
		if (depth >= MAX_DEPTH)
			return err_set(E_FORMAT, "FAT32: path '%s' nested too deep", path);
		if (!(out->attr & ATTR_DIRECTORY))
			return 0;
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		size_t len;
		uint8_t *buf = read_dir(v, out->cluster ? out->cluster : v->root, &len);
		if (!buf)
			return -1;
		struct find_ctx f = {.name = p, .len = n};
		int rc = dir_foreach(buf, len, find_cb, &f);
		free(buf);
		if (rc < 0)
			return -1;
		if (!f.hit)
			return 0;
		*out = f.found;
		p += n;
	}
}

int fat32_stat(struct fat32_vol *v, const char *path, bool *is_dir, uint64_t *size)
{
	struct fat_dirent d;
	int rc = lookup(v, path, &d);
	if (rc == 1) {
		if (is_dir)
			*is_dir = d.attr & ATTR_DIRECTORY;
		if (size)
			*size = d.attr & ATTR_DIRECTORY ? 0 : d.size;
	}
	return rc;
}

int fat32_read_file(struct fat32_vol *v, const char *path, size_t max, uint8_t **data, size_t *len)
{
	struct fat_dirent d;
	int rc = lookup(v, path, &d);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return err_set(E_NOTFOUND, "FAT32: '%s' not found", path);
	if (d.attr & ATTR_DIRECTORY)
		return err_set(E_FORMAT, "FAT32: '%s' is a directory", path);
	if (d.size > max)
		return err_set(E_UNSUPPORTED, "FAT32: '%s' is %u bytes, more than the %zu allowed", path, d.size, max);
	struct read_ctx r = {v, xmalloc(d.size ? d.size : 1), 0, d.size};
	if (!r.buf) return err_prefix("FAT32: '%s'", path);
	if (d.size) {
		if (chain_walk(v, d.cluster, read_cluster_cb, &r) < 0) {
			free(r.buf);
			return err_prefix("'%s'", path);
		}
		if (r.pos != d.size) {
			free(r.buf);
			return err_set(E_FORMAT, "FAT32: '%s' has fewer clusters than its size", path);
		}
	}
	*data = r.buf;
	*len = d.size;
	return 0;
}

/* ---- structure check --------------------------------------------------- */

struct check_ctx {
	struct fat32_vol *v;
	uint8_t *used;            /* bitmap of clusters reached from the root */
	int depth;
	uint32_t self, parent;    /* directory being checked and its parent (0 = root) */
	int index;                /* entry index within the directory */
	char *path;               /* for messages: CHECK_PATH_MAX bytes, holds any path check_dir reaches */
};
#define CHECK_PATH_MAX ((size_t)MAX_DEPTH * (LFN_UTF8_MAX + 1) + 1)

static int mark_cb(void *p, uint32_t c)
{
	struct check_ctx *k = p;
	if (k->used[c / 8] & (1u << (c % 8)))
		return err_set(E_FORMAT, "FAT32: cluster %u is cross-linked (used twice), under '%s'", c,
			       k->path[0] ? k->path : "/");
	k->used[c / 8] |= (uint8_t)(1u << (c % 8));
	return 0;
}

static int check_dir(struct check_ctx *k, uint32_t cluster);

static int check_entry_cb(void *p, const struct fat_dirent *d)
{
	struct check_ctx *k = p;
	struct fat32_vol *v = k->v;
	int idx = k->index++;
	bool is_root = k->self == v->root;
	if (d->lfn_mismatch)
		return err_set(E_FORMAT, "FAT32: long name entries before '%s' in '%s' do not match it (checksum/order)",
			       d->short_name, k->path[0] ? k->path : "/");
	if (!is_root && idx < 2) {
		/* "." and ".." must open every subdirectory */
		const char *want = idx == 0 ? "." : "..";
		uint32_t target = idx == 0 ? k->self : k->parent;
		if (strcmp(d->short_name, want) || !(d->attr & ATTR_DIRECTORY) || d->cluster != target)
			return err_set(E_FORMAT, "FAT32: '%s' entry of '%s' wrong (cluster %u, want %u)", want, k->path,
				       d->cluster, target);
		return 0;
	}
	if (!strcmp(d->short_name, ".") || !strcmp(d->short_name, ".."))
		return err_set(E_FORMAT, "FAT32: stray '%s' entry in '%s'", d->short_name, k->path[0] ? k->path : "/");
	size_t plen = strlen(k->path);
	if (fmt_fit(k->path + plen, CHECK_PATH_MAX - plen, "FAT32 path", "/%s", d->name) < 0)
		return -1;   /* cannot happen: MAX_DEPTH names of LFN_UTF8_MAX bytes fit */
	int rc = 0;
	if (d->attr & ATTR_DIRECTORY) {
		if (d->cluster == 0)
			rc = err_set(E_FORMAT, "FAT32: directory '%s' without a cluster", k->path);
		else
			rc = check_dir(k, d->cluster);
	} else if (d->size == 0) {
		if (d->cluster != 0)
			rc = err_set(E_FORMAT, "FAT32: empty file '%s' has cluster %u", k->path, d->cluster);
	} else {
		int64_t n = chain_walk(v, d->cluster, mark_cb, k);
		uint64_t want = ((uint64_t)d->size + v->cb - 1) / v->cb;
		if (n < 0)
			rc = err_prefix("'%s'", k->path);
		else if ((uint64_t)n != want)
			rc = err_set(E_FORMAT, "FAT32: '%s' has %lld clusters for %u bytes (want %llu)", k->path,
				     (long long)n, d->size, (unsigned long long)want);
	}
	k->path[plen] = 0;
	return rc < 0 ? -1 : 0;
}

static int check_dir(struct check_ctx *k, uint32_t cluster)
{
	if (k->depth >= MAX_DEPTH)
		return err_set(E_FORMAT, "FAT32: directories nested deeper than %d at '%s'", MAX_DEPTH, k->path);
	if (chain_walk(k->v, cluster, mark_cb, k) < 0)
		return err_prefix("directory '%s'", k->path[0] ? k->path : "/");
	size_t len;
	uint8_t *buf = read_dir(k->v, cluster, &len);
	if (!buf)
		return -1;
	uint32_t saved_self = k->self, saved_parent = k->parent;
	int saved_index = k->index;
	k->parent = k->self == k->v->root ? 0 : k->self;
	if (cluster == k->v->root)
		k->parent = 0;
	k->self = cluster;
	k->index = 0;
	k->depth++;
	int rc = dir_foreach(buf, len, check_entry_cb, k);
	if (rc == 0 && cluster != k->v->root && k->index < 2)
		rc = err_set(E_FORMAT, "FAT32: directory '%s' lacks its '.' and '..' entries", k->path);
	k->depth--;
	k->self = saved_self;
	k->parent = saved_parent;
	k->index = saved_index;
	free(buf);
	return rc < 0 ? -1 : 0;
}

static int check_boot_copies(struct fat32_vol *v)
{
	uint8_t *a = xmalloc(v->ss), *b = a ? xmalloc(v->ss) : NULL;
	if (!b) {
		free(a);
		return err_prefix("FAT32: boot sectors");
	}
	int rc = vol_read(v, a, v->ss, 0);
	if (rc == 0 && v->backup) {
		if (v->backup >= v->rsvd)
			rc = err_set(E_FORMAT, "FAT32: backup boot sector %u outside the reserved area", v->backup);
		else if ((rc = vol_read(v, b, v->ss, (uint64_t)v->backup * v->ss)) == 0 && memcmp(a, b, 512))
			rc = err_set(E_FORMAT, "FAT32: backup boot sector (sector %u) differs from sector 0", v->backup);
	}
	free(a);
	free(b);
	return rc;
}

static uint32_t count_free(const struct fat32_vol *v)
{
	uint32_t n = 0;
	for (uint32_t c = 2; c <= v->clusters + 1; c++)
		n += v->fat[c] == 0;
	return n;
}

/* fatgen103 "FAT32 FSInfo Sector Structure": signatures, and the free
 * count / next free hints either unknown (0xFFFFFFFF) or consistent. */
static int check_fsinfo(struct fat32_vol *v)
{
	if (v->fsinfo == 0 || v->fsinfo >= v->rsvd)
		return err_set(E_FORMAT, "FAT32: FSInfo sector %u outside the reserved area", v->fsinfo);
	struct fat32_fsinfo fi;
	int rc = vol_read(v, &fi, sizeof fi, (uint64_t)v->fsinfo * v->ss);
	if (rc == 0) {
		uint32_t fc = le32_get(&fi.free_count), nf = le32_get(&fi.next_free);
		if (le32_get(&fi.lead_sig) != FSI_LEAD_SIG || le32_get(&fi.struc_sig) != FSI_STRUC_SIG ||
		    le32_get(&fi.trail_sig) != FSI_TRAIL_SIG)
			rc = err_set(E_FORMAT, "FAT32: FSInfo signatures wrong");
		else if (fc != 0xFFFFFFFF && fc != count_free(v))
			rc = err_set(E_FORMAT, "FAT32: FSInfo free count %u, but %u clusters are free", fc, count_free(v));
		else if (nf != 0xFFFFFFFF && (nf < 2 || nf > v->clusters + 1))
			rc = err_set(E_FORMAT, "FAT32: FSInfo next free cluster %u out of range", nf);
	}
	return rc;
}

static int check_fats_equal(struct fat32_vol *v)
{
	if (v->fat[0] != (0x0FFFFF00u | v->media))
		return err_set(E_FORMAT, "FAT32: FAT[0] 0x%08x does not carry the media byte 0x%02x", v->fat[0], v->media);
	if (!v->mirrored)
		return 0;
	uint32_t *other = xmalloc(((size_t)v->clusters + 2) * 4);
	if (!other) return err_prefix("FAT32: second FAT");
	int rc = 0;
	for (uint32_t f = 0; f < v->nfats && rc == 0; f++) {
		if (f == v->active_fat)
			continue;
		if ((rc = load_fat(v, f, other)) == 0 &&
		    memcmp(other, v->fat, ((size_t)v->clusters + 2) * 4))
			rc = err_set(E_FORMAT, "FAT32: FAT copy %u differs from FAT copy %u", f + 1, v->active_fat + 1);
	}
	free(other);
	return rc;
}

int fat32_check(struct fat32_vol *v)
{
	if (check_boot_copies(v) < 0 || check_fats_equal(v) < 0)
		return -1;
	struct check_ctx k = {.v = v, .self = v->root};
	k.used = xcalloc(((size_t)v->clusters + 2 + 7) / 8, 1);
	k.path = k.used ? xcalloc(CHECK_PATH_MAX, 1) : NULL;
	if (!k.path) {
		free(k.used);
		return err_prefix("FAT32: cluster map");
	}
	int rc = check_dir(&k, v->root);
	for (uint32_t c = 2; rc == 0 && c <= v->clusters + 1; c++)
		if (v->fat[c] != 0 && v->fat[c] != FAT_BAD && !(k.used[c / 8] & (1u << (c % 8))))
			rc = err_set(E_FORMAT, "FAT32: cluster %u is allocated but belongs to no file (lost)", c);
	free(k.used);
	free(k.path);
	/* the free count is checked last: a structural error explains it */
	return rc < 0 ? -1 : check_fsinfo(v);
}
