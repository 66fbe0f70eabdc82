/* test_allocfail - allocation-failure injection (issue 10), as wimlib's
 * tests do it: for N = 1, 2, ... the Nth allocation of one operation fails
 * (malloc, calloc, realloc, posix_memalign return NULL / ENOMEM) and the
 * operation must end cleanly: an error returned (or a success the library
 * recovered to), nothing leaked (LeakSanitizer, in the ASan build), the
 * input bytes unchanged, no output left (system_hive_apply's *out NULL).
 *
 * Each N runs in a forked child, so that one failure point cannot disturb
 * the next. gen2prep's own allocations (lib/util.c's xmalloc & co.) return
 * NULL with E_NOMEM like the libraries' (hivex, libfdisk, libvhdi,
 * libntfs-3g, jansson, libc): any abort is a failure of the test, so the
 * loop proves that every allocation failure, ours or a library's, reaches
 * the caller as an error handled without leaking or crashing.
 *
 * The allocator functions below replace libc's (and, under ASan, are
 * called instead of the sanitizer's, which they forward to through
 * dlsym(RTLD_NEXT)). Operations, on the committed fuzz seeds:
 *   pe       pe_parse of a mkpe ntoskrnl
 *   bcd      bcd_open + bcd_to_json + bcd_print of mkfixture's BIOS store
 *            (every 3rd N past 200)
 *   partition partition_read of an MBR with logical partitions and of a GPT
 *   hive     windows_read_hives + system_hive_apply of the win7 SYSTEM hive
 *   disk     disk_open + reads of a dynamic VHD and a dynamic VHDX
 *   inspect  windows_inspect of the win7-sp1 disk (every 61st N past 200:
 *            ntfs-3g makes thousands of allocations)
 * and, on a whole image file named by ALLOCFAIL_IMAGE (tests/allocfail.sh
 * gives it the mkfixture win7-sp1 VHDX), only when named on the command line:
 *   inspect-image  convert_run as `inspect` runs it (dry run, no OUT)
 *   convert        convert_run to OUT.vhdx in a fresh folder: after every
 *                  failed run the folder is empty (no OUT, no temporary
 *                  file: TMPDIR points there too), the image unchanged
 *                  (size, mtime, ctime after each run); a run that
 *                  succeeded wrote OUT byte for byte as the run without a
 *                  failure did
 *   These two count the allocations of a whole run first (M) and then fail
 *   ALLOCFAIL_POINTS (default 40) allocations spread evenly over 1..M,
 *   starting at ALLOCFAIL_OFFSET (default 1); ALLOCFAIL_STRIDE=1 fails
 *   every one of them (the long sweep: set ALLOCFAIL_SECONDS too).
 * A run that succeeds although an allocation failed must give the result
 * of the run where nothing failed (ops that leave a digest: partition,
 * hive, inspect, inspect-image, convert). Each operation stops after
 * ALLOCFAIL_SECONDS (default 15) and says so;
 * ALLOCFAIL_STRICT=1 fails library defects too (see library_defect).
 * Prints one line per operation; exit 1 when any child crashed in our
 * code, leaked, changed its input or left output. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/sparse_disk.h"
#include "bcd.h"
#include "convert.h"
#include "sha256.h"
#include "hive.h"
#include "partition.h"
#include "pe.h"
#include "plan.h"
#include "system_hive.h"
#include "util.h"
#include "windows.h"

/* ---- the failing allocator ---------------------------------------------- */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);

static long fail_at;          /* allocation number that fails; 0 = none */
static long nalloc;           /* allocations counted since armed */
static bool armed;
/* What a child tells the parent (MAP_SHARED): its allocation count and a
 * digest of what a successful whole-image run produced. */
struct shared { long nalloc; uint8_t digest[32]; int result, code; char msg[200]; char failed_in[128]; };
static struct shared *shared;
#define shared_nalloc (&shared->nalloc)

