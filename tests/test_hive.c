/* test_hive.c - lib/hive: a hive made by hive_new, edited, serialized and
 * reopened; base-block fields of hive_new against the regf specification;
 * dirty detection; malformed input refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hive.h"
#include "util.h"

static struct hive *reopen(struct hive *h, bool writable, uint8_t **bytes, size_t *len)
{
	assert_int_equal(hive_serialize(h, bytes, len), 0);
	struct hive *r = hive_open(*bytes, *len, writable, "test");
	assert_non_null(r);
	return r;
}

static void test_new_base_block(void **st)
{
	struct hive *h = hive_new("ROOT");
	assert_non_null(h);
	uint8_t *b;
	size_t n;
	assert_int_equal(hive_serialize(h, &b, &n), 0);
	assert_int_equal(n, 8192);
	assert_memory_equal(b, "regf", 4);
	assert_int_equal(get_le32(b + 4), get_le32(b + 8));      /* clean */
	assert_int_equal(get_le32(b + 20), 1);                   /* major */
	assert_int_equal(get_le32(b + 24), 3);                   /* minor */
	assert_int_equal(get_le32(b + 28), 0);                   /* primary */
	assert_int_equal(get_le32(b + 32), 1);                   /* format */
	assert_int_equal(get_le32(b + 40), 4096);                /* bins size */
	uint32_t x = 0;
	for (size_t i = 0; i < 508; i += 4)
		x ^= get_le32(b + i);
	assert_int_equal(x, get_le32(b + 508));
	assert_memory_equal(b + 4096, "hbin", 4);
	uint32_t root = get_le32(b + 36);
	assert_memory_equal(b + 4096 + root + 4, "nk", 2);
	assert_int_equal(hive_is_dirty(b, n), 0);
	/* Timestamps come from SOURCE_DATE_EPOCH / the fixed epoch: two
	 * hives made the same way are identical. */
	struct hive *h2 = hive_new("ROOT");
	uint8_t *b2;
	size_t n2;
	assert_int_equal(hive_serialize(h2, &b2, &n2), 0);
	assert_int_equal(n, n2);
	assert_memory_equal(b, b2, n);
	free(b);
	free(b2);
	hive_close(h);
	hive_close(h2);
}

static void test_set_get_roundtrip(void **st)
{
	struct hive *h = hive_new("SYSTEM");
	assert_non_null(h);
	assert_int_equal(hive_set_dword(h, "ControlSet001\\Services\\Ntfs", "Start", 0), 0);
	assert_int_equal(hive_set_string(h, "ControlSet001\\Control", "FirmwareBootDevice",
					 "multi(0)disk(0)rdisk(0)partition(1)"), 0);
	const char *items[] = { "a", "bé", "c" };
	assert_int_equal(hive_set_multi_sz(h, "K", "M", items, 3), 0);
	uint8_t bin[5] = { 1, 2, 3, 4, 5 };
	assert_int_equal(hive_set_binary(h, "K", "B", REG_BINARY_, bin, 5), 0);
	assert_int_equal(hive_set_string(h, "K", "", "default"), 0);
	assert_int_equal(hive_set_dword(h, "K", "D", 7), 0);
	assert_int_equal(hive_set_dword(h, "K", "D", 8), 0);       /* replaces */
	assert_int_equal(hive_add_key(h, "Empty\\Sub"), 0);

	uint8_t *bytes;
	size_t len;
	struct hive *r = reopen(h, false, &bytes, &len);
	uint32_t v;
	assert_int_equal(hive_get_dword(r, "controlset001\\SERVICES\\ntfs", "start", &v), 0); /* no case */
	assert_int_equal(v, 0);
	char *s;
	assert_int_equal(hive_get_string(r, "ControlSet001\\Control", "FirmwareBootDevice", &s), 0);
	assert_string_equal(s, "multi(0)disk(0)rdisk(0)partition(1)");
	free(s);
	assert_int_equal(hive_get_string(r, "K", "", &s), 0);
	assert_string_equal(s, "default");
	free(s);
	char **list;
	size_t cnt;
	assert_int_equal(hive_get_multi_sz(r, "K", "M", &list, &cnt), 0);
	assert_int_equal(cnt, 3);
	assert_string_equal(list[1], "bé");
	hive_free_names(list, cnt);
	uint8_t *d;
	size_t dn;
	uint32_t t;
	assert_int_equal(hive_get_binary(r, "K", "B", &d, &dn, &t), 0);
	assert_int_equal(t, REG_BINARY_);
	assert_int_equal(dn, 5);
	assert_memory_equal(d, bin, 5);
	free(d);
	assert_int_equal(hive_get_dword(r, "K", "D", &v), 0);
	assert_int_equal(v, 8);
	assert_true(hive_key_exists(r, "Empty\\Sub"));
	assert_false(hive_key_exists(r, "Empty\\Nope"));
	/* missing → 1; wrong type → -1 E_FORMAT */
	assert_int_equal(hive_get_dword(r, "K", "nope", &v), 1);
	assert_int_equal(hive_get_dword(r, "Nope\\Deeper", "x", &v), 1);
	assert_int_equal(hive_get_dword(r, "K", "B", &v), -1);
	assert_int_equal(err_code(), E_FORMAT);
	assert_int_equal(hive_get_string(r, "K", "D", &s), -1);

	char **names;
	size_t nn;
	assert_int_equal(hive_values(r, "K", &names, &nn), 0);
	assert_int_equal(nn, 4);
	hive_free_names(names, nn);
	assert_int_equal(hive_subkeys(r, "", &names, &nn), 0);
	assert_int_equal(nn, 3);
	hive_free_names(names, nn);
	assert_int_equal(hive_subkeys(r, "Missing", &names, &nn), -1);
	/* read-only hive refuses edits */
	assert_int_equal(hive_set_dword(r, "K", "D", 1), -1);
	hive_close(r);
	free(bytes);

	/* delete keeps the others */
	assert_int_equal(hive_delete_value(h, "K", "d"), 0);
	r = reopen(h, true, &bytes, &len);
	assert_int_equal(hive_get_dword(r, "K", "D", &v), 1);
	assert_int_equal(hive_get_binary(r, "K", "B", &d, &dn, &t), 0);
	free(d);
	/* a reopened writable hive takes more edits */
	assert_int_equal(hive_set_dword(r, "New", "X", 0x12345678), 0);
	uint8_t *b2;
	size_t l2;
	struct hive *r2 = reopen(r, false, &b2, &l2);
	assert_int_equal(hive_get_dword(r2, "New", "X", &v), 0);
	assert_int_equal(v, 0x12345678);
	hive_close(r2);
	free(b2);
	hive_close(r);
	free(bytes);
	hive_close(h);
}

