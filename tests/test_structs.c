/* test_structs.c - issue 11, sizes that cannot silently cut: fmt_fit
 * fails instead of cutting; PE version strings longer than the old
 * 63-character fields come back whole; the hive's typed getters (one
 * get_typed path) refuse a value of another type with its type and size
 * named; the declared partition records sit at the offsets of the UEFI
 * tables (runtime check of what ptable_format.h asserts at compile time,
 * against byte positions written by hand here). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcd.h"
#include "hive.h"
#include "pe.h"
#include "pebuild.h"
#include "ptable_format.h"
#include "util.h"

static void t_fmt_fit(void **st)
{
	(void)st;
	char b[8];
	assert_int_equal(fmt_fit(b, sizeof b, "field", "%s-%d", "ab", 42), 5);
	assert_string_equal(b, "ab-42");
	assert_int_equal(fmt_fit(b, sizeof b, "field", "%s", "1234567"), 7);   /* exactly fits */
	assert_int_equal(fmt_fit(b, sizeof b, "test field", "%s", "12345678"), -1);
	assert_string_equal(b, "");
	assert_int_equal(err_code(), E_FORMAT);
	assert_string_equal(err_msg(), "test field: 8 bytes, longer than the 7 this field holds");
	err_clear();
}

static void t_text_append(void **st)
{
	(void)st;
	char b[20];
	size_t used = 0;
	b[0] = 0;
	assert_int_equal(text_append(b, sizeof b, &used, "%s", "alpha"), 0);
	assert_int_equal(text_append(b, sizeof b, &used, ", %s", "beta"), 0);
	assert_string_equal(b, "alpha, beta");
	/* ", gamma" would leave no room for the marker: the list ends visibly */
	assert_int_equal(text_append(b, sizeof b, &used, ", %s", "gamma"), -1);
	assert_string_equal(b, "alpha, beta ...");
	assert_int_equal(text_append(b, sizeof b, &used, ", %s", "d"), -1);
	assert_string_equal(b, "alpha, beta ...");
}

static void t_msg_printf(void **st)
{
	(void)st;
	char b[10];
	assert_int_equal(msg_printf(b, sizeof b, "%s", "short"), 0);
	assert_string_equal(b, "short");
	assert_int_equal(msg_printf(b, sizeof b, "%s", "a reason too long"), -1);
	assert_string_equal(b, "a reas...");
	/* err_set marks a message longer than its buffer the same way */
	char big[4096 * 3];   /* longer than err_msg's buffer (two PATH_MAX paths and the cause) */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	err_set(E_FORMAT, "%s", big);
	size_t n = strlen(err_msg());
	assert_true(n < sizeof big - 1);
	assert_string_equal(err_msg() + n - 3, "...");
	err_clear();
}

static void t_pe_long_version(void **st)
{
	(void)st;
	char fv[201], name[101];
	for (int i = 0; i < 200; i++) fv[i] = (char)('0' + i % 10);
	fv[200] = 0;
	memset(name, 'n', 96);
	memcpy(name + 96, ".sys", 5);
	struct pebuild *b = pb_new(PE_MACHINE_AMD64, PE_SUBSYSTEM_NATIVE);
	pb_func_begin(b, ".text", "Main", 0);
	pb_emit(b, "\xc3", 1);
	pb_func_end(b);
	struct pb_version v = { .file = { 6, 1, 7601, 17514 }, .file_type = 3, .file_version = fv,
				.original_filename = name, .internal_name = "short.sys" };
	pb_set_version(b, &v);
	uint8_t *p;
	size_t n;
	pb_finish(b, &p, &n);
	pb_free(b);
	struct pe *pe = pe_parse(p, n);
	assert_non_null(pe);
	assert_true(pe->version.present);
	assert_int_equal(strlen(pe->version.file_version_str), 200);   /* was cut at 63 */
	assert_string_equal(pe->version.file_version_str, fv);
	assert_string_equal(pe->version.original_filename, name);
	assert_string_equal(pe->version.internal_name, "short.sys");
	pe_free(pe);
	free(p);
}