/* dlsym may allocate before the real functions are known: a small arena. */
static char boot_arena[65536];
static size_t boot_used;

static void *boot_alloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (boot_used + n > sizeof boot_arena) return NULL;
	void *p = boot_arena + boot_used;
	boot_used += n;
	return p;
}

static bool in_boot(const void *p)
{
	return (const char *)p >= boot_arena && (const char *)p < boot_arena + sizeof boot_arena;
}

static void resolve(void)
{
	static bool busy;
	if (real_malloc || busy) return;
	busy = true;
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
	busy = false;
}

void __sanitizer_print_stack_trace(void) __attribute__((weak));

static bool main_exe(const char *f) { return strstr(f, "test_allocfail") != NULL; }

/* The object whose code asked for the failing allocation (the caller of
 * malloc & co. above: this executable holds gen2prep's code, linked in). */
static void note_caller(const void *ret)
{
	Dl_info di;
	if (shared && dladdr(ret, &di) && di.dli_fname)
		snprintf(shared->failed_in, sizeof shared->failed_in, "%s", main_exe(di.dli_fname) ? "gen2prep" : di.dli_fname);
}

static bool should_fail(void)
{
	bool f = armed && ++nalloc == fail_at;
	/* debugging: ALLOCFAIL_TRACE=1 prints where the failing allocation is */
	if (f && getenv("ALLOCFAIL_TRACE") && __sanitizer_print_stack_trace) __sanitizer_print_stack_trace();
	return f;
}

void *malloc(size_t n)
{
	resolve();
	if (!real_malloc) return boot_alloc(n);
	if (should_fail()) { note_caller(__builtin_return_address(0)); errno = ENOMEM; return NULL; }
	return real_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	resolve();
	if (!real_calloc) return boot_alloc(n * m);   /* arena is zeroed */
	if (should_fail()) { note_caller(__builtin_return_address(0)); errno = ENOMEM; return NULL; }
	return real_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	resolve();
	if (in_boot(p)) {
		void *q = malloc(n);
		if (q) memcpy(q, p, n);   /* arena blocks are never reused: reading past is harmless */
		return q;
	}
	if (should_fail()) { note_caller(__builtin_return_address(0)); errno = ENOMEM; return NULL; }
	return real_realloc(p, n);
}

void free(void *p)
{
	if (!p || in_boot(p)) return;
	resolve();
	real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	resolve();
	if (should_fail()) { note_caller(__builtin_return_address(0)); return ENOMEM; }
	return real_posix_memalign(out, align, n);
}

/* LeakSanitizer, when linked in (ASan builds). */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

/* ---- operations ----------------------------------------------------------- */

struct input { uint8_t *data; size_t len; };

static bool load(const char *rel, struct input *in)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	snprintf(path, sizeof path, "%s/fuzz/corpus/%s", top ? top : "..", rel);
	FILE *f = fopen(path, "rb");
	if (!f) { fprintf(stderr, "test_allocfail: cannot open %s\n", path); return false; }
	fseek(f, 0, SEEK_END);
	in->len = (size_t)ftell(f);
	rewind(f);
	in->data = real_malloc(in->len ? in->len : 1);
	bool ok = fread(in->data, 1, in->len, f) == in->len;
	fclose(f);
	return ok;
}

/* Each operation: arm() right before the call under test, disarm() after,
 * clean up, return 0 success / 1 error returned / 2 an invariant broken. */
static void arm(void) { nalloc = 0; armed = true; }
static void digest(const void *p, size_t n)   /* of a successful result, for the parent */
{
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, p, n);
	sha256_final(&h, shared->digest);
}
static void disarm(void) { armed = false; }

static int op_pe(const struct input *in)
{
	arm();
	struct pe *pe = pe_parse(in->data, in->len);
	disarm();
	if (!pe) return 1;
	pe_free(pe);
	return 0;
}

