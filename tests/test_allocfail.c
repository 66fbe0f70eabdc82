/* test_allocfail - allocation-failure injection (issue 10), as wimlib's
 * tests do it: for N = 1, 2, ... the Nth allocation of one operation fails
 * (malloc, calloc, realloc, posix_memalign return NULL / ENOMEM) and the
 * operation must end cleanly: an error returned (or a success the library
 * recovered to), nothing leaked (LeakSanitizer, in the ASan build), the
 * input bytes unchanged, no output left (system_hive_apply's *out NULL).
 *
 * Each N runs in a forked child, so that one failure point cannot disturb
 * the next. gen2prep's own allocations go through lib/util.c's xmalloc,
 * which aborts with "gen2prep: out of memory" by design (DESIGN.md: nothing
 * sensible to do, and no half-written output can result: nothing is
 * written before the plan is complete and output goes to a temp file). A
 * child that stops that way is counted as "abort by design", not a failure;
 * so what the loop proves is that every allocation failure inside the
 * libraries (hivex, libfdisk, libvhdi, libntfs-3g, jansson, libc) reaches
 * our callers as an error they handle without leaking or crashing.
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
 * Each operation stops after ALLOCFAIL_SECONDS (default 15) and says so;
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/sparse_disk.h"
#include "bcd.h"
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

static bool should_fail(void)
{
	return armed && ++nalloc == fail_at;
}

void *malloc(size_t n)
{
	resolve();
	if (!real_malloc) return boot_alloc(n);
	if (should_fail()) { errno = ENOMEM; return NULL; }
	return real_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	resolve();
	if (!real_calloc) return boot_alloc(n * m);   /* arena is zeroed */
	if (should_fail()) { errno = ENOMEM; return NULL; }
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
	if (should_fail()) { errno = ENOMEM; return NULL; }
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
	if (should_fail()) return ENOMEM;
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
	FILE *f = b ? fopen("/dev/null", "w") : NULL;
	int pr = f ? bcd_print(b, f, NULL, NULL) : -1;
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
	return r < 0 ? 1 : 0;
}

static int op_hive(const struct input *in)
{
	static struct inspection ins;
	static struct plan p;
	memset(&ins, 0, sizeof ins);
	arm();
	windows_read_hives(in->data, in->len, NULL, 0, &ins);
	disarm();
	/* edits the plan would make for this hive (pure computation) */
	ins.table.type = PT_MBR;
	snprintf(p.edits[0].key, sizeof p.edits[0].key, "ControlSet001\\Services\\Ntfs");
	snprintf(p.edits[0].value, sizeof p.edits[0].value, "Start");
	p.edits[0].type = REG_DWORD_;
	snprintf(p.edits[1].key, sizeof p.edits[1].key, "MountedDevices");
	snprintf(p.edits[1].value, sizeof p.edits[1].value, "\\DosDevices\\C:");
	p.edits[1].type = REG_BINARY_;
	memcpy(p.edits[1].bin, "DMIO:ID:0123456789abcdef", 24);
	p.edits[1].bin_len = 24;
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 1;
	arm();
	int r = system_hive_apply(in->data, in->len, p.edits, 2, &out, &out_len);
	disarm();
	if (r < 0 && out) return 2;    /* a failed apply leaves no output */
	free(out);
	return r < 0 ? 1 : 0;
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
	return r < 0 ? 1 : 0;
}

/* ---- the loop --------------------------------------------------------------- */

enum { C_OK = 10, C_ERR, C_NOFAIL, C_LEAK, C_MODIFIED, C_BROKEN };

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

/* Runs op with allocation n failing in a child; returns the child's class
 * or -1 for "aborted by design (xmalloc)", -2 for a crash. */
static int run_one(int (*op)(const struct input *), const struct input *in, long n, int errfd)
{
	fflush(NULL);
	if (ftruncate(errfd, 0) < 0 || lseek(errfd, 0, SEEK_SET) < 0) return -2;
	pid_t pid = fork();
	if (pid < 0) return -2;
	if (pid == 0) {
		dup2(errfd, 2);
		uint8_t *copy = real_malloc(in->len ? in->len : 1);
		memcpy(copy, in->data, in->len);
		fail_at = n;
		int r = op(in);
		err_clear();
		if (r == 2) _exit(C_BROKEN);
		if (nalloc < n) _exit(C_NOFAIL);   /* fewer than n allocations: done */
		if (memcmp(copy, in->data, in->len)) _exit(C_MODIFIED);
		if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) _exit(C_LEAK);
		_exit(r ? C_ERR : C_OK);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0) return -2;
	char msg[8192] = "";
	ssize_t k = pread(errfd, msg, sizeof msg - 1, 0);
	if (k > 0) msg[k] = 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == C_LEAK) {
		fprintf(stderr, "--- child with allocation %ld failing leaked:\n%s\n", n, msg);
		if (library_leak(msg)) return -3;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) >= C_OK && WEXITSTATUS(st) <= C_BROKEN) return WEXITSTATUS(st);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(msg, "gen2prep: out of memory") &&
	    !strstr(msg, "Sanitizer"))
		return -1;
	fprintf(stderr, "--- child with allocation %ld failing: status 0x%x\n%s\n", n, st, msg);
	return library_defect(msg) ? -3 : -2;
}

