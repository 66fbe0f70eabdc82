/* disk.c - see disk.h.
 *
 * Raw images are read with pread(); VHD and VHDX (all subformats) with
 * libvhdi. Besides libvhdi we parse the image's own allocation table
 * (lib/vhdmeta.c) for two things libvhdi does not expose: which blocks are
 * allocated (disk_maybe_allocated, so that streaming work is proportional to
 * the data) and the VHDX metadata items (block size, physical sector size,
 * Virtual Disk ID). The same parse also rejects a truncated image at open
 * time (an allocated block pointing past the end of the file).
 */
#include "disk.h"
#include "sha256.h"
#include "util.h"
#include "vhdmeta.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libvhdi.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A differencing chain deeper than this is refused (Hyper-V itself warns
 * long before; the limit also stops a parent locator loop). */
#define DISK_MAX_CHAIN 16

struct disk {
	char *path;
	int fd;
	int dirfd;                 /* the folder the file is in (O_PATH): a relative
				      parent locator is opened from it (openat) */
	struct disk *child;        /* the disk whose parent this is, else NULL */
	bool chain_err;            /* top disk only: a loop or depth error was set
				      deeper, with its whole message */
	uint64_t file_size;
	libvhdi_file_t *vf;        /* NULL for raw */
	struct disk *parent;       /* differencing parent, else NULL */
	struct vhdmeta *meta;      /* own parse of VHD/VHDX structure, else NULL */
	struct disk_info info;
	struct stat st;            /* at open, for disk_check_unchanged */
	uint64_t hole_s, hole_e;   /* raw: last hole found, [s, e) */
	uint64_t data_s, data_e;   /* raw: last data extent found */
};

/* err_set "WHAT (libvhdi: first line of libvhdi's message)"; the caller
 * of disk_open names the file (PATH is kept for debugging). */
static int vhdi_error(libvhdi_error_t **e, enum err_code code, const char *path, const char *what)
{
	(void)path;
	/* libvhdi's error object names no errno; a failed allocation inside
	 * it left ENOMEM (malloc sets it): out of memory, exit 1, not a
	 * damaged image */
	if (errno == ENOMEM) code = E_NOMEM;
	char msg[512] = "";
	if (e && *e) {
		libvhdi_error_sprint(*e, msg, sizeof msg);
		libvhdi_error_free(e);
		/* libvhdi messages are multi-line backtraces: keep the first line */
		char *nl = strchr(msg, '\n');
		if (nl) *nl = 0;
	}
	return err_set(code, "%s (libvhdi: %s)", what, msg);
}

static enum disk_format detect_format(int fd, uint64_t size)
{
	switch (vhdmeta_detect(fd, size)) {
	case VHDMETA_VHDX: return DISK_VHDX;
	case VHDMETA_VHD: return DISK_VHD;
	case VHDMETA_NONE: break;
	}
	return DISK_RAW;
}

/* The name ends in .vhdx/.avhdx (1) or .vhd/.avhd (2), any case; 0 otherwise. */
static int container_name(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (!dot || strchr(dot, '/')) return 0;
	if (!ascii_casecmp(dot, ".vhdx") || !ascii_casecmp(dot, ".avhdx")) return 1;
	if (!ascii_casecmp(dot, ".vhd") || !ascii_casecmp(dot, ".avhd")) return 2;
	return 0;
}

/* Does a raw file start like a disk: the boot signature 0x55 0xAA at byte
 * 510 of sector 0 (UEFI 2.10, 5.2.1 "Legacy MBR": Signature 0xAA55 at
 * offset 510; a protective MBR has it too, 5.2.3) or a GPT header
 * "EFI PART" at LBA 1 of 512- or 4096-byte sectors (5.3.2)? */
static bool looks_like_disk(int fd, uint64_t size)
{
	uint8_t b[8];
	if (size >= 512 && pread(fd, b, 2, 510) == 2 && b[0] == 0x55 && b[1] == 0xAA) return true;
	for (uint64_t at = 512; at <= 4096; at += 3584)
		if (size >= at + 8 && pread(fd, b, 8, (off_t)at) == 8 && !memcmp(b, "EFI PART", 8)) return true;
	return false;
}

/* A container whose identifying signature is damaged must not be read as
 * a raw disk (its header bytes would become "sector 0"), nor handed to
 * libvhdi with a message that hides what is wrong: say what is left
 * (vhdmeta_damaged) and refuse, E_FORMAT. A VHD whose footer at the end is
 * damaged while its copy at offset 0 is intact (VHD 2006, "Hard Disk
 * Footer Format": dynamic disks keep both) is refused too: libvhdi reads
 * the footer at the end only. */
