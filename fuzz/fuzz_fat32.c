/* fuzz_fat32 - libFuzzer harness for the FAT32 reader and fat32_check
 * (lib/fat32.c) on a 40 MiB sparse disk described by the input (see
 * sparse_disk.h); the seed corpus holds the non-zero sectors of mkesp
 * images. */
#include "sparse_disk.h"
#include "fat32.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct sparse_disk s = {0};
	const uint64_t size = 40ULL << 20;
	if (sparse_disk_open(&s, data, len, size) == 0) {
		struct fat32_vol *v = fat32_open(s.o, 0, size);
		if (v) {
			static const char *paths[] = {"/EFI/Boot/bootx64.efi", "/EFI/Microsoft/Boot/BCD", "EFI", "/",
						      "a/b/c/d/e/f/g/h", "MICROS~1/boot"};
			for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
				bool dir;
				uint64_t sz;
				uint8_t *buf;
				size_t n;
				fat32_stat(v, paths[i], &dir, &sz);
				if (fat32_read_file(v, paths[i], 1 << 20, &buf, &n) == 0)
					free(buf);
			}
			fat32_check(v);
			fat32_close(v);
		}
	}
	sparse_disk_close(&s);
	err_clear();
	return 0;
}