static int loop(const char *name, int (*op)(const struct input *), const char *seed, long stride, long max)
{
	struct input in;
	if (!load(seed, &in)) return 1;
	int errfd = memfd_create("allocfail-stderr", 0);
	long points = 0, errors = 0, recovered = 0, by_design = 0, lib = 0, bad = 0;
	long n;
	const char *e = getenv("ALLOCFAIL_SECONDS");
	time_t until = time(NULL) + (e ? atol(e) : 15);
	bool timed_out = false;
	const char *from = getenv("ALLOCFAIL_FROM");   /* debugging: start at N */
	for (n = from ? atol(from) : 1; n <= max; n += (n < 200 ? 1 : stride)) {
		if (time(NULL) > until) { timed_out = true; break; }
		int c = run_one(op, &in, n, errfd);
		if (c == C_NOFAIL) break;
		points++;
		if (c == C_ERR) errors++;
		else if (c == C_OK) recovered++;
		else if (c == -1) by_design++;
		else if (c == -3 && !getenv("ALLOCFAIL_STRICT")) lib++;
		else {
			bad++;
			fprintf(stderr, "%s: allocation %ld: %s\n", name, n,
				c == C_LEAK ? "leak" : c == C_MODIFIED ? "input modified" :
				c == C_BROKEN ? "output left after an error" : "crash");
			if (bad > 5) break;
		}
	}
	printf("%s %s: %ld failure points (%s%ld allocations%s): %ld error returned, %ld recovered, "
	       "%ld xmalloc abort by design, %ld library defect, %ld bad\n", bad ? "not ok -" : "ok -", name, points,
	       timed_out ? "time limit reached at allocation " : "of ", n - 1,
	       stride > 1 ? ", every Nth past 200" : "", errors, recovered, by_design, lib, bad);
	close(errfd);
	real_free(in.data);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	resolve();
	/* LeakSanitizer must be on in the children; `make check` runs with
	 * detect_leaks=0 (ASAN_OPTIONS in Makefile.am): re-run once with it on. */
	if (__lsan_do_recoverable_leak_check && !getenv("ALLOCFAIL_LSAN")) {
		const char *o = getenv("ASAN_OPTIONS");
		char *opts = NULL;
		/* full stacks of allocations: library_leak() reads them */
		if (asprintf(&opts, "%s%sdetect_leaks=1:fast_unwind_on_malloc=0", o ? o : "", o && *o ? ":" : "") < 0)
			return 99;
		setenv("ASAN_OPTIONS", opts, 1);
		setenv("ALLOCFAIL_LSAN", "1", 1);
		execv("/proc/self/exe", argv);
		perror("test_allocfail: re-exec");
		return 99;
	}
	if (!__lsan_do_recoverable_leak_check)
		printf("# no LeakSanitizer in this build: leaks are not checked (the ASan build checks them)\n");
	const char *only = argc > 1 ? argv[1] : NULL;
	struct { const char *name; int (*op)(const struct input *); const char *seed; long stride; } ops[] = {
		{ "pe", op_pe, "pe/ntoskrnl-x64", 1 },
		{ "bcd", op_bcd, "bcd/bios-win7.BCD", 3 },
		{ "partition-mbr", op_partition, "partition/mbr-logicals", 1 },
		{ "partition-gpt", op_partition, "partition/gpt", 1 },
		{ "hive", op_hive, "hive/SYSTEM-win7-sp1", 1 },
		{ "disk-vhd", op_disk, "disk/vhd-dynamic", 1 },
		{ "disk-vhdx", op_disk, "disk/vhdx-dynamic", 1 },
		{ "inspect", op_inspect, "inspect/win7-sp1", 61 },
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (!only || !strcmp(only, ops[i].name))
			rc |= loop(ops[i].name, ops[i].op, ops[i].seed, ops[i].stride, 1000000);
	return rc;
}