static int op_bcd(const struct input *in)
{
	arm();
	struct bcd *b = bcd_open(in->data, in->len);
	json_t *j = b ? bcd_to_json(b, NULL, NULL) : NULL;
	if (b && !j && err_code() == E_OK) err_set(E_INTERNAL, "bcd_to_json: NULL, no error set");
	FILE *f = b && j ? fopen("/dev/null", "w") : NULL;
	if (b && j && !f) err_errno(errno == ENOMEM ? E_NOMEM : E_IO, "test: fopen /dev/null");
	int pr = f ? bcd_print(b, f, NULL, NULL) : -1;
	if (f && pr < 0 && err_code() == E_OK) err_set(E_INTERNAL, "bcd_print: -1, no error set");
	disarm();
	if (f) fclose(f);
	json_decref(j);
	if (b) bcd_free(b);
	return b && j && pr == 0 ? 0 : 1;
}

static int op_partition(const struct input *in)
{
	static struct ptable t;
	struct sparse_disk s = {0};
	if (sparse_disk_open(&s, in->data, in->len, 64ULL << 20) < 0) return 2;
	arm();
	int r = partition_read(s.o, &t);
	disarm();
	sparse_disk_close(&s);
	if (r == 0) digest(&t, sizeof t);   /* the table read (memset first by partition_read) */
	return r < 0 ? 1 : 0;
}

static int op_hive(const struct input *in)
{
	static struct inspection ins;
	static struct plan_value_edit edits[2];
	memset(&ins, 0, sizeof ins);
	/* windows_inspect fails when E_NOMEM was set on the way (a value
	 * read as absent); windows_read_hives is its reading of the hives */
	unsigned long nomem = err_nomem_count();
	arm();
	windows_read_hives(in->data, in->len, NULL, 0, &ins);
	disarm();
	bool lost = err_nomem_count() != nomem;
	/* edits the plan would make for this hive (pure computation) */
	ins.table.type = PT_MBR;
	snprintf(edits[0].key, sizeof edits[0].key, "ControlSet001\\Services\\Ntfs");
	snprintf(edits[0].value, sizeof edits[0].value, "Start");
	edits[0].type = REG_DWORD_;
	snprintf(edits[1].key, sizeof edits[1].key, "MountedDevices");
	snprintf(edits[1].value, sizeof edits[1].value, "\\DosDevices\\C:");
	edits[1].type = REG_BINARY_;
	memcpy(edits[1].bin, "DMIO:ID:0123456789abcdef", 24);
	edits[1].bin_len = 24;
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 1;
	arm();
	int r = system_hive_apply(in->data, in->len, edits, 2, &out, &out_len);
	disarm();
	if (r < 0 && out) return 2;    /* a failed apply leaves no output */
	/* what was read, against the run where nothing failed. Not the bytes
	 * written: when iconv_open fails inside hivex_node_set_values, hivex
	 * stores the value name in another (valid) form - different bytes,
	 * the same values, which system_hive_apply reads back and checks */
	if (r == 0) digest(&ins, sizeof ins);
	free(out);
	if (lost) err_set(E_NOMEM, "out of memory while reading the hive");
	return r < 0 || lost ? 1 : 0;
}

static int op_disk(const struct input *in)
{
	struct sparse_disk s = {0};
	uint8_t buf[4096];
	arm();
	int r = sparse_image_open(&s, in->data, in->len, 64ULL << 20);
	if (r == 0) r = disk_read(s.d, buf, sizeof buf, 0);
	disarm();
	sparse_disk_close(&s);
	return r < 0 ? 1 : 0;
}