static int refuse_damaged(struct disk *d)
{
	char what[400];
	uint8_t c[8];
	if (d->info.format == DISK_RAW) {
		int k = vhdmeta_damaged(d->fd, d->file_size, what, sizeof what);
		if (k == 1)
			return err_set(E_FORMAT, "'%s' is a damaged VHDX, not a raw disk: no 'vhdxfile' identifier at "
				       "offset 0, but %s", d->path, what);
		if (k == 2)
			return err_set(E_FORMAT, "'%s' is a damaged VHD, not a raw disk: %s", d->path, what);
		if (k < 0)
			return -1;
		err_clear();
		/* Named as a container, holding nothing of one and no partition
		 * table either (random bytes, a text file, a VHDX whose every
		 * header is gone): not a disk image. A raw disk under such a name
		 * (it has a table) is still read as raw, by content. */
		int named = container_name(d->path);
		if (named && !looks_like_disk(d->fd, d->file_size))
			return err_set(E_FORMAT, "'%s' is not a disk image: named %s, but it has no %s and, read as a raw "
				       "disk, no partition table (no MBR boot signature, no GPT header)", d->path,
				       named == 1 ? ".vhdx" : ".vhd",
				       named == 1 ? "'vhdxfile' identifier, VHDX header or region table"
						  : "'conectix' footer or dynamic disk header");
		return 0;
	}
	if (d->info.format != DISK_VHD || d->file_size < 512) return 0;
	bool end = pread(d->fd, c, 8, d->file_size - 512) == 8 && !memcmp(c, "conectix", 8);
	bool end511 = d->file_size >= 511 && pread(d->fd, c, 8, d->file_size - 511) == 8 && !memcmp(c, "conectix", 8);
	if (!end && !end511)
		return err_set(E_FORMAT, "'%s' is a damaged VHD: its footer copy at offset 0 is intact, but the footer "
			       "at the end ('conectix' at %llu) is not", d->path, (unsigned long long)(d->file_size - 512));
	return 0;
}

/* Opens name (relative to dirfd, or absolute) read-only without ever
 * blocking: a FIFO, or a device whose open waits, in the place of a disk
 * would hang every command (open(2): O_RDONLY of a FIFO waits for a
 * writer; with O_NONBLOCK it returns at once). The file's type is checked
 * on the opened fd (fstat), so nothing can swap it between check and use;
 * anything but a regular file or block device is refused, E_FORMAT
 * "'shown' is not a regular file or block device (a FIFO)". The fd is
 * then made blocking again. -1 with err set (E_NOTFOUND when missing). */
static const char *file_kind(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
	     : S_ISSOCK(m) ? "a socket" : "not a file";
}

static int open_image_fd(int dirfd, const char *name, const char *shown)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	if (fd < 0)
		return err_errno(errno == ENOENT ? E_NOTFOUND : E_IO, "cannot open");
	if (fstat(fd, &st) < 0) {
		err_errno(E_IO, "cannot stat");
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return err_set(E_FORMAT, "'%s' is not a regular file or block device (%s)", shown, file_kind(st.st_mode));
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		err_errno(E_IO, "cannot set '%s' blocking", shown);
		close(fd);
		return -1;
	}
	return fd;
}

