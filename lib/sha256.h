/* sha256.h - FIPS 180-4 SHA-256, used to derive deterministic GUIDs and ids
 * from the input (DESIGN.md: same input, same output bytes). */
#ifndef GEN2PREP_SHA256_H
#define GEN2PREP_SHA256_H
#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t fill;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);

#endif