static int op_inspect(const struct input *in)
{
	static struct inspection ins;
	struct sparse_disk s = {0};
	if (sparse_image_open(&s, in->data, in->len, 1ULL << 30) < 0) return 2;
	arm();
	int r = windows_inspect(s.o, &ins);
	disarm();
	sparse_disk_close(&s);
	/* what it found, to compare with the run where nothing failed (its
	 * pointers point into itself or at string constants: the same in
	 * every child) */
	if (r == 0) digest(&ins, sizeof ins);
	const char *dump = getenv("ALLOCFAIL_DUMP");   /* debugging: the inspection's bytes, DUMP.N */
	if (dump && r == 0) {
		char p[4200];
		snprintf(p, sizeof p, "%s.%ld", dump, fail_at);
		FILE *f = fopen(p, "wb");
		if (f) { fwrite(&ins, sizeof ins, 1, f); fclose(f); }
	}
	return r < 0 ? 1 : 0;
}

/* The whole-image operations: the image, a folder for OUT and TMPDIR. */
static const char *image_path;
static char out_dir[4096];

static int op_inspect_image(const struct input *in)
{
	static struct convert_report r;
	memset(&r, 0, sizeof r);
	struct convert_opts co = { .in = image_path, .dry_run = true, .keep_input = true };
	arm();
	int rc = convert_run(&co, &r);
	disarm();
	if (rc == 0) {   /* what inspect would print, to compare with the run where nothing failed */
		json_t *j = convert_report_json(&r);
		char *text = j ? json_dumps(j, JSON_SORT_KEYS) : NULL;
		struct sha256 h;
		sha256_init(&h);
		if (text) sha256_update(&h, text, strlen(text));
		sha256_final(&h, shared->digest);
		free(text);
		json_decref(j);
	}
	bool ok = rc == 0 && plan_ok(&r.plan);
	convert_report_free(&r);
	return ok ? 0 : 1;
}

static int op_convert(const struct input *in)
{
	static struct convert_report r;
	char out[4200];
	snprintf(out, sizeof out, "%s/out.vhdx", out_dir);
	memset(&r, 0, sizeof r);
	struct convert_opts co = { .in = image_path, .out = out };
	co.plan.out_path = out;
	arm();
	int rc = convert_run(&co, &r);
	disarm();
	convert_report_free(&r);
	return rc < 0 ? 1 : 0;
}

/* Names of what is in out_dir, removed (a success leaves OUT); the count. */
static int out_dir_clear(char *names, size_t n)
{
	DIR *d = opendir(out_dir);
	int count = 0;
	names[0] = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
		size_t used = strlen(names);
		snprintf(names + used, n - used, "%s%s", count ? ", " : "", e->d_name);
		char p[4400];
		snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name);
		unlink(p);
		count++;
	}
	if (d) closedir(d);
	return count;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Same bytes? (OUT of a run that recovered against the baseline's.) */
static bool files_equal(const char *a, const char *b)
{
	static uint8_t x[1 << 20], y[1 << 20];
	FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
	bool same = f && g;
	while (same) {
		size_t k = fread(x, 1, sizeof x, f), l = fread(y, 1, sizeof y, g);
		same = k == l && !memcmp(x, y, k);
		if (!k) break;
	}
	if (f) fclose(f);
	if (g) fclose(g);
	return same;
}

/* OUT of the run where nothing failed, kept beside out_dir; whether the
 * last run's OUT had the same bytes (-1: it wrote none). */
static char baseline_out[4300];
static int out_same = -1;

/* ---- the loop --------------------------------------------------------------- */

enum { C_OK = 10, C_ERR, C_NOFAIL, C_LEAK, C_MODIFIED, C_BROKEN, C_LEFT, C_DIFFERENT };

/* A crash inside a library's own out-of-memory path, not in ours: the
 * first stack frame of the report past the sanitizer and the allocator
 * wrappers above is in a shared library other than libc, or an assertion
 * of a library's source tree fired. Seen (and why they are not ours):
 *  - hivex 1.3.23 allocate_page(): when realloc of the bitmap fails it frees
 *    the already moved page array and keeps the stale h->addr, which
 *    hivex_close frees again (double free; lib/write.c, still so upstream);
 *  - libfdisk 2.38 fdisk_new_context(): on a failed allocation its cleanup
 *    asserts in fdisk_deinit_label(), and it strdup()s a NULL name.
 * Counted and printed, not failed: a process out of memory stops there,
 * as xmalloc stops it, before anything is written. */
static bool library_defect(const char *msg)
{
	if (strstr(msg, "Assertion") && strstr(msg, ": lib") && strstr(msg, "/src/")) return true;
	const char *l = strstr(msg, "    #0 ");
	while (l && !strncmp(l, "    #", 5)) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		char line[512];
		snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), l);
		if (!strstr(line, "libsanitizer") && !strstr(line, "libasan") && !strstr(line, "test_allocfail.c"))
			return (strstr(line, "(/lib/") || strstr(line, "(/usr/lib/")) && !strstr(line, "libc.so");
		l = e ? e + 1 : NULL;
	}
	return false;
}

