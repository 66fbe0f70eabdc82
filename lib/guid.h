/* guid.h - GUIDs as Windows stores them.
 *
 * A struct guid holds the 16 bytes in on-disk order, i.e. exactly as they
 * appear in a GPT entry (UEFI spec 2.x, 5.3: EFI_GUID, first three fields
 * little endian), in BCD device elements and in MountedDevices "DMIO:ID:"
 * values. The text form is the usual registry form, lower case, without
 * braces: 9dea862c-5cdd-4e70-acc1-f32b344d4795.
 */
#ifndef GEN2PREP_GUID_H
#define GEN2PREP_GUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guid {
	uint8_t b[16];
};

#define GUID_STR_LEN 36 /* without braces and NUL */

/* Formats into out (>= 37 bytes). Returns out. */
char *guid_to_str(const struct guid *g, char *out);
/* Parses with or without braces, any case. Returns 0 or -1 (err set). */
int guid_from_str(const char *s, struct guid *out);
bool guid_is_zero(const struct guid *g);
bool guid_eq(const struct guid *a, const struct guid *b);
/* Deterministic version-5-style GUID from a namespace string and input bytes
 * (SHA-256 based, RFC 4122 variant/version bits set): same input, same GUID.
 * Used unless --random-ids. */
void guid_derive(struct guid *out, const char *ns, const void *data, size_t len);
/* Random (version 4) GUID from getrandom(). */
int guid_random(struct guid *out);

#endif
