/* ptable_format.h - the MBR/EBR and GPT records partition.c reads itself
 * (libfdisk does the rest): UEFI Specification 2.10, chapter 5 "GUID
 * Partition Table (GPT) Disk Layout", table names given. All fields
 * little-endian. doc/formats.md, MBR; doc/formats.md, GPT.
 */
#ifndef GEN2PREP_PTABLE_FORMAT_H
#define GEN2PREP_PTABLE_FORMAT_H

#include <stdint.h>
#include "ondisk.h"

/* UEFI 5.2.1, "Legacy MBR Partition Record" table: 16 bytes. An EBR
 * (extended boot record) has the same sector layout as the MBR. */
struct mbr_record {
	uint8_t boot_indicator;         /* 0x80: the active (bootable) partition */
	uint8_t starting_chs[3];
	uint8_t os_type;                /* partition type: 0x05/0x0F/0x85 extended, 0xEE protective, 0xEF ESP */
	uint8_t ending_chs[3];
	le32 starting_lba;              /* EBR: relative to the EBR or to the extended partition */
	le32 size_in_lba;
} ONDISK;
_Static_assert(sizeof(struct mbr_record) == 16, "UEFI Legacy MBR Partition Record");

/* UEFI 5.2.1, "Legacy MBR" table: the first 512 bytes of LBA 0 (or of an
 * EBR), whatever the sector size. */
struct mbr_sector {
	uint8_t boot_code[440];
	le32 unique_mbr_disk_signature;
	le16 unknown;
	struct mbr_record partition_record[4];
	uint8_t signature[2];           /* 0x55, 0xAA */
} ONDISK;
_Static_assert(sizeof(struct mbr_sector) == 512, "UEFI Legacy MBR");
_Static_assert(__builtin_offsetof(struct mbr_sector, partition_record) == 446, "MBR records at 446");

/* UEFI 5.3.2, "GPT Header" table: 92 bytes, the rest of its block
 * reserved. HeaderCRC32 covers HeaderSize bytes with the field itself
 * zero. */
struct gpt_header {
	uint8_t signature[8];           /* "EFI PART" */
	le32 revision;
	le32 header_size;               /* >= 92, <= the block size */
	le32 header_crc32;
	le32 reserved;
	le64 my_lba;
	le64 alternate_lba;
	le64 first_usable_lba;
	le64 last_usable_lba;
	uint8_t disk_guid[16];
	le64 partition_entry_lba;
	le32 number_of_partition_entries;
	le32 size_of_partition_entry;   /* 128 x 2^n */
	le32 partition_entry_array_crc32;
} ONDISK;
_Static_assert(sizeof(struct gpt_header) == 92, "UEFI GPT Header");
_Static_assert(__builtin_offsetof(struct gpt_header, partition_entry_lba) == 72, "GPT PartitionEntryLBA at 72");

#define GPT_SIGNATURE "EFI PART"

#endif
