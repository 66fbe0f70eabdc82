/* fuzz_inspect - libFuzzer harness for the whole-image path, what
 * `gen2prep inspect` and a conversion's planning do: disk_open (format
 * detection, libvhdi), the partition table (lib/partition.c + libfdisk),
 * every partition's file system probe, NTFS through libntfs-3g over the
 * overlay (lib/ntfs.c), the SOFTWARE and SYSTEM hives (hivex), the PE files
 * (pe_parse, version resources, patch catalog dry runs), the ESP's BCD for
 * the already-Generation-2 check (lib/fat32.c, lib/bcd.c), then plan_build
 * and the plan's JSON.
 *
 * The input is an image file in the sparse form of sparse_disk.h
 * (sparse_image_open: u32 size in sectors, records; fill records keep the
 * NTFS $LogFile small); the seed is mkfixture's smallest win7-sp1 raw disk
 * (300 MiB virtual, ~650 KiB of records; fuzz/mkcorpus). Reads only: the
 * overlay is never written. */
#include "config.h"
#include "sparse_disk.h"

#include <jansson.h>
#include <stdlib.h>

#include "plan.h"
#include "windows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct inspection ins;
	static struct plan p;
	struct sparse_disk s = {0};
	if (sparse_image_open(&s, data, len, 1ULL << 30) == 0 && windows_inspect(s.o, &ins) == 0) {
		(void)inspection_convertible(&ins);
		const struct disk_info *di = disk_info(s.d);
		struct plan_opts o = { .layout = LAYOUT_GPT, .disk_size = di->virtual_size,
				       .sector_size = di->logical_sector_size };
		/* no disk_fingerprint: hashing 2 MiB is most of an execution
		 * and parses nothing; ids come from a zero fingerprint */
		if (plan_build(&ins, &o, &p) == 0)
			json_decref(plan_to_json(&p));
	}
	sparse_disk_close(&s);
	err_clear();
	return 0;
}
