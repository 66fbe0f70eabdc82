/* writer_out.c - the output file's life: the lock on OUT's name, the
 * nameless file the image is written into, and its publication under OUT.
 * See writer.h for the guarantees; this is how they are kept.
 *
 * Output file. open(2) O_TMPFILE in OUT's folder makes an inode with no
 * name: whatever kills the process (SIGKILL, OOM killer, power loss), the
 * file system frees it and OUT's folder holds nothing new. Once the image
 * is complete and fsync'ed it gets its name with linkat(2): AT_EMPTY_PATH
 * (needs CAP_DAC_READ_SEARCH) or, as unprivileged code must,
 * "/proc/self/fd/N" with AT_SYMLINK_FOLLOW (open(2), O_TMPFILE). linkat
 * never replaces a name (EEXIST), which is the no-overwrite rule for
 * free; --overwrite links to "OUT.gen2prep-XXXXXX" first and renames that
 * over OUT (rename(2) is atomic: OUT is the old or the new image, never a
 * mix). Where the file system has no O_TMPFILE (EOPNOTSUPP; EISDIR/EINVAL
 * on kernels before 3.11) or /proc is missing, the image is written to the
 * named "OUT.gen2prep-XXXXXX" instead, removed on error and on
 * SIGINT/SIGTERM/SIGHUP; only then can a SIGKILL leave that file behind
 * (man page, FILES).
 *
 * Lock. An abstract AF_UNIX socket (unix(7), "abstract": the name is not
 * a file, and disappears when the last descriptor closes, also when the
 * process is killed) named after OUT's folder (st_dev, st_ino) and OUT's
 * base name: bind(2) of a name in use fails with EADDRINUSE, so two runs
 * writing the same OUT (also through different paths to the folder) are
 * serialised without any lock file to leave behind. Its reach is one
 * network namespace: runs in different containers or on different NFS
 * clients are not serialised (then the no-overwrite link still refuses
 * the second OUT). The holder listens, so the refused run can name it
 * (SO_PEERCRED).
 */
#include "writer.h"
#include "writer_int.h"
#include "sha256.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- named temporary file (fallback, and the --overwrite window) -------- */

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

static void block_signals(sigset_t *old)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, old);
}

static int err_create(const char *path)
{
	int saved = errno;
	char *d = xstrdup(path);
	errno = saved;
	err_errno(E_OUTPUT, "cannot create the output in '%s'", d ? dirname(d) : path);
	free(d);
	return -1;
}

/* Creates "OUT.gen2prep-XXXXXX" with signals blocked, so that a SIGINT can
 * never see a created file that is not registered yet. */
static int create_named(const char *path)
{
	sigset_t old;
	if (strlen(path) + sizeof ".gen2prep-XXXXXX" > sizeof tmp_path)
		return err_set(E_USAGE, "output path too long");
	block_signals(&old);
	snprintf(tmp_path, sizeof tmp_path, "%s.gen2prep-XXXXXX", path);   /* fits: length checked above */
	int fd = mkostemp(tmp_path, O_CLOEXEC);
	int saved = errno;
	if (fd >= 0) tmp_active = 1;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (fd < 0) {
		errno = saved;
		return err_create(path);
	}
	/* mkstemp makes 0600; an image is an ordinary file: 0666 & ~umask */
	mode_t um = umask(0);
	umask(um);
	fchmod(fd, 0666 & ~um);
	return fd;
}

/* O_TMPFILE in OUT's folder; -2 when the file system or kernel cannot
 * (then the caller falls back to a named file), -1 on a real error. */
static int create_nameless(const char *path)
{
	char *d = xstrdup(path);
	if (!d) return err_prefix("output folder name");
	int fd = open(dirname(d), O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
	int saved = errno;
	free(d);
	if (fd >= 0) {
		/* publishing needs AT_EMPTY_PATH (privileged) or /proc */
		if (geteuid() == 0 || access("/proc/self/fd", X_OK) == 0) return fd;
		close(fd);
		return -2;
	}
	if (saved == EOPNOTSUPP || saved == EISDIR || saved == EINVAL) return -2;
	errno = saved;
	return err_create(path);
}

int wout_create(struct wout *o, const char *path)
{
	o->path = path;
	o->named = false;
	o->fd = create_nameless(path);
	if (o->fd == -2) {
		o->named = true;
		o->fd = create_named(path);
	}
	return o->fd < 0 ? -1 : 0;
}

void wout_discard(struct wout *o)
{
	if (o->fd >= 0) close(o->fd);
	o->fd = -1;
	if (o->named) writer_cleanup_tmp();
}

/* ---- publication ------------------------------------------------------------ */

static void fsync_dir_of(const char *path)
{
	char d[PATH_MAX];   /* no allocation: the output is published, this must not fail for memory */
	if (snprintf(d, sizeof d, "%s", path) >= (int)sizeof d) return;   /* open() could not have made it */
	int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);   /* best effort: the name is already there */
		close(dfd);
	}
}

