/* bcd_format.h - the binary value of a BCD device element, as bcd.c
 * decodes and encodes it. Layout checked against the two sample stores
 * and Microsoft's own BCD writer (ImageStorageServiceManaged:
 * BcdElementDevice, BcdElementBootDevice, RamDiskIdentifier); the
 * partition form byte for byte in doc/formats.md, BCD partition device.
 * All fields little-endian.
 */
#ifndef GEN2PREP_BCD_FORMAT_H
#define GEN2PREP_BCD_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include "ondisk.h"

#define BCD_DEV_TYPE_BLOCKIO 0u
#define BCD_DEV_TYPE_BOOT    5u
#define BCD_DEV_TYPE_PARTEX  6u   /* qualified partition ("PartitionEx") */
#define BCD_BLOCKIO_RAMDISK  3u

/* A boot device: this header, then its identifier (size counts both). */
struct bcd_boot_device {
	le32 type;                      /* BCD_DEV_TYPE_* */
	le32 flags;
	le32 size;                      /* from the start of this header */
	le32 reserved;
} ONDISK;
_Static_assert(sizeof(struct bcd_boot_device) == 16, "BCD boot device header");

/* Identifier of a BCD_DEV_TYPE_PARTEX device. */
struct bcd_partition_identifier {
	uint8_t partition[16];          /* GPT: the partition's GUID; MBR: le64 byte offset + 8 zero */
	le32 reserved1;
	le32 partition_style;           /* 0 GPT, 1 MBR */
	uint8_t disk[16];               /* GPT: the disk GUID; MBR: le32 signature + 12 zero */
	uint8_t reserved2[16];
} ONDISK;
_Static_assert(sizeof(struct bcd_partition_identifier) == 0x38, "BCD partition identifier");

/* The whole device value of a partition (or boot, identifier zero) as
 * bcdboot writes it: 88 bytes. */
struct bcd_device_value {
	uint8_t options[16];            /* additional options object GUID, usually zero */
	struct bcd_boot_device device;
	struct bcd_partition_identifier id;
} ONDISK;
_Static_assert(sizeof(struct bcd_device_value) == 88, "BCD partition device value");

/* Identifier of a BCD_DEV_TYPE_BLOCKIO device of block type ramdisk,
 * ending with the header of its file identifier; the image's device (a
 * nested boot device) and its path in UTF-16LE follow, to file_size. */
struct bcd_ramdisk_identifier {
	le32 block_io_type, reserved;   /* BCD_BLOCKIO_RAMDISK, 0 */
	le32 image_base;
	le64 image_size;
	le32 image_offset;
	le32 file_version;              /* 1 */
	le32 file_size;                 /* from file_version on */
	le32 file_type;                 /* 5 */
} ONDISK;
_Static_assert(sizeof(struct bcd_ramdisk_identifier) == 36, "BCD ramdisk identifier");
#define BCD_FILE_ID_HEADER (sizeof(struct bcd_ramdisk_identifier) - offsetof(struct bcd_ramdisk_identifier, file_version))

#endif
