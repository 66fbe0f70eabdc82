/* test_bcd.c - lib/bcd: device values against the byte layouts of
 * doc/formats.md, BCD partition device (GPT and MBR) and a value copied from a Windows 10 store,
 * encode/decode round trips, a store built with every setter read back,
 * element names, aliases, malformed element values refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bcd.h"
#include "hive.h"
#include "util.h"

static void unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/* bootmgr device element of samples/bcd/win10-uefi.BCD, as Windows wrote it. */
static const char win10_bootmgr_device[] =
	"00000000000000000000000000000000060000000000000048000000000000"
	"00dd38652303114b4280efc54841d0a44500000000000000007cfb48d181be12"
	"4d8dcf62260299abde00000000000000000000000000000000";

static void test_gpt_layout_formats_md(void **st)
{
	struct bcd_device d = { .kind = BCD_DEV_PARTITION, .gpt = true };
	for (int i = 0; i < 16; i++) {
		d.part_guid.b[i] = (uint8_t)(0x10 + i);
		d.disk_guid.b[i] = (uint8_t)(0xa0 + i);
	}
	uint8_t v[BCD_DEVICE_PARTITION_LEN];
	assert_int_equal(bcd_device_encode(&d, v), 0);
	/* doc/formats.md, BCD partition device: 00 16 zero; 10 u32 6; 14 u32 0; 18 u32 0x48; 1C u32 0;
	 * 20 partition GUID; 30 u32 0; 34 u32 0 (GPT); 38 disk GUID; 48 16 zero */
	uint8_t zero[16] = { 0 };
	assert_memory_equal(v, zero, 16);
	assert_int_equal(get_le32(v + 0x10), 6);
	assert_int_equal(get_le32(v + 0x14), 0);
	assert_int_equal(get_le32(v + 0x18), 0x48);
	assert_int_equal(get_le32(v + 0x1c), 0);
	assert_memory_equal(v + 0x20, d.part_guid.b, 16);
	assert_int_equal(get_le32(v + 0x30), 0);
	assert_int_equal(get_le32(v + 0x34), 0);
	assert_memory_equal(v + 0x38, d.disk_guid.b, 16);
	assert_memory_equal(v + 0x48, zero, 16);
	struct bcd_device r;
	assert_int_equal(bcd_device_decode(v, sizeof v, &r), 0);
	assert_int_equal(r.kind, BCD_DEV_PARTITION);
	assert_true(r.gpt);
	assert_true(guid_eq(&r.part_guid, &d.part_guid));
	assert_true(guid_eq(&r.disk_guid, &d.disk_guid));
}

static void test_mbr_layout_formats_md(void **st)
{
	/* doc/formats.md, BCD partition device: the MBR form written on a BIOS Windows 10, partition
	 * offset 0x24400000, signature at 0x38, style 1 at 0x34. */
	struct bcd_device d = { .kind = BCD_DEV_PARTITION, .gpt = false, .part_offset = 0x24400000,
				.disk_signature = 0x1234abcd };
	uint8_t v[BCD_DEVICE_PARTITION_LEN];
	assert_int_equal(bcd_device_encode(&d, v), 0);
	assert_int_equal(get_le32(v + 0x10), 6);
	assert_int_equal(get_le32(v + 0x18), 0x48);
	assert_int_equal(get_le64(v + 0x20), 0x24400000);
	assert_int_equal(get_le64(v + 0x28), 0);
	assert_int_equal(get_le32(v + 0x34), 1);
	assert_int_equal(get_le32(v + 0x38), 0x1234abcd);
	for (int i = 0x3c; i < 88; i++)
		assert_int_equal(v[i], 0);
	struct bcd_device r;
	assert_int_equal(bcd_device_decode(v, sizeof v, &r), 0);
	assert_false(r.gpt);
	assert_int_equal(r.part_offset, 0x24400000);
	assert_int_equal(r.disk_signature, 0x1234abcd);
}

static void test_decode_real_windows_value(void **st)
{
	uint8_t v[88];
	unhex(win10_bootmgr_device, v, 88);
	struct bcd_device d;
	assert_int_equal(bcd_device_decode(v, 88, &d), 0);
	assert_int_equal(d.kind, BCD_DEV_PARTITION);
	assert_true(d.gpt);
	char s[40];
	assert_string_equal(guid_to_str(&d.part_guid, s), "236538dd-1103-424b-80ef-c54841d0a445");
	assert_string_equal(guid_to_str(&d.disk_guid, s), "d148fb7c-be81-4d12-8dcf-62260299abde");
	/* and our encoder writes the very same bytes back */
	uint8_t w[88];
	assert_int_equal(bcd_device_encode(&d, w), 0);
	assert_memory_equal(v, w, 88);
}

