/* test_sizes.c - issue 11, "Sizes that cannot silently cut", the last
 * item: a name from the image that is longer than the field keeping it is
 * a clear finding naming it and its length, never cut and never dropped
 * without a word; texts that are only shown end visibly (" ..."). Hives
 * are built here with lib/hive (the SOFTWARE and SYSTEM of a Windows 7
 * disk, one value too long each) and read by windows_read_hives, the
 * inspection's own reading of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fat32.h"
#include "hive.h"
#include "plan.h"
#include "util.h"
#include "windows.h"
#include "x86.h"

#define CV "Microsoft\\Windows NT\\CurrentVersion"
#define SIG 0x0B17C0DEu
#define WIN_OFFSET (101ull << 20)

/* s of n copies of c (static: one at a time) */
static const char *repeat(char c, size_t n)
{
	static char b[1024];
	assert_true(n < sizeof b);
	memset(b, c, n);
	b[n] = 0;
	return b;
}

static uint8_t *serialize(struct hive *h, size_t *len)
{
	uint8_t *d = NULL;
	assert_int_equal(hive_serialize(h, &d, len), 0);
	hive_close(h);
	return d;
}

static const struct finding *finding(const struct inspection *ins, const char *id)
{
	for (size_t i = 0; i < ins->nfindings; i++)
		if (!strcmp(finding_id(&ins->findings[i]), id)) return &ins->findings[i];
	return NULL;
}

/* An MBR disk: partition 2 (Windows) at 101 MiB, signature SIG. */
static struct inspection *mbr_disk(void)
{
	struct inspection *ins = calloc(1, sizeof *ins);
	ins->table.type = PT_MBR;
	ins->table.sector_size = 512;
	ins->table.disk_signature = SIG;
	struct part *p = &ins->table.parts[ins->table.count++];
	p->number = 2;
	p->start = WIN_OFFSET;
	p->size = 923ull << 20;
	p->mbr_type = 0x07;
	return ins;
}

/* ProductName of 300 bytes: left out (""), the warning says so and what
 * follows; the plan then names the boot entry "Windows". */
static void t_product_name_long(void **st)
{
	(void)st;
	struct hive *h = hive_new("SOFTWARE");
	assert_non_null(h);
	assert_int_equal(hive_set_string(h, CV, "ProductName", repeat('P', 300)), 0);
	assert_int_equal(hive_set_string(h, CV, "CurrentVersion", "6.1"), 0);
	assert_int_equal(hive_set_string(h, CV, "SystemRoot", "C:\\Windows"), 0);
	size_t len;
	uint8_t *sw = serialize(h, &len);
	struct inspection *ins = mbr_disk();
	windows_read_hives(NULL, 0, sw, len, ins);
	assert_string_equal(ins->product_name, "");
	assert_string_equal(ins->current_version, "6.1");
	assert_string_equal(ins->system_root, "C:\\Windows");
	const struct finding *f = finding(ins, "registry-value-too-long");
	assert_non_null(f);
	assert_true(f->warning);
	assert_string_equal(f->message, "SOFTWARE\\" CV "\\ProductName is 300 bytes, longer than the 127 gen2prep keeps: "
			    "left out, the boot entry is named \"Windows\"");
	assert_null(finding(ins, "name-too-long"));
	free(sw);
	free(ins);
}

/* SystemRoot of 100 bytes: its drive letter is what MountedDevices must
 * name, so a value too long for the 63 kept is the blocker name-too-long,
 * and the plan carries it (not ok). */
static void t_system_root_long(void **st)
{
	(void)st;
	struct hive *h = hive_new("SOFTWARE");
	assert_non_null(h);
	char root[128];
	snprintf(root, sizeof root, "D:\\%s", repeat('W', 97));
	assert_int_equal(hive_set_string(h, CV, "SystemRoot", root), 0);
	size_t len;
	uint8_t *sw = serialize(h, &len);
	struct inspection *ins = mbr_disk();
	windows_read_hives(NULL, 0, sw, len, ins);
	assert_string_equal(ins->system_root, "");
	const struct finding *f = finding(ins, "name-too-long");
	assert_non_null(f);
	assert_false(f->warning);
	assert_string_equal(f->message, "SOFTWARE\\" CV "\\SystemRoot is 100 bytes, longer than the 63 gen2prep keeps: "
			    "the system drive letter cannot be checked");
	struct plan_opts o = { .layout = LAYOUT_GPT, .disk_size = 1ull << 30, .sector_size = 512 };
	struct plan *p = calloc(1, sizeof *p);
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_has_blocker(p, "name-too-long"));
	assert_false(plan_ok(p));
	assert_int_equal(plan_err_code(p), E_BLOCKED);
	plan_free(p);
	free(p);
	free(sw);
	free(ins);
}

