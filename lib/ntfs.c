/* ntfs.c - see ntfs.h. libntfs-3g over an overlay region.
 *
 * libntfs-3g reaches the disk only through a struct ntfs_device_operations
 * (ntfs-3g include/ntfs-3g/device.h); the table below serves it from
 * [off, off+size) of the overlay, so nothing is mounted and the input image
 * is never written (writes land in the overlay).
 *
 * Names: ntfs-3g's own lookup is case-sensitive unless the whole volume is
 * switched to ignore-case mode, and that mode also lower-cases every name
 * readdir returns (dir.c, ntfs_filldir), which would lose the stored case.
 * So the volume stays case-sensitive and this module resolves each path
 * component itself: an exact index lookup first, then a directory scan
 * comparing with the volume's $UpCase table (how Windows compares names).
 *
 * New names: ntfs_create() always stores a POSIX-namespace name (dir.c,
 * __ntfs_create). Windows sees those, but a POSIX name is case-sensitive and
 * has no 8.3 alias. Every name created here gets a DOS name through
 * ntfs_set_ntfs_dos_name(), which turns the long name into the WIN32 (or,
 * when the name is itself a valid upper-case 8.3 name, WIN32_AND_DOS)
 * namespace (dir.c, set_dos_name) -- what Windows itself writes.
 */
#include "ntfs.h"
#include "overlay.h"
#include "util.h"
#include "wof.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <ntfs-3g/types.h>
#include <ntfs-3g/volume.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/logfile.h>
#include <ntfs-3g/reparse.h>
#include <ntfs-3g/cache.h>

#define MAX_DEPTH 64             /* path components */
#define NTFS_NAME_MAX 255        /* UTF-16 units in one name */
/* libntfs-3g reports failures in errno; ENOMEM is ours to name (exit 1),
 * not a damaged volume. */
#define NTFS_ERR(code) (errno == ENOMEM ? E_NOMEM : (code))

struct ntfs_vol {
	struct overlay *o;
	uint64_t off, size;
	bool rw;
	s64 pos;                     /* device file position (seek/read/write) */
	ntfs_volume *vol;
};

/* ---------------------------------------------------------------- device */

static struct ntfs_vol *dev_vol(struct ntfs_device *dev) { return dev->d_private; }

static int dev_open(struct ntfs_device *dev, int flags)
{
	if (NDevOpen(dev)) { errno = EBUSY; return -1; }
	if ((flags & O_ACCMODE) == O_RDONLY)
		NDevSetReadOnly(dev);
	NDevSetOpen(dev);
	return 0;
}

static int dev_close(struct ntfs_device *dev)
{
	NDevClearOpen(dev);
	return 0;
}

static s64 dev_seek(struct ntfs_device *dev, s64 offset, int whence)
{
	struct ntfs_vol *v = dev_vol(dev);
	s64 base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? v->pos : (s64)v->size;
	if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) { errno = EINVAL; return -1; }
	if (base + offset < 0) { errno = EINVAL; return -1; }
	v->pos = base + offset;
	return v->pos;
}

/* Clips [offset, offset+count) to the region; reads past its end give 0. */
static s64 dev_pread(struct ntfs_device *dev, void *buf, s64 count, s64 offset)
{
	struct ntfs_vol *v = dev_vol(dev);
	if (count < 0 || offset < 0) { errno = EINVAL; return -1; }
	if ((uint64_t)offset >= v->size) return 0;
	if ((uint64_t)count > v->size - (uint64_t)offset) count = (s64)(v->size - (uint64_t)offset);
	if (overlay_read(v->o, buf, (size_t)count, v->off + (uint64_t)offset)) { errno = EIO; return -1; }
	return count;
}

static s64 dev_pwrite(struct ntfs_device *dev, const void *buf, s64 count, s64 offset)
{
	struct ntfs_vol *v = dev_vol(dev);
	if (!v->rw || NDevReadOnly(dev)) { errno = EROFS; return -1; }
	if (count < 0 || offset < 0) { errno = EINVAL; return -1; }
	if ((uint64_t)offset >= v->size) { errno = ENOSPC; return -1; }
	if ((uint64_t)count > v->size - (uint64_t)offset) count = (s64)(v->size - (uint64_t)offset);
	if (overlay_write(v->o, buf, (size_t)count, v->off + (uint64_t)offset)) { errno = EIO; return -1; }
	NDevSetDirty(dev);
	return count;
}

static s64 dev_read(struct ntfs_device *dev, void *buf, s64 count)
{
	struct ntfs_vol *v = dev_vol(dev);
	s64 n = dev_pread(dev, buf, count, v->pos);
	if (n > 0) v->pos += n;
	return n;
}

static s64 dev_write(struct ntfs_device *dev, const void *buf, s64 count)
{
	struct ntfs_vol *v = dev_vol(dev);
	s64 n = dev_pwrite(dev, buf, count, v->pos);
	if (n > 0) v->pos += n;
	return n;
}

static int dev_sync(struct ntfs_device *dev)
{
	NDevClearDirty(dev);
	return 0;
}

/* A regular file of the region's size: ntfs_device_size_get() then uses
 * seek(SEEK_END) and never asks for block-device ioctls. */
static int dev_stat(struct ntfs_device *dev, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_mode = S_IFREG | 0600;
	st->st_size = (off_t)dev_vol(dev)->size;
	st->st_blksize = 4096;
	return 0;
}

static int dev_ioctl(struct ntfs_device *dev, unsigned long request, void *argp)
{
	errno = ENOTTY;
	return -1;
}

static struct ntfs_device_operations overlay_dev_ops = {
	.open = dev_open, .close = dev_close, .seek = dev_seek,
	.read = dev_read, .write = dev_write, .pread = dev_pread, .pwrite = dev_pwrite,
	.sync = dev_sync, .stat = dev_stat, .ioctl = dev_ioctl,
};

/* ---------------------------------------------------------------- mount */

static void quiet_library(void)
{
	/* libntfs-3g logs to stderr by itself; our errors go through err_set.
	 * G2P_NTFS_DEBUG=1 shows its messages when diagnosing a volume. */
	const char *d = getenv("G2P_NTFS_DEBUG");
	if (d && *d == '1') {
		ntfs_log_set_handler(ntfs_log_handler_stderr);
		ntfs_log_set_levels(NTFS_LOG_LEVEL_DEBUG | NTFS_LOG_LEVEL_INFO | NTFS_LOG_LEVEL_ERROR |
				    NTFS_LOG_LEVEL_PERROR | NTFS_LOG_LEVEL_WARNING | NTFS_LOG_LEVEL_CRITICAL);
	} else {
		ntfs_log_set_handler(ntfs_log_handler_null);
	}
}