/* Leaks made inside a library's failing call, which it should have freed
 * (every direct leak's allocation stack passes through one of these):
 *  - libntfs-3g ntfs_mft_load(): when ntfs_inode_allocate() fails, the
 *    MFT record buffer it allocated just before is not freed (volume.c);
 *  - libntfs-3g ntfs_device_mount(): when an allocation fails after it
 *    opened system inodes / attributes ($MFT, $MFTMirr, $Volume...), its
 *    error path leaves them open (seen: ntfs_inode_open, ntfs_attr_open
 *    under ntfs_device_mount). A volume we mounted and failed to unmount
 *    would leak under ntfs_device_mount too, but the harnesses (fuzz_inspect
 *    with LeakSanitizer) and the success runs here catch that. */
static bool library_leak(const char *msg)
{
	static const char *const known[] = { "in ntfs_mft_load ", "in ntfs_volume_startup ", "in ntfs_device_mount " };
	const char *l = strstr(msg, "Direct leak of");
	if (!l) return false;
	while (l) {
		const char *next = strstr(l + 1, "Direct leak of");
		const char *ind = strstr(l + 1, "Indirect leak of");
		const char *end = next && (!ind || next < ind) ? next : ind;
		bool found = false;
		for (size_t i = 0; i < sizeof known / sizeof *known && !found; i++) {
			const char *k = strstr(l, known[i]);
			found = k && (!end || k < end);
		}
		if (!found) return false;
		l = next;
	}
	return true;
}

/* A mount refused with ENOENT after an allocation inside libntfs-3g
 * failed: ntfs_device_mount -> ntfs_open_secure -> ntfs_pathname_to_inode
 * ("$Secure"), which sets errno ENOENT whenever ntfs_inode_lookup_by_name
 * fails, ENOMEM included (dir.c, 2022.10.3: "err = ENOENT" after the
 * lookup). gen2prep sees only ENOENT (E_FORMAT "cannot mount"); counted and
 * named, not failed, like the other library defects (ALLOCFAIL_STRICT). */
static bool ntfs_enoent(const struct shared *sh)
{
	/* EIO too: a read inside the mount that lost its buffer comes back
	 * short, and libntfs-3g calls a short read an I/O error (seen at
	 * allocation 2446 of a win7-sp1 convert, the failure inside the
	 * library itself) */
	return strstr(sh->failed_in, "libntfs-3g") && (strstr(sh->msg, "cannot mount NTFS volume: No such file or directory") ||
						      strstr(sh->msg, "cannot mount NTFS volume: Input/output error"));
}

struct op {
	const char *name;
	int (*fn)(const struct input *);
	const char *seed;      /* fuzz/corpus/..., NULL for the whole-image ops */
	long stride;           /* past N = 200; 0: ALLOCFAIL_POINTS spread over 1..M */
};

/* Runs op with allocation n failing in a child (n = 0: none, counting);
 * returns the child's class or -2 for a crash, -3 a library defect. */
