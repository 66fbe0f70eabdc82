/* test_locator.c - the VHDX parent locator parse (lib/vhdx_locator.c,
 * MS-VHDX 2.6.2.6): items built here byte by byte from the specification's
 * layout (20-byte header, 12-byte entries, UTF-16LE keys and values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "vhdx_format.h"

struct kv { const char *k, *v; };

/* The item for n pairs: header, entries, then each key and value. */
static size_t build(uint8_t *out, const struct kv *p, int n)
{
	static const uint8_t type[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a,
					  0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };
	memset(out, 0, 4096);
	memcpy(out, type, 16);
	out[18] = (uint8_t)n;
	size_t at = 20 + 12 * (size_t)n;
	for (int i = 0; i < n; i++) {
		uint8_t *e = out + 20 + 12 * i;
		const char *s[2] = { p[i].k, p[i].v };
		for (int j = 0; j < 2; j++) {
			size_t len = strlen(s[j]);
			e[4 * j] = (uint8_t)at, e[4 * j + 1] = (uint8_t)(at >> 8);
			e[8 + 2 * j] = (uint8_t)(2 * len);
			for (size_t c = 0; c < len; c++) out[at + 2 * c] = (uint8_t)s[j][c];
			at += 2 * len;
		}
	}
	return at;
}

static const char LINK[] = "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}";

static void relative_first(void **st)
{
	uint8_t b[4096];
	const struct kv p[] = { { "absolute_win32_path", "\\\\?\\d:\\a\\p.vhdx" }, { "parent_linkage", LINK },
				{ "relative_path", "..\\x\\p.vhdx" }, { "volume_path", "\\\\?\\Volume{1}\\p.vhdx" } };
	struct vhdx_locator l;
	assert_int_equal(vhdx_locator_parse(b, build(b, p, 4), &l), 0);
	assert_string_equal(l.path, "..\\x\\p.vhdx");   /* 2.6.2.6.3: relative_path, volume_path, absolute */
	assert_true(l.has_linkage);
	char s[40];
	assert_string_equal(guid_to_str(&l.linkage, s), "83ed0ec3-24c8-49a6-a959-5e4bf1288bfb");
	free(l.path);
}

static void volume_then_absolute(void **st)
{
	uint8_t b[4096];
	const struct kv p[] = { { "absolute_win32_path", "\\\\?\\d:\\p.vhdx" }, { "volume_path", "V" }, { "parent_linkage", LINK } };
	struct vhdx_locator l;
	assert_int_equal(vhdx_locator_parse(b, build(b, p, 3), &l), 0);
	assert_string_equal(l.path, "V");
	free(l.path);
	assert_int_equal(vhdx_locator_parse(b, build(b, (const struct kv[]){ p[0], p[2] }, 2), &l), 0);
	assert_string_equal(l.path, "\\\\?\\d:\\p.vhdx");
	free(l.path);
}

static void refusals(void **st)
{
	uint8_t b[4096];
	struct vhdx_locator l;
	const struct kv nolink[] = { { "relative_path", "p.vhdx" } };
	assert_int_equal(vhdx_locator_parse(b, build(b, nolink, 1), &l), -1);
	assert_int_equal(err_code(), E_FORMAT);
	assert_null(l.path);
	const struct kv nopath[] = { { "parent_linkage", LINK }, { "relative_paths", "p.vhdx" } };
	assert_int_equal(vhdx_locator_parse(b, build(b, nopath, 2), &l), -1);
	const struct kv badguid[] = { { "parent_linkage", "{not-a-guid}" }, { "relative_path", "p" } };
	assert_int_equal(vhdx_locator_parse(b, build(b, badguid, 2), &l), -1);
	const struct kv ok[] = { { "parent_linkage", LINK }, { "relative_path", "p" } };
	size_t n = build(b, ok, 2);
	assert_int_equal(vhdx_locator_parse(b, n - 1, &l), -1);   /* the last value past the end */
	assert_int_equal(vhdx_locator_parse(b, 19, &l), -1);      /* no whole header */
	b[18] = 200;                                                /* entries past the item */
	assert_int_equal(vhdx_locator_parse(b, n, &l), -1);
	build(b, ok, 2);
	b[20 + 8] = 0;                                              /* KeyLength 0 (2.6.2.6.2: > 0) */
	assert_int_equal(vhdx_locator_parse(b, n, &l), -1);
	build(b, ok, 2);
	b[0] ^= 1;                                                  /* not the VHDX locator type */
	assert_int_equal(vhdx_locator_parse(b, n, &l), -1);
	assert_int_equal(err_code(), E_UNSUPPORTED);
}

/* A failure after the path was taken leaves nothing allocated (found by
 * fuzz/fuzz_locator: the path of entry 1 was kept when entry 2 lay past the
 * item's end). */
static void failure_after_path(void **st)
{
	uint8_t b[4096];
	struct vhdx_locator l;
	const struct kv ok[] = { { "parent_linkage", LINK }, { "relative_path", "p.vhdx" } };
	size_t n = build(b, ok, 2);
	b[18] = 3;   /* a third entry: the first 12 bytes of "parent_linkage", offsets past the item */
	assert_int_equal(vhdx_locator_parse(b, n, &l), -1);
	assert_int_equal(err_code(), E_FORMAT);
	assert_string_equal(err_msg(), "VHDX parent locator entry 2 outside the item");
	assert_null(l.path);
	const struct kv badlink[] = { { "relative_path", "p.vhdx" }, { "parent_linkage", "{not-a-guid}" } };
	assert_int_equal(vhdx_locator_parse(b, build(b, badlink, 2), &l), -1);
	assert_string_equal(err_msg(), "VHDX parent locator: parent_linkage is not a GUID");
	assert_null(l.path);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(relative_first),
		cmocka_unit_test(volume_then_absolute),
		cmocka_unit_test(refusals),
		cmocka_unit_test(failure_after_path),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