/* Boot sector as libntfs-3g declares it (layout.h NTFS_BOOT_SECTOR, a
 * packed 512-byte struct; NTFS documentation, "NTFS boot sector"): OEM id
 * at 3 ("NTFS    "; BitLocker writes "-FVE-FS-"), BPB bytes per sector
 * at 0x0B, number_of_sectors at 0x28 (the volume's sectors; the backup
 * boot sector follows), volume serial number at 0x48. */
_Static_assert(sizeof(NTFS_BOOT_SECTOR) == 512, "NTFS boot sector");
_Static_assert(offsetof(NTFS_BOOT_SECTOR, volume_serial_number) == 0x48, "NTFS serial at 0x48");

static int read_boot_sector(struct overlay *o, uint64_t off, uint64_t size, NTFS_BOOT_SECTOR *bs)
{
	if (size < sizeof *bs)
		return err_set(E_FORMAT, "volume of %llu bytes is too small for NTFS",
			       (unsigned long long)size);
	return overlay_read(o, bs, sizeof *bs, off);
}

static struct ntfs_vol *mount_region(struct overlay *o, uint64_t off, uint64_t size, bool rw)
{
	struct ntfs_vol *v = xcalloc(1, sizeof *v);
	if (!v) { err_prefix("NTFS volume"); return NULL; }
	v->o = o; v->off = off; v->size = size; v->rw = rw;
	quiet_library();
	struct ntfs_device *dev = ntfs_device_alloc("gen2prep-overlay", 0, &overlay_dev_ops, v);
	if (!dev) { free(v); err_set(E_NOMEM, "cannot allocate NTFS device"); return NULL; }
	errno = 0;
	v->vol = ntfs_device_mount(dev, rw ? 0 : NTFS_MNT_RDONLY);
	/* libntfs-3g mounts on past some failed allocations ($Secure not
	 * opened, a runlist not mapped): ENOMEM left behind is a failed mount
	 * (tests/test_allocfail.c saw a probe then differ) */
	if (v->vol && errno == ENOMEM) {
		ntfs_umount(v->vol, FALSE);   /* frees dev too */
		free(v);
		err_set(E_NOMEM, "cannot mount NTFS volume: libntfs-3g ran out of memory");
		return NULL;
	}
	if (!v->vol) {
		int e = errno;
		if (NDevOpen(dev)) NDevClearOpen(dev);
		ntfs_device_free(dev);
		free(v);
		if (e == ENOMEM)
			err_set(E_NOMEM, "cannot mount NTFS volume: libntfs-3g is out of memory");
		else if (e == EPERM)
			err_set(E_BLOCKED, "NTFS volume was not shut down cleanly (hibernated or unclean $LogFile): "
				"boot Windows and shut it down fully");
		else
			err_set(E_FORMAT, "cannot mount NTFS volume: %s", strerror(e ? e : EIO));
		return NULL;
	}
	/* What ntfs_mount() adds to ntfs_device_mount() (volume.c). Without the
	 * lookup cache, ntfs_inode_lookup_by_mbsname() on a case-sensitive
	 * volume converts a NULL name and fails with EINVAL (dir.c, 2022.10.3),
	 * so ntfs_remove_ntfs_reparse_data() could not find $Extend\$Reparse. */
	ntfs_create_lru_caches(v->vol);
	/* Hidden and system entries (bootmgr, System Volume Information) must be
	 * visible to lookups and listings; dot files are not special. */
	ntfs_set_shown_files(v->vol, TRUE, TRUE, FALSE);
	return v;
}

int ntfs_close(struct ntfs_vol *v)
{
	if (!v) return 0;
	int rc = 0;
	if (ntfs_umount(v->vol, FALSE)) {
		rc = err_set(NTFS_ERR(E_IO), "unmounting NTFS volume failed: %s", strerror(errno));
	}
	free(v);
	return rc;
}

/* ---------------------------------------------------------------- names */

struct uname { ntfschar *s; int len; };

static int to_uname(const char *utf8, struct uname *u)
{
	size_t n = 0;
	u->s = (ntfschar *)utf8_to_utf16le(utf8, &n);
	if (!u->s) return err_prefix("NTFS name '%s'", utf8);
	if (n == 0 || n > NTFS_NAME_MAX) {
		free(u->s);
		u->s = NULL;
		return err_set(E_FORMAT, "invalid NTFS name '%s'", utf8);
	}
	u->len = (int)n;
	return 0;
}

struct scan {
	ntfs_volume *vol;
	const ntfschar *want; int want_len;
	u64 mref; int type;          /* best match so far, -1 none */
	ntfschar found[NTFS_NAME_MAX]; int found_len;
};

/* ntfs_readdir callback: keeps the first case-insensitive match, preferring
 * a Win32/POSIX (long) name over a DOS 8.3 alias. */
static int scan_filldir(void *ctx, const ntfschar *name, const int len, const int type,
			const s64 pos, const MFT_REF mref, const unsigned dt)
{
	struct scan *s = ctx;
	if (len != s->want_len || len > NTFS_NAME_MAX) return 0;
	if (!ntfs_names_are_equal(name, (size_t)len, s->want, (size_t)s->want_len, IGNORE_CASE,
				  s->vol->upcase, s->vol->upcase_len))
		return 0;
	if (s->type >= 0 && (s->type != FILE_NAME_DOS || type == FILE_NAME_DOS)) return 0;
	s->mref = mref;
	s->type = type;
	memcpy(s->found, name, (size_t)len * sizeof(ntfschar));
	s->found_len = len;
	return 0;
}

/* Finds name (UTF-8) in dir without case. 1 found (child opened, *real set
 * to the stored name, malloc'd), 0 absent, -1 error. */
static int lookup_child(ntfs_volume *vol, ntfs_inode *dir, const char *name,
			ntfs_inode **child, char **real)
{
	struct uname u;
	if (to_uname(name, &u)) return -1;
	struct scan s = { .vol = vol, .want = u.s, .want_len = u.len, .type = -1 };
	u64 mref = ntfs_inode_lookup_by_name(dir, u.s, u.len);
	if (mref != (u64)-1) {
		s.mref = mref;
		s.type = FILE_NAME_POSIX;
		memcpy(s.found, u.s, (size_t)u.len * sizeof(ntfschar));
		s.found_len = u.len;
	} else {
		s64 pos = 0;
		if (ntfs_readdir(dir, &pos, &s, scan_filldir)) {
			free(u.s);
			return err_set(NTFS_ERR(E_IO), "cannot read directory: %s", strerror(errno));
		}
	}
	free(u.s);
	if (s.type < 0) return 0;
	*child = ntfs_inode_open(vol, MREF(s.mref));
	if (!*child) return err_set(NTFS_ERR(E_IO), "cannot open '%s': %s", name, strerror(errno));
	if (real && !(*real = utf16le_to_utf8((const uint8_t *)s.found, (size_t)s.found_len))) {
		ntfs_inode_close(*child);
		*child = NULL;
		return err_prefix("NTFS name '%s'", name);
	}
	return 1;
}

