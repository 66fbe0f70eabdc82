/* test_core.c - util, guid and sha256 against published vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include "guid.h"
#include "json_text.h"
#include <string.h>
#include "sha256.h"
#include "util.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

/* FIPS 180-4 / NIST example vectors */
static void test_sha256_vectors(void **st)
{
	struct sha256 s;
	uint8_t d[32];
	char h[65];
	sha256_init(&s);
	sha256_update(&s, "abc", 3);
	sha256_final(&s, d);
	hex(d, 32, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_init(&s);
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	for (const char *p = m; *p; p++) sha256_update(&s, p, 1); /* byte at a time */
	sha256_final(&s, d);
	hex(d, 32, h);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* The ESP type GUID: text C12A7328-F81F-11D2-BA4B-00A0C93EC93B is stored in
 * a GPT entry as 28 73 2A C1 1F F8 D2 11 BA 4B 00 A0 C9 3E C9 3B (UEFI 5.3). */
static void test_guid_roundtrip(void **st)
{
	struct guid g;
	char s[GUID_STR_LEN + 1];
	static const uint8_t disk[16] = { 0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
					  0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B };
	assert_int_equal(guid_from_str("{C12A7328-F81F-11D2-BA4B-00A0C93EC93B}", &g), 0);
	assert_memory_equal(g.b, disk, 16);
	assert_string_equal(guid_to_str(&g, s), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
	assert_int_equal(guid_from_str("c12a7328-f81f-11d2-ba4b-00a0c93ec93", &g), -1);
	assert_int_equal(guid_from_str("c12a7328-f81f-11d2-ba4b-00a0c93ec93bx", &g), -1);
	assert_int_equal(guid_from_str("{c12a7328-f81f-11d2-ba4b-00a0c93ec93b", &g), -1);
	assert_int_equal(guid_from_str("g12a7328-f81f-11d2-ba4b-00a0c93ec93b", &g), -1);
}

static void test_guid_derive_deterministic(void **st)
{
	struct guid a, b, c;
	guid_derive(&a, "disk", "x", 1);
	guid_derive(&b, "disk", "x", 1);
	guid_derive(&c, "part1", "x", 1);
	assert_true(guid_eq(&a, &b));
	assert_false(guid_eq(&a, &c));
	assert_int_equal(a.b[7] >> 4, 5);     /* version 5 */
	assert_int_equal(a.b[8] & 0xC0, 0x80); /* RFC 4122 variant */
}

static void test_range_ok(void **st)
{
	assert_true(range_ok(0, 10, 10));
	assert_false(range_ok(1, 10, 10));
	assert_false(range_ok(UINT64_MAX, 2, 10));
	assert_false(range_ok(5, UINT64_MAX, 10));
}

static void test_utf16(void **st)
{
	size_t n;
	uint8_t *w = utf8_to_utf16le("Kernel-\xc3\xa9\xf0\x9f\x98\x80", &n);
	assert_int_equal(n, 7 + 1 + 2);
	char *back = utf16le_to_utf8(w, n);
	assert_string_equal(back, "Kernel-\xc3\xa9\xf0\x9f\x98\x80");
	free(w);
	free(back);
}

static void test_errors(void **st)
{
	err_clear();
	assert_int_equal(err_set(E_FORMAT, "bad %d", 7), -1);
	err_prefix("file.vhdx");
	assert_string_equal(err_msg(), "file.vhdx: bad 7");
	assert_int_equal(err_code(), E_FORMAT);
}

/* str_copy: a name fits whole or is refused with a message, never cut. */
static void test_str_copy(void **st)
{
	(void)st;
	char b[8];
	assert_int_equal(str_copy(b, sizeof b, "1234567", "name"), 0);   /* 7 + NUL fits */
	assert_string_equal(b, "1234567");
	err_clear();
	assert_int_equal(str_copy(b, sizeof b, "12345678", "value name"), -1);
	assert_string_equal(b, "");
	assert_int_equal(err_code(), E_FORMAT);
	assert_non_null(strstr(err_msg(), "value name '12345678...' is 8 bytes, longer than the 7"));
	err_clear();
}

static void test_is_zero(void **st)
{
	uint8_t buf[4096] = { 0 };
	assert_true(is_zero(buf, sizeof buf));
	buf[4095] = 1;
	assert_false(is_zero(buf, sizeof buf));
	buf[4095] = 0; buf[3] = 1;
	assert_false(is_zero(buf, 5));
}

/* json_text: valid UTF-8 kept as it is; each byte that does not start a
 * valid sequence (RFC 3629 section 4) becomes U+FFFD, so jansson takes the
 * text (it returns NULL for invalid UTF-8 and the key was lost). */
static void test_json_text(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } v[] = {
		{ "plain \\Windows", "plain \\Windows" },
		{ "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80" },
		{ "a\xFF.vhdx", "a\xEF\xBF\xBD.vhdx" },                 /* a Linux name's stray byte */
		{ "\xED\xA0\x80x", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx" }, /* lone surrogate U+D800 */
		{ "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD" },          /* overlong '/' */
		{ "\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" }, /* past U+10FFFF */
		{ "\xE2\x82", "\xEF\xBF\xBD\xEF\xBF\xBD" },          /* cut at the end */
	};
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		json_t *j = json_text(v[i].in);
		assert_non_null(j);
		assert_string_equal(json_string_value(j), v[i].out);
		json_decref(j);
	}
	assert_null(json_text(NULL));
	char small[5];
	assert_int_equal(utf8_sanitize("ab\xFF", small, sizeof small), 2);   /* U+FFFD does not fit: cut before it */
	assert_string_equal(small, "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_guid_roundtrip),
		cmocka_unit_test(test_guid_derive_deterministic),
		cmocka_unit_test(test_range_ok),
		cmocka_unit_test(test_utf16),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_is_zero),
		cmocka_unit_test(test_str_copy),
		cmocka_unit_test(test_json_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