static void test_decode_boot_and_garbage(void **st)
{
	uint8_t v[88] = { 0 };
	put_le32(v + 0x10, 5);
	put_le32(v + 0x18, 0x48);
	struct bcd_device d;
	assert_int_equal(bcd_device_decode(v, 88, &d), 0);
	assert_int_equal(d.kind, BCD_DEV_BOOT);
	/* size field larger than the value */
	put_le32(v + 0x18, 0x1000);
	assert_int_equal(bcd_device_decode(v, 88, &d), -1);
	assert_int_equal(err_code(), E_FORMAT);
	/* truncated */
	assert_int_equal(bcd_device_decode(v, 20, &d), -1);
	/* an unknown device type decodes as UNKNOWN, not an error */
	put_le32(v + 0x10, 9);
	put_le32(v + 0x18, 0x48);
	assert_int_equal(bcd_device_decode(v, 88, &d), 0);
	assert_int_equal(d.kind, BCD_DEV_UNKNOWN);
	assert_int_equal(d.raw_type, 9);
	/* a partition with style 7 is malformed */
	put_le32(v + 0x10, 6);
	put_le32(v + 0x34, 7);
	assert_int_equal(bcd_device_decode(v, 88, &d), -1);
}

static void test_names_and_aliases(void **st)
{
	assert_string_equal(bcd_element_name(0x11000001, BCD_TYPE_OSLOADER), "device");
	assert_string_equal(bcd_element_name(0x21000001, BCD_TYPE_OSLOADER), "osdevice");
	assert_string_equal(bcd_element_name(0x21000001, BCD_TYPE_RESUME), "filedevice");
	assert_string_equal(bcd_element_name(0x23000003, BCD_TYPE_BOOTMGR), "default");
	assert_string_equal(bcd_element_name(0x23000003, BCD_TYPE_OSLOADER), "resumeobject");
	assert_string_equal(bcd_element_name(0x250000f0, BCD_TYPE_LOADER_SETTINGS), "hypervisorlaunchtype");
	assert_string_equal(bcd_element_name(BCDE_LIB_NO_INTEGRITY_CHECKS, BCD_TYPE_OSLOADER), "nointegritychecks");
	assert_null(bcd_element_name(0x2500abcd, BCD_TYPE_OSLOADER));
	struct guid g;
	assert_int_equal(bcd_alias_guid("{bootmgr}", &g), 0);
	char s[40];
	assert_string_equal(guid_to_str(&g, s), "9dea862c-5cdd-4e70-acc1-f32b344d4795");
	assert_string_equal(bcd_guid_alias(&g), "{bootmgr}");
	assert_int_equal(bcd_alias_guid("{nope}", &g), -1);
}

