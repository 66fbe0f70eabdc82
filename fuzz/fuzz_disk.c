/* fuzz_disk - libFuzzer harness for lib/disk.c on a whole image file:
 * format detection (vhdxfile / conectix footer at the end, at end-511, or a
 * dynamic copy at 0), libvhdi's open under it, our own parse of the VHD
 * footer + dynamic header + BAT and of the VHDX headers / region tables /
 * metadata / BAT (lib/vhdmeta.c, which disk_open runs to reject truncated
 * images), then reads and allocation queries on what
 * opened (not disk_fingerprint: SHA-256 of 2 MiB, no parsing, most of
 * the time of an execution). Differencing parents are looked up beside the file, i.e. in
 * /proc/self/fd: not found, or another descriptor; the chain limit stops
 * loops.
 *
 * The input is a sparse file (sparse_disk.h, sparse_image_open: u32 size in
 * sectors, then records); seeds are the headers of qemu-img made VHD and
 * VHDX images of each subformat and the structures of a `gen2prep convert
 * --differencing` child, whose parent is then not found (fuzz/mkcorpus). */
#include "config.h"
#include "sparse_disk.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static uint8_t buf[8192];
	struct sparse_disk s = {0};
	if (sparse_image_open(&s, data, len, 1ULL << 30) == 0) {
		const struct disk_info *di = disk_info(s.d);
		uint64_t vs = di->virtual_size, bs = di->block_size ? di->block_size : 4096;
		const uint64_t offs[] = { 0, 512, vs / 2, vs > 8192 ? vs - 8192 : 0, vs - 1, vs, bs - 1, bs * 3 + 17 };
		for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
			(void)disk_read(s.d, buf, sizeof buf, offs[i]);
			(void)disk_maybe_allocated(s.d, offs[i], bs * 2);
		}
		(void)disk_maybe_allocated(s.d, 0, vs);
		(void)disk_maybe_allocated(s.d, UINT64_MAX - 10, 20);
		(void)overlay_read(s.o, buf, 4096, 0);
	}
	sparse_disk_close(&s);
	err_clear();
	return 0;
}