static void test_many_values_grow(void **st)
{
	/* Enough data to need new hive bins. */
	struct hive *h = hive_new("R");
	char name[32];
	uint8_t big[3000];
	memset(big, 0xab, sizeof big);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "Key%02d", i);
		assert_int_equal(hive_set_binary(h, name, "V", REG_BINARY_, big, sizeof big), 0);
	}
	uint8_t *bytes;
	size_t len;
	struct hive *r = reopen(h, false, &bytes, &len);
	assert_true(len > 100000);
	uint8_t *d;
	size_t dn;
	uint32_t t;
	assert_int_equal(hive_get_binary(r, "Key39", "V", &d, &dn, &t), 0);
	assert_int_equal(dn, sizeof big);
	assert_memory_equal(d, big, dn);
	free(d);
	hive_close(r);
	free(bytes);
	hive_close(h);
}

static void test_dirty_detection(void **st)
{
	uint8_t b[16] = "regf";
	put_le32(b + 4, 5);
	put_le32(b + 8, 5);
	assert_int_equal(hive_is_dirty(b, sizeof b), 0);
	put_le32(b + 8, 4);
	assert_int_equal(hive_is_dirty(b, sizeof b), 1);
	assert_int_equal(hive_is_dirty(b, 8), -1);
	b[0] = 'x';
	assert_int_equal(hive_is_dirty(b, sizeof b), -1);
}

static void test_malformed_refused(void **st)
{
	struct hive *h = hive_new("R");
	uint8_t *b;
	size_t n;
	assert_int_equal(hive_serialize(h, &b, &n), 0);
	hive_close(h);

	assert_null(hive_open((const uint8_t *)"garbage", 7, false, "g"));
	assert_int_equal(err_code(), E_FORMAT);
	assert_null(hive_open(b, 4096, false, "truncated"));
	assert_int_equal(err_code(), E_FORMAT);

	uint8_t *c = malloc(n);
	memcpy(c, b, n);
	c[100] ^= 1; /* checksum no longer matches */
	assert_null(hive_open(c, n, false, "badsum"));
	memcpy(c, b, n);
	memcpy(c + 4096, "hbix", 4);
	assert_null(hive_open(c, n, false, "badbin"));
	memcpy(c, b, n);
	put_le32(c + 20, 2); /* major version */
	uint32_t x = 0;
	for (size_t i = 0; i < 508; i += 4)
		x ^= get_le32(c + i);
	put_le32(c + 508, x);
	assert_null(hive_open(c, n, false, "major"));
	assert_int_equal(err_code(), E_FORMAT);
	free(c);
	free(b);
	assert_null(hive_new(""));
	assert_null(hive_new("a\\b"));
}

int main(void)
{
	setenv("SOURCE_DATE_EPOCH", "1256169600", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_base_block),
		cmocka_unit_test(test_set_get_roundtrip),
		cmocka_unit_test(test_many_values_grow),
		cmocka_unit_test(test_dirty_detection),
		cmocka_unit_test(test_malformed_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