static int file_size_of(int fd, const char *path, uint64_t *out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_errno(E_IO, "cannot stat");
	if (S_ISBLK(st.st_mode)) {
		uint64_t n;
		if (ioctl(fd, BLKGETSIZE64, &n) < 0)
			return err_errno(E_IO, "cannot get the size");
		*out = n;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return err_set(E_FORMAT, "not a regular file or block device");
	*out = (uint64_t)st.st_size;
	return 0;
}

/* Windows-style parent names ("C:\VMs\base.vhdx", ".\base.vhdx",
 * "\\server\share\base.vhdx") become a POSIX path; returns the basename
 * position too. */
static char *to_posix(const char *name, const char **base_out)
{
	char *p = xstrdup(name);
	if (!p) { err_prefix("parent locator"); return NULL; }
	for (char *c = p; *c; c++)
		if (*c == '\\') *c = '/';
	char *slash = strrchr(p, '/');
	*base_out = slash ? slash + 1 : p;
	return p;
}

/* cand (malloc'd, an existing file) as an absolute path with "..", "." and
 * symbolic links resolved by the kernel (realpath), so that it names the
 * same file from any current folder: libvhdi shortens ".." lexically, so
 * "disks/../../p.vhdx" (".." above the current folder) fails there though
 * the file is there. cand is freed; NULL with E_NOMEM when out of memory. */
static char *canonical(char *cand)
{
	char *abs = realpath(cand, NULL);
	if (!abs && errno == ENOMEM) {
		free(cand);
		err_set(E_NOMEM, "out of memory");
		return NULL;
	}
	if (!abs) return cand;   /* gone meanwhile: the open says so */
	free(cand);
	return abs;
}

/* The places a parent locator path leads to from the child's folder:
 * leads, where the recorded path itself leads (a relative path joined to
 * the child's folder, an absolute POSIX path as it is; NULL for a Windows
 * drive or UNC path, which has no place here), and beside, the parent's
 * file name in the child's folder (NULL when the path has no name).
 * relative: the path was relative. Free with places_free. */
struct places { char *leads, *beside; bool relative; char *rel; const char *base; char *posix; };

static void places_free(struct places *pl)
{
	free(pl->leads), free(pl->beside), free(pl->posix);
	pl->leads = pl->beside = pl->posix = pl->rel = NULL;
}

static int parent_places(const char *child, const char *locator, struct places *pl)
{
	memset(pl, 0, sizeof *pl);
	char *dircopy = xstrdup(child);
	const char *base;
	char *posix = dircopy ? to_posix(locator, &base) : NULL;
	bool oom = !posix;
	if (posix) {
		const char *dir = dirname(dircopy);
		bool has_drive = ((posix[0] | 0x20) >= 'a' && (posix[0] | 0x20) <= 'z' && posix[1] == ':');
		bool absolute = posix[0] == '/';
		pl->relative = !has_drive && !absolute;
		const char *rel = posix;
		while (rel[0] == '.' && rel[1] == '/') rel += 2;   /* ".\parent.vhdx" */
		if (pl->relative) oom |= !(pl->leads = xasprintf("%s/%s", dir, rel));
		else if (!has_drive) oom |= !(pl->leads = xstrdup(posix));
		if (*base) oom |= !(pl->beside = xasprintf("%s/%s", dir, base));
		pl->rel = has_drive ? NULL : (char *)rel;   /* openat from the child's folder */
		pl->base = base;
		pl->posix = posix;
		posix = NULL;
	}
	free(posix);
	free(dircopy);
	if (oom) places_free(pl);
	return oom ? err_prefix("'%s': parent path", child) : 0;
}

/* What is at name (relative to the child's folder dir, or absolute),
 * shown as shown: 0 a regular file or block device, 1 nothing (ENOENT,
 * ENOTDIR: the recorded path leads nowhere), -1 with err set naming what
 * is there instead (a directory, FIFO, device, a symbolic link that leads
 * nowhere) or why it cannot be looked at. fstatat on the folder's fd: no
 * path is built, so a long relative locator under a deep folder works
 * whatever the current folder and PATH_MAX. */
static int place_kind(int dir, const char *name, const char *shown)
{
	struct stat st;
	if (fstatat(dir, name, &st, 0) == 0) {
		if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) return 0;
		return err_set(E_FORMAT, "parent '%s' is not a regular file or block device (%s)", shown, file_kind(st.st_mode));
	}
	if (errno != ENOENT && errno != ENOTDIR)
		return err_errno(errno == ENOMEM ? E_NOMEM : E_FORMAT, "parent '%s': cannot look at it", shown);
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
		char to[512];
		ssize_t n = readlinkat(dir, name, to, sizeof to - 1);
		to[n > 0 ? n : 0] = 0;
		return err_set(E_NOTFOUND, "parent '%s' is a symbolic link to '%s', which leads nowhere", shown, to);
	}
	return 1;
}

/* Resolves a differencing parent the way a user moving the chain between
 * hosts expects: a relative locator is taken relative to the child's folder
 * (cdir, the child's folder fd); an absolute POSIX path is used when it
 * exists; anything else (drive letters, UNC paths, or an absolute path that
 * is not here) falls back to the parent's basename in the child's folder.
 * *found_out: the path shown (canonical when it fits PATH_MAX), *name_out
 * what to open from cdir; both NULL: not there. -1 with err set: out of
 * memory, or something that is no disk where the path leads. */
static int resolve_parent(int cdir, const char *child, const char *locator, char **found_out, char **name_out, bool *by_name)
{
	*by_name = false;
	*found_out = *name_out = NULL;
	struct places pl;
	if (parent_places(child, locator, &pl) < 0) return -1;
	int k = 1;
	char **found = NULL;
	const char *name = NULL;
	if (pl.leads && (k = place_kind(cdir, pl.rel, pl.leads)) == 0)
		found = &pl.leads, name = pl.rel;
	if (k == 1 && pl.beside && (!pl.leads || strcmp(pl.beside, pl.leads)) && (k = place_kind(cdir, pl.base, pl.beside)) == 0) {
		found = &pl.beside, name = pl.base;
		/* a relative path that led nowhere; for a Windows absolute
		 * path beside the child is the only place a Linux run can look */
		*by_name = pl.relative;
	}
	if (found && !(*name_out = xstrdup(name))) found = NULL, k = -1;
	if (found) {
		*found_out = canonical(*found);   /* takes it */
		*found = NULL;
	}
	places_free(&pl);
	if (k < 0) return -1;
	return found && !*found_out ? err_prefix("'%s': parent path", child) : 0;
}

