/* fuzz_nomem - libFuzzer harness for allocation failure on the whole-image
 * path (issue 10): the fuzzer input picks which of gen2prep's own
 * allocations fails (lib/util.c's xmalloc & co., through xalloc_fail_hook)
 * and the image it inspects. Checked: no crash, no leak (LeakSanitizer, on
 * in scripts/fuzz), and when an allocation failed, windows_inspect did not
 * succeed (an inspection that lost a detail to a failed allocation must
 * not be decided on: abort() here, a finding, if it did).
 *
 * Input: u16 LE N (0: nothing fails; else allocation N, counted from the
 * start of windows_inspect, fails) then an image in the sparse form of
 * sparse_disk.h (as fuzz_inspect takes it). The seed (fuzz/corpus/nomem)
 * is fuzz_inspect's win7-sp1 seed with N = 64 in front. */
#include "config.h"
#include "sparse_disk.h"

#include <stdlib.h>

#include "windows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static unsigned long count, fail_at;
static bool failed;

static bool fail_nth(void)
{
	if (++count != fail_at) return false;
	failed = true;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct inspection ins;
	struct sparse_disk s = {0};
	if (len < 2) return 0;
	if (sparse_image_open(&s, data + 2, len - 2, 1ULL << 30) == 0) {
		count = 0;
		fail_at = get_le16(data);
		failed = false;
		xalloc_fail_hook = fail_nth;
		int rc = windows_inspect(s.o, &ins);
		xalloc_fail_hook = NULL;
		if (failed && rc == 0) {
			fprintf(stderr, "fuzz_nomem: allocation %lu failed, windows_inspect succeeded\n", fail_at);
			abort();
		}
		if (failed && err_code() != E_NOMEM) {
			fprintf(stderr, "fuzz_nomem: allocation %lu failed, the error is not E_NOMEM: %s\n", fail_at,
				err_msg());
			abort();
		}
	}
	sparse_disk_close(&s);
	err_clear();
	return 0;
}
