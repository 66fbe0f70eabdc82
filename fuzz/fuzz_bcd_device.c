/* fuzz_bcd_device - libFuzzer harness for lib/bcd.c's device values (the
 * qualified partition form, boot, ramdisk, anything else): decode arbitrary
 * bytes, name the partition they point at on an MBR and on a GPT table
 * (bcd_device_partition), print its identity, and for a decoded partition
 * device check that encode then decode gives the same device (the bytes
 * convert writes are the bytes it reads). Seeds: the device values of the
 * BCD stores in fuzz/corpus/bcd (fuzz/mkcorpus). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcd.h"
#include "partition.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void tables(struct ptable *mbr, struct ptable *gpt, const struct bcd_device *d)
{
	memset(mbr, 0, sizeof *mbr);
	memset(gpt, 0, sizeof *gpt);
	mbr->type = PT_MBR;
	mbr->sector_size = gpt->sector_size = 512;
	/* the device's own identity matches one partition of each table */
	mbr->disk_signature = d->disk_signature;
	mbr->count = 2;
	mbr->parts[0] = (struct part){ .number = 1, .start = 1 << 20, .size = 100 << 20, .mbr_type = 7 };
	mbr->parts[1] = (struct part){ .number = 2, .start = d->part_offset, .size = 1 << 20, .mbr_type = 7 };
	gpt->type = PT_GPT;
	gpt->disk_guid = d->disk_guid;
	gpt->count = 2;
	gpt->parts[0] = (struct part){ .number = 1, .start = 1 << 20, .size = 100 << 20 };
	gpt->parts[1] = (struct part){ .number = 2, .start = 101 << 20, .size = 1 << 20, .part_guid = d->part_guid };
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct ptable mbr, gpt;
	struct bcd_device d, d2;
	char text[512];
	memset(&d, 0, sizeof d);
	if (bcd_device_decode(data, len, &d) < 0) {
		err_clear();
		return 0;
	}
	tables(&mbr, &gpt, &d);
	(void)bcd_device_partition(&d, &mbr);
	(void)bcd_device_partition(&d, &gpt);
	bcd_partition_identity_text(&d, text, sizeof text);
	if (d.kind == BCD_DEV_PARTITION) {
		uint8_t enc[BCD_DEVICE_PARTITION_LEN];
		if (bcd_device_encode(&d, enc) == 0) {
			memset(&d2, 0, sizeof d2);
			if (bcd_device_decode(enc, sizeof enc, &d2) < 0)
				abort();   /* what we write must read back */
			if (d2.kind != d.kind || d2.gpt != d.gpt)
				abort();
			if (d.gpt ? (memcmp(&d2.part_guid, &d.part_guid, 16) || memcmp(&d2.disk_guid, &d.disk_guid, 16))
				  : (d2.part_offset != d.part_offset || d2.disk_signature != d.disk_signature))
				abort();
		}
	}
	err_clear();
	return 0;
}
