/* fuzz_patch - libFuzzer harness for the patch engine: pe_parse +
 * patch_detect_kind + patch_apply on arbitrary bytes. Every catalog entry
 * runs (each kind, version forced to 6.0 so none is skipped): candidate
 * scans, Zydis decoding of whatever .pdata says, the matchers, and — on a
 * private copy — the writes and the checksum update. Seeds: mkpe kernels
 * (tests/patch.sh writes them to build-fuzz/corpus/patch). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "patch.h"
#include "pe.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len > (4u << 20))
		return 0;
	struct pe *pe = pe_parse(data, len);
	if (!pe) {
		err_clear();
		return 0;
	}
	static struct patch_report rep;
	enum pe_kind detected = patch_detect_kind(pe);
	(void)pe_kind_name(detected);
	for (int k = KIND_NTOSKRNL; k <= KIND_WINLOAD; k++) {
		struct patch_opts o = { .dry_run = (k != (int)detected), .force_version = 0x600 };
		if (patch_apply(pe, (enum pe_kind)k, &o, &rep) < 0)
			err_clear();
		for (size_t i = 0; i < rep.nresults; i++)
			(void)patch_status_name(rep.results[i].status);
	}
	/* the file's own version too (5.x refusal, 6.2+ not applicable) */
	struct patch_opts o = { .dry_run = true };
	if (patch_apply(pe, detected, &o, &rep) < 0)
		err_clear();
	pe_free(pe);
	return 0;
}