struct path_parts { char *buf; char *comp[MAX_DEPTH]; int n; };

/* Splits on '\' and '/', dropping empty and "." components. */
static int split_path(const char *path, struct path_parts *pp)
{
	pp->buf = xstrdup(path);
	if (!pp->buf) return err_prefix("NTFS path '%s'", path);
	pp->n = 0;
	for (char *save = NULL, *t = strtok_r(pp->buf, "\\/", &save); t; t = strtok_r(NULL, "\\/", &save)) {
		if (!strcmp(t, ".")) continue;
		if (!strcmp(t, "..") || pp->n == MAX_DEPTH) {
			free(pp->buf);
			return err_set(E_USAGE, "unsupported path '%s'", path);
		}
		pp->comp[pp->n++] = t;
	}
	return 0;
}

/* Opens the inode of the first n components of pp. real (optional) gets the
 * stored-case path "\A\B". 1 found, 0 absent, -1 error. */
static int resolve_parts(struct ntfs_vol *v, struct path_parts *pp, int n, ntfs_inode **out, char **real)
{
	ntfs_inode *cur = ntfs_inode_open(v->vol, FILE_root);
	if (!cur) return err_set(E_IO, "cannot open NTFS root directory");
	char *acc = xstrdup("");
	if (!acc) {
		ntfs_inode_close(cur);
		return err_prefix("NTFS path");
	}
	for (int i = 0; i < n; i++) {
		if (!(cur->mrec->flags & MFT_RECORD_IS_DIRECTORY)) {
			ntfs_inode_close(cur);
			free(acc);
			return 0;
		}
		ntfs_inode *next = NULL;
		char *name = NULL;
		int r = lookup_child(v->vol, cur, pp->comp[i], &next, &name);
		ntfs_inode_close(cur);
		if (r <= 0) { free(acc); return r; }
		char *t = xasprintf("%s\\%s", acc, name);
		free(acc); free(name);
		if (!t) {
			ntfs_inode_close(next);
			return err_prefix("NTFS path");
		}
		acc = t;
		cur = next;
	}
	if (real) *real = *acc ? acc : (free(acc), xstrdup("\\"));
	else free(acc);
	if (real && !*real) {
		ntfs_inode_close(cur);
		return err_prefix("NTFS path");
	}
	*out = cur;
	return 1;
}

static int resolve(struct ntfs_vol *v, const char *path, ntfs_inode **out, char **real)
{
	struct path_parts pp;
	if (split_path(path, &pp)) return -1;
	int r = resolve_parts(v, &pp, pp.n, out, real);
	free(pp.buf);
	return r;
}

static bool inode_is_dir(ntfs_inode *ni) { return (ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) != 0; }

/* ---------------------------------------------------------------- probe */

static const char *const hiber_magic[] = { "hibr", "HIBR", "wake", "WAKE" };

/* hiberfil.sys at the root starting with one of hiber_magic means Windows
 * hibernated (or fast-started) onto this volume (ntfs-3g volume.c,
 * ntfs_volume_check_hiberfile checks hibr/HIBR; wake/WAKE are the resume
 * states Windows also writes). */
static bool volume_hibernated(struct ntfs_vol *v)
{
	ntfs_inode *ni = NULL;
	if (resolve(v, "hiberfil.sys", &ni, NULL) != 1) { err_clear(); return false; }
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	uint8_t head[4];
	bool hib = false;
	if (na && ntfs_attr_pread(na, 0, 4, head) == 4) {
		for (size_t i = 0; i < sizeof hiber_magic / sizeof *hiber_magic; i++)
			if (!memcmp(head, hiber_magic[i], 4)) hib = true;
	}
	if (na) ntfs_attr_close(na);
	ntfs_inode_close(ni);
	return hib;
}

/* ntfs-3g volume.c, ntfs_volume_check_logfile: a read-write mount is
 * refused with EOPNOTSUPP unless ntfs_check_logfile finds the restart
 * pages consistent (or the journal empty) and ntfs_is_logfile_clean sees
 * no log client in use without RESTART_VOLUME_IS_CLEAN, and with EPERM when
 * the newest restart page is version 2.0 (Windows 8+ kept metadata cached:
 * fast startup, or access cut off). The same exported library checks, run
 * on the read-only mount, tell inspect before convert tries. */
static enum ntfs_logfile logfile_state(struct ntfs_vol *v)
{
	ntfs_inode *ni = ntfs_inode_open(v->vol, FILE_LogFile);
	if (!ni) return NTFS_LOGFILE_DAMAGED;
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	RESTART_PAGE_HEADER *rp = NULL;
	enum ntfs_logfile st = NTFS_LOGFILE_DAMAGED;
	if (na && ntfs_check_logfile(na, &rp)) {
		if (rp && rp->major_ver == const_cpu_to_sle16(2) && rp->minor_ver == const_cpu_to_sle16(0))
			st = NTFS_LOGFILE_CACHED;
		else
			st = ntfs_is_logfile_clean(na, rp) ? NTFS_LOGFILE_CLEAN : NTFS_LOGFILE_UNCLEAN;
	}
	free(rp);
	if (na) ntfs_attr_close(na);
	ntfs_inode_close(ni);
	return st;
}

const char *ntfs_logfile_name(enum ntfs_logfile s)
{
	static const char *const n[] = { "clean", "unclean", "cached", "damaged" };
	return (unsigned)s < sizeof n / sizeof *n ? n[s] : "damaged";
}

int ntfs_probe(struct overlay *o, uint64_t off, uint64_t size, struct ntfs_probe *out)
{
	NTFS_BOOT_SECTOR bs;
	memset(out, 0, sizeof *out);
	if (read_boot_sector(o, off, size, &bs)) return -1;
	if (!memcmp(&bs.oem_id, "-FVE-FS-", 8)) {
		out->bitlocker = true;
		return 0;
	}
	if (memcmp(&bs.oem_id, "NTFS    ", 8)) return 0;
	out->is_ntfs = true;
	out->serial = le64_to_cpu(bs.volume_serial_number);
	struct ntfs_vol *v = mount_region(o, off, size, false);
	if (!v) return err_prefix("NTFS volume at offset %llu", (unsigned long long)off);
	/* $Volume's VOLUME_INFORMATION flags (read by ntfs-3g at mount). */
	out->dirty = (le16_to_cpu(v->vol->flags) & le16_to_cpu(VOLUME_IS_DIRTY)) != 0;
	/* fits (NTFS_LABEL_MAX_UTF8); a label that did not would be refused, never cut */
	size_t label_len = v->vol->vol_name ? strlen(v->vol->vol_name) : 0;
	if (label_len >= sizeof out->label) {
		ntfs_close(v);
		return err_set(E_FORMAT, "NTFS volume at offset %llu: label of %zu bytes, longer than %zu",
			       (unsigned long long)off, label_len, sizeof out->label - 1);
	}
	if (v->vol->vol_name)
		str_copy(out->label, sizeof out->label, v->vol->vol_name, "NTFS volume label");
	out->hibernated = volume_hibernated(v);
	out->logfile = logfile_state(v);
	out->total_sectors = (uint64_t)sle64_to_cpu(bs.number_of_sectors);
	out->bytes_per_sector = le16_to_cpu(bs.bpb.bytes_per_sector);
	return ntfs_close(v);
}

