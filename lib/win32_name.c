/* win32_name.c - see win32_name.h */
#include "win32_name.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* A device name is its stem (the part before the first period) alone:
 * "CON", "con.vhdx" and "COM1.tar.gz" are devices, "CONSOLE" is not. */
static bool device_name(const char *name, size_t stem)
{
	static const char *const dev[] = { "CON", "PRN", "AUX", "NUL" };
	for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
		if (stem == 3 && !strncasecmp(name, dev[i], 3)) return true;
	return stem == 4 && (!strncasecmp(name, "COM", 3) || !strncasecmp(name, "LPT", 3)) && name[3] >= '1' &&
	       name[3] <= '9';
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629, section 4:
 * no overlong form, no surrogate, at most U+10FFFF), 0 when it is not
 * one. A Linux name is bytes: one that is not UTF-8 has no UTF-16 form
 * (what a locator and the Win32 API hold), so no Windows name. */
static size_t utf8_seq(const unsigned char *p)
{
	if (p[0] < 0x80) return 1;
	size_t len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC0 ? 2 : 0;
	if (!len || p[0] > 0xF4) return 0;
	uint32_t c = p[0] & (0x7F >> len);
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80) return 0;
		c = c << 6 | (p[i] & 0x3F);
	}
	static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (c < least[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
	return len;
}

const char *win32_name_why(const char *name, char *why, size_t n)
{
	if (!strcmp(name, ".") || !strcmp(name, "..")) return NULL;
	for (const unsigned char *c = (const unsigned char *)name; *c;) {
		size_t k = utf8_seq(c);
		if (!k) {
			msg_printf(why, n, "byte 0x%02x that is not UTF-8", *c);
			return why;
		}
		c += k;
	}
	for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
		if (*c < 0x20) {
			msg_printf(why, n, "control character 0x%02x", *c);
			return why;
		}
		if (strchr("<>:\"/\\|?*", *c)) {
			msg_printf(why, n, "character '%c'", *c);
			return why;
		}
	}
	size_t len = strlen(name), stem = strcspn(name, ".");
	if (len && (name[len - 1] == '.' || name[len - 1] == ' ')) {
		msg_printf(why, n, "trailing %s", name[len - 1] == '.' ? "period" : "space");
		return why;
	}
	if (device_name(name, stem)) {
		msg_printf(why, n, "reserved device name %.*s", (int)stem, name);
		return why;
	}
	return NULL;
}
