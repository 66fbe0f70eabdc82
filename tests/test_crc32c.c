/* test_crc32c.c - CRC-32C test vectors (RFC 3720 B.4 and the standard
 * check value) and the running form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "crc32c.h"

static void check_value(void **st)
{
	assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c("", 0), 0);
}

static void rfc3720_vectors(void **st)
{
	uint8_t b[32];
	memset(b, 0, 32);
	assert_int_equal(crc32c(b, 32), 0x8A9136AAu);
	memset(b, 0xff, 32);
	assert_int_equal(crc32c(b, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
	assert_int_equal(crc32c(b, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
	assert_int_equal(crc32c(b, 32), 0x113FDB5Cu);
}

static void running(void **st)
{
	const char *s = "123456789";
	uint32_t c = crc32c_update(0, s, 4);
	c = crc32c_update(c, s + 4, 5);
	assert_int_equal(c, 0xE3069283u);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(check_value),
		cmocka_unit_test(rfc3720_vectors),
		cmocka_unit_test(running),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