struct ntfs_vol *ntfs_open(struct overlay *o, uint64_t off, uint64_t size, bool rw)
{
	struct ntfs_probe p;
	if (ntfs_probe(o, off, size, &p)) return NULL;
	if (p.bitlocker) { err_set(E_BLOCKED, "volume is encrypted with BitLocker: decrypt it first"); return NULL; }
	if (!p.is_ntfs) { err_set(E_FORMAT, "not an NTFS volume"); return NULL; }
	if (rw && p.hibernated) {
		err_set(E_BLOCKED, "Windows is hibernated on this volume: boot it and shut down fully (no hibernation, no fast startup)");
		return NULL;
	}
	if (rw && p.dirty) {
		err_set(E_BLOCKED, "NTFS volume is marked dirty: boot Windows and let chkdsk run, then shut down cleanly");
		return NULL;
	}
	if (rw && p.logfile != NTFS_LOGFILE_CLEAN) {
		err_set(E_BLOCKED, "NTFS volume was not shut down cleanly ($LogFile %s): boot Windows and shut it down fully",
			ntfs_logfile_name(p.logfile));
		return NULL;
	}
	return mount_region(o, off, size, rw);
}

/* ---------------------------------------------------------------- read */

int ntfs_stat(struct ntfs_vol *v, const char *path, bool *is_dir, uint64_t *size)
{
	ntfs_inode *ni = NULL;
	int r = resolve(v, path, &ni, NULL);
	if (r <= 0) return r;
	bool dir = inode_is_dir(ni);
	if (is_dir) *is_dir = dir;
	if (size) {
		*size = 0;
		if (!dir) {
			ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
			if (na) { *size = (uint64_t)na->data_size; ntfs_attr_close(na); }
		}
	}
	ntfs_inode_close(ni);
	return 1;
}

char *ntfs_real_path(struct ntfs_vol *v, const char *path)
{
	ntfs_inode *ni = NULL;
	char *real = NULL;
	if (resolve(v, path, &ni, &real) != 1) return NULL;
	ntfs_inode_close(ni);
	return real;
}

static int read_attr(ntfs_attr *na, const char *path, size_t max, uint8_t **data, size_t *len)
{
	if (na->data_size < 0 || (uint64_t)na->data_size > max)
		return err_set(E_UNSUPPORTED, "%s: file of %lld bytes exceeds the %zu byte limit",
			       path, (long long)na->data_size, max);
	size_t n = (size_t)na->data_size;
	uint8_t *buf = xmalloc(n ? n : 1);
	if (!buf) return err_prefix("%s: contents", path);
	size_t done = 0;
	while (done < n) {
		s64 r = ntfs_attr_pread(na, (s64)done, (s64)(n - done), buf + done);
		if (r <= 0) {
			free(buf);
			return err_set(NTFS_ERR(E_IO), "%s: read failed: %s", path, r < 0 ? strerror(errno) : "short read");
		}
		done += (size_t)r;
	}
	*data = buf;
	*len = n;
	return 0;
}

/* Reads the whole attribute (type, name: UTF-8 or NULL) of ni, at most
 * max bytes; what names it in errors ("data stream"). */
static int read_named(ntfs_inode *ni, ATTR_TYPES type, const char *name, const char *what, const char *path,
		      size_t max, uint8_t **data, size_t *len)
{
	struct uname u = { AT_UNNAMED, 0 };
	if (name && to_uname(name, &u)) return -1;
	ntfs_attr *na = ntfs_attr_open(ni, type, u.s, (u32)u.len);
	int rc;
	if (!na) rc = err_set(errno == ENOENT ? E_FORMAT : NTFS_ERR(E_IO), "%s: no %s: %s", path, what, strerror(errno));
	else { rc = read_attr(na, path, max, data, len); ntfs_attr_close(na); }
	if (name) free(u.s);
	return rc;
}

/* The $REPARSE_POINT attribute of ni: 1 read into *rp (malloc'd), 0 none. */
static int read_reparse(ntfs_inode *ni, const char *path, uint8_t **rp, size_t *len)
{
	if (!ntfs_attr_exist(ni, AT_REPARSE_POINT, AT_UNNAMED, 0)) return 0;
	return read_named(ni, AT_REPARSE_POINT, NULL, "reparse point", path, WOF_REPARSE_MAX, rp, len) < 0 ? -1 : 1;
}

/* A WOF-compressed file (wof.h): the size is the unnamed stream's, the
 * bytes are the WofCompressedData stream's, decompressed. */
static int read_wof(ntfs_inode *ni, const struct wof_info *w, const char *path, size_t max, uint8_t **data, size_t *len)
{
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	if (!na) return err_set(NTFS_ERR(E_IO), "%s: no data stream: %s", path, strerror(errno));
	s64 usize = na->data_size;
	ntfs_attr_close(na);
	if (usize < 0 || (uint64_t)usize > max)
		return err_set(E_UNSUPPORTED, "%s: file of %lld bytes exceeds the %zu byte limit", path, (long long)usize, max);
	uint64_t smax = wof_max_stream_size(w, (uint64_t)usize);
	uint8_t *s = NULL;
	size_t slen = 0;
	size_t cap = smax > SIZE_MAX ? SIZE_MAX : (size_t)smax;
	if (read_named(ni, AT_DATA, WOF_STREAM_NAME, WOF_STREAM_NAME " stream (WOF-compressed file)", path, cap, &s, &slen) < 0) {
		if (err_code() == E_UNSUPPORTED)   /* larger than any valid stream */
			err_set(E_FORMAT, "%s: WofCompressedData is larger than %llu bytes: corrupt", path, (unsigned long long)smax);
		return -1;
	}
	uint8_t *out = xmalloc(usize ? (size_t)usize : 1);
	if (!out) {
		free(s);
		return err_prefix("%s: decompressed contents", path);
	}
	if (wof_decompress(w, s, slen, out, (uint64_t)usize, path) < 0) {
		free(s); free(out);
		return -1;
	}
	free(s);
	*data = out;
	*len = (size_t)usize;
	return 0;
}

