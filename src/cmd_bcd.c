/* cmd_bcd.c - gen2prep bcd STORE | IMAGE[:PARTITION] [--json]
 *
 * Prints a BCD store like `bcdedit /enum all`. A STORE is a file starting
 * with "regf"; anything else is opened as a disk image and the store read
 * from its ESP (\EFI\Microsoft\Boot\BCD), or \Boot\BCD of the active MBR
 * partition, or from partition number PARTITION. Device elements that name
 * a partition of that image are printed as "partition=IMAGE:N".
 */
#include "cli.h"
#include "bcd.h"
#include "disk.h"
#include "fat32.h"
#include "image.h"
#include "ntfs.h"
#include "overlay.h"
#include "partition.h"

#include <errno.h>
#include <sys/stat.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BCD_MAX_BYTES (64u << 20) /* BCD stores are tens of KiB; refuse absurd sizes */

static void help(void)
{
	printf("Usage: %s bcd STORE | IMAGE[:PARTITION] [--json]\n\n"
	       "Prints every object of a BCD store the way 'bcdedit /enum all' does:\n"
	       "well-known identifiers by alias ({bootmgr}, {globalsettings}, ...; the boot\n"
	       "manager's default loader as {default}), elements by their bcdedit names\n"
	       "(custom:XXXXXXXX when unknown), values decoded.\n\n"
	       "STORE is a BCD file (a registry hive). Any other file is opened as a disk\n"
	       "image (raw, VHD, VHDX) and the store is read from \\EFI\\Microsoft\\Boot\\BCD\n"
	       "on its ESP, or \\Boot\\BCD on the active MBR partition, or from partition\n"
	       "number PARTITION (FAT32 or NTFS).\n\n"
	       "Device values: partition=IMAGE:N when the device is partition N of the\n"
	       "image (GPT disk and partition GUIDs, or MBR signature and byte offset,\n"
	       "match); otherwise partition=GPT disk {guid} partition {guid} or\n"
	       "partition=MBR disk 0xSIGNATURE offset BYTES; boot; ramdisk=[...]path,{options};\n"
	       "unknown (hex) for layouts not decoded.\n\n"
	       "Options:\n"
	       "  --json    objects with id, alias, type, and elements {type, name, format, value}\n"
	       "  -h, --help\n\n"
	       "Exit status: 0 printed; 2 usage; 3 not a BCD store / malformed / not found.\n",
	       progname);
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return err_errno(E_IO, "%s", path);
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = xmalloc(cap);
	if (!buf) {
		fclose(f);
		return err_prefix("%s", path);
	}
	for (;;) {
		if (n == cap) {
			if (cap >= BCD_MAX_BYTES) {
				free(buf);
				fclose(f);
				return err_set(E_FORMAT, "%s: larger than %u MiB: not a BCD store", path,
					       BCD_MAX_BYTES >> 20);
			}
			uint8_t *g = xrealloc(buf, cap * 2);
			if (!g) {
				free(buf);
				fclose(f);
				return err_prefix("%s", path);
			}
			buf = g, cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return err_errno(E_IO, "%s: read error", path);
	}
	*data = buf;
	*len = n;
	return 0;
}

static bool file_starts_with_regf(const char *path)
{
	/* only a regular file can be a store; anything else goes to
	 * image_open, which says what it is (fopen of a FIFO would block) */
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	char sig[4];
	bool yes = fread(sig, 1, 4, f) == 4 && !memcmp(sig, "regf", 4);
	fclose(f);
	return yes;
}

/* ---- reading the store out of an image ---------------------------------- */

struct image_ctx {
	const char *label;       /* image path as given */
	struct ptable table;
};

static void name_device(void *vctx, const struct bcd_device *d, char *out, size_t n)
{
	const struct image_ctx *c = vctx;
	const struct part *p = bcd_device_partition(d, &c->table);
	/* out holds any path (lib/bcd.c PARTITION_TEXT_MAX); were the text cut,
	 * the partition's identity is shown instead, never a cut path */
	if (p && fmt_fit(out, n, "partition text", "partition=%s:%d", c->label, p->number) >= 0)
		return;
	err_clear();
	bcd_partition_identity_text(d, out, n);
}

/* Reads path from a partition as FAT32, else NTFS. 0 read, 1 absent, -1 error. */
static int read_from_part(struct overlay *o, const struct part *p, const char *path, uint8_t **data,
			  size_t *len)
{
	struct fat32_vol *fv = fat32_open(o, p->start, p->size);
	if (fv) {
		int r = fat32_stat(fv, path, NULL, NULL);
		if (r == 1)
			r = fat32_read_file(fv, path, BCD_MAX_BYTES, data, len) < 0 ? -1 : 0;
		else if (r == 0)
			r = 1;
		fat32_close(fv);
		return r;
	}
	err_clear();
	struct ntfs_vol *nv = ntfs_open(o, p->start, p->size, false);
	if (!nv)
		return err_set(E_FORMAT, "partition %d is neither FAT32 nor a mountable NTFS volume", p->number);
	int r = ntfs_stat(nv, path, NULL, NULL);
	if (r == 1)
		r = ntfs_read_file(nv, path, BCD_MAX_BYTES, data, len) < 0 ? -1 : 0;
	else if (r == 0)
		r = 1;
	ntfs_close(nv);
	return r;
}

static const struct part *default_part(const struct ptable *t, const char **path)
{
	for (size_t i = 0; i < t->count; i++) {
		const struct part *p = &t->parts[i];
		if (part_is_esp(t, p)) {
			*path = "/EFI/Microsoft/Boot/BCD";
			return p;
		}
	}
	for (size_t i = 0; t->type == PT_MBR && i < t->count; i++)
		if (t->parts[i].active) {
			*path = "/Boot/BCD";
			return &t->parts[i];
		}
	return NULL;
}

static int read_store_from_image(const char *image, int partno, struct image_ctx *ctx, uint8_t **data,
				 size_t *len)
{
	struct disk *d = NULL;
	struct overlay *o = image_open(image, &d);   /* the one way to open an image (image.h) */
	if (!o)
		return -1;
	const struct disk_info *di = disk_info(d);
	if (di->parent_by_name)   /* the plan warning parent-by-name (lib/convert.c), on stderr */
		fprintf(stderr, "gen2prep: warning: '%s' records its parent as '%s' and nothing is there: "
			"the file of that name beside it, '%s', was read, but Hyper-V follows the recorded path and will not "
			"find it\n", image, di->parent_locator, di->parent_path);
	int rc = -1;
	if (partition_read(o, &ctx->table) < 0) {
		err_prefix_file(image);
		goto out;
	}
	if (ctx->table.type == PT_NONE) {
		rc = err_set(E_FORMAT, "%s: no partition table (and not a BCD store)", image);
		goto out;
	}
	const char *path = NULL;
	const struct part *p;
	if (partno > 0) {
		p = ptable_find(&ctx->table, partno);
		if (!p) {
			rc = err_set(E_NOTFOUND, "%s: no partition %d", image, partno);
			goto out;
		}
		path = "/EFI/Microsoft/Boot/BCD";
		rc = read_from_part(o, p, path, data, len);
		if (rc == 1)
			rc = read_from_part(o, p, path = "/Boot/BCD", data, len);
	} else {
		p = default_part(&ctx->table, &path);
		if (!p) {
			rc = err_set(E_NOTFOUND, "%s: no ESP and no active MBR partition to read a BCD store from",
				     image);
			goto out;
		}
		rc = read_from_part(o, p, path, data, len);
	}
	if (rc < 0)
		err_prefix_file(image);   /* every message of this path names the image once */
	if (rc == 1)
		rc = err_set(E_NOTFOUND, "%s: partition %d holds no BCD store (\\EFI\\Microsoft\\Boot\\BCD or \\Boot\\BCD)",
			     image, p->number);
out:
	if (o)
		overlay_free(o);
	disk_close(d);
	return rc;
}

/* "img.vhdx:2" -> image "img.vhdx", 2, when img.vhdx exists and the whole
 * argument does not. */
static char *split_partition(const char *arg, int *partno)
{
	struct stat st;
	*partno = 0;
	if (stat(arg, &st) == 0)
		return xstrdup(arg);
	const char *colon = strrchr(arg, ':');
	if (!colon || !colon[1])
		return xstrdup(arg);
	char *end;
	long n = strtol(colon + 1, &end, 10);
	if (*end || n < 1 || n > PART_MAX)
		return xstrdup(arg);
	char *img = xstrdup(arg);
	if (!img) return NULL;
	img[colon - arg] = 0;
	*partno = (int)n;
	return img;
}

int cmd_bcd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	optind = 1;
	while ((c = cli_getopt("bcd", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': help(); return EXIT_OK;
		default: return EXIT_USAGE;   /* cli_getopt said why */
		}
	}
	if (argc - optind != 1)
		return cli_usage("bcd", "expected one STORE or IMAGE[:PARTITION]");
	const char *arg = argv[optind];

	uint8_t *data = NULL;
	size_t len = 0;
	int partno;
	char *image = split_partition(arg, &partno);
	if (!image) return cli_fail_json("bcd", json);
	struct image_ctx ctx = { .label = image };
	bool is_image = !(partno == 0 && file_starts_with_regf(image));
	int r = is_image ? read_store_from_image(image, partno, &ctx, &data, &len) : read_file(image, &data, &len);
	if (r < 0) {
		/* an input that cannot be read is exit 3, as in every command */
		if (err_code() == E_IO) err_recode(E_FORMAT);
		int ex = cli_fail_json("bcd", json);   /* the message names the file already */
		free(image);
		return ex;
	}
	struct bcd *b = bcd_open(data, len);
	free(data);
	if (!b) {
		free(image);
		err_prefix_file(arg);
		return cli_fail_json("bcd", json);
	}
	bcd_device_namer namer = is_image ? name_device : NULL;
	int ex = EXIT_OK;
	if (json) {
		void *j = bcd_to_json(b, namer, &ctx);
		if (j)
			cli_print_json(j);
		else
			ex = (err_prefix_file(arg), cli_fail("bcd"));
	} else {
		/* Render to memory first: a malformed element fails the whole
		 * store without half a listing on stdout. */
		char *buf = NULL;
		size_t blen = 0;
		FILE *mf = open_memstream(&buf, &blen);
		if (!mf) {
			err_errno(E_IO, "open_memstream");
			ex = (err_prefix_file(arg), cli_fail("bcd"));
		} else {
			int pr = bcd_print(b, mf, namer, &ctx);
			fclose(mf);
			if (pr < 0)
				ex = (err_prefix_file(arg), cli_fail("bcd"));
			else
				fwrite(buf, 1, blen, stdout);
			free(buf);
		}
	}
	bcd_free(b);
	free(image);
	return ex;
}
