/* util.c - see util.h */
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* two whole paths (PATH_MAX each) and their cause: a message about IN
 * and OUT keeps its cause however long the names */
static _Thread_local char err_buf[4096 * 2 + 2048];
static _Thread_local enum err_code err_cur;
static _Thread_local unsigned long nomem_seen;   /* E_NOMEM set, even if cleared since */

int msg_vprintf(char *dst, size_t n, const char *fmt, va_list ap)
{
	int len = vsnprintf(dst, n, fmt, ap);
	if (len >= 0 && (size_t)len < n)
		return 0;
	if (n >= 4)
		memcpy(dst + n - 4, "...", 4);
	else if (n)
		dst[0] = 0;
	return -1;
}

int msg_printf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = msg_vprintf(dst, n, fmt, ap);
	va_end(ap);
	return r;
}

__attribute__((format(printf, 2, 0)))
static void err_vset(enum err_code code, const char *fmt, va_list ap)
{
	err_cur = code;
	if (code == E_NOMEM) nomem_seen++;
	msg_vprintf(err_buf, sizeof err_buf, fmt, ap);
}

int err_set(enum err_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(code, fmt, ap);
	va_end(ap);
	return -1;
}

int err_errno(enum err_code code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	err_vset(code, fmt, ap);
	va_end(ap);
	size_t n = strlen(err_buf);
	msg_printf(err_buf + n, sizeof err_buf - n, ": %s", strerror(saved));
	if (saved == ENOSPC || saved == EDQUOT)
		err_cur = E_NOSPACE;
	return -1;
}

int err_prefix(const char *fmt, ...)
{
	static _Thread_local char pre[4096 + 512], old[sizeof err_buf];
	va_list ap;
	va_start(ap, fmt);
	msg_vprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, err_buf, sizeof old);
	/* a message longer than the buffer ends in "..." (never cut silently) */
	if (snprintf(err_buf, sizeof err_buf, "%s: %s", pre, old) >= (int)sizeof err_buf)
		memcpy(err_buf + sizeof err_buf - 4, "...", 4);
	if (err_cur == E_OK)
		err_cur = E_INTERNAL;
	return -1;
}

int err_prefix_file(const char *path)
{
	static _Thread_local char quoted[4096 + 8];
	msg_printf(quoted, sizeof quoted, "'%s'", path);
	if (strstr(err_buf, quoted)) {
		if (err_cur == E_OK) err_cur = E_INTERNAL;
		return -1;
	}
	return err_prefix("%s", path);
}

const char *err_msg(void) { return err_buf[0] ? err_buf : "unknown error"; }
enum err_code err_code(void) { return err_cur; }
int err_recode(enum err_code code) { err_cur = code; if (code == E_NOMEM) nomem_seen++; return -1; }
unsigned long err_nomem_count(void) { return nomem_seen; }
void err_clear(void) { err_buf[0] = 0; err_cur = E_OK; }

/* Allocation failure is an error like any other (E_NOMEM, exit 1): the
 * caller adds what it was allocating with err_prefix() and returns -1, so
 * a run out of memory ends like any failed run: nothing written, no
 * temporary file left, the input unchanged. */
bool (*xalloc_fail_hook)(void);

static void *oom(size_t n)
{
	err_set(E_NOMEM, "out of memory (%zu bytes)", n);
	return NULL;
}

/* jansson reports a failed allocation as a NULL value or -1 and no more:
 * through this one E_NOMEM is set (and err_nomem_count counts it), so a
 * JSON document that lost a member says why. Installed before main. */
static void *json_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

__attribute__((constructor)) static void json_alloc_install(void)
{
	json_set_alloc_funcs(json_alloc, free);
}

