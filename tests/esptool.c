/* esptool - test driver for the partition and fat32 modules over a raw
 * image (tests/partition.sh, tests/fat32.sh).
 *
 *   esptool ptread DISK                      print the table, one line per partition
 *   esptool ptverify DISK                    partition_verify: "valid" or the reason (exit 1)
 *   esptool ptgpt IN OUT GUID                MBR -> GPT keeping numbers/starts/sizes
 *   esptool ptaddesp IN OUT N START SIZE     add an 0xEF primary (sectors) to an MBR
 *   esptool fatcheck DISK PARTNO             fat32_check of partition PARTNO
 *   esptool fatcat DISK PARTNO PATH          print a file's bytes
 *   esptool fatstat DISK PARTNO PATH         "dir" / "file SIZE" / "absent"
 *   esptool fatmk DISK PARTNO [--fail-small] write a FAT32 with a few files
 * OUT is written as a copy of IN with the overlay's changes applied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk.h"
#include "fat32.h"
#include "overlay.h"
#include "partition.h"
#include "../fixtures/rawout.h"
#include "util.h"

static struct ptable t;

static int fail(const char *what)
{
	fprintf(stderr, "esptool %s: %s (code %d)\n", what, err_msg(), (int)err_code());
	return err_code() == E_NOSPACE ? 4 : 1;
}

static void print_table(void)
{
	char g[GUID_STR_LEN + 1];
	printf("table %s sector %u", ptable_type_name(t.type), t.sector_size);
	if (t.type == PT_MBR)
		printf(" signature 0x%08x", t.disk_signature);
	if (t.type == PT_GPT)
		printf(" guid %s first %llu last %llu", guid_to_str(&t.disk_guid, g),
		       (unsigned long long)(t.first_usable / t.sector_size),
		       (unsigned long long)(t.last_usable / t.sector_size));
	printf("\n");
	for (size_t i = 0; i < t.count; i++) {
		const struct part *p = &t.parts[i];
		printf("part %d start %llu size %llu", p->number, (unsigned long long)(p->start / t.sector_size),
		       (unsigned long long)(p->size / t.sector_size));
		if (t.type == PT_MBR)
			printf(" type %02x%s%s", p->mbr_type, p->active ? " active" : "", p->logical ? " logical" : "");
		else
			printf(" type %s uuid %s attrs 0x%016llx name '%s'", guid_to_str(&p->type_guid, g),
			       guid_to_str(&p->part_guid, (char[GUID_STR_LEN + 1]){0}), (unsigned long long)p->attrs,
			       p->name);
		printf("\n");
	}
}

static int copy_file(const char *in, const char *out)
{
	char *cmd = xasprintf("cp --sparse=always -- '%s' '%s'", in, out);
	int rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : err_set(E_IO, "cannot copy %s", in);
}

/* Maps an MBR type to the GPT type Windows uses for it. */
static struct guid gpt_type_for(uint8_t mbr)
{
	if (mbr == 0xEF) return GPT_TYPE_ESP;
	if (mbr == 0x27) return GPT_TYPE_RECOVERY;
	return GPT_TYPE_BASIC_DATA;
}

static int cmd_ptgpt(struct overlay *o, const char *guid)
{
	struct ptable n = t;
	n.type = PT_GPT;
	n.count = 0;
	if (guid_from_str(guid, &n.disk_guid) < 0)
		return -1;
	for (size_t i = 0; i < t.count; i++) {
		if (part_is_extended(&t.parts[i]))
			continue;
		struct part p = t.parts[i];
		p.type_guid = gpt_type_for(p.mbr_type);
		if (p.mbr_type == 0x27)
			p.attrs = GPT_ATTR_RECOVERY;
		snprintf(p.name, sizeof(p.name), "part %d", p.number);
		memset(&p.part_guid, 0, sizeof(p.part_guid)); /* derived */
		n.parts[n.count++] = p;
	}
	t = n;
	return partition_write(o, &t);
}

static int open_part(struct overlay *o, int partno, struct fat32_vol **v)
{
	if (partition_read(o, &t) < 0)
		return -1;
	const struct part *p = ptable_find(&t, partno);
	if (!p)
		return err_set(E_NOTFOUND, "no partition %d", partno);
	*v = fat32_open(o, p->start, p->size);
	return *v ? 0 : -1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		return 2;
	const char *cmd = argv[1], *in = argv[2];
	bool writes = !strcmp(cmd, "ptgpt") || !strcmp(cmd, "ptaddesp");
	const char *out = writes && argc > 3 ? argv[3] : NULL;
	if (writes && !out)
		return 2;
	struct disk *d = disk_open(in);
	if (!d)
		return fail("open");
	struct overlay *o = overlay_new(d);
	int rc = 0;
	struct fat32_vol *v = NULL;
	if (!strcmp(cmd, "ptread")) {
		if (partition_read(o, &t) < 0)
			rc = fail("ptread");
		else
			print_table();
	} else if (!strcmp(cmd, "ptverify")) {
		char why[256];
		if (partition_verify(o, why, sizeof why) < 0)
			rc = fail("ptverify");
		else
			printf("valid\n");
	} else if (!strcmp(cmd, "ptgpt") && argc == 5) {
		if (partition_read(o, &t) < 0 || cmd_ptgpt(o, argv[4]) < 0)
			rc = fail("ptgpt");
	} else if (!strcmp(cmd, "ptaddesp") && argc == 7) {
		if (partition_read(o, &t) < 0)
			rc = fail("ptaddesp");
		else {
			struct part *p = &t.parts[t.count++];
			memset(p, 0, sizeof(*p));
			p->number = atoi(argv[4]);
			p->start = strtoull(argv[5], NULL, 0) * t.sector_size;
			p->size = strtoull(argv[6], NULL, 0) * t.sector_size;
			p->mbr_type = 0xEF;
			if (partition_write(o, &t) < 0)
				rc = fail("ptaddesp");
		}
	} else if (!strcmp(cmd, "fatcheck") && argc == 4) {
		if (open_part(o, atoi(argv[3]), &v) < 0 || fat32_check(v) < 0)
			rc = fail("fatcheck");
		else
			printf("clean\n");
	} else if (!strcmp(cmd, "fatcat") && argc == 5) {
		uint8_t *data;
		size_t len;
		if (open_part(o, atoi(argv[3]), &v) < 0 || fat32_read_file(v, argv[4], 1 << 30, &data, &len) < 0)
			rc = fail("fatcat");
		else {
			fwrite(data, 1, len, stdout);
			free(data);
		}
	} else if (!strcmp(cmd, "fatstat") && argc == 5) {
		bool dir;
		uint64_t size;
		int r = -1;
		if (open_part(o, atoi(argv[3]), &v) < 0 || (r = fat32_stat(v, argv[4], &dir, &size)) < 0)
			rc = fail("fatstat");
		else if (r == 0)
			printf("absent\n");
		else if (dir)
			printf("dir\n");
		else
			printf("file %llu\n", (unsigned long long)size);
	} else {
		rc = 2;
	}
	if (rc == 0 && out && (copy_file(in, out) < 0 || rawout_apply(o, out) < 0))
		rc = fail("output");
	fat32_close(v);
	overlay_free(o);
	disk_close(d);
	return rc;
}