/* p as an absolute path when its folder exists (the file itself is not
 * there): "disks/../gen1/p.vhdx" -> "/vms/gen1/p.vhdx"; else p. */
static char *shown(const char *p)
{
	char *d = xstrdup(p), *b = xstrdup(p), *abs = d ? realpath(dirname(d), NULL) : NULL;
	char *out = abs && b ? xasprintf("%s/%s", strcmp(abs, "/") ? abs : "", basename(b)) : xstrdup(p);
	free(d), free(b), free(abs);
	return out;
}

int disk_parent_missing(const char *child, const char *locator, const struct guid *linkage, bool vhdx)
{
	struct places pl;
	if (parent_places(child, locator, &pl) < 0) return -1;
	char *leads = pl.leads ? shown(pl.leads) : NULL, *beside = pl.beside ? shown(pl.beside) : NULL;
	char where[2200], need[160] = "", gs[GUID_STR_LEN + 1];
	if (leads && beside && !strcmp(leads, beside))
		msg_printf(where, sizeof where, "nothing at '%s', where the recorded path leads (beside this disk)", leads);
	else if (leads)
		msg_printf(where, sizeof where, "nothing at '%s', where the recorded path leads%s%s%s", leads,
			   beside ? ", nor at '" : "", beside ? beside : "", beside ? "', a file of that name beside this disk" : "");
	else
		msg_printf(where, sizeof where, "a Windows path, which leads nowhere here, and nothing at '%s', a file of that name "
			   "beside this disk", beside ? beside : "?");
	if (linkage)
		msg_printf(need, sizeof need, "; it needs the disk whose %s is {%s} (%s)", vhdx ? "DataWriteGuid" : "unique id",
			   guid_to_str(linkage, gs), vhdx ? "parent_linkage" : "the header's Parent Unique Id");
	bool oom = (pl.leads && !leads) || (pl.beside && !beside);
	free(leads), free(beside);
	places_free(&pl);
	if (oom) return err_prefix("'%s': parent path", child);
	return err_set(E_NOTFOUND, "parent disk '%s' not found: %s%s", locator, where, need);
}

static struct disk *disk_open_at(int dirfd, const char *name, const char *path, struct disk *child);

/* libvhdi gives identifiers as big-endian GUIDs (libvhdi.h); struct guid
 * holds the on-disk (mixed-endian) order. */
static void guid_from_be(struct guid *g, const uint8_t be[16])
{
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	for (int i = 0; i < 16; i++) g->b[i] = be[order[i]];
}

/* The child's record of its parent's identity and the parent's own:
 * MS-VHDX 2.6.2.6.3 parent_linkage against the parent's DataWriteGuid
 * (2.2.2), for a VHD the header's Parent Unique Id against the parent
 * footer's Unique Id. 0, or -1 when libvhdi cannot say. */
static int child_linkage(libvhdi_file_t *child, struct guid *want)
{
	uint8_t a[16];
	libvhdi_error_t *e = NULL;
	if (libvhdi_file_get_parent_identifier(child, a, sizeof a, &e) != 1) {
		if (e) libvhdi_error_free(&e);
		return -1;
	}
	guid_from_be(want, a);
	return 0;
}

static int linkage_ids(libvhdi_file_t *child, libvhdi_file_t *parent, struct guid *want, struct guid *have)
{
	uint8_t b[16];
	libvhdi_error_t *e = NULL;
	if (child_linkage(child, want) < 0) return -1;
	if (libvhdi_file_get_identifier(parent, b, sizeof b, &e) != 1) {
		if (e) libvhdi_error_free(&e);
		return -1;
	}
	guid_from_be(have, b);
	return 0;
}

/* The error of opening the parent ppath, naming it once: "parent
 * '/vms/p.vhdx': VHDX metadata region ..." or, when the message names the
 * file already, "parent disk: '/vms/p.vhdx' is empty ...". */
static int parent_open_failed(const char *ppath)
{
	char quoted[PATH_MAX + 2];
	msg_printf(quoted, sizeof quoted, "'%s'", ppath);
	return strstr(err_msg(), quoted) ? err_prefix("parent disk") : err_prefix("parent '%s'", ppath);
}

