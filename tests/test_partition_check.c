/* test_partition_check.c - ptable_check (lib/partition_check.c) on tables
 * built here as data: every kind of table that does not describe its disk
 * gets its own verdict and a message naming the partitions, and the edges
 * (an entry ending exactly at the disk's end, GPT entries exactly filling
 * FirstUsableLBA..LastUsableLBA, logical partitions filling their
 * container, empty entries) are sound. Byte-level reading of such tables is
 * in test_partition (libfdisk lists them as stored) and in
 * tests/partition-blockers.sh (mkfixture --bad, checked with sfdisk -V).
 *
 * Rules, UEFI Specification 2.10: 5.2.1 (MBR records), 5.3.2 (GPT header:
 * partitions lie in FirstUsableLBA..LastUsableLBA), 5.3.3 (entries must not
 * overlap); logical partitions lie inside their extended partition (the
 * IBM PC EBR chain).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "partition.h"

#define MiB (1024ULL * 1024)
#define DISK (64 * MiB)

static struct ptable mbr(void)
{
	struct ptable t;
	memset(&t, 0, sizeof t);
	t.type = PT_MBR;
	t.sector_size = 512;
	return t;
}

static void add(struct ptable *t, int number, uint64_t start, uint64_t size, uint8_t type, bool logical)
{
	struct part *p = &t->parts[t->count++];
	p->number = number;
	p->start = start;
	p->size = size;
	p->mbr_type = type;
	p->logical = logical;
}

static void expect(const struct ptable *t, enum ptable_problem k, const char *needle)
{
	char why[256];
	assert_int_equal(ptable_check(t, DISK, why, sizeof why), k);
	if (needle) assert_non_null(strstr(why, needle));
	else assert_string_equal(why, "");
}

static void t_sound(void **st)
{
	struct ptable t = mbr();
	add(&t, 1, 1 * MiB, 15 * MiB, 0x07, false);
	add(&t, 2, 16 * MiB, 16 * MiB, 0x07, false);
	add(&t, 3, 32 * MiB, 32 * MiB, 0x0F, false);           /* to the very end */
	add(&t, 5, 33 * MiB, 15 * MiB, 0x07, true);
	add(&t, 6, 49 * MiB, 15 * MiB, 0x07, true);            /* fills the container */
	expect(&t, PTP_NONE, NULL);
	struct ptable none = mbr();
	none.type = PT_NONE;
	expect(&none, PTP_NONE, NULL);
	assert_string_equal(ptable_problem_id(PTP_NONE), "");
}

static void t_past_end(void **st)
{
	struct ptable t = mbr();
	add(&t, 1, 1 * MiB, 15 * MiB, 0x07, false);
	add(&t, 2, 16 * MiB, 2048ULL * 1024 * MiB, 0x07, false);   /* 2 TiB on 64 MiB */
	expect(&t, PTP_PAST_END, "partition 2 (start sector 32768, 4294967296 sectors) runs past the end of the disk (131072 sectors, 64 MiB)");
	assert_string_equal(ptable_problem_id(PTP_PAST_END), "partition-past-end");
	t.parts[1].size = 48 * MiB + 512;                            /* one sector too many */
	expect(&t, PTP_PAST_END, "partition 2");
	t.parts[1].start = UINT64_MAX - 511;                         /* start + size wraps */
	expect(&t, PTP_PAST_END, "partition 2");
}

static void t_logical_outside(void **st)
{
	struct ptable t = mbr();
	add(&t, 1, 1 * MiB, 15 * MiB, 0x07, false);
	add(&t, 2, 16 * MiB, 16 * MiB, 0x05, false);
	add(&t, 5, 17 * MiB, 8 * MiB, 0x07, true);
	add(&t, 6, 26 * MiB, 8 * MiB, 0x07, true);    /* 2 MiB past the container, inside the disk */
	expect(&t, PTP_OUTSIDE_EXTENDED, "logical partition 6 (bytes 27262976-35651583) is not inside its extended partition 2");
	assert_string_equal(ptable_problem_id(PTP_OUTSIDE_EXTENDED), "partition-outside-extended");
	t.parts[1].mbr_type = 0x07;                    /* no container at all */
	expect(&t, PTP_OUTSIDE_EXTENDED, "logical partition 5 without an extended partition");
}

static void t_overlap(void **st)
{
	struct ptable t = mbr();
	add(&t, 1, 1 * MiB, 16 * MiB, 0x07, false);
	add(&t, 2, 16 * MiB, 16 * MiB, 0x07, false);
	expect(&t, PTP_OVERLAP, "partitions 1 (bytes 1048576-17825791) and 2 (bytes 16777216-33554431) overlap");
	assert_string_equal(ptable_problem_id(PTP_OVERLAP), "partition-overlap");
	/* two logicals over each other inside a sound container */
	t = mbr();
	add(&t, 1, 1 * MiB, 31 * MiB, 0x0F, false);
	add(&t, 5, 2 * MiB, 10 * MiB, 0x07, true);
	add(&t, 6, 11 * MiB, 10 * MiB, 0x07, true);
	expect(&t, PTP_OVERLAP, "partitions 5 (bytes");
	/* an empty entry overlaps nothing */
	t.parts[2].start = 3 * MiB;
	t.parts[2].size = 0;
	expect(&t, PTP_NONE, NULL);
}

static void t_gpt_usable(void **st)
{
	struct ptable t = mbr();
	t.type = PT_GPT;
	t.first_usable = 34 * 512;
	t.last_usable = DISK / 512 - 34;
	t.last_usable *= 512;                          /* byte offset of the last usable sector */
	add(&t, 1, 34 * 512, 1 * MiB, 0, false);
	add(&t, 2, 34 * 512 + 1 * MiB, t.last_usable + 512 - (34 * 512 + 1 * MiB), 0, false);  /* exactly to LastUsableLBA */
	expect(&t, PTP_NONE, NULL);
	t.parts[1].size += 512;                        /* into the backup entry array */
	expect(&t, PTP_PAST_END, "GPT partition 2 (sectors 2082-131039) lies outside the usable sectors 34-131038");
	t.parts[1].size -= 512;
	t.parts[0].start = 33 * 512;                   /* over the primary entry array */
	expect(&t, PTP_PAST_END, "GPT partition 1");
	t.parts[0].start = 34 * 512;
	t.parts[1].start -= 512;                       /* GPT entries overlapping */
	expect(&t, PTP_OVERLAP, "partitions 1 (bytes 17408-");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_sound),
		cmocka_unit_test(t_past_end),
		cmocka_unit_test(t_logical_outside),
		cmocka_unit_test(t_overlap),
		cmocka_unit_test(t_gpt_usable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