/* A file's data as Windows reads it: the unnamed stream, or for a WOF
 * reparse point its decompressed content; any other reparse point (link,
 * deduplicated, cloud placeholder) is refused rather than read as the
 * zeros or stub its unnamed stream holds. */
static int read_inode(ntfs_inode *ni, const char *path, size_t max, uint8_t **data, size_t *len)
{
	uint8_t *rp = NULL;
	size_t rplen = 0;
	int r = read_reparse(ni, path, &rp, &rplen);
	if (r < 0) return -1;
	if (r == 0) return read_named(ni, AT_DATA, NULL, "data stream", path, max, data, len);
	struct wof_info w;
	int rc = wof_parse_reparse(rp, rplen, path, &w);
	free(rp);
	return rc < 0 ? -1 : read_wof(ni, &w, path, max, data, len);
}

int ntfs_read_file(struct ntfs_vol *v, const char *path, size_t max, uint8_t **data, size_t *len)
{
	ntfs_inode *ni = NULL;
	int r = resolve(v, path, &ni, NULL);
	if (r < 0) return -1;
	if (r == 0) return err_set(E_NOTFOUND, "%s: not found", path);
	int rc;
	if (inode_is_dir(ni))
		rc = err_set(E_FORMAT, "%s: is a directory", path);
	else
		rc = read_inode(ni, path, max, data, len);
	ntfs_inode_close(ni);
	return rc;
}

/* ---------------------------------------------------------------- list */

struct list_ctx { struct ntfs_dirent *ents; MFT_REF *refs; int n, cap; bool root, oom; };

static int list_filldir(void *ctx, const ntfschar *name, const int len, const int type,
			const s64 pos, const MFT_REF mref, const unsigned dt)
{
	struct list_ctx *l = ctx;
	if (type == FILE_NAME_DOS) return 0;   /* 8.3 alias of a long name */
	char *u = utf16le_to_utf8((const uint8_t *)name, (size_t)len);
	if (!u) { l->oom = true; return -1; }   /* E_NOMEM set: ntfs_readdir stops, ntfs_list fails */
	/* (a name longer than NTFS_NAME_MAX_UTF8 cannot be stored: skipped
	 * rather than listed cut) */
	bool skip = !strcmp(u, ".") || !strcmp(u, "..") || (l->root && u[0] == '$') || strlen(u) > NTFS_NAME_MAX_UTF8;
	if (!skip && l->n < 1000000) {
		if (l->n == l->cap) {
			int cap = l->cap ? l->cap * 2 : 32;
			struct ntfs_dirent *ents = xrealloc(l->ents, (size_t)cap * sizeof *l->ents);
			if (ents) l->ents = ents;
			MFT_REF *refs = ents ? xrealloc(l->refs, (size_t)cap * sizeof *l->refs) : NULL;
			if (!refs) {
				free(u);
				l->oom = true;
				return -1;   /* E_NOMEM set: ntfs_readdir stops, ntfs_list fails */
			}
			l->refs = refs;
			l->cap = cap;
		}
		struct ntfs_dirent *e = &l->ents[l->n];
		memset(e, 0, sizeof *e);
		str_copy(e->name, sizeof e->name, u, "NTFS name");   /* fits: checked above */
		e->is_dir = dt == NTFS_DT_DIR;
		l->refs[l->n++] = mref;
	}
	free(u);
	return 0;
}

int ntfs_list(struct ntfs_vol *v, const char *path, struct ntfs_dirent **out)
{
	ntfs_inode *dir = NULL;
	int r = resolve(v, path, &dir, NULL);
	if (r < 0) return -1;
	if (r == 0) return err_set(E_NOTFOUND, "%s: not found", path);
	if (!inode_is_dir(dir)) { ntfs_inode_close(dir); return err_set(E_FORMAT, "%s: not a directory", path); }
	struct list_ctx l = { .root = dir->mft_no == FILE_root };
	s64 pos = 0;
	int rc = ntfs_readdir(dir, &pos, &l, list_filldir);
	ntfs_inode_close(dir);
	if (l.oom) {
		free(l.ents); free(l.refs);
		return err_prefix("%s: directory listing", path);
	}
	if (rc) {
		free(l.ents); free(l.refs);
		return err_set(NTFS_ERR(E_IO), "%s: cannot read directory: %s", path, strerror(errno));
	}
	/* Sizes need the inodes, opened after the directory walk. */
	for (int i = 0; i < l.n; i++) {
		if (l.ents[i].is_dir) continue;
		errno = 0;
		ntfs_inode *ni = ntfs_inode_open(v->vol, MREF(l.refs[i]));
		ntfs_attr *na = ni ? ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0) : NULL;
		if (na) { l.ents[i].size = (uint64_t)na->data_size; ntfs_attr_close(na); }
		if (ni) ntfs_inode_close(ni);
		if (!na && errno == ENOMEM) {   /* a size is never guessed as 0 */
			err_set(E_NOMEM, "%s: %s: libntfs-3g is out of memory", path, l.ents[i].name);
			free(l.ents); free(l.refs);
			return -1;
		}
	}
	free(l.refs);
	*out = l.ents;
	return l.n;
}

/* ---------------------------------------------------------------- write */

/* NTFS time: 100 ns units since 1601-01-01 (11644473600 s before 1970). */
static sle64 ntfs_time_of(uint64_t unix_secs)
{
	return cpu_to_sle64((s64)((unix_secs + 11644473600ULL) * 10000000ULL));
}

/* Deterministic output (DESIGN.md): every inode we touch gets build_epoch()
 * as all four times instead of the clock, in $STANDARD_INFORMATION and in
 * each $FILE_NAME attribute of the record. TimesSet tells ntfs-3g that the
 * attributes hold the wanted times: at close it copies them into the parent's
 * index entries instead of its in-memory (clock) times (inode.c,
 * ntfs_inode_sync_standard_information / ntfs_inode_sync_file_name). This is
 * ntfs_inode_set_times() minus its "MFT changed = now". */
static void pin_times(ntfs_inode *ni)
{
	sle64 t = ntfs_time_of(build_epoch());
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	if (!ctx) return;
	if (!ntfs_attr_lookup(AT_STANDARD_INFORMATION, AT_UNNAMED, 0, CASE_SENSITIVE, 0, NULL, 0, ctx)) {
		STANDARD_INFORMATION *si = (STANDARD_INFORMATION *)((u8 *)ctx->attr +
					    le16_to_cpu(ctx->attr->value_offset));
		si->creation_time = si->last_data_change_time = t;
		si->last_mft_change_time = si->last_access_time = t;
	}
	ntfs_attr_reinit_search_ctx(ctx);
	while (!ntfs_attr_lookup(AT_FILE_NAME, AT_UNNAMED, 0, CASE_SENSITIVE, 0, NULL, 0, ctx)) {
		FILE_NAME_ATTR *fn = (FILE_NAME_ATTR *)((u8 *)ctx->attr + le16_to_cpu(ctx->attr->value_offset));
		fn->creation_time = fn->last_data_change_time = t;
		fn->last_mft_change_time = fn->last_access_time = t;
	}
	ntfs_attr_put_search_ctx(ctx);
	ni->creation_time = ni->last_data_change_time = t;
	ni->last_mft_change_time = ni->last_access_time = t;
	set_nino_flag(ni, TimesSet);
	ntfs_inode_mark_dirty(ni);
	NInoFileNameSetDirty(ni);
}

