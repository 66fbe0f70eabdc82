/* fuzz_partition - libFuzzer harness for partition_read (lib/partition.c:
 * our EBR-chain and GPT-header walk that builds libfdisk's shadow, then
 * libfdisk) on a 64 MiB sparse disk described by the input (see
 * sparse_disk.h). */
#include "sparse_disk.h"
#include "partition.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct ptable t;
	struct sparse_disk s = {0};
	if (sparse_disk_open(&s, data, len, 64ULL << 20) == 0 && partition_read(s.o, &t) == 0) {
		for (size_t i = 0; i < t.count; i++)
			(void)ptable_find(&t, t.parts[i].number);
	}
	sparse_disk_close(&s);
	err_clear();
	return 0;
}