/* Gives the nameless file fd the name 'to' (never replacing one). */
static int link_fd(int fd, const char *to)
{
	if (linkat(fd, "", AT_FDCWD, to, AT_EMPTY_PATH) == 0) return 0;
	if (errno != EPERM && errno != ENOENT && errno != EINVAL) return -1;
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);   /* fits: 25 chars at most */
	return linkat(AT_FDCWD, proc, AT_FDCWD, to, AT_SYMLINK_FOLLOW);
}

/* --overwrite of a nameless file: link to a fresh "OUT.gen2prep-XXXXXX"
 * (registered for the signal handler before it exists), rename over OUT. */
static int link_then_rename(int fd, const char *path)
{
	if (strlen(path) + sizeof ".gen2prep-XXXXXX" > sizeof tmp_path)
		return err_set(E_USAGE, "output path too long");
	for (int tries = 0; tries < 100; tries++) {
		uint64_t r = 0;
		if (getrandom(&r, sizeof r, 0) != sizeof r) r = (uint64_t)getpid() * 1000003u + (uint64_t)tries;
		sigset_t old;
		block_signals(&old);
		snprintf(tmp_path, sizeof tmp_path, "%s.gen2prep-%06llx", path, (unsigned long long)(r & 0xffffff));   /* fits: length checked above */
		int l = link_fd(fd, tmp_path);
		int saved = errno;
		if (l == 0) tmp_active = 1;
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (l == 0) {
			if (rename(tmp_path, path) < 0) {
				err_errno(E_OUTPUT, "cannot rename the output to '%s'", path);
				writer_cleanup_tmp();
				return -1;
			}
			tmp_active = 0;
			return 0;
		}
		if (saved != EEXIST) {
			errno = saved;
			return err_errno(E_OUTPUT, "cannot give the output its name '%s'", path);
		}
	}
	return err_set(E_OUTPUT, "cannot find a free temporary name beside '%s'", path);
}

/* rename without replacing when !overwrite (RENAME_NOREPLACE closes the
 * race with another process creating OUT meanwhile). */
static int publish_named(const char *path, bool overwrite)
{
	if (!overwrite) {
		if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, path, RENAME_NOREPLACE) == 0) goto done;
		if (errno == EEXIST) return err_set(E_EXISTS, "output '%s' already exists", path);
		if (errno != EINVAL && errno != ENOSYS)
			return err_errno(E_OUTPUT, "cannot rename the output to '%s'", path);
		/* file system without RENAME_NOREPLACE: checked before, rename */
	}
	if (rename(tmp_path, path) < 0) return err_errno(E_OUTPUT, "cannot rename the output to '%s'", path);
done:
	tmp_active = 0;
	return 0;
}

int wout_publish(struct wout *o, bool overwrite)
{
	int r;
	if (o->named) {
		r = publish_named(o->path, overwrite);
	} else if (overwrite) {
		r = link_then_rename(o->fd, o->path);
	} else {
		r = link_fd(o->fd, o->path);
		if (r < 0 && errno == EEXIST) r = err_set(E_EXISTS, "output '%s' already exists", o->path);
		else if (r < 0) r = err_errno(E_OUTPUT, "cannot give the output its name '%s'", o->path);
	}
	if (r < 0) return -1;
	fsync_dir_of(o->path);
	return 0;
}

/* ---- the lock on OUT's name --------------------------------------------------- */

static int lock_fd = -1;
static char lock_key[80];   /* the abstract name, without its leading NUL */