static int run_one(const struct op *op, const struct input *in, long n, int errfd)
{
	fflush(NULL);
	if (ftruncate(errfd, 0) < 0 || lseek(errfd, 0, SEEK_SET) < 0) return -2;
	struct stat before, after;
	if (image_path && stat(image_path, &before) < 0) return -2;
	pid_t pid = fork();
	if (pid < 0) return -2;
	if (pid == 0) {
		dup2(errfd, 2);
		if (image_path) setenv("TMPDIR", out_dir, 1);
		uint8_t *copy = real_malloc(in->len ? in->len : 1);
		if (in->len) memcpy(copy, in->data, in->len);
		fail_at = n;
		int r = op->fn(in);
		shared->result = r;
		shared->code = err_code();
		snprintf(shared->msg, sizeof shared->msg, "%s", err_msg());
		err_clear();
		*shared_nalloc = nalloc;
		if (r == 2) _exit(C_BROKEN);
		if (n && nalloc < n) _exit(C_NOFAIL);   /* fewer than n allocations: done */
		if (in->len && memcmp(copy, in->data, in->len)) _exit(C_MODIFIED);
		if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) _exit(C_LEAK);
		_exit(r ? C_ERR : C_OK);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0) return -2;
	char msg[16384] = "";
	ssize_t k = pread(errfd, msg, sizeof msg - 1, 0);
	if (k > 0) msg[k] = 0;
	if (image_path) {
		char left[1024], out[4200];
		snprintf(out, sizeof out, "%s/out.vhdx", out_dir);
		out_same = -1;
		if (access(out, F_OK) == 0) {
			if (n == 0) rename(out, baseline_out);
			else out_same = files_equal(out, baseline_out);
		}
		int nleft = out_dir_clear(left, sizeof left);
		/* a success leaves OUT; one that leaked is reported as a leak below */
		bool ok_run = WIFEXITED(st) && (WEXITSTATUS(st) == C_OK || WEXITSTATUS(st) == C_NOFAIL ||
						WEXITSTATUS(st) == C_LEAK);
		if (nleft && !ok_run && n) {
			fprintf(stderr, "--- child with allocation %ld failing (status 0x%x) left %s in %s\n", n, st, left,
				out_dir);
			return C_LEFT;
		}
		if (stat(image_path, &after) < 0 || !same_stat(&before, &after)) return C_MODIFIED;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == C_LEAK) {
		fprintf(stderr, "--- child with allocation %ld failing leaked:\n%s\n", n, msg);
		if (library_leak(msg)) return -3;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) >= C_OK && WEXITSTATUS(st) <= C_DIFFERENT) return WEXITSTATUS(st);
	fprintf(stderr, "--- child with allocation %ld failing: status 0x%x\n%s\n", n, st, msg);
	return library_defect(msg) ? -3 : -2;
}

/* The next N: every one up to 200 then every stride-th; for the
 * whole-image ops (stride 0) ALLOCFAIL_POINTS spread over 1..total. */
static long next_n(long n, long stride, long total)
{
	if (stride) return n + (n < 200 ? 1 : stride);
	const char *e = getenv("ALLOCFAIL_STRIDE"), *p = getenv("ALLOCFAIL_POINTS");
	long step = e ? atol(e) : total / (p ? atol(p) : 40);
	return n + (step > 0 ? step : 1);
}

