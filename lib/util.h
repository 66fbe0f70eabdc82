/* util.h - error reporting and bounds-checked little-endian access shared by
 * every module.
 *
 * Error convention: a function that fails calls err_set() with a code and a
 * one-line reason and returns -1 (or NULL). The caller may add context with
 * err_prefix() ("SYSTEM hive: ...") and passes -1 up. The CLI prints
 * err_msg() and maps err_code() to an exit status (see src/exitcodes.h).
 */
#ifndef GEN2PREP_UTIL_H
#define GEN2PREP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum err_code {
	E_OK = 0,
	E_IO,          /* read/write/open failed (errno-like) */
	E_FORMAT,      /* input is malformed or not the expected format */
	E_NOMEM,
	E_NOTFOUND,    /* a file, key, value or patch site is not there */
	E_AMBIGUOUS,   /* more than one candidate where exactly one is required */
	E_UNSUPPORTED, /* valid input we deliberately do not handle */
	E_EXISTS,      /* output exists */
	E_NOSPACE,     /* output device full / no room in the layout */
	E_USAGE,       /* bad arguments */
	E_BLOCKED,     /* refused: a blocker (reason in the message) */
	E_INTERRUPTED, /* SIGINT/SIGTERM */
	E_INTERNAL,
	E_OUTPUT,      /* the output cannot be created or written (folder, read-only file system, I/O) */
	E_PATCH,       /* a required patch site not found or ambiguous (exit 5 in every command) */
};
/* The one mapping from err_code to exit status is cli_exit_for() (src/cli.c). */

/* Records code and message (printf format); returns -1. */
int err_set(enum err_code code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records code and "message: strerror(errno)"; returns -1. */
int err_errno(enum err_code code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "context: " to the current message; returns -1. */
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* err_prefix("%s", path) unless the message names the file already (as
 * 'path', quoted): a message names its file once. Returns -1. */
int err_prefix_file(const char *path);
const char *err_msg(void);
enum err_code err_code(void);
/* Keeps the message, changes the code (e.g. a read error of the input is
 * E_FORMAT "unreadable input" to the caller); returns -1. */
int err_recode(enum err_code code);
void err_clear(void);
/* How many times E_NOMEM was set in this thread, err_clear() or not: code
 * that reads on after an error (a value that may be absent, a best-effort
 * detail) compares it before and after, so that a run short of memory
 * fails instead of going on with a detail missing. */
unsigned long err_nomem_count(void);

/* Allocation. On failure: NULL with E_NOMEM "out of memory (N bytes)"
 * set; the caller names what it was allocating with err_prefix() and
 * passes the error up (exit 1), never aborts. A size of 0 allocates 1. */
#define ALLOC_ATTR __attribute__((malloc, warn_unused_result))
void *xmalloc(size_t n) ALLOC_ATTR;
void *xcalloc(size_t n, size_t m) ALLOC_ATTR;
void *xrealloc(void *p, size_t n) __attribute__((warn_unused_result));  /* NULL: p is still valid */
char *xstrdup(const char *s) ALLOC_ATTR;
/* Testing only (NULL in the program): called before each allocation of
 * the functions above and below; true makes that one fail as if malloc
 * had (fuzz/fuzz_nomem.c picks which from its input). */
extern bool (*xalloc_fail_hook)(void);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2))) ALLOC_ATTR;
/* Copies src into dst[n] when it fits (strlen(src) < n): 0. Otherwise dst
 * becomes "" and -1 is returned with E_FORMAT "WHAT '<start of src>...' is
 * N bytes, longer than the M this field holds": a name from an image is
 * either whole or refused, never cut. */
int str_copy(char *dst, size_t n, const char *src, const char *what);
/* snprintf into dst[n] that is never cut: the length written, or -1 with
 * E_FORMAT "WHAT: N bytes, longer than the M this field holds" (dst "")
 * when the whole text does not fit. */
int fmt_fit(char *dst, size_t n, const char *what, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int fmt_vfit(char *dst, size_t n, const char *what, const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
/* Appends the text to a list being built in dst[n] (*used bytes so far,
 * dst[0] set to "" before the first call): 0 when it went in whole; when
 * it does not fit, dst ends with " ..." (room for it is always kept) and
 * -1 is returned, as for every later call: a list in a message is
 * shortened visibly, never cut inside a name. */
int text_append(char *dst, size_t n, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Compile-time proof that copying struct src_type's char array src into
 * dst_type's dst never cuts: dst is at least as large. A copy it covers
 * carries a "fits: FIELD_FITS" comment (tests/snprintf-audit.py). */
#define FIELD_FITS(dst_type, dst, src_type, src) \
	_Static_assert(sizeof(((dst_type *)0)->dst) >= sizeof(((src_type *)0)->src), #dst " holds any " #src)
/* snprintf for a message (a reason, not a name to act on) into dst[n]:
 * 0 when it fits whole; else its start ending in "..." (visibly
 * shortened, never silently cut) and -1. err_set uses it too. */
int msg_printf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int msg_vprintf(char *dst, size_t n, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* Overflow-safe range check: [off, off+len) inside [0, size). */
static inline bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static inline uint16_t get_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t get_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static inline uint64_t get_le64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)get_le32(b) | ((uint64_t)get_le32(b + 4) << 32);
}
static inline uint32_t get_be32(const void *p)
{
	const uint8_t *b = p;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}
static inline uint64_t get_be64(const void *p)
{
	const uint8_t *b = p;
	return ((uint64_t)get_be32(b) << 32) | get_be32(b + 4);
}
static inline void put_le16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = v; b[1] = v >> 8;
}
static inline void put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = v; b[1] = v >> 8; b[2] = v >> 16; b[3] = v >> 24;
}
static inline void put_le64(void *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
static inline void put_be32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v;
}
static inline void put_be64(void *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32((uint8_t *)p + 4, (uint32_t)v);
}

/* True when all len bytes are zero (fast path for the streaming writers). */
bool is_zero(const void *p, size_t len);

/* Case-insensitive ASCII compare (Windows names in paths, registry keys). */
int ascii_casecmp(const char *a, const char *b);

/* Deterministic time for every timestamp written: SOURCE_DATE_EPOCH when
 * set, else 2009-10-22 00:00:00 UTC (Windows 7 GA), never the clock. */
uint64_t build_epoch(void);

/* UTF-16LE <-> UTF-8 (BMP + surrogate pairs). Returns malloc'd strings
 * (NULL with E_NOMEM set when out of memory); utf16_to_utf8 stops at the
 * first NUL or n units. */
char *utf16le_to_utf8(const uint8_t *p, size_t n_units);
uint8_t *utf8_to_utf16le(const char *s, size_t *n_units_out); /* NUL not counted, but appended */
/* The n_units utf8_to_utf16le would give, without allocating. */
size_t utf8_utf16_units(const char *s);

#endif