/* "gen2prep-out:<dev>:<ino>:<sha256 of the base name, 128 bits>" */
static int lock_name(const char *path, char *out, size_t n)
{
	char *d = xstrdup(path), *b = d ? xstrdup(path) : NULL;
	if (!b) {
		free(d);
		return err_prefix("output name");
	}
	struct stat st;
	const char *dir = dirname(d);
	int r = stat(dir, &st);
	int saved = errno;
	const char *base = basename(b);
	/* a name the folder cannot hold fails now, not after the work */
	long name_max = r == 0 ? pathconf(dir, _PC_NAME_MAX) : -1;
	uint8_t h[32];
	struct sha256 s;
	sha256_init(&s);
	sha256_update(&s, base, strlen(base));
	sha256_final(&s, h);
	free(d);
	if (r < 0) {
		errno = saved;
		err_create(path);
		free(b);
		return -1;
	}
	if (name_max > 0 && strlen(base) > (size_t)name_max) {
		err_set(E_OUTPUT, "output name '%s' is longer than the %ld bytes its folder allows", base, name_max);
		free(b);
		return -1;
	}
	free(b);
	int k = snprintf(out, n, "gen2prep-out:%llx:%llx:", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	for (int i = 0; i < 16 && k + 2 < (int)n; i++) k += snprintf(out + k, n - k, "%02x", h[i]);   /* fits: k + 2 < n */
	return 0;
}

static socklen_t lock_addr(struct sockaddr_un *a, const char *key)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	size_t len = strlen(key);
	memcpy(a->sun_path + 1, key, len);   /* sun_path[0] = 0: abstract */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

/* The pid of the process holding key (0 if unknown). */
static long lock_holder(const char *key)
{
	struct sockaddr_un a;
	socklen_t len = lock_addr(&a, key);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	long pid = 0;
	if (s < 0) return 0;
	struct ucred cr;
	socklen_t cl = sizeof cr;
	if (connect(s, (struct sockaddr *)&a, len) == 0 && getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
		pid = cr.pid;
	close(s);
	return pid;
}

int writer_lock(const char *path)
{
	char key[sizeof lock_key];
	if (lock_name(path, key, sizeof key) < 0) return -1;
	if (lock_fd >= 0 && !strcmp(key, lock_key)) return 0;   /* ours already */
	writer_unlock();
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) return err_errno(E_OUTPUT, "cannot lock the output '%s' (socket)", path);
	struct sockaddr_un a;
	socklen_t len = lock_addr(&a, key);
	if (bind(s, (struct sockaddr *)&a, len) < 0) {
		int saved = errno;
		close(s);
		if (saved != EADDRINUSE) {
			errno = saved;
			return err_errno(E_OUTPUT, "cannot lock the output '%s'", path);
		}
		long pid = lock_holder(key);
		if (pid > 0)
			return err_set(E_OUTPUT, "output '%s' is being written by another gen2prep (process %ld): wait for it or choose another name", path, pid);
		return err_set(E_OUTPUT, "output '%s' is being written by another gen2prep: wait for it or choose another name", path);
	}
	listen(s, 4);   /* only so that a refused run can name us */
	lock_fd = s;
	snprintf(lock_key, sizeof lock_key, "%s", key);   /* fits: key[sizeof lock_key] */
	return 0;
}

void writer_unlock(void)
{
	if (lock_fd >= 0) close(lock_fd);
	lock_fd = -1;
	lock_key[0] = 0;
}

bool writer_locked(const char *path)
{
	char key[sizeof lock_key];
	if (lock_fd < 0 || lock_name(path, key, sizeof key) < 0) return false;
	return !strcmp(key, lock_key);
}

/* ---- small files written whole ------------------------------------------------ */

static int write_all_fd(int fd, const void *buf, size_t len, const char *path)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 && (errno == ENOSPC || errno == EDQUOT))
			return err_set(E_NOSPACE, "no space left on the device for '%s'", path);
		if (n <= 0) return err_errno(E_OUTPUT, "cannot write '%s'", path);
		p += n, len -= (size_t)n;
	}
	return 0;
}

int writer_save_buffer(const char *path, const void *buf, size_t len, bool overwrite, unsigned mode)
{
	struct wout o;
	if (wout_create(&o, path) < 0) return -1;
	int r = write_all_fd(o.fd, buf, len, path);
	if (r == 0 && mode && fchmod(o.fd, (mode_t)mode) < 0) r = err_errno(E_OUTPUT, "cannot set the mode of '%s'", path);
	if (r == 0 && fsync(o.fd) < 0) r = err_errno(E_OUTPUT, "cannot flush '%s'", path);
	if (r == 0) r = wout_publish(&o, overwrite);
	wout_discard(&o);
	return r;
}
