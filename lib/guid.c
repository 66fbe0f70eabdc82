/* guid.c - see guid.h */
#include "guid.h"
#include "sha256.h"
#include "util.h"

#include <stdio.h>
#include <sys/random.h>

char *guid_to_str(const struct guid *g, char *out)
{
	const uint8_t *b = g->b;
	snprintf(out, GUID_STR_LEN + 1,
		 "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 get_le32(b), get_le16(b + 4), get_le16(b + 6), b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);   /* fits: 36 chars, GUID_STR_LEN */
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int guid_from_str(const char *s, struct guid *out)
{
	const char *p = s;
	uint8_t raw[16];
	size_t n = 0;
	bool brace = *p == '{';
	if (brace) p++;
	for (int i = 0; i < 36; i++, p++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (*p != '-') goto bad;
			continue;
		}
		int hi = hexval(p[0]), lo;
		if (hi < 0 || (lo = hexval(p[1])) < 0) goto bad;
		raw[n++] = (uint8_t)(hi << 4 | lo);
		p++, i++;
	}
	if (brace && *p++ != '}') goto bad;
	if (*p) goto bad;
	/* text is big-endian per field; on disk the first three are LE */
	out->b[0] = raw[3]; out->b[1] = raw[2]; out->b[2] = raw[1]; out->b[3] = raw[0];
	out->b[4] = raw[5]; out->b[5] = raw[4];
	out->b[6] = raw[7]; out->b[7] = raw[6];
	memcpy(out->b + 8, raw + 8, 8);
	return 0;
bad:
	return err_set(E_FORMAT, "not a GUID: '%.40s'", s);
}

bool guid_is_zero(const struct guid *g) { return is_zero(g->b, 16); }
bool guid_eq(const struct guid *a, const struct guid *b) { return !memcmp(a->b, b->b, 16); }

void guid_derive(struct guid *out, const char *ns, const void *data, size_t len)
{
	struct sha256 s;
	uint8_t h[32];
	sha256_init(&s);
	sha256_update(&s, "gen2prep:", 9);
	sha256_update(&s, ns, strlen(ns) + 1);
	sha256_update(&s, data, len);
	sha256_final(&s, h);
	memcpy(out->b, h, 16);
	/* RFC 4122 4.1.3 version in the high nibble of time_hi (stored LE:
	 * byte 7), variant 10xx in clock_seq_hi (byte 8). Version 5 = name-based. */
	out->b[7] = (out->b[7] & 0x0F) | 0x50;
	out->b[8] = (out->b[8] & 0x3F) | 0x80;
}

int guid_random(struct guid *out)
{
	if (getrandom(out->b, 16, 0) != 16)
		return err_errno(E_IO, "getrandom");
	out->b[7] = (out->b[7] & 0x0F) | 0x40;
	out->b[8] = (out->b[8] & 0x3F) | 0x80;
	return 0;
}
