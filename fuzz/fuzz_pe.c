/* fuzz_pe - libFuzzer harness: pe_parse on arbitrary bytes, then every
 * lookup and the checksum functions on what it accepted. */

#include <stdint.h>
#include <stdlib.h>

#include "pe.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	(void)pe_checksum_compute(data, len, len > 0x100 ? 0xd8 : 0);
	struct pe *pe = pe_parse(data, len);
	if (!pe) {
		err_clear();
		return 0;
	}
	char buf[64];
	pe_version_str(pe, buf, sizeof buf);
	(void)pe_checksum_valid(pe);
	pe_checksum_update(pe);
	for (size_t i = 0; i < pe->nsections; i++) {
		const struct pe_section *s = &pe->sections[i];
		size_t off;
		uint32_t rva;
		(void)pe_section_for_rva(pe, s->va);
		if (pe_rva_to_off(pe, s->va, 16, &off) == 0 && pe_off_to_rva(pe, off, &rva) == 0)
			(void)pe_ptr(pe, rva, 1);
	}
	for (size_t i = 0; i < pe->nexports && i < 64; i++) {
		if (pe->exports[i].name)
			(void)pe_export_find(pe, pe->exports[i].name);
		(void)pe_function_at(pe, pe->exports[i].rva);
	}
	for (size_t i = 0; i < pe->nimports && i < 64; i++)
		if (pe->imports[i].name)
			(void)pe_import_find(pe, "ntoskrnl", pe->imports[i].name);
	const struct pe_function *chunks[8];
	for (size_t i = 0; i < pe->nfunctions && i < 64; i++)
		(void)pe_function_chunks(pe, pe->functions[i].begin, chunks, 8);
	uint32_t rvas[4];
	(void)pe_find_utf16(pe, "Kernel-PhysicalMemoryAddAllowed", rvas, 4);
	(void)pe_find_utf16(pe, "A", rvas, 4);
	pe_free(pe);
	return 0;
}