/* MountedDevices: a 200-byte value name whose data names this disk's
 * Windows volume (MBR signature + offset, doc/formats.md, MountedDevices) would have to be
 * rewritten by convert: the blocker name-too-long. The same long name for
 * another disk's volume is left out without a finding (never edited). */
static void t_mounted_name_long(void **st)
{
	(void)st;
	uint8_t mine[12], other[12];
	put_le32(mine, SIG);
	put_le64(mine + 4, WIN_OFFSET);
	put_le32(other, SIG ^ 0x77000000u);
	put_le64(other + 4, WIN_OFFSET);
	char name[256];
	for (int round = 0; round < 2; round++) {
		struct hive *h = hive_new("SYSTEM");
		assert_non_null(h);
		snprintf(name, sizeof name, "\\??\\SCSI#%s", repeat('d', 191));
		assert_int_equal(strlen(name), 200);
		assert_int_equal(hive_set_binary(h, "MountedDevices", name, REG_BINARY_, round ? other : mine, 12), 0);
		assert_int_equal(hive_set_binary(h, "MountedDevices", "\\DosDevices\\C:", REG_BINARY_, mine, 12), 0);
		size_t len;
		uint8_t *sys = serialize(h, &len);
		struct inspection *ins = mbr_disk();
		windows_read_hives(sys, len, NULL, 0, ins);
		assert_true(ins->system_hive_read);
		assert_int_equal(ins->nmounted, 1);   /* C: only: the long name is never kept cut */
		assert_string_equal(ins->mounted[0].name, "\\DosDevices\\C:");
		const struct finding *f = finding(ins, "name-too-long");
		if (round) {
			assert_null(f);
		} else {
			assert_non_null(f);
			char want[256];   /* str_copy names the first 40 bytes */
			snprintf(want, sizeof want, "MountedDevices value name '%.40s...' is 200 bytes, longer than the 127 this "
				 "field holds, and it names a drive letter or a volume of this disk: convert would have to rewrite it", name);
			assert_string_equal(f->message, want);
		}
		free(sys);
		free(ins);
	}
}

/* fatgen103 BS_VolLab holds 11 bytes: a longer label is E_USAGE, not cut. */
static void t_fat_label(void **st)
{
	(void)st;
	uint64_t size = 100ull << 20;   /* the default ESP */
	struct fat32_builder *b = fat32_new(size, 512, 1, "ABCDEFGHIJK");
	assert_non_null(b);
	fat32_free(b);
	assert_null(fat32_new(size, 512, 1, "ABCDEFGHIJKL"));
	assert_int_equal(err_code(), E_USAGE);
	assert_string_equal(err_msg(), "FAT32 volume label 'ABCDEFGHIJKL' is 12 bytes, longer than the 11 a label holds");
	err_clear();
}

/* Disassembly for a report: 200 NOPs are 998 characters; into 512 the
 * text ends in " ..." after the last whole instruction, never "; no". */
static void t_x86_text(void **st)
{
	(void)st;
	uint8_t code[200];
	memset(code, 0x90, sizeof code);
	char big[1024], small[512];
	assert_int_equal(x86_format_bytes(code, sizeof code, 0, big, sizeof big), 200);
	assert_int_equal(strlen(big), 200 * 3 + 199 * 2);
	assert_int_equal(x86_format_bytes(code, sizeof code, 0, small, sizeof small), 200);
	size_t n = strlen(small);
	assert_true(n < sizeof small);
	assert_string_equal(small + n - 9, "; nop ...");
	assert_int_equal(strncmp(small, big, n - 4), 0);
}

/* convert's refusal lists every blocker "code: message"; in a buffer too
 * small for all it ends visibly, after a whole entry. */
static void t_blockers_text(void **st)
{
	(void)st;
	struct plan *p = calloc(1, sizeof *p);
	assert_int_equal(plan_add_blocker(p, "esp-too-small", "first"), 0);
	assert_int_equal(plan_add_blocker(p, "layout", "second"), 0);
	assert_int_equal(plan_add_blocker(p, "no-windows", "a third one that does not fit"), 0);
	char buf[48];
	assert_string_equal(plan_blockers_text(p, buf, sizeof buf), "esp-too-small: first; layout: second ...");
	char whole[256];
	assert_string_equal(plan_blockers_text(p, whole, sizeof whole),
			    "esp-too-small: first; layout: second; no-windows: a third one that does not fit");
	plan_free(p);
	free(p);
}

int main(void)
{
	setenv("SOURCE_DATE_EPOCH", "1256169600", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_product_name_long),
		cmocka_unit_test(t_system_root_long),
		cmocka_unit_test(t_mounted_name_long),
		cmocka_unit_test(t_fat_label),
		cmocka_unit_test(t_x86_text),
		cmocka_unit_test(t_blockers_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
