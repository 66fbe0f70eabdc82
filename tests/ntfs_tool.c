/* ntfs_tool - drives lib/ntfs.c for tests/ntfs.sh.
 *
 *   ntfs_tool [--offset B] [--size B] [--rw] [--dump OUT] IMAGE CMD ARGS...
 *   ntfs_tool ... IMAGE -        (commands from stdin, one per line)
 *
 * IMAGE is opened with disk_open (read-only) under an overlay; with --rw the
 * volume is mounted read-write, writes go to the overlay, and --dump writes
 * the volume region [offset, offset+size) of the overlay to OUT after
 * unmounting, for independent checkers (ntfsls, ntfscat, ntfsinfo).
 * Commands: probe | stat P | real P | cat P | ls P | put P LOCAL | write P TEXT | mkdir P
 */
#include "disk.h"
#include "ntfs.h"
#include "overlay.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ntfs_vol *vol;
static struct overlay *ov;
static uint64_t voff, vsize;

static int fail(void) { fprintf(stderr, "ntfs_tool: %s\n", err_msg()); return -1; }

static int read_local(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) return err_errno(E_IO, "%s", path);
	size_t cap = 1 << 16, n;
	*len = 0;
	*buf = xmalloc(cap);
	while ((n = fread(*buf + *len, 1, cap - *len, f)) > 0) {
		*len += n;
		if (*len == cap) *buf = xrealloc(*buf, cap *= 2);
	}
	fclose(f);
	return 0;
}

static int run(int argc, char **argv)
{
	const char *c = argv[0];
	if (!strcmp(c, "probe") && argc == 1) {
		struct ntfs_probe p;
		if (ntfs_probe(ov, voff, vsize, &p)) return fail();
		printf("ntfs=%d bitlocker=%d dirty=%d hibernated=%d label=%s serial=%016llx\n", p.is_ntfs,
		       p.bitlocker, p.dirty, p.hibernated, p.label, (unsigned long long)p.serial);
		return 0;
	}
	if (!vol) { err_set(E_USAGE, "volume not mounted"); return fail(); }
	if (!strcmp(c, "stat") && argc == 2) {
		bool d = false; uint64_t sz = 0;
		int r = ntfs_stat(vol, argv[1], &d, &sz);
		if (r < 0) return fail();
		if (r == 0) printf("absent\n"); else printf("%s %llu\n", d ? "dir" : "file", (unsigned long long)sz);
		return 0;
	}
	if (!strcmp(c, "real") && argc == 2) {
		char *r = ntfs_real_path(vol, argv[1]);
		printf("%s\n", r ? r : "(absent)");
		free(r);
		return 0;
	}
	if (!strcmp(c, "cat") && argc == 2) {
		uint8_t *d; size_t n;
		if (ntfs_read_file(vol, argv[1], 64u << 20, &d, &n)) return fail();
		fwrite(d, 1, n, stdout);
		free(d);
		return 0;
	}
	if (!strcmp(c, "ls") && argc == 2) {
		struct ntfs_dirent *e;
		int n = ntfs_list(vol, argv[1], &e);
		if (n < 0) return fail();
		for (int i = 0; i < n; i++) printf("%s%s %llu\n", e[i].name, e[i].is_dir ? "/" : "", (unsigned long long)e[i].size);
		free(e);
		return 0;
	}
	if (!strcmp(c, "put") && argc == 3) {
		uint8_t *d = NULL; size_t n = 0;
		if (read_local(argv[2], &d, &n)) return fail();
		int r = ntfs_write_file(vol, argv[1], d, n);
		free(d);
		return r ? fail() : 0;
	}
	if (!strcmp(c, "write") && argc == 3)
		return ntfs_write_file(vol, argv[1], argv[2], strlen(argv[2])) ? fail() : 0;
	if (!strcmp(c, "mkdir") && argc == 2)
		return ntfs_mkdir(vol, argv[1]) ? fail() : 0;
	err_set(E_USAGE, "unknown command or arguments: %s", c);
	return fail();
}

static int run_line(char *line)
{
	char *argv[3];
	int argc = 0;
	line[strcspn(line, "\r\n")] = 0;
	for (char *save = NULL, *t = strtok_r(line, " \t", &save); t && argc < 3; t = strtok_r(NULL, " \t", &save))
		argv[argc++] = t;
	return argc ? run(argc, argv) : 0;
}

static int dump(const char *out)
{
	FILE *f = fopen(out, "wb");
	if (!f) return err_errno(E_IO, "%s", out);
	uint8_t *buf = xmalloc(1 << 20);
	for (uint64_t done = 0; done < vsize;) {
		size_t n = vsize - done < (1 << 20) ? (size_t)(vsize - done) : (1 << 20);
		if (overlay_read(ov, buf, n, voff + done) || fwrite(buf, 1, n, f) != n) {
			free(buf); fclose(f);
			return err_set(E_IO, "dump failed");
		}
		done += n;
	}
	free(buf);
	return fclose(f) ? err_errno(E_IO, "%s", out) : 0;
}

int main(int argc, char **argv)
{
	bool rw = false;
	const char *dump_to = NULL;
	int i = 1;
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--rw")) rw = true;
		else if (!strcmp(argv[i], "--offset") && i + 1 < argc) voff = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc) vsize = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump_to = argv[++i];
		else { fprintf(stderr, "ntfs_tool: bad option %s\n", argv[i]); return 2; }
	}
	if (argc - i < 2) { fprintf(stderr, "usage: ntfs_tool [--offset B] [--size B] [--rw] [--dump OUT] IMAGE CMD...\n"); return 2; }
	struct disk *d = disk_open(argv[i]);
	if (!d) return fail(), 1;
	ov = overlay_new(d);
	if (!ov) return fail(), 1;
	if (!vsize) vsize = overlay_size(ov) - voff;
	int rc = 0;
	if (strcmp(argv[i + 1], "probe")) {
		vol = ntfs_open(ov, voff, vsize, rw);
		if (!vol) { fail(); rc = err_code() == E_BLOCKED ? 4 : 1; goto out; }
	}
	if (!strcmp(argv[i + 1], "-")) {
		char line[4096];
		while (!rc && fgets(line, sizeof line, stdin))
			rc = run_line(line) ? 1 : 0;
	} else {
		rc = run(argc - i - 1, argv + i + 1) ? 1 : 0;
	}
	if (vol && ntfs_close(vol)) { fail(); rc = 1; }
	if (!rc && dump_to && dump(dump_to)) { fail(); rc = 1; }
out:
	overlay_free(ov);
	disk_close(d);
	return rc;
}