/* A parent whose identity is not the one the child recorded was written
 * to after the child was made: reading the chain would mix two disks. */
static int check_linkage(struct disk *d, const char *ppath)
{
	struct guid want, have;
	char ws[GUID_STR_LEN + 1], hs[GUID_STR_LEN + 1];
	if (linkage_ids(d->vf, d->parent->vf, &want, &have) < 0 || guid_eq(&want, &have)) return 0;
	return err_set(E_FORMAT, "parent '%s' is not the disk this differencing disk was made from: the child names "
		       "{%s} (parent_linkage), the parent's DataWriteGuid is {%s} - the parent was written to "
		       "after the child was made (e.g. its virtual machine was started)",
		       ppath, guid_to_str(&want, ws), guid_to_str(&have, hs));
}

/* The parent's name as the child records it (malloc'd UTF-8): for VHDX
 * our parse of the Parent Locator (doc/formats.md, VHDX parent locator;
 * vhdx_locator.c: relative_path first, as
 * MS-VHDX 2.6.2.6.3 orders them; libvhdi looks for "relative_path" with a
 * 12-character key and so finds only absolute_win32_path and volume_path),
 * for VHD libvhdi's reading of the header's locators. NULL with err set. */
static char *parent_name(libvhdi_file_t *vf, const struct vhdmeta *m)
{
	const struct vhdmeta_info *mi = m ? vhdmeta_info(m) : NULL;
	if (mi && mi->parent_locator) return xstrdup(mi->parent_locator);
	libvhdi_error_t *e = NULL;
	size_t n = 0;
	int r = libvhdi_file_get_utf8_parent_filename_size(vf, &n, &e);
	if (r != 1 || n < 2 || n > 65536) {
		if (e) libvhdi_error_free(&e);
		err_set(E_FORMAT, "a differencing disk without a parent locator");
		return NULL;
	}
	uint8_t *name = xmalloc(n);
	if (!name) {
		err_prefix("parent locator");
		return NULL;
	}
	if (libvhdi_file_get_utf8_parent_filename(vf, name, n, &e) != 1) {
		free(name);
		vhdi_error(&e, E_FORMAT, NULL, "cannot read the parent locator");
		return NULL;
	}
	name[n - 1] = 0;
	return (char *)name;
}

static struct disk *chain_top(struct disk *d)
{
	while (d->child) d = d->child;
	return d;
}

static int open_parent(struct disk *d)
{
	char *name = parent_name(d->vf, d->meta);
	if (!name) return -1;
	char *ppath = NULL, *rel = NULL;
	bool by_name;
	if (resolve_parent(d->dirfd, d->path, (const char *)name, &ppath, &rel, &by_name) < 0) {
		free(name);
		return -1;
	}
	if (!ppath) {
		struct guid want;
		bool known = child_linkage(d->vf, &want) == 0;
		disk_parent_missing(d->path, name, known ? &want : NULL, d->info.format == DISK_VHDX);
		free(name);
		return -1;
	}
	d->info.parent_locator = name;
	d->info.parent_by_name = by_name;
	d->parent = disk_open_at(d->dirfd, rel, ppath, d);
	free(rel);
	if (!d->parent) {
		if (!chain_top(d)->chain_err) parent_open_failed(ppath);
		free(ppath);
		return -1;
	}
	d->info.parent_path = ppath;
	d->info.chain_depth = d->parent->info.chain_depth + 1;
	if (!d->parent->vf)
		return err_set(E_UNSUPPORTED, "parent '%s' is a raw image: a differencing disk needs a VHD/VHDX parent", ppath);
	if (d->parent->info.virtual_size != d->info.virtual_size)
		return err_set(E_FORMAT, "parent '%s' has a different virtual size", ppath);
	if (check_linkage(d, ppath) < 0)
		return -1;
	child_linkage(d->vf, &d->info.parent_linkage);
	libvhdi_error_t *e = NULL;
	if (libvhdi_file_set_parent_file(d->vf, d->parent->vf, &e) != 1)
		return vhdi_error(&e, E_FORMAT, d->path, "parent does not match");
	return 0;
}

