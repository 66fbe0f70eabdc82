/* partition_check.c - does a partition table read from a disk describe
 * that disk? (see partition.h, ptable_check). libfdisk lists entries as
 * they are stored, including ones that run past the end of the image, lie
 * outside their extended container or overlap each other; a conversion
 * built on such a table would write an image the size the table claims
 * (a 2 TiB output from a 1 GiB input) or move data it does not own.
 *
 * References: UEFI Specification 2.10, 5.2.1 (legacy MBR: 32-bit starting
 * LBA and size of each record), 5.3.2 (GPT header FirstUsableLBA /
 * LastUsableLBA: "all partitions" lie between them) and 5.3.3 (entries must
 * not overlap); the extended partition / EBR chain is the IBM PC layout in
 * which every logical partition lies inside the extended container.
 */
#include "partition.h"
#include "util.h"

#include <stdio.h>

static bool overlaps(const struct part *a, const struct part *b)
{
	return a->start < b->start + b->size && b->start < a->start + a->size;
}

static unsigned long long mib(uint64_t b) { return (unsigned long long)(b >> 20); }

/* Would every entry lie inside the disk if its sector numbers counted
 * 512-byte sectors? Then the table was written for 512-byte sectors and
 * the image declares 4096 (a VHDX whose Logical Sector Size metadata item,
 * MS-VHDX 2.6.2.4, contradicts its partition table: e.g. a disk copied
 * sector by sector between a 512e and a 4Kn container). */
static bool fits_at_512(const struct ptable *t, uint32_t ss, uint64_t disk_size)
{
	if (ss != 4096) return false;
	for (size_t i = 0; i < t->count; i++)
		if (!range_ok(t->parts[i].start / 8, t->parts[i].size / 8, disk_size)) return false;
	return true;
}

static enum ptable_problem past_end(const struct ptable *t, uint64_t disk_size, char *why, size_t n)
{
	uint32_t ss = t->sector_size ? t->sector_size : 512;
	for (size_t i = 0; i < t->count; i++) {
		const struct part *p = &t->parts[i];
		if (!range_ok(p->start, p->size, disk_size)) {
			msg_printf(why, n, "partition %d (start sector %llu, %llu sectors) runs past the end of the disk "
				 "(%llu sectors, %llu MiB): %s",
				 p->number, (unsigned long long)(p->start / ss), (unsigned long long)(p->size / ss),
				 (unsigned long long)(disk_size / ss), mib(disk_size),
				 fits_at_512(t, ss, disk_size)
					 ? "the image declares 4096-byte logical sectors but its partition table was written "
					   "for 512-byte sectors (every entry fits the disk at 512 bytes a sector); the "
					   "image's sector size metadata contradicts its partition table"
					 : "the table does not describe this disk");
			return PTP_PAST_END;
		}
		/* UEFI 5.3.2: every GPT partition lies in FirstUsableLBA..LastUsableLBA */
		if (t->type == PT_GPT && t->last_usable &&
		    (p->start < t->first_usable || p->start + p->size > t->last_usable + ss)) {
			msg_printf(why, n, "GPT partition %d (sectors %llu-%llu) lies outside the usable sectors %llu-%llu "
				 "its GPT header declares", p->number, (unsigned long long)(p->start / ss),
				 (unsigned long long)((p->start + p->size) / ss - 1),
				 (unsigned long long)(t->first_usable / ss), (unsigned long long)(t->last_usable / ss));
			return PTP_PAST_END;
		}
	}
	return PTP_NONE;
}

static const struct part *extended_of(const struct ptable *t)
{
	for (size_t i = 0; i < t->count; i++)
		if (part_is_extended(&t->parts[i])) return &t->parts[i];
	return NULL;
}

static enum ptable_problem outside_extended(const struct ptable *t, char *why, size_t n)
{
	const struct part *ext = extended_of(t);
	for (size_t i = 0; i < t->count; i++) {
		const struct part *p = &t->parts[i];
		if (!p->logical) continue;
		if (ext && p->start >= ext->start && p->start + p->size <= ext->start + ext->size) continue;
		if (ext)
			msg_printf(why, n, "logical partition %d (bytes %llu-%llu) is not inside its extended partition %d "
				 "(bytes %llu-%llu)", p->number, (unsigned long long)p->start,
				 (unsigned long long)(p->start + p->size - 1), ext->number,
				 (unsigned long long)ext->start, (unsigned long long)(ext->start + ext->size - 1));
		else
			msg_printf(why, n, "logical partition %d without an extended partition", p->number);
		return PTP_OUTSIDE_EXTENDED;
	}
	return PTP_NONE;
}

/* Primary entries (the extended container among them) must not overlap
 * each other, nor logical ones each other; a logical one inside its
 * container (checked before) then overlaps no primary. */
static enum ptable_problem overlapping(const struct ptable *t, char *why, size_t n)
{
	for (size_t i = 0; i < t->count; i++)
		for (size_t j = i + 1; j < t->count; j++) {
			const struct part *a = &t->parts[i], *b = &t->parts[j];
			if (a->logical != b->logical || !a->size || !b->size || !overlaps(a, b)) continue;
			msg_printf(why, n, "partitions %d (bytes %llu-%llu) and %d (bytes %llu-%llu) overlap",
				 a->number, (unsigned long long)a->start, (unsigned long long)(a->start + a->size - 1),
				 b->number, (unsigned long long)b->start, (unsigned long long)(b->start + b->size - 1));
			return PTP_OVERLAP;
		}
	return PTP_NONE;
}

enum ptable_problem ptable_check(const struct ptable *t, uint64_t disk_size, char *why, size_t n)
{
	enum ptable_problem k;
	if (n) why[0] = 0;
	if (t->type == PT_NONE) return PTP_NONE;
	if ((k = past_end(t, disk_size, why, n)) != PTP_NONE) return k;
	if (t->type == PT_MBR && (k = outside_extended(t, why, n)) != PTP_NONE) return k;
	return overlapping(t, why, n);
}

const char *ptable_problem_id(enum ptable_problem k)
{
	switch (k) {
	case PTP_PAST_END: return "partition-past-end";
	case PTP_OUTSIDE_EXTENDED: return "partition-outside-extended";
	case PTP_OVERLAP: return "partition-overlap";
	default: return "";
	}
}
