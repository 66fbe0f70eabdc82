/* crc32c.h - CRC-32C (Castagnoli), the checksum of VHDX headers, region
 * tables and log entries (MS-VHDX 2.2.2: "CRC-32C hash over the entire
 * 4 KB structure, with the Checksum field taking the value of zero during
 * the computation"). */
#ifndef GEN2PREP_CRC32C_H
#define GEN2PREP_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Running form: crc = crc32c_update(0, a, n); crc = crc32c_update(crc, b, m). */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
static inline uint32_t crc32c(const void *data, size_t len) { return crc32c_update(0, data, len); }

#endif