static int open_vhdi(struct disk *d)
{
	libvhdi_error_t *e = NULL;
	/* Our own structural parse first (allocation table, metadata): its
	 * messages say what is wrong (truncated, log not replayed, bad CRC),
	 * libvhdi's only that opening failed. */
	d->meta = vhdmeta_parse(d->fd, d->file_size, d->info.format == DISK_VHDX);
	if (!d->meta)
		return -1;   /* vhdmeta says what is wrong; the caller names the file */
	errno = 0;   /* vhdi_error reads ENOMEM */
	if (libvhdi_file_initialize(&d->vf, &e) != 1)
		return vhdi_error(&e, E_NOMEM, d->path, "cannot create the libvhdi handle");
	/* libvhdi opens by name: give it the fd we checked, by a short name
	 * (proc(5) /proc/self/fd/N reopens that very file), so that neither a
	 * path longer than PATH_MAX nor a file swapped meanwhile matters */
	char self[64];
	msg_printf(self, sizeof self, "/proc/self/fd/%d", d->fd);
	if (access(self, F_OK) != 0) msg_printf(self, sizeof self, "%s", "");
	if (libvhdi_file_open(d->vf, self[0] ? self : d->path, libvhdi_get_access_flags_read(), &e) != 1)
		return vhdi_error(&e, E_FORMAT, d->path, "corrupt or truncated");
	size64_t media = 0;
	uint32_t type = 0, bps = 512;
	if (libvhdi_file_get_media_size(d->vf, &media, &e) != 1 ||
	    libvhdi_file_get_disk_type(d->vf, &type, &e) != 1)
		return vhdi_error(&e, E_FORMAT, d->path, "cannot read the image header");
	if (libvhdi_file_get_bytes_per_sector(d->vf, &bps, &e) != 1) {
		libvhdi_error_free(&e);
		bps = 512;
	}
	d->info.virtual_size = media;
	d->info.logical_sector_size = bps;
	d->info.physical_sector_size = bps;
	switch (type) {
	case LIBVHDI_DISK_TYPE_FIXED: d->info.subformat = "fixed"; break;
	case LIBVHDI_DISK_TYPE_DYNAMIC: d->info.subformat = "dynamic"; break;
	case LIBVHDI_DISK_TYPE_DIFFERENTIAL: d->info.subformat = "differencing"; break;
	default: return err_set(E_FORMAT, "unknown disk type %u", type);
	}

	const struct vhdmeta_info *mi = vhdmeta_info(d->meta);
	if (mi->virtual_size != media)
		return err_set(E_FORMAT, "virtual size disagrees between parsers (%llu vs %llu)",
			       (unsigned long long)mi->virtual_size, (unsigned long long)media);
	d->info.block_size = mi->block_size;
	d->info.disk_id = mi->disk_id;
	d->info.data_write_guid = mi->data_write_guid;
	if (mi->logical_sector_size) d->info.logical_sector_size = mi->logical_sector_size;
	if (mi->physical_sector_size) d->info.physical_sector_size = mi->physical_sector_size;
	if (mi->differencing != (type == LIBVHDI_DISK_TYPE_DIFFERENTIAL))
		return err_set(E_FORMAT, "disk type disagrees between parsers");

	if (type == LIBVHDI_DISK_TYPE_DIFFERENTIAL)
		return open_parent(d);
	return 0;
}

/* d->dirfd: the folder of name (relative to dirfd), O_PATH, where its own
 * parent locator is resolved from. */