static void t_hive_typed(void **st)
{
	(void)st;
	struct hive *h = hive_new("ROOT");
	assert_non_null(h);
	assert_int_equal(hive_add_key(h, "K"), 0);
	assert_int_equal(hive_set_string(h, "K", "S", "text"), 0);
	assert_int_equal(hive_set_dword(h, "K", "D", 7), 0);
	uint32_t d = 0;
	char *s = NULL, **list = NULL;
	size_t count = 0;
	assert_int_equal(hive_get_dword(h, "K", "D", &d), 0);
	assert_int_equal(d, 7);
	assert_int_equal(hive_get_string(h, "K", "S", &s), 0);
	assert_string_equal(s, "text");
	free(s);
	assert_int_equal(hive_get_dword(h, "K", "S", &d), -1);
	assert_int_equal(err_code(), E_FORMAT);
	assert_non_null(strstr(err_msg(), "K\\S is not a REG_DWORD (type 1, 10 bytes)"));
	assert_int_equal(hive_get_string(h, "K", "D", &s), -1);
	assert_non_null(strstr(err_msg(), "K\\D is not a string (type 4, 4 bytes)"));
	assert_int_equal(hive_get_multi_sz(h, "K", "D", &list, &count), -1);
	assert_non_null(strstr(err_msg(), "K\\D is not a REG_MULTI_SZ (type 4, 4 bytes)"));
	err_clear();
	hive_close(h);
}

static void t_ptable_offsets(void **st)
{
	(void)st;
	uint8_t sec[512] = {0};
	/* UEFI 5.2.1 Legacy MBR: record 2 at 446 + 16; StartingLBA at +8, SizeInLBA at +12 */
	sec[446 + 16 + 4] = 0x0F;
	put_le32(sec + 446 + 16 + 8, 0x11223344);
	put_le32(sec + 446 + 16 + 12, 0x55667788);
	put_le32(sec + 440, 0xCAFEF00D);
	sec[510] = 0x55, sec[511] = 0xAA;
	struct mbr_sector m;
	memcpy(&m, sec, sizeof m);
	assert_int_equal(m.partition_record[1].os_type, 0x0F);
	assert_int_equal(le32_get(&m.partition_record[1].starting_lba), 0x11223344);
	assert_int_equal(le32_get(&m.partition_record[1].size_in_lba), 0x55667788);
	assert_int_equal(le32_get(&m.unique_mbr_disk_signature), 0xCAFEF00D);
	assert_memory_equal(m.signature, "\x55\xAA", 2);
	/* UEFI 5.3.2 GPT Header: byte offsets of the table */
	uint8_t h[92] = {0};
	memcpy(h, "EFI PART", 8);
	put_le32(h + 12, 92);
	put_le32(h + 16, 0xABCD1234);
	put_le64(h + 24, 1);
	put_le64(h + 32, 999);
	put_le64(h + 40, 34);
	put_le64(h + 48, 966);
	put_le64(h + 72, 2);
	put_le32(h + 80, 128);
	put_le32(h + 84, 128);
	put_le32(h + 88, 0x600DCAFE);
	struct gpt_header g;
	memcpy(&g, h, sizeof g);
	assert_memory_equal(g.signature, GPT_SIGNATURE, 8);
	assert_int_equal(le32_get(&g.header_size), 92);
	assert_int_equal(le32_get(&g.header_crc32), 0xABCD1234);
	assert_int_equal(le64_get(&g.my_lba), 1);
	assert_int_equal(le64_get(&g.alternate_lba), 999);
	assert_int_equal(le64_get(&g.first_usable_lba), 34);
	assert_int_equal(le64_get(&g.last_usable_lba), 966);
	assert_int_equal(le64_get(&g.partition_entry_lba), 2);
	assert_int_equal(le32_get(&g.number_of_partition_entries), 128);
	assert_int_equal(le32_get(&g.size_of_partition_entry), 128);
	assert_int_equal(le32_get(&g.partition_entry_array_crc32), 0x600DCAFE);
}

/* bcd_print wrote val[2048] and cut longer strings; now the whole
 * description (3000 bytes) is on its line. */
static void t_bcd_long_string(void **st)
{
	(void)st;
	struct bcd *b = bcd_new();
	assert_non_null(b);
	struct guid id;
	assert_int_equal(guid_from_str("11111111-2222-3333-4444-555555555555", &id), 0);
	assert_int_equal(bcd_add_object(b, &id, 0x10200003), 0);
	char *desc = malloc(3001);
	for (int i = 0; i < 3000; i++) desc[i] = (char)('a' + i % 26);
	desc[3000] = 0;
	assert_int_equal(bcd_set_string(b, &id, 0x12000004, desc), 0);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_int_equal(bcd_print(b, f, NULL, NULL), 0);
	fclose(f);
	char *line = strstr(text, "description");
	assert_non_null(line);
	line += strspn(line, "description ");
	assert_memory_equal(line, desc, 3000);
	assert_int_equal(line[3000], '\n');
	free(text);
	free(desc);
	bcd_free(b);
}

int main(void)
{
	setenv("SOURCE_DATE_EPOCH", "1256169600", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_fmt_fit),
		cmocka_unit_test(t_text_append),
		cmocka_unit_test(t_msg_printf),
		cmocka_unit_test(t_pe_long_version),
		cmocka_unit_test(t_hive_typed),
		cmocka_unit_test(t_ptable_offsets),
		cmocka_unit_test(t_bcd_long_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