/* ntfs_attr_find's collation of two resident values (see sort_file_names);
 * values outside their attribute compare as empty. */
static int file_name_cmp(const ATTR_RECORD *a, const ATTR_RECORD *b)
{
	u32 la = le32_to_cpu(a->value_length), lb = le32_to_cpu(b->value_length);
	u32 oa = le16_to_cpu(a->value_offset), ob = le16_to_cpu(b->value_offset);
	if (oa > le32_to_cpu(a->length) || la > le32_to_cpu(a->length) - oa) la = 0;
	if (ob > le32_to_cpu(b->length) || lb > le32_to_cpu(b->length) - ob) lb = 0;
	int rc = memcmp((const u8 *)a + oa, (const u8 *)b + ob, la < lb ? la : lb);
	return rc ? rc : (la > lb) - (la < lb);
}

/* A resident value is followed by padding up to the attribute's 8-byte
 * aligned length; libntfs-3g leaves there whatever the record held before,
 * which depends on the order of the edits. Zeroed, as Windows writes it. */
static void zero_padding(ATTR_RECORD *a)
{
	u32 len = le32_to_cpu(a->length), off = le16_to_cpu(a->value_offset), vl = le32_to_cpu(a->value_length);
	if (off <= len && vl <= len - off) memset((u8 *)a + off + vl, 0, len - off - vl);
}

/* libntfs-3g keeps a record's $FILE_NAME attributes in the order of their
 * values -- memcmp over the shorter length, then the shorter first -- and
 * its lookups by value stop at the first value that sorts after the one
 * sought (ntfs_attr_find, attrib.c 2022.10.3). That order is fixed when a
 * name is added, by the name's timestamps at that moment: set_dos_name adds
 * the DOS name with the pinned times, then the long name after ntfs_delete
 * gave the inode (kept in libntfs-3g's inode cache) the clock's ctime. So
 * the order followed the clock's low byte: about one run in 500 wrote the
 * long name first (a CI run's determinism check caught it; tests/clock.sh
 * freezes the clock on such a value). Called after pin_times made every
 * time equal, this puts the attributes back in the order of their values,
 * which then depends on the names only (and zeroes their padding, which
 * the swaps would otherwise move around); doc/formats.md, Order of a
 * record's $FILE_NAME attributes. A new file's names are all in its
 * base record (no attribute list); other records are left as they are. */
static void sort_file_names(ntfs_inode *ni)
{
	if (NInoAttrList(ni)) return;
	u8 *rec = (u8 *)ni->mrec, tmp[1024];
	u32 used = le32_to_cpu(ni->mrec->bytes_in_use);
	for (bool swapped = true; swapped;) {
		swapped = false;
		u32 pos = le16_to_cpu(ni->mrec->attrs_offset);
		while (pos + 16 <= used) {
			ATTR_RECORD *a = (ATTR_RECORD *)(rec + pos);
			u32 alen = le32_to_cpu(a->length);
			if (a->type == AT_END || alen < 24 || alen > used - pos) break;
			ATTR_RECORD *b = (ATTR_RECORD *)(rec + pos + alen);
			bool pair = pos + alen + 16 <= used && a->type == AT_FILE_NAME && b->type == AT_FILE_NAME;
			u32 blen = pair ? le32_to_cpu(b->length) : 0;
			if (pair && (blen < 24 || blen > used - pos - alen || alen > sizeof tmp ||
				     a->non_resident || b->non_resident)) break;
			if (pair) { zero_padding(a); zero_padding(b); }
			if (!pair || file_name_cmp(a, b) <= 0) { pos += alen; continue; }
			memcpy(tmp, a, alen);
			memmove(a, b, blen);
			memcpy(rec + pos + blen, tmp, alen);
			swapped = true;
			pos += blen;
		}
	}
	ntfs_inode_mark_dirty(ni);
}

static bool short_char_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("\"*+,/:;<=>?[\\]|. ", c);
}

/* True when name, upper-cased, is a legal 8.3 name: then it is stored once
 * in the WIN32_AND_DOS namespace. */
static bool is_short_name(const char *n)
{
	const char *dot = strchr(n, '.');
	size_t base = dot ? (size_t)(dot - n) : strlen(n);
	size_t ext = dot ? strlen(dot + 1) : 0;
	if (base < 1 || base > 8 || ext > 3 || (dot && strchr(dot + 1, '.'))) return false;
	for (const char *p = n; *p; p++)
		if (p != dot && !short_char_ok((unsigned char)*p)) return false;
	return true;
}

static void upper_ascii(char *s) { for (; *s; s++) if (*s >= 'a' && *s <= 'z') *s -= 32; }

/* "BASE~N.EXT" in the style Windows generates (first letters of the long
 * name, ~N suffix, first three letters of the last extension), the first
 * one no entry of dir uses yet. */
static int make_short_name(ntfs_volume *vol, ntfs_inode *dir, const char *longname, char out[13])
{
	char base[9] = "", ext[4] = "";
	const char *dot = strrchr(longname, '.');
	size_t nb = 0, ne = 0;
	for (const char *p = longname; *p && (!dot || p < dot) && nb < 6; p++)
		if (short_char_ok((unsigned char)*p)) base[nb++] = *p;
	base[nb] = 0;
	if (dot)
		for (const char *p = dot + 1; *p && ne < 3; p++)
			if (short_char_ok((unsigned char)*p)) ext[ne++] = *p;
	ext[ne] = 0;
	if (!nb) { strcpy(base, "FILE"); nb = 4; }   /* fits: base[9] */
	upper_ascii(base); upper_ascii(ext);
	for (unsigned n = 1; n < 100000; n++) {
		char num[8];
		int nl = snprintf(num, sizeof num, "~%u", n);   /* fits: n < 100000, "~99999" */
		int keep = (int)nb < 8 - nl ? (int)nb : 8 - nl;
		snprintf(out, 13, "%.*s%s%s%s", keep, base, num, ne ? "." : "", ext);   /* fits: keep + nl <= 8, ".EXT" 4 */
		ntfs_inode *ni = NULL;
		int r = lookup_child(vol, dir, out, &ni, NULL);
		if (r < 0) return -1;
		if (r == 0) return 0;
		ntfs_inode_close(ni);
	}
	return err_set(E_EXISTS, "no free 8.3 name for '%s'", longname);
}

