/* fuzz_hive - libFuzzer harness for what gen2prep reads from and writes to
 * registry hives other than BCD: the SYSTEM hive read of lib/windows.c
 * (control sets, service Start values, MountedDevices matched against the
 * partition table, locale; hive-dirty check) and the SOFTWARE version
 * strings, through windows_read_hives; then the plan built from that
 * (lib/plan.c: Start edits per control set, FirmwareBootDevice, the
 * MountedDevices rewrite to GPT form) applied by lib/system_hive.c to the
 * same bytes, which serialises the hive with hivex and reads every value
 * back. The input is the hive file itself; the seeds are the SYSTEM and
 * SOFTWARE hives mkfixture builds (fuzz/mkcorpus).
 *
 * The inspection around the hive is the one mkfixture's win7-sp1 disk
 * gives: MBR signature 0x0B17C0DE, System Reserved at 1 MiB (100 MiB),
 * Windows from 101 MiB to the end of a 300 MiB disk, so that MountedDevices
 * entries of the seed match partitions and the GPT rewrite runs. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "system_hive.h"
#include "util.h"
#include "windows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void fake_disk(struct inspection *ins)
{
	const uint64_t mib = 1ULL << 20;
	struct ptable *t = &ins->table;
	t->type = PT_MBR;
	t->sector_size = 512;
	t->disk_signature = 0x0B17C0DE;
	t->count = 2;
	t->parts[0] = (struct part){ .number = 1, .start = mib, .size = 100 * mib, .active = true, .mbr_type = 7 };
	t->parts[1] = (struct part){ .number = 2, .start = 101 * mib, .size = 199 * mib, .mbr_type = 7 };
	ins->nparts = 2;
	ins->parts[0] = (struct part_info){ .part = &t->parts[0], .filesystem = "ntfs", .role = ROLE_SYSTEM_RESERVED,
					    .reusable_as_esp = true };
	ins->parts[1] = (struct part_info){ .part = &t->parts[1], .filesystem = "ntfs", .role = ROLE_WINDOWS };
	ins->windows_found = true;
	ins->windows_partition = 2;
	ins->architecture = "x64";
	ins->kernel_version = 0x601;
	for (int f = 0; f < WF_COUNT; f++)
		ins->files[f].present = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct inspection ins;
	static struct plan p;
	if (len > (8u << 20))
		return 0;
	memset(&ins, 0, sizeof ins);
	fake_disk(&ins);
	windows_read_hives(data, len, data, len, &ins);
	(void)inspection_convertible(&ins);
	for (size_t i = 0; i < ins.nfindings; i++)
		(void)finding_id(&ins.findings[i]);
	struct plan_opts o = { .layout = LAYOUT_GPT, .disk_size = 300ULL << 20, .sector_size = 512 };
	if (plan_build(&ins, &o, &p) == 0 && p.nedits) {
		uint8_t *out = NULL;
		size_t out_len = 0;
		if (system_hive_apply(data, len, p.edits, p.nedits, &out, &out_len) == 0)
			free(out);
	}
	err_clear();
	return 0;
}
