/* partition.h - MBR (with extended/logical) and GPT partition tables of an
 * overlay, read and written with libfdisk.
 *
 * libfdisk works on a file descriptor: this module gives it a sparse memfd
 * the size of the disk holding the sectors a table can live in (first and
 * last MiB, and the EBR chain), and after writing copies back every sector
 * that changed into the overlay. Only this module knows table layouts.
 */
#ifndef GEN2PREP_PARTITION_H
#define GEN2PREP_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "guid.h"

struct overlay;

enum ptable_type { PT_NONE = 0, PT_MBR, PT_GPT };

#define PART_MAX 128

struct part {
	int number;               /* 1-based: MBR 1-4 primary, 5+ logical; GPT entry index + 1 */
	uint64_t start, size;     /* bytes */
	bool logical;             /* MBR logical partition */
	bool active;              /* MBR boot flag */
	uint8_t mbr_type;         /* MBR only */
	struct guid type_guid;    /* GPT only */
	struct guid part_guid;    /* GPT only */
	uint64_t attrs;           /* GPT only */
	char name[128];           /* GPT name, UTF-8 */
};

struct ptable {
	enum ptable_type type;
	uint32_t sector_size;
	uint32_t disk_signature;  /* MBR, at offset 440 */
	struct guid disk_guid;    /* GPT */
	uint64_t first_usable, last_usable;  /* GPT, bytes */
	size_t count;
	struct part parts[PART_MAX];
};

/* Well-known GPT type GUIDs (doc/formats.md, Partition types). */
extern const struct guid GPT_TYPE_ESP, GPT_TYPE_BASIC_DATA, GPT_TYPE_MSR, GPT_TYPE_RECOVERY;
#define GPT_ATTR_RECOVERY 0x8000000000000001ULL

const char *ptable_type_name(enum ptable_type t); /* "none", "mbr", "gpt" */

/* Reads the table. type PT_NONE (not an error) when there is none. */
int partition_read(struct overlay *o, struct ptable *out);
/* Writes t (type PT_GPT or PT_MBR) over whatever table the overlay has:
 * GPT: protective MBR, primary header+entries at LBA 1, backup at the end,
 * partitions at the given numbers, starts and sizes (unchanged partitions
 * keep them exactly). MBR: the four primary slots (and existing logical
 * partitions kept as they are). 0 or -1 (E_NOSPACE when the layout does not
 * fit, with the reason). */
int partition_write(struct overlay *o, const struct ptable *t);

/* Checks the table the way firmware reads it (UEFI 2.10, 5.3.2): for a GPT
 * both headers (signature, HeaderCRC32, MyLBA/AlternateLBA pointing at
 * each other, entry array in bounds) and both entry arrays (CRC32), and
 * that primary and backup describe the same entries; for an MBR the 0x55AA
 * signature. 0 when valid; -1 with the first problem in why (E_FORMAT, or
 * E_IO when a sector cannot be read). A disk without a table is invalid. */
int partition_verify(struct overlay *o, char *why, size_t n);

const struct part *ptable_find(const struct ptable *t, int number);
/* MBR extended container (types 0x05, 0x0F, 0x85). partition_read lists the
 * container itself as a primary entry (like sfdisk does); its logical
 * partitions follow with logical = true and numbers from 5. */
bool part_is_extended(const struct part *p);
/* Is an MBR/EBR record's OSType an extended container (0x05, 0x0F, 0x85),
 * wherever the record stands? The one test of that question. */
bool mbr_type_is_extended(uint8_t type);
/* Is p of t the EFI System Partition by its type: GPT type
 * C12A7328-F81F-11D2-BA4B-00A0C93EC93B, or MBR type 0xEF in a primary slot
 * (firmware reads only those, UEFI 5.2.1)? doc/formats.md, Partition
 * types. Says nothing about its file system. */
bool part_is_esp(const struct ptable *t, const struct part *p);

/* Does t describe a disk of disk_size bytes? (partition_check.c; UEFI 2.10
 * 5.2.1, 5.3.2, 5.3.3): every entry inside the disk (GPT: inside the
 * header's FirstUsableLBA..LastUsableLBA), every MBR logical partition
 * inside its extended container, no two primary (or two logical, or two
 * GPT) entries overlapping. Returns the first problem found, its one-line
 * description in why; PTP_NONE when the table is sound. Reads nothing. */
enum ptable_problem { PTP_NONE = 0, PTP_PAST_END, PTP_OUTSIDE_EXTENDED, PTP_OVERLAP };
enum ptable_problem ptable_check(const struct ptable *t, uint64_t disk_size, char *why, size_t n);
/* Stable blocker ids: "partition-past-end", "partition-outside-extended",
 * "partition-overlap" ("" for PTP_NONE). */
const char *ptable_problem_id(enum ptable_problem k);

#endif