static int loop(const struct op *op, long max)
{
	struct input in = {0};
	if (op->seed && !load(op->seed, &in)) return 1;
	int errfd = memfd_create("allocfail-stderr", 0);
	long points = 0, errors = 0, recovered = 0, lib = 0, bad = 0, total = 0, not_nomem = 0, lib_diff = 0, ntfs_noent = 0;
	uint8_t want[32];   /* the whole-image result where nothing failed */
	const char *e = getenv("ALLOCFAIL_SECONDS");
	time_t start = time(NULL), until = start + (e ? atol(e) : 15);
	bool timed_out = false;
	const char *from = getenv(op->seed ? "ALLOCFAIL_FROM" : "ALLOCFAIL_OFFSET");   /* start at N */
	if (op->seed) {   /* the result where nothing fails (ops that leave a digest) */
		memset(shared->digest, 0, 32);
		if (run_one(op, &in, 0, errfd) != C_OK) {
			printf("not ok - %s: the run without a failing allocation did not succeed\n", op->name);
			close(errfd);
			return 1;
		}
		memcpy(want, shared->digest, 32);
	} else {
		/* a whole run first: how many allocations; it leaks nothing */
		memset(shared->digest, 0, 32);
		shared->result = -1;
		int c = run_one(op, &in, 0, errfd);
		total = *shared_nalloc;
		memcpy(want, shared->digest, 32);
		if (c != C_OK) {
			printf("not ok - %s: the run without a failing allocation did not succeed (class %d)\n", op->name, c);
			close(errfd);
			return 1;
		}
		max = total;
		until = time(NULL) + (e ? atol(e) : 15);   /* the failure points have the whole time */
	}
	long n;
	for (n = from ? atol(from) : 1; n <= max; n = next_n(n, op->stride, total)) {
		if (time(NULL) > until) { timed_out = true; break; }
		memset(shared->digest, 0, 32);
		shared->result = -1;
		shared->failed_in[0] = 0;
		int c = run_one(op, &in, n, errfd);
		if (c == C_NOFAIL) break;
		/* a run that succeeded although an allocation failed must have
		 * produced what the run without a failure did (the library
		 * recovered), not something else (a detail lost to the failure) */
		bool succeeded = c == C_OK;
		bool same = op->fn == op_convert ? out_same == 1 : !memcmp(shared->digest, want, 32);
		if (succeeded && !same && strcmp(shared->failed_in, "gen2prep") && !getenv("ALLOCFAIL_STRICT")) {
			/* a library went on past its own failed allocation and
			 * told nobody (errno reset, no error): counted, named */
			printf("# %s: allocation %ld failed in %s, which went on without an error: a different result\n",
			       op->name, n, shared->failed_in);
			lib_diff++;
		} else if (succeeded && !same) {
			fprintf(stderr, "%s: allocation %ld failed and the run succeeded with a different result (class %d, result %d)\n", op->name, n, c, shared->result);
			char msg[8192] = "";
			ssize_t k = pread(errfd, msg, sizeof msg - 1, 0);
			if (k > 0) { msg[k] = 0; fprintf(stderr, "%s\n", msg); }
			c = C_DIFFERENT;
		} else if (!op->seed && c == C_OK) {
			printf("# %s: allocation %ld failed, the run recovered to the same result\n", op->name, n);
		}
		points++;
		bool error_run = c == C_ERR;
		/* the error of a run out of memory says so (exit 1), it is not
		 * a damaged input (exit 3) or a blocker (exit 4) */
		if (error_run && shared->code != E_NOMEM && ntfs_enoent(shared) && !getenv("ALLOCFAIL_STRICT")) {
			printf("# %s: allocation %ld failed in %s, whose mount then failed with ENOENT or EIO\n", op->name, n,
			       shared->failed_in);
			ntfs_noent++;
		} else if (error_run && shared->code != E_NOMEM) {
			not_nomem++;
			if (getenv("ALLOCFAIL_VERBOSE"))
				printf("# %s: allocation %ld (in %s): error code %d: %s\n", op->name, n, shared->failed_in, shared->code, shared->msg);
		}
		if (error_run) errors++;
		else if (succeeded && c != C_DIFFERENT) recovered++;   /* (lib_diff ones included) */
		else if (c == -3 && !getenv("ALLOCFAIL_STRICT")) lib++;
		else {
			bad++;
			fprintf(stderr, "%s: allocation %ld: %s\n", op->name, n,
				c == C_LEAK ? "leak" : c == C_MODIFIED ? "input modified" :
				c == C_BROKEN ? "output left after an error" : c == C_LEFT ? "file left in OUT's folder" :
				c == C_DIFFERENT ? "a different result" :
				c == -1 ? "abort" : "crash");
			if (bad > 5) break;
		}
	}
	if (!op->seed) unlink(baseline_out);
	printf("%s %s: %ld failure points (%s%ld allocations%s) in %ld s: %ld error returned, %ld recovered, "
	       "%ld library defect, %ld bad; %ld errors not E_NOMEM; "
	       "%ld recovered by a library to a different result; %ld mount failures libntfs-3g reported as ENOENT\n",
	       bad ? "not ok -" : "ok -",
	       op->name, points, timed_out ? "time limit reached at allocation " : "of ",
	       timed_out ? n : op->seed ? n - 1 : total, op->seed ? (op->stride > 1 ? ", every Nth past 200" : "") : ", spread evenly",
	       (long)(time(NULL) - start), errors, recovered, lib, bad, not_nomem, lib_diff, ntfs_noent);
	close(errfd);
	if (in.data) real_free(in.data);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	resolve();
	shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) return 99;
	/* LeakSanitizer must be on in the children; `make check` runs with
	 * detect_leaks=0 (ASAN_OPTIONS in Makefile.am): re-run once with it on. */
	if (__lsan_do_recoverable_leak_check && !getenv("ALLOCFAIL_LSAN")) {
		const char *o = getenv("ASAN_OPTIONS");
		char *opts = NULL;
		/* full stacks of allocations: library_leak() reads them; not for
		 * the whole-image ops alone (tens of thousands of allocations a
		 * run: slow unwinding would triple the time of each) */
		bool seeded = argc < 2;
		for (int a = 1; a < argc; a++) seeded |= strcmp(argv[a], "convert") && strcmp(argv[a], "inspect-image");
		if (asprintf(&opts, "%s%sdetect_leaks=1%s", o ? o : "", o && *o ? ":" : "",
			     seeded ? ":fast_unwind_on_malloc=0" : "") < 0)
			return 99;
		setenv("ASAN_OPTIONS", opts, 1);
		setenv("ALLOCFAIL_LSAN", "1", 1);
		execv("/proc/self/exe", argv);
		perror("test_allocfail: re-exec");
		return 99;
	}
	if (!__lsan_do_recoverable_leak_check)
		printf("# no LeakSanitizer in this build: leaks are not checked (the ASan build checks them)\n");
	static const struct op ops[] = {
		{ "pe", op_pe, "pe/ntoskrnl-x64", 1 },
		{ "bcd", op_bcd, "bcd/bios-win7.BCD", 3 },
		{ "partition-mbr", op_partition, "partition/mbr-logicals", 1 },
		{ "partition-gpt", op_partition, "partition/gpt", 1 },
		{ "hive", op_hive, "hive/SYSTEM-win7-sp1", 1 },
		{ "disk-vhd", op_disk, "disk/vhd-dynamic", 1 },
		{ "disk-vhdx", op_disk, "disk/vhdx-dynamic", 1 },
		{ "inspect", op_inspect, "inspect/win7-sp1", 61 },
		{ "inspect-image", op_inspect_image, NULL, 0 },
		{ "convert", op_convert, NULL, 0 },
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		bool named = argc < 2;
		for (int a = 1; a < argc; a++) named |= !strcmp(argv[a], ops[i].name);
		if (!named || (!ops[i].seed && argc < 2)) continue;   /* whole-image ops: only when named */
		if (!ops[i].seed) {
			image_path = getenv("ALLOCFAIL_IMAGE");
			const char *tmp = getenv("ALLOCFAIL_OUTDIR");
			if (!image_path || !tmp) {
				printf("not ok - %s: needs ALLOCFAIL_IMAGE and ALLOCFAIL_OUTDIR\n", ops[i].name);
				rc = 1;
				continue;
			}
			snprintf(out_dir, sizeof out_dir, "%s", tmp);
			snprintf(baseline_out, sizeof baseline_out, "%s.baseline.vhdx", tmp);
		}
		rc |= loop(&ops[i], 1000000);
		image_path = NULL;
	}
	return rc;
}
