/* mounted_format.h - the REG_BINARY data of a SYSTEM\MountedDevices value
 * naming a basic partition (doc/formats.md, MountedDevices): declared once
 * for the reader (windows.c) and for the writer of the plan's edits and
 * verify's check (rules.c rules_mounted_device_value).
 * All fields little-endian.
 */
#ifndef GEN2PREP_MOUNTED_FORMAT_H
#define GEN2PREP_MOUNTED_FORMAT_H

#include <stdint.h>
#include "ondisk.h"

#define MOUNTED_GPT_PREFIX "DMIO:ID:"

/* A partition of an MBR disk: 12 bytes. */
struct mounted_mbr {
	le32 disk_signature;            /* the MBR's UniqueMBRDiskSignature */
	le64 partition_offset;          /* in bytes from the start of the disk */
} ONDISK;
_Static_assert(sizeof(struct mounted_mbr) == 12, "MountedDevices MBR value");

/* A partition of a GPT disk: 24 bytes. */
struct mounted_gpt {
	uint8_t prefix[8];              /* "DMIO:ID:" */
	uint8_t partition_guid[16];     /* UniquePartitionGUID as stored in its GPT entry */
} ONDISK;
_Static_assert(sizeof(struct mounted_gpt) == 24, "MountedDevices GPT value");

#endif