static int open_folder(struct disk *d, int dirfd, const char *name)
{
	const char *slash = strrchr(name, '/');
	char *dir = xstrdup(slash ? name : ".");
	if (!dir) return err_prefix("'%s': folder", d->path);
	if (slash) dir[slash == name ? 1 : slash - name] = 0;
	d->dirfd = openat(dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	return d->dirfd < 0 ? err_errno(E_IO, "cannot open the folder of '%s'", d->path) : 0;
}

/* The file d (just opened, d->st set) is already in its chain (a parent
 * locator led back to a disk whose parent is being opened: file identity
 * st_dev/st_ino, so a copy under another name or a link is caught), or
 * the chain is deeper than DISK_MAX_CHAIN: one error with the whole story,
 * marked on the top disk so that no level prefixes it again. */
static int check_chain(struct disk *d)
{
	int depth = 0;
	for (struct disk *c = d->child; c; c = c->child, depth++)
		if (c->st.st_dev == d->st.st_dev && c->st.st_ino == d->st.st_ino) {
			chain_top(d)->chain_err = true;
			return err_set(E_FORMAT, "differencing chain loops back to '%s': the parent locator of '%s' leads to it "
				       "again ('%s'), so the chain has no base disk", c->path, d->child->path, d->path);
		}
	if (depth <= DISK_MAX_CHAIN) return 0;
	chain_top(d)->chain_err = true;
	return err_set(E_UNSUPPORTED, "differencing chain deeper than %d disks (the parent of '%s' is '%s')",
		       DISK_MAX_CHAIN, d->child->path, d->path);
}

/* Opens name from the folder dirfd (AT_FDCWD or a child's folder), shown
 * as path; child: the disk whose parent this is, NULL for the top. */
static struct disk *disk_open_at(int dirfd, const char *name, const char *path, struct disk *child)
{
	struct disk *d = xcalloc(1, sizeof *d);
	if (!d) { err_prefix("'%s': disk handle", path); return NULL; }
	d->fd = d->dirfd = -1;
	d->child = child;
	d->path = xstrdup(path);
	if (!d->path) { err_prefix("'%s': disk handle", path); goto fail; }
	/* a missing file is "notfound" (exit 3 still, src/cli.c), not a
	 * format error: image.c recodes only E_IO */
	d->fd = open_image_fd(dirfd, name, path);
	if (d->fd < 0)
		goto fail;
	if (file_size_of(d->fd, path, &d->file_size) < 0 || fstat(d->fd, &d->st) < 0 || check_chain(d) < 0)
		goto fail;
	if (open_folder(d, dirfd, name) < 0)
		goto fail;
	/* an empty file (a copy that failed, a placeholder): that is the
	 * cause, whatever its name says it should hold */
	if (d->file_size == 0) {
		err_set(E_FORMAT, "'%s' is empty (0 bytes): not a disk image", path);
		goto fail;
	}
	d->info.format = detect_format(d->fd, d->file_size);
	if (refuse_damaged(d) < 0)
		goto fail;
	if (d->info.format == DISK_RAW) {
		d->info.format_name = "raw";
		d->info.subformat = "fixed";
		d->info.virtual_size = d->file_size;
		d->info.logical_sector_size = 512;
		d->info.physical_sector_size = 512;
		return d;
	}
	d->info.format_name = d->info.format == DISK_VHDX ? "vhdx" : "vhd";
	if (open_vhdi(d) < 0)
		goto fail;
	return d;
fail:
	disk_close(d);
	return NULL;
}

struct disk *disk_open(const char *path)
{
	return disk_open_at(AT_FDCWD, path, path, NULL);
}

const struct disk_info *disk_info(const struct disk *d)
{
	return &d->info;
}

static int read_raw(struct disk *d, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(d->fd, buf, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR) continue;
			return err_errno(E_IO, "read error in '%s' at %llu", d->path, (unsigned long long)off);
		}
		if (n == 0)
			return err_set(E_IO, "'%s' shrank while reading (offset %llu)", d->path, (unsigned long long)off);
		buf += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

static int read_vhdi(struct disk *d, uint8_t *buf, size_t len, uint64_t off)
{
	libvhdi_error_t *e = NULL;
	while (len) {
		/* libvhdi takes ssize_t-sized requests; stay well inside */
		size_t chunk = len > (64u << 20) ? (64u << 20) : len;
		errno = 0;   /* vhdi_error reads ENOMEM */
		ssize_t n = libvhdi_file_read_buffer_at_offset(d->vf, buf, chunk, (off64_t)off, &e);
		if (n <= 0) {
			vhdi_error(&e, E_FORMAT, d->path, "read failed, corrupt or truncated image?");
			/* a read comes long after disk_open: name the file (a chain has several) */
			return err_prefix("'%s': virtual offset %llu", d->path, (unsigned long long)off);
		}
		buf += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

/* Blocks stored plainly in the file (vhdmeta_map) are read with pread,
 * straight into buf, the never-written sectors of a dynamic VHD block
 * (vhdmeta_zero_run) are zeros; libvhdi reads the rest (unallocated,
 * differencing), one block at a time. Same bytes, one copy less: the
 * output stream reads every allocated block this way. */
static int read_vhdi_mapped(struct disk *d, uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t bs = d->info.block_size ? d->info.block_size : (64u << 20);
	while (len) {
		uint64_t foff = 0, m = d->parent ? 0 : vhdmeta_map(d->meta, off, len, &foff);
		int r;
		if (m) {
			r = read_raw(d, buf, (size_t)m, foff);
		} else if (!d->parent && (m = vhdmeta_zero_run(d->meta, off, len)) != 0) {
			memset(buf, 0, (size_t)m);   /* clear bits of a dynamic VHD block */
			r = 0;
		} else {
			m = bs - off % bs < len ? bs - off % bs : len;
			r = read_vhdi(d, buf, (size_t)m, off);
		}
		if (r < 0) return -1;
		buf += m, len -= (size_t)m, off += m;
	}
	return 0;
}

int disk_read(struct disk *d, void *vbuf, size_t len, uint64_t off)
{
	uint8_t *buf = vbuf;
	uint64_t size = d->info.virtual_size;
	if (off >= size) {
		memset(buf, 0, len);
		return 0;
	}
	size_t inside = len;
	if (len > size - off) {
		inside = (size_t)(size - off);
		memset(buf + inside, 0, len - inside);
	}
	if (!inside)
		return 0;
	return d->vf ? read_vhdi_mapped(d, buf, inside, off) : read_raw(d, buf, inside, off);
}

/* SEEK_DATA/SEEK_HOLE (lseek(2)): a hole in a sparse raw file reads as
 * zeros. File systems without hole support report all data: sound. The
 * last hole and data extent found are kept, so that a stream asking about
 * every MiB of a mostly empty disk costs an lseek per extent, not per MiB
 * (64 GiB disk with 2 GiB of data: 65,573 lseeks before). */
static int raw_maybe_allocated(struct disk *d, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	if (off >= d->hole_s && end <= d->hole_e) return 0;
	if (off < d->data_e && end > d->data_s) return 1;
	off_t data = lseek(d->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno != ENXIO) return 1;
		d->hole_s = off, d->hole_e = UINT64_MAX;   /* ENXIO: no data after off */
		return 0;
	}
	d->hole_s = off, d->hole_e = (uint64_t)data;
	if ((uint64_t)data >= end) return 0;
	off_t hole = lseek(d->fd, data, SEEK_HOLE);
	d->data_s = (uint64_t)data;
	d->data_e = hole > data ? (uint64_t)hole : (uint64_t)data + 1;
	return 1;
}

int disk_maybe_allocated(struct disk *d, uint64_t off, uint64_t len)
{
	uint64_t size = d->info.virtual_size;
	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = size - off;
	if (!d->vf)
		return raw_maybe_allocated(d, off, len);
	int r = vhdmeta_maybe_allocated(d->meta, off, len);
	if (r != 2)
		return r;          /* 0: zeros in this layer and no parent; 1: data */
	/* 2: not present here, the parent decides */
	return d->parent ? disk_maybe_allocated(d->parent, off, len) : 0;
}

int disk_fingerprint(struct disk *d, uint8_t out[32])
{
	struct sha256 s;
	uint64_t size = d->info.virtual_size;
	const uint64_t mib = 1u << 20;
	uint8_t *buf = xmalloc(mib);
	if (!buf) return err_prefix("'%s': fingerprint buffer", d->path);
	uint8_t le[8];
	sha256_init(&s);
	put_le64(le, size);
	sha256_update(&s, le, 8);
	/* a read error fingerprints as zeros: the id stays stable and the
	 * error surfaces when the same range is read for real */
	if (disk_read(d, buf, mib, 0) < 0) memset(buf, 0, mib);
	sha256_update(&s, buf, mib);
	uint64_t last = size > mib ? size - mib : 0;
	if (disk_read(d, buf, mib, last) < 0) memset(buf, 0, mib);
	sha256_update(&s, buf, mib);
	sha256_final(&s, out);
	free(buf);
	return 0;
}

uint64_t disk_map(struct disk *d, uint64_t off, uint64_t len, int *fd, uint64_t *file_off)
{
	uint64_t size = d->info.virtual_size;
	if (off >= size || !len) return 0;
	if (len > size - off) len = size - off;
	*fd = d->fd;
	if (!d->vf) {
		*file_off = off;
		return len;
	}
	return d->parent ? 0 : vhdmeta_map(d->meta, off, len, file_off);
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

int disk_check_unchanged(struct disk *d)
{
	for (; d; d = d->parent) {
		struct stat now;
		if (!S_ISREG(d->st.st_mode)) continue;
		if (fstat(d->fd, &now) < 0) return err_errno(E_IO, "cannot stat '%s'", d->path);
		if (now.st_size != d->st.st_size)
			return err_set(E_FORMAT, "'%s' changed while it was read (size %lld -> %lld bytes): convert a copy that nothing writes to",
				       d->path, (long long)d->st.st_size, (long long)now.st_size);
		if (!same_time(&now.st_mtim, &d->st.st_mtim) || !same_time(&now.st_ctim, &d->st.st_ctim))
			return err_set(E_FORMAT, "'%s' changed while it was read (modified meanwhile): convert a copy that nothing writes to",
				       d->path);
	}
	return 0;
}

void disk_close(struct disk *d)
{
	if (!d) return;
	if (d->vf) {
		libvhdi_error_t *e = NULL;
		libvhdi_file_close(d->vf, &e);
		if (e) libvhdi_error_free(&e);
		libvhdi_file_free(&d->vf, &e);
		if (e) libvhdi_error_free(&e);
	}
	disk_close(d->parent);
	vhdmeta_free(d->meta);
	if (d->fd >= 0) close(d->fd);
	if (d->dirfd >= 0) close(d->dirfd);
	free(d->info.parent_path);
	free(d->info.parent_locator);
	free(d->path);
	free(d);
}