/* Creates leaf in dir and gives it a DOS name so its long name is in the
 * WIN32 namespace (see the file comment). ntfs_set_ntfs_dos_name() closes
 * both inodes: they are reopened. */
static int create_win32(ntfs_volume *vol, ntfs_inode **dirp, const char *leaf, mode_t type, ntfs_inode **out)
{
	ntfs_inode *dir = *dirp;
	struct uname u;
	char shortname[13];
	if (to_uname(leaf, &u)) return -1;
	if (is_short_name(leaf)) {
		snprintf(shortname, sizeof shortname, "%s", leaf);   /* fits: an 8.3 name is at most 12 */
		upper_ascii(shortname);
	} else if (make_short_name(vol, dir, leaf, shortname)) {
		free(u.s);
		return -1;
	}
	ntfs_inode *ni = ntfs_create(dir, const_cpu_to_le32(0), u.s, (u8)u.len, type);
	free(u.s);
	if (!ni) return err_set(NTFS_ERR(E_IO), "cannot create '%s': %s", leaf, strerror(errno));
	u64 dir_no = dir->mft_no, ino = ni->mft_no;
	/* before the DOS name is added: libntfs-3g orders the two $FILE_NAME
	 * attributes by comparing their values, timestamps included, so clock
	 * times made the record's bytes vary from run to run (determinism) */
	pin_times(ni);
	int rc = ntfs_set_ntfs_dos_name(ni, dir, shortname, strlen(shortname), 0);
	*dirp = ntfs_inode_open(vol, dir_no);
	*out = ntfs_inode_open(vol, ino);
	if (!*dirp || !*out) {
		if (*out) ntfs_inode_close(*out);
		return err_set(E_IO, "cannot reopen '%s' after naming it", leaf);
	}
	if (rc) {
		ntfs_inode_close(*out);
		return err_set(E_IO, "cannot set the 8.3 name of '%s'", leaf);
	}
	pin_times(*out);
	sort_file_names(*out);
	return 0;
}

/* Opens the parent of path (which must exist) and the leaf name. */
static int open_parent(struct ntfs_vol *v, const char *path, ntfs_inode **dir, char **leaf)
{
	struct path_parts pp;
	if (split_path(path, &pp)) return -1;
	if (pp.n == 0) { free(pp.buf); return err_set(E_USAGE, "'%s' names the root directory", path); }
	int r = resolve_parts(v, &pp, pp.n - 1, dir, NULL);
	if (r == 0) err_set(E_NOTFOUND, "%s: parent directory not found", path);
	if (r == 1 && !inode_is_dir(*dir)) {
		ntfs_inode_close(*dir);
		r = err_set(E_NOTFOUND, "%s: parent is not a directory", path);
	}
	if (r == 1 && !(*leaf = xstrdup(pp.comp[pp.n - 1]))) {
		ntfs_inode_close(*dir);
		r = err_prefix("%s: name", path);
	}
	free(pp.buf);
	return r == 1 ? 0 : -1;
}

/* Opens leaf in dir without case, or creates it (type). */
static int open_or_create(struct ntfs_vol *v, ntfs_inode **dir, const char *path, const char *leaf,
			  mode_t type, ntfs_inode **out, bool *created)
{
	int r = lookup_child(v->vol, *dir, leaf, out, NULL);
	if (r < 0) return -1;
	*created = r == 0;
	if (r == 1) {
		if (inode_is_dir(*out) != (type == S_IFDIR)) {
			ntfs_inode_close(*out);
			return err_set(E_EXISTS, "%s: exists as a %s", path, type == S_IFDIR ? "file" : "directory");
		}
		return 0;
	}
	return create_win32(v->vol, dir, leaf, type, out);
}

static int write_data(ntfs_inode *ni, const char *path, const void *data, size_t len)
{
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	if (!na) return err_set(NTFS_ERR(E_IO), "%s: no data stream: %s", path, strerror(errno));
	int rc = 0;
	if (ntfs_attr_truncate(na, (s64)len)) {
		rc = err_set(errno == ENOSPC ? E_NOSPACE : E_IO, "%s: cannot resize to %zu bytes: %s",
			     path, len, strerror(errno));
	}
	for (size_t done = 0; !rc && done < len;) {
		s64 w = ntfs_attr_pwrite(na, (s64)done, (s64)(len - done), (const uint8_t *)data + done);
		if (w <= 0)
			rc = err_set(errno == ENOSPC ? E_NOSPACE : E_IO, "%s: write failed: %s", path,
				     w < 0 ? strerror(errno) : "short write");
		else
			done += (size_t)w;
	}
	ntfs_attr_close(na);
	return rc;
}

/* Before an existing file's data is replaced: a WOF-compressed file (wof.h)
 * loses its reparse point and WofCompressedData stream, so that Windows
 * reads the plain unnamed stream written next (Windows itself turns a
 * compressed file into a plain one when it is written: wimlib wof.h). The
 * reparse point goes through libntfs-3g's ntfs_remove_ntfs_reparse_data,
 * which also drops its $Extend\$Reparse index entry and the inode's
 * FILE_ATTRIBUTE_REPARSE_POINT. Any other reparse point is refused. */
static int unback_wof(ntfs_inode *ni, const char *path)
{
	uint8_t *rp = NULL;
	size_t rplen = 0;
	int r = read_reparse(ni, path, &rp, &rplen);
	if (r <= 0) return r;
	uint32_t tag = wof_reparse_tag(rp, rplen);
	free(rp);
	if (tag != WOF_REPARSE_TAG)
		return err_set(E_UNSUPPORTED, "%s: is a %s (reparse tag 0x%08X): not replaced", path,
			       wof_reparse_tag_name(tag), tag);
	/* it returns 0 having done nothing when $Extend\$Reparse cannot be
	 * opened: whether the attribute is gone is checked, not assumed */
	if (ntfs_remove_ntfs_reparse_data(ni) || ntfs_attr_exist(ni, AT_REPARSE_POINT, AT_UNNAMED, 0))
		return err_set(NTFS_ERR(E_IO), "%s: cannot remove the WOF reparse point: %s", path, strerror(errno));
	struct uname u;
	if (to_uname(WOF_STREAM_NAME, &u)) return -1;
	int rc = 0;
	if (ntfs_attr_exist(ni, AT_DATA, u.s, (u32)u.len) && ntfs_attr_remove(ni, AT_DATA, u.s, (u32)u.len))
		rc = err_set(NTFS_ERR(E_IO), "%s: cannot remove the %s stream: %s", path, WOF_STREAM_NAME, strerror(errno));
	free(u.s);
	return rc;
}

