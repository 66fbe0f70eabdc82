/* crc32c.c - see crc32c.h.
 *
 * Reflected CRC-32 with the Castagnoli polynomial 0x1EDC6F41 (reversed
 * 0x82F63B78), initial value and final XOR 0xFFFFFFFF, as in RFC 3720
 * appendix B.4 (iSCSI) which MS-VHDX references. Check value of
 * "123456789" is 0xE3069283. Byte-wise table: VHDX checksums cover a few
 * 64 KiB structures per file, speed is irrelevant.
 */
#include "crc32c.h"

#include <pthread.h>

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[i] = c;
	}
}

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	pthread_once(&table_once, table_init);
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
