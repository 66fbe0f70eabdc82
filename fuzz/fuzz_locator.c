/* fuzz_locator - libFuzzer harness for lib/vhdx_locator.c, the parse of a
 * VHDX Parent Locator metadata item (MS-VHDX 2.6.2.6: 20-byte header,
 * KeyValueCount 12-byte entries, UTF-16LE keys and values addressed by
 * offsets from the item's start; doc/formats.md, VHDX parent locator) that
 * a differencing child carries.
 *
 * The input is the item itself, as vhdmeta.c hands it over after reading
 * it from the metadata region (at most 64 KiB there; any length here). The
 * seeds are the locator items of children made by `gen2prep convert
 * --differencing` (fuzz/mkcorpus locator).
 *
 * Beyond the sanitizers, the harness checks the contract of
 * vhdx_locator_parse (vhdx_format.h): on success a path and a linkage; on
 * failure E_FORMAT, E_UNSUPPORTED or E_NOMEM and nothing left allocated in
 * *out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vhdx_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	/* a copy of exactly len bytes, so that ASan sees any read past the item */
	uint8_t *item = malloc(len ? len : 1);
	if (!item) return 0;
	memcpy(item, data, len);
	struct vhdx_locator l;
	if (vhdx_locator_parse(item, len, &l) == 0) {
		if (!l.path || !l.has_linkage) abort();
		if (strlen(l.path) > 3 * 32768) abort();   /* <= 3 UTF-8 bytes per UTF-16 unit of a 64 KiB value */
		free(l.path);
	} else {
		enum err_code c = err_code();
		if (c != E_FORMAT && c != E_UNSUPPORTED && c != E_NOMEM) abort();
		if (l.path) abort();   /* the caller frees nothing on failure */
	}
	err_clear();
	free(item);
	return 0;
}
