/* json_text.h - text into JSON whatever its bytes.
 *
 * jansson's json_string() returns NULL for text that is not valid UTF-8
 * (RFC 8259 section 8.1: JSON text exchanged between systems is UTF-8),
 * and a key set to NULL is simply missing: a --json report about a file
 * whose Linux name has a byte such as 0xff, or a name read from an image
 * holding a lone UTF-16 surrogate (kept as its 3-byte form by
 * utf16le_to_utf8, so that it can be written back), lost its message or
 * the whole object. */
#ifndef GEN2PREP_JSON_TEXT_H
#define GEN2PREP_JSON_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* A JSON string of s: s itself when it is valid UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), else a copy with
 * each byte that does not start a valid sequence replaced by U+FFFD.
 * NULL when s is NULL or memory runs out (as json_string). */
json_t *json_text(const char *s);

/* The replacement above into out (size n, at least 1): returns the
 * length written, the copy cut at a whole character when it does not fit. */
size_t utf8_sanitize(const char *s, char *out, size_t n);

#endif