static int check_rw(struct ntfs_vol *v, const char *path)
{
	if (!v->rw) return err_set(E_INTERNAL, "%s: NTFS volume is mounted read-only", path);
	return 0;
}

/* A file or directory opened or created in its parent (new_entry_open),
 * closed with new_entry_close: a parent that gained an entry gets its
 * times pinned (pin_times) before it is closed. */
struct new_entry {
	ntfs_inode *dir, *ni;
	char *leaf;
	bool created;
};

/* The entry is closed with ntfs_inode_close_in_dir while its parent is
 * still open: closing a written inode syncs its $FILE_NAME into the
 * parent's index, and plain ntfs_inode_close would open the parent a second
 * time for that (ntfs_inode_sync_file_name, inode.c 2022.10.3). libntfs-3g
 * must never have one inode open twice ("NEVER REOPEN", ntfs_inode_open):
 * both copies go into its inode cache on close, ntfs_enter_cache (cache.c)
 * keeps the first and loses the second - one inode leaked per write, and
 * the index update made through the second copy overwritten by the first.
 * rc is the caller's result so far; returns it, or -1 (E_IO, set only when
 * rc was 0) when the entry's or its parent's record could not be written. */
static int new_entry_close(struct new_entry *e, const char *path, int rc)
{
	if (e->ni && e->dir && ntfs_inode_close_in_dir(e->ni, e->dir)) {
		if (!rc) rc = err_set(NTFS_ERR(E_IO), "%s: cannot write its MFT record: %s", path, strerror(errno));
		/* still open: closed below, after its parent (no second copy) */
	} else if (e->dir) {
		e->ni = NULL;
	}
	if (e->dir) {
		if (e->created) pin_times(e->dir);
		if (ntfs_inode_close(e->dir) && !rc)
			rc = err_set(NTFS_ERR(E_IO), "%s: cannot write its parent directory: %s", path, strerror(errno));
	}
	if (e->ni) ntfs_inode_close(e->ni);
	free(e->leaf);
	return rc;
}

/* Opens path (type S_IFREG or S_IFDIR), creating it when missing; on
 * failure nothing stays open. */
static int new_entry_open(struct ntfs_vol *v, const char *path, mode_t type, struct new_entry *e)
{
	*e = (struct new_entry){0};
	if (check_rw(v, path) || open_parent(v, path, &e->dir, &e->leaf)) return -1;
	if (open_or_create(v, &e->dir, path, e->leaf, type, &e->ni, &e->created) == 0) return 0;
	e->ni = NULL;
	new_entry_close(e, path, -1);
	return -1;
}

int ntfs_write_file(struct ntfs_vol *v, const char *path, const void *data, size_t len)
{
	struct new_entry e;
	if (new_entry_open(v, path, S_IFREG, &e)) return -1;
	int rc = e.created ? 0 : unback_wof(e.ni, path);
	if (!rc) rc = write_data(e.ni, path, data, len);
	pin_times(e.ni);
	return new_entry_close(&e, path, rc);
}

int ntfs_mkdir(struct ntfs_vol *v, const char *path)
{
	struct new_entry e;
	if (new_entry_open(v, path, S_IFDIR, &e)) return -1;
	if (e.created) pin_times(e.ni);
	return new_entry_close(&e, path, 0);
}

/* ---------------------------------------------------------------- hard links */

/* UTF-8 of a $FILE_NAME's name (copied out of the packed attribute first). */
static char *fn_name(const FILE_NAME_ATTR *fn)
{
	ntfschar u[256];
	char *name = NULL;
	memcpy(u, (const u8 *)fn + offsetof(FILE_NAME_ATTR, file_name), fn->file_name_length * sizeof(ntfschar));
	if (ntfs_ucstombs(u, fn->file_name_length, &name, 0) < 0) return NULL;
	return name;
}

/* The Win32/POSIX name of an inode (a DOS 8.3 name, namespace 2, is an
 * alias of another name, not a link of its own; NTFS documentation,
 * $FILE_NAME "Namespace"), and its parent directory's reference. */
static char *first_long_name(ntfs_inode *ni, u64 *parent)
{
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	char *name = NULL;
	while (ctx && !name && !ntfs_attr_lookup(AT_FILE_NAME, AT_UNNAMED, 0, CASE_SENSITIVE, 0, NULL, 0, ctx)) {
		FILE_NAME_ATTR *fn = (FILE_NAME_ATTR *)((u8 *)ctx->attr + le16_to_cpu(ctx->attr->value_offset));
		if (fn->file_name_type == FILE_NAME_DOS) continue;
		name = fn_name(fn);
		*parent = MREF_LE(fn->parent_directory);
	}
	if (ctx) ntfs_attr_put_search_ctx(ctx);
	return name;
}

/* "\dir\dir" of a directory, walking $FILE_NAME parents up to the root
 * (at most MAX_DEPTH levels). NULL when a level cannot be read. */
static char *dir_path(ntfs_volume *vol, u64 mref)
{
	char *acc = xstrdup("");
	if (!acc) return NULL;
	for (int depth = 0; MREF(mref) != FILE_root; depth++) {
		ntfs_inode *ni = depth < MAX_DEPTH ? ntfs_inode_open(vol, mref) : NULL;
		u64 parent = FILE_root;
		char *name = ni ? first_long_name(ni, &parent) : NULL;
		if (ni) ntfs_inode_close(ni);
		if (!name) { free(acc); return NULL; }
		char *t = xasprintf("\\%s%s", name, acc);
		free(name); free(acc);
		if (!t) return NULL;
		acc = t;
		mref = parent;
	}
	return acc;
}

int ntfs_link_names(struct ntfs_vol *v, const char *path, char *out, size_t n)
{
	ntfs_inode *ni = NULL;
	int r = resolve(v, path, &ni, NULL);
	if (r <= 0) return r;
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	int count = 0;
	size_t used = 0;
	if (n) out[0] = 0;
	while (ctx && !ntfs_attr_lookup(AT_FILE_NAME, AT_UNNAMED, 0, CASE_SENSITIVE, 0, NULL, 0, ctx)) {
		FILE_NAME_ATTR *fn = (FILE_NAME_ATTR *)((u8 *)ctx->attr + le16_to_cpu(ctx->attr->value_offset));
		if (fn->file_name_type == FILE_NAME_DOS) continue;
		char *name = fn_name(fn), *dir = dir_path(v->vol, MREF_LE(fn->parent_directory));
		text_append(out, n, &used, "%s%s\\%s", count ? ", " : "", dir ? dir : "?", name ? name : "?");
		count++;
		free(name);
		free(dir);
	}
	if (ctx) ntfs_attr_put_search_ctx(ctx);
	ntfs_inode_close(ni);
	return count;
}