void *xmalloc(size_t n)
{
	void *p = xalloc_fail_hook && xalloc_fail_hook() ? NULL : malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *xcalloc(size_t n, size_t m)
{
	void *p = xalloc_fail_hook && xalloc_fail_hook() ? NULL : calloc(n ? n : 1, m ? m : 1);
	return p ? p : oom(m && n > SIZE_MAX / m ? SIZE_MAX : n * m);
}

void *xrealloc(void *p, size_t n)
{
	void *q = xalloc_fail_hook && xalloc_fail_hook() ? NULL : realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

char *xstrdup(const char *s)
{
	char *p = xalloc_fail_hook && xalloc_fail_hook() ? NULL : strdup(s ? s : "");
	return p ? p : oom(strlen(s ? s : "") + 1);
}

int str_copy(char *dst, size_t n, const char *src, const char *what)
{
	size_t len = strlen(src);
	if (len < n) {
		memcpy(dst, src, len + 1);
		return 0;
	}
	if (n) dst[0] = 0;
	return err_set(E_FORMAT, "%s '%.40s...' is %zu bytes, longer than the %zu this field holds", what, src, len,
		       n ? n - 1 : 0);
}

int fmt_vfit(char *dst, size_t n, const char *what, const char *fmt, va_list ap)
{
	int len = vsnprintf(dst, n, fmt, ap);
	if (len >= 0 && (size_t)len < n)
		return len;
	if (n) dst[0] = 0;
	return err_set(E_FORMAT, "%s: %d bytes, longer than the %zu this field holds", what, len, n ? n - 1 : 0);
}

int fmt_fit(char *dst, size_t n, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = fmt_vfit(dst, n, what, fmt, ap);
	va_end(ap);
	return r;
}

#define TEXT_MORE " ..."

int text_append(char *dst, size_t n, size_t *used, const char *fmt, ...)
{
	if (*used >= n)
		return -1;
	char *piece;
	va_list ap;
	va_start(ap, fmt);
	int len = vasprintf(&piece, fmt, ap);
	va_end(ap);
	if (len >= 0 && *used + (size_t)len + sizeof TEXT_MORE <= n) {
		memcpy(dst + *used, piece, (size_t)len + 1);
		*used += (size_t)len;
		free(piece);
		return 0;
	}
	if (len >= 0)
		free(piece);
	if (*used + sizeof TEXT_MORE <= n)
		memcpy(dst + *used, TEXT_MORE, sizeof TEXT_MORE);
	*used = n;
	return -1;
}

char *xasprintf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int r = xalloc_fail_hook && xalloc_fail_hook() ? -1 : vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0) {
		err_set(E_NOMEM, "out of memory (formatting a string)");
		return NULL;
	}
	return s;
}

bool is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	/* Check the first 16 bytes, then compare the buffer with itself shifted:
	 * memcmp is vectorised and this touches every byte once. */
	size_t head = len < 16 ? len : 16;
	for (size_t i = 0; i < head; i++)
		if (b[i]) return false;
	if (len <= 16) return true;
	return memcmp(b, b + 16, len - 16) == 0;
}

int ascii_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int ca = (unsigned char)*a, cb = (unsigned char)*b;
		if (ca >= 'A' && ca <= 'Z') ca += 32;
		if (cb >= 'A' && cb <= 'Z') cb += 32;
		if (ca != cb || !ca) return ca - cb;
	}
}

uint64_t build_epoch(void)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	if (s && *s) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(s, &end, 10);
		if (!errno && !*end) return v;
	}
	return 1256169600ULL; /* 2009-10-22T00:00:00Z */
}

char *utf16le_to_utf8(const uint8_t *p, size_t n)
{
	char *out = xmalloc(n * 3 + 1), *o = out;
	if (!out) return NULL;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = get_le16(p + 2 * i);
		if (!c) break;
		if (c >= 0xD800 && c < 0xDC00 && i + 1 < n) {
			uint32_t d = get_le16(p + 2 * (i + 1));
			if (d >= 0xDC00 && d < 0xE000) {
				c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00);
				i++;
			}
		}
		if (c < 0x80) *o++ = c;
		else if (c < 0x800) { *o++ = 0xC0 | (c >> 6); *o++ = 0x80 | (c & 0x3F); }
		else if (c < 0x10000) { *o++ = 0xE0 | (c >> 12); *o++ = 0x80 | ((c >> 6) & 0x3F); *o++ = 0x80 | (c & 0x3F); }
		else { *o++ = 0xF0 | (c >> 18); *o++ = 0x80 | ((c >> 12) & 0x3F); *o++ = 0x80 | ((c >> 6) & 0x3F); *o++ = 0x80 | (c & 0x3F); }
	}
	*o = 0;
	return out;
}

/* One code point from *p (not NUL), *p moved past it: a lead byte takes
 * the continuation bytes that follow it, up to its count; a stray
 * continuation byte stands for itself. */
static uint32_t utf8_next(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t c = *p++;
	int extra = 0;
	if (c >= 0xF0) { c &= 0x07; extra = 3; }
	else if (c >= 0xE0) { c &= 0x0F; extra = 2; }
	else if (c >= 0xC0) { c &= 0x1F; extra = 1; }
	for (; extra && (*p & 0xC0) == 0x80; extra--)
		c = (c << 6) | (*p++ & 0x3F);
	*pp = p;
	return c;
}

/* utf8_to_utf16le's decoding, counting only: nothing to allocate. */
size_t utf8_utf16_units(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	while (*p) {
		uint32_t c = utf8_next(&p);
		n += c >= 0x10000 ? 2 : 1;
	}
	return n;
}

uint8_t *utf8_to_utf16le(const char *s, size_t *n_units_out)
{
	size_t len = strlen(s), n = 0;
	uint8_t *out = xmalloc(2 * (len + 1) * 2);
	if (!out) return NULL;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		uint32_t c = utf8_next(&p);
		if (c >= 0x10000) {
			c -= 0x10000;
			put_le16(out + 2 * n++, 0xD800 | (c >> 10));
			put_le16(out + 2 * n++, 0xDC00 | (c & 0x3FF));
		} else {
			put_le16(out + 2 * n++, c);
		}
	}
	put_le16(out + 2 * n, 0);
	if (n_units_out) *n_units_out = n;
	return out;
}