static void test_store_roundtrip(void **st)
{
	struct bcd *b = bcd_new();
	assert_non_null(b);
	struct guid bm, ld;
	bcd_alias_guid("{bootmgr}", &bm);
	guid_from_str("11111111-2222-3333-4444-555555555555", &ld);
	struct bcd_device dev = { .kind = BCD_DEV_PARTITION, .gpt = true };
	dev.part_guid.b[0] = 1;
	dev.disk_guid.b[0] = 2;
	assert_int_equal(bcd_add_object(b, &bm, BCD_TYPE_BOOTMGR), 0);
	assert_int_equal(bcd_add_object(b, &ld, BCD_TYPE_OSLOADER), 0);
	assert_int_equal(bcd_set_device(b, &bm, BCDE_LIB_APPLICATION_DEVICE, &dev), 0);
	assert_int_equal(bcd_set_string(b, &bm, BCDE_LIB_APPLICATION_PATH, "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"), 0);
	assert_int_equal(bcd_set_object(b, &bm, BCDE_BOOTMGR_DEFAULT, &ld), 0);
	assert_int_equal(bcd_set_objects(b, &bm, BCDE_BOOTMGR_DISPLAY_ORDER, &ld, 1), 0);
	assert_int_equal(bcd_set_integer(b, &bm, BCDE_BOOTMGR_TIMEOUT, 30), 0);
	assert_int_equal(bcd_set_boolean(b, &ld, BCDE_LIB_NO_INTEGRITY_CHECKS, true), 0);
	/* format mismatch refused */
	assert_int_equal(bcd_set_integer(b, &ld, BCDE_LIB_NO_INTEGRITY_CHECKS, 1), -1);

	uint8_t *bytes;
	size_t len;
	assert_int_equal(bcd_serialize(b, &bytes, &len), 0);
	bcd_free(b);
	struct bcd *r = bcd_open(bytes, len);
	assert_non_null(r);
	uint32_t t;
	assert_int_equal(bcd_get_object_type(r, &ld, &t), 0);
	assert_int_equal(t, BCD_TYPE_OSLOADER);
	struct bcd_device d2;
	assert_int_equal(bcd_get_device(r, &bm, BCDE_LIB_APPLICATION_DEVICE, &d2), 0);
	assert_true(guid_eq(&d2.part_guid, &dev.part_guid));
	struct guid g;
	assert_int_equal(bcd_get_object(r, &bm, BCDE_BOOTMGR_DEFAULT, &g), 0);
	assert_true(guid_eq(&g, &ld));
	uint64_t v;
	assert_int_equal(bcd_get_integer(r, &bm, BCDE_BOOTMGR_TIMEOUT, &v), 0);
	assert_int_equal(v, 30);
	bool yes;
	assert_int_equal(bcd_get_boolean(r, &ld, BCDE_LIB_NO_INTEGRITY_CHECKS, &yes), 0);
	assert_true(yes);
	assert_int_equal(bcd_get_boolean(r, &ld, BCDE_LIB_TESTSIGNING, &yes), 1);
	/* wrong size: a boolean read as an integer */
	assert_int_equal(bcd_get_integer(r, &ld, 0x15000048, &v), 1);
	struct guid *ids;
	size_t n;
	assert_int_equal(bcd_objects(r, &ids, &n), 0);
	assert_int_equal(n, 2);
	free(ids);

	char *text = NULL;
	size_t tl = 0;
	FILE *f = open_memstream(&text, &tl);
	assert_int_equal(bcd_print(r, f, NULL, NULL), 0);
	fclose(f);
	assert_non_null(strstr(text, "Windows Boot Manager\n--------------------\nidentifier              {bootmgr}\n"));
	assert_non_null(strstr(text, "default                 {default}\n"));
	assert_non_null(strstr(text, "timeout                 30\n"));
	assert_non_null(strstr(text, "nointegritychecks       Yes\n"));
	assert_non_null(strstr(text, "Windows Boot Loader\n-------------------\nidentifier              {default}\n"));
	free(text);
	bcd_free(r);
	free(bytes);
}

static void test_malformed_element_refused(void **st)
{
	/* An integer element stored with 4 bytes: print must fail, E_FORMAT. */
	struct bcd *b = bcd_new();
	struct guid bm;
	bcd_alias_guid("{bootmgr}", &bm);
	assert_int_equal(bcd_add_object(b, &bm, BCD_TYPE_BOOTMGR), 0);
	uint8_t *bytes;
	size_t len;
	assert_int_equal(bcd_serialize(b, &bytes, &len), 0);
	bcd_free(b);
	struct hive *h = hive_open(bytes, len, true, "t");
	free(bytes);
	uint8_t four[4] = { 1, 0, 0, 0 };
	assert_int_equal(hive_set_binary(h, "Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Elements\\25000004",
					 "Element", REG_BINARY_, four, 4), 0);
	assert_int_equal(hive_serialize(h, &bytes, &len), 0);
	hive_close(h);
	struct bcd *r = bcd_open(bytes, len);
	assert_non_null(r);
	FILE *f = fopen("/dev/null", "w");
	assert_int_equal(bcd_print(r, f, NULL, NULL), -1);
	assert_int_equal(err_code(), E_FORMAT);
	fclose(f);
	uint64_t v;
	assert_int_equal(bcd_get_integer(r, &bm, 0x25000004, &v), -1);
	bcd_free(r);
	free(bytes);

	/* a hive that is not a BCD store */
	struct hive *plain = hive_new("ROOT");
	assert_int_equal(hive_serialize(plain, &bytes, &len), 0);
	hive_close(plain);
	assert_null(bcd_open(bytes, len));
	assert_int_equal(err_code(), E_FORMAT);
	free(bytes);
	assert_null(bcd_open((const uint8_t *)"junk", 4));
}

int main(void)
{
	setenv("SOURCE_DATE_EPOCH", "1256169600", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpt_layout_formats_md),
		cmocka_unit_test(test_mbr_layout_formats_md),
		cmocka_unit_test(test_decode_real_windows_value),
		cmocka_unit_test(test_decode_boot_and_garbage),
		cmocka_unit_test(test_names_and_aliases),
		cmocka_unit_test(test_store_roundtrip),
		cmocka_unit_test(test_malformed_element_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
