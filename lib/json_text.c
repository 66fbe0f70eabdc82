/* json_text.c - see json_text.h. */
#include "util.h"
#include "json_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (RFC 3629 section 4, the
 * UTF8-octets grammar), 0 when the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *p)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;
	if (c < 0x80) return 1;
	if (c >= 0xC2 && c <= 0xDF) n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0) lo = 0xA0;          /* overlong */
		if (c == 0xED) hi = 0x9F;          /* U+D800..U+DFFF */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0) lo = 0x90;          /* overlong */
		if (c == 0xF4) hi = 0x8F;          /* past U+10FFFF */
	} else return 0;
	if (p[1] < lo || p[1] > hi) return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF) return 0;
	return n;
}

size_t utf8_sanitize(const char *s, char *out, size_t n)
{
	static const char repl[] = "\xEF\xBF\xBD";   /* U+FFFD */
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	while (*p) {
		size_t k = utf8_seq_len(p);
		const char *from = k ? (const char *)p : repl;
		size_t len = k ? k : 3;
		if (o + len >= n) break;
		memcpy(out + o, from, len);
		o += len;
		p += k ? k : 1;
	}
	out[o] = 0;
	return o;
}

json_t *json_text(const char *s)
{
	if (!s) return NULL;
	json_t *j = json_string(s);
	if (j) return j;
	size_t n = strlen(s) * 3 + 1;           /* each byte at most U+FFFD */
	char *t = xmalloc(n);
	if (!t) return NULL;
	utf8_sanitize(s, t, n);
	j = json_string(t);
	free(t);
	return j;
}
