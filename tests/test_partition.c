/* test_partition.c - lib/partition.c on disk images built byte by byte in
 * this file (issue 2): an MBR with primaries, the boot flag, the disk
 * signature and an extended partition holding a chain of three EBRs; a GPT
 * with protective MBR, primary and backup headers and entry arrays whose
 * CRC32s are computed here with zlib (an implementation independent of
 * lib/partition.c's); malformed tables (EBR loops, EBR past the end, a
 * huge entry array, header CRC mismatches, overlaps, an MBR partition past
 * the end); partition_write round trips checked by parsing the written
 * sectors here; partition_verify on a flipped entry-array byte.
 *
 * Layouts, from the UEFI Specification 2.10:
 *  - 5.2.1 legacy MBR: disk signature at 440, four 16-byte records at 446
 *    (BootIndicator, StartingCHS[3], OSType, EndingCHS[3], StartingLBA,
 *    SizeInLBA), 0x55 0xAA at 510. EBRs use the same record layout: the
 *    first record is the logical partition (start relative to the EBR),
 *    the second links to the next EBR (start relative to the extended
 *    partition).
 *  - 5.2.3 protective MBR: one record, OSType 0xEE, StartingLBA 1,
 *    SizeInLBA = disk sectors - 1 (or 0xFFFFFFFF).
 *  - 5.3.2 GPT header: "EFI PART", Revision 0x00010000, HeaderSize 92,
 *    HeaderCRC32 at 16 (over HeaderSize bytes with the field zeroed),
 *    MyLBA 24, AlternateLBA 32, FirstUsableLBA 40, LastUsableLBA 48,
 *    DiskGUID 56, PartitionEntryLBA 72, NumberOfPartitionEntries 80,
 *    SizeOfPartitionEntry 84, PartitionEntryArrayCRC32 88.
 *  - 5.3.3 entry: PartitionTypeGUID 0, UniquePartitionGUID 16,
 *    StartingLBA 32, EndingLBA 40 (inclusive), Attributes 48,
 *    PartitionName 56 (36 UTF-16LE units).
 *  - EFI_GUID on disk: first three fields little endian (Appendix A).
 *  - CRC32: the IEEE 802.3 CRC that zlib's crc32() computes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "disk.h"
#include "guid.h"
#include "overlay.h"
#include "partition.h"
#include "util.h"

#define SS 512u
#define SECTORS 16384u             /* 8 MiB disks */
#define LAST (SECTORS - 1)
#define NENT 128u                  /* GPT entries we lay out */
#define ESZ 128u
#define ARRAY_SECTORS (NENT * ESZ / SS)   /* 32 */
#define FIRST_USABLE (2 + ARRAY_SECTORS)  /* 34 */
#define LAST_USABLE (LAST - ARRAY_SECTORS - 1)  /* 16350 */
#define TIME_LIMIT 30              /* seconds per test: a loop would hang */

/* ---- images ---------------------------------------------------------------- */

struct img {
	uint8_t *b;          /* the whole disk, built here */
	uint64_t size;
	char path[64];
	struct disk *d;
	struct overlay *o;
};

static void img_new(struct img *im, uint64_t sectors)
{
	memset(im, 0, sizeof *im);
	im->size = sectors * SS;
	im->b = calloc(1, im->size);
	assert_non_null(im->b);
	alarm(TIME_LIMIT);
}

static uint8_t *sec(struct img *im, uint64_t lba)
{
	assert_true(lba < im->size / SS);
	return im->b + lba * SS;
}

/* Writes the image to a temp file and opens it as the program does. */
static struct overlay *img_open(struct img *im)
{
	strcpy(im->path, "/tmp/test_partition.XXXXXX");
	int fd = mkstemp(im->path);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, im->b, im->size, 0), (ssize_t)im->size);
	close(fd);
	im->d = disk_open(im->path);
	assert_non_null(im->d);
	im->o = overlay_new(im->d);
	assert_non_null(im->o);
	return im->o;
}

/* Closes, checks the input file was not modified, removes it. */
static void img_close(struct img *im)
{
	overlay_free(im->o);
	disk_close(im->d);
	uint8_t *now = malloc(im->size);
	FILE *f = fopen(im->path, "rb");
	assert_non_null(f);
	size_t n = fread(now, 1, im->size, f);
	fclose(f);
	unlink(im->path);
	bool same = n == im->size && !memcmp(now, im->b, im->size);
	free(now);
	free(im->b);
	assert_true(same);
}

/* ---- MBR / EBR records (UEFI 5.2.1) --------------------------------------- */

static void mbr_record(uint8_t *s, int slot, uint8_t boot, uint8_t type, uint32_t lba, uint32_t count)
{
	uint8_t *e = s + 446 + 16 * slot;
	e[0] = boot;
	/* CHS 1023/254/63: "use the LBA fields", what tools write past 8 GB */
	e[1] = 0xFE, e[2] = 0xFF, e[3] = 0xFF;
	e[4] = type;
	e[5] = 0xFE, e[6] = 0xFF, e[7] = 0xFF;
	put_le32(e + 8, lba);
	put_le32(e + 12, count);
	s[510] = 0x55, s[511] = 0xAA;
}

#define SIGNATURE 0x1ee7c0deu
#define EXT_START 8192u
#define EXT_SECTORS 8192u
#define EBR_GAP 2048u     /* EBRs at EXT_START + 0, 2048, 4096 */
#define LOG_OFF 63u       /* logical partition starts 63 sectors after its EBR */
#define LOG_SECTORS 1000u

/* MBR: 1 NTFS active 2048+4096, 2 Linux 6144+2048, 3 extended (LBA) with
 * three logicals, slot 4 empty. EBR k (0-based) at EXT_START + k*EBR_GAP. */
static void build_mbr(struct img *im)
{
	uint8_t *m = sec(im, 0);
	put_le32(m + 440, SIGNATURE);
	mbr_record(m, 0, 0x80, 0x07, 2048, 4096);
	mbr_record(m, 1, 0x00, 0x83, 6144, 2048);
	mbr_record(m, 2, 0x00, 0x0F, EXT_START, EXT_SECTORS);
	for (uint32_t k = 0; k < 3; k++) {
		uint8_t *e = sec(im, EXT_START + k * EBR_GAP);
		mbr_record(e, 0, 0, k == 1 ? 0x82 : 0x83, LOG_OFF, LOG_SECTORS);
		if (k < 2)
			mbr_record(e, 1, 0, 0x05, (k + 1) * EBR_GAP, LOG_OFF + LOG_SECTORS);
	}
}

static void check_part(const struct part *p, int number, uint64_t start_lba, uint64_t sectors)
{
	assert_non_null(p);
	assert_int_equal(p->number, number);
	assert_int_equal(p->start, start_lba * SS);
	assert_int_equal(p->size, sectors * SS);
}

static void t_mbr_read(void **st)
{
	struct img im;
	struct ptable t;
	img_new(&im, SECTORS);
	build_mbr(&im);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	assert_int_equal(t.type, PT_MBR);
	assert_int_equal(t.sector_size, SS);
	assert_int_equal(t.disk_signature, SIGNATURE);
	assert_int_equal(t.count, 6);   /* 1, 2, 3 (the container), 5, 6, 7 */

	const struct part *p = ptable_find(&t, 1);
	check_part(p, 1, 2048, 4096);
	assert_int_equal(p->mbr_type, 0x07);
	assert_true(p->active);
	assert_false(p->logical);
	p = ptable_find(&t, 2);
	check_part(p, 2, 6144, 2048);
	assert_int_equal(p->mbr_type, 0x83);
	assert_false(p->active);
	p = ptable_find(&t, 3);
	check_part(p, 3, EXT_START, EXT_SECTORS);
	assert_int_equal(p->mbr_type, 0x0F);
	assert_true(part_is_extended(p));
	assert_null(ptable_find(&t, 4));
	for (int k = 0; k < 3; k++) {
		p = ptable_find(&t, 5 + k);
		check_part(p, 5 + k, EXT_START + k * EBR_GAP + LOG_OFF, LOG_SECTORS);
		assert_true(p->logical);
		assert_false(p->active);
		assert_false(part_is_extended(p));
		assert_int_equal(p->mbr_type, k == 1 ? 0x82 : 0x83);
	}
	assert_null(ptable_find(&t, 8));
	char why[256];
	assert_int_equal(partition_verify(im.o, why, sizeof why), 0);
	img_close(&im);
}

/* ---- GPT (UEFI 5.3) ------------------------------------------------------- */

/* Formats on-disk GUID bytes as text (Appendix A: Data1-3 little endian),
 * independently of lib/guid.c. */
static void guid_text(const uint8_t *b, char *out)
{
	sprintf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Disk GUID 12345678-9abc-def0-0123-456789abcdef as stored. */
static const uint8_t DISK_GUID[16] = {0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde,
				      0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
/* ESP c12a7328-f81f-11d2-ba4b-00a0c93ec93b, MSR e3c9e316-0b5c-4db8-817d-f92df00215ae,
 * basic data ebd0a0a2-b9e5-4433-87c0-68b6b72699c7, recovery
 * de94bba4-06d1-4d40-a16a-bfd50179d6ac, all as stored. */
static const uint8_t T_ESP[16] = {0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
				  0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b};
static const uint8_t T_MSR[16] = {0x16, 0xe3, 0xc9, 0xe3, 0x5c, 0x0b, 0xb8, 0x4d,
				  0x81, 0x7d, 0xf9, 0x2d, 0xf0, 0x02, 0x15, 0xae};
static const uint8_t T_DATA[16] = {0xa2, 0xa0, 0xd0, 0xeb, 0xe5, 0xb9, 0x33, 0x44,
				   0x87, 0xc0, 0x68, 0xb6, 0xb7, 0x26, 0x99, 0xc7};
static const uint8_t T_REC[16] = {0xa4, 0xbb, 0x94, 0xde, 0xd1, 0x06, 0x40, 0x4d,
				  0xa1, 0x6a, 0xbf, 0xd5, 0x01, 0x79, 0xd6, 0xac};

struct gent {
	int index;               /* entry index: partition number - 1 */
	const uint8_t *type;
	uint64_t first, last;    /* LBAs, last inclusive */
	uint64_t attrs;
	const char *name;        /* UTF-8 as partition_read should give it */
	const uint16_t *name16;  /* the same as UTF-16 units, 0-terminated unless 36 long */
};

static const uint16_t N_ESP[] = {'E', 'F', 'I', ' ', 's', 'y', 's', 't', 'e', 'm', 0};
/* 36 x U+20AC: a name that fills the field, no terminator */
static const uint16_t N_MSR[36] = {0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac,
				   0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac,
				   0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac,
				   0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac, 0x20ac};
static const uint16_t N_DATA[] = {'B', 'a', 's', 'i', 'c', ' ', 'd', 'a', 't', 'a', 0};
static const uint16_t N_REC[] = {'R', 0xe9, 'c', 'u', 'p', 0xe9, 'r', 'a', 't', 'i', 'o', 'n', 0};
#define EURO36 "\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac" \
	"\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac" \
	"\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac"

/* Entry index 3 left empty: partition 5 follows partition 3. */
static const struct gent GENTS[] = {
	{0, T_ESP, 2048, 4095, 0, "EFI system", N_ESP},
	{1, T_MSR, 4096, 6143, 0, EURO36, N_MSR},
	{2, T_DATA, 6144, 12287, 0x4000000000000000ULL, "Basic data", N_DATA},
	{4, T_REC, 12288, LAST_USABLE, GPT_ATTR_RECOVERY, "R\u00e9cup\u00e9ration", N_REC},
};
#define NGENTS (sizeof GENTS / sizeof GENTS[0])

static void unique_guid(int index, uint8_t out[16])
{
	for (int k = 0; k < 16; k++)
		out[k] = (uint8_t)(0x11 * (index + 1) + k);
}

static void fill_entries(uint8_t *arr)
{
	for (size_t i = 0; i < NGENTS; i++) {
		const struct gent *g = &GENTS[i];
		uint8_t *e = arr + g->index * ESZ;
		memcpy(e, g->type, 16);
		unique_guid(g->index, e + 16);
		put_le64(e + 32, g->first);
		put_le64(e + 40, g->last);
		put_le64(e + 48, g->attrs);
		for (int k = 0; k < 36 && g->name16[k]; k++)
			put_le16(e + 56 + 2 * k, g->name16[k]);
	}
}

static uint32_t crc(const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

/* Sets HeaderCRC32 of the header at lba (UEFI 5.3.2: over HeaderSize
 * bytes with the field itself zero). */
static void gpt_header_crc(struct img *im, uint64_t lba)
{
	uint8_t *h = sec(im, lba);
	put_le32(h + 16, 0);
	put_le32(h + 16, crc(h, get_le32(h + 12)));
}

static void gpt_header(struct img *im, uint64_t my, uint64_t alt, uint64_t entries_lba)
{
	uint8_t *h = sec(im, my);
	memcpy(h, "EFI PART", 8);
	put_le32(h + 8, 0x00010000);
	put_le32(h + 12, 92);
	put_le64(h + 24, my);
	put_le64(h + 32, alt);
	put_le64(h + 40, FIRST_USABLE);
	put_le64(h + 48, LAST_USABLE);
	memcpy(h + 56, DISK_GUID, 16);
	put_le64(h + 72, entries_lba);
	put_le32(h + 80, NENT);
	put_le32(h + 84, ESZ);
	put_le32(h + 88, crc(sec(im, entries_lba), NENT * ESZ));
	gpt_header_crc(im, my);
}

/* Protective MBR, primary header + array at LBA 1/2, backup array at
 * LAST-32 and header at LAST. */
static void build_gpt(struct img *im)
{
	uint8_t *m = sec(im, 0);
	mbr_record(m, 0, 0, 0xEE, 1, LAST);
	/* UEFI 5.2.3 table 5-3: StartingCHS 0x000200, EndingCHS 0xFFFFFF */
	m[446 + 1] = 0x00, m[446 + 2] = 0x02, m[446 + 3] = 0x00;
	m[446 + 5] = 0xFF, m[446 + 6] = 0xFF, m[446 + 7] = 0xFF;
	fill_entries(sec(im, 2));
	memcpy(sec(im, LAST - ARRAY_SECTORS), sec(im, 2), NENT * ESZ);
	gpt_header(im, 1, LAST, 2);
	gpt_header(im, LAST, 1, LAST - ARRAY_SECTORS);
}

static void check_gpt_table(const struct ptable *t)
{
	char txt[GUID_STR_LEN + 1], want[GUID_STR_LEN + 1];
	uint8_t ug[16];
	assert_int_equal(t->type, PT_GPT);
	assert_int_equal(t->sector_size, SS);
	assert_memory_equal(t->disk_guid.b, DISK_GUID, 16);
	assert_string_equal(guid_to_str(&t->disk_guid, txt), "12345678-9abc-def0-0123-456789abcdef");
	assert_int_equal(t->first_usable, (uint64_t)FIRST_USABLE * SS);
	assert_int_equal(t->last_usable, (uint64_t)LAST_USABLE * SS);
	assert_int_equal(t->count, NGENTS);
	for (size_t i = 0; i < NGENTS; i++) {
		const struct gent *g = &GENTS[i];
		const struct part *p = ptable_find(t, g->index + 1);
		check_part(p, g->index + 1, g->first, g->last - g->first + 1);
		assert_memory_equal(p->type_guid.b, g->type, 16);
		guid_text(g->type, want);
		assert_string_equal(guid_to_str(&p->type_guid, txt), want);
		unique_guid(g->index, ug);
		assert_memory_equal(p->part_guid.b, ug, 16);
		guid_text(ug, want);
		assert_string_equal(guid_to_str(&p->part_guid, txt), want);
		assert_int_equal(p->attrs, g->attrs);
		assert_string_equal(p->name, g->name);
		assert_false(p->logical);
		assert_false(p->active);
	}
	assert_null(ptable_find(t, 4));
	assert_true(guid_eq(&ptable_find(t, 1)->type_guid, &GPT_TYPE_ESP));
	assert_true(guid_eq(&ptable_find(t, 2)->type_guid, &GPT_TYPE_MSR));
	assert_true(guid_eq(&ptable_find(t, 3)->type_guid, &GPT_TYPE_BASIC_DATA));
	assert_true(guid_eq(&ptable_find(t, 5)->type_guid, &GPT_TYPE_RECOVERY));
}

static void t_gpt_read(void **st)
{
	struct img im;
	struct ptable t;
	char why[256];
	img_new(&im, SECTORS);
	build_gpt(&im);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	check_gpt_table(&t);
	/* our CRCs (zlib) and partition_verify's agree */
	assert_int_equal(partition_verify(im.o, why, sizeof why), 0);
	assert_string_equal(why, "");
	img_close(&im);
}

/* ---- malformed tables ------------------------------------------------------ */

/* partition_read refuses with E_FORMAT and a reason containing what. */
static void expect_refused(struct overlay *o, const char *what)
{
	struct ptable t;
	assert_int_equal(partition_read(o, &t), -1);
	assert_int_equal(err_code(), E_FORMAT);
	if (!strstr(err_msg(), what))
		fail_msg("reason '%s' lacks '%s'", err_msg(), what);
	err_clear();
}

/* The three primaries of build_mbr and logicals 5.. at the given EBR
 * indices, in chain order. */
static void check_mbr_chain(const struct ptable *t, const int *ebrs, int n)
{
	assert_int_equal(t->type, PT_MBR);
	assert_int_equal(t->count, 3 + n);
	check_part(ptable_find(t, 1), 1, 2048, 4096);
	check_part(ptable_find(t, 3), 3, EXT_START, EXT_SECTORS);
	for (int i = 0; i < n; i++) {
		const struct part *p = ptable_find(t, 5 + i);
		check_part(p, 5 + i, EXT_START + ebrs[i] * EBR_GAP + LOG_OFF, LOG_SECTORS);
		assert_true(p->logical);
		assert_int_equal(p->mbr_type, ebrs[i] == 1 ? 0x82 : 0x83);
	}
	assert_null(ptable_find(t, 5 + n));
}

static void t_ebr_loops(void **st)
{
	struct img im;
	/* EBR 1 links to itself */
	img_new(&im, SECTORS);
	build_mbr(&im);
	mbr_record(sec(&im, EXT_START + EBR_GAP), 1, 0, 0x05, EBR_GAP, LOG_OFF + LOG_SECTORS);
	expect_refused(img_open(&im), "loops");
	img_close(&im);
	/* EBR 2 links back to EBR 1 */
	img_new(&im, SECTORS);
	build_mbr(&im);
	mbr_record(sec(&im, EXT_START + 2 * EBR_GAP), 1, 0, 0x05, EBR_GAP, LOG_OFF + LOG_SECTORS);
	expect_refused(img_open(&im), "loops");
	img_close(&im);
	/* EBR 2 links back to the first EBR: start 0, relative to the
	 * container */
	img_new(&im, SECTORS);
	build_mbr(&im);
	mbr_record(sec(&im, EXT_START + 2 * EBR_GAP), 1, 0, 0x05, 0, LOG_OFF + LOG_SECTORS);
	expect_refused(img_open(&im), "loops");
	img_close(&im);
	/* EBR 1's link sits in record 3 (fdisk takes the first extended
	 * record with a size, wherever it is) and points back to EBR 0 */
	img_new(&im, SECTORS);
	build_mbr(&im);
	memset(sec(&im, EXT_START + EBR_GAP) + 446 + 16, 0, 16);
	mbr_record(sec(&im, EXT_START + EBR_GAP), 3, 0, 0x0F, 0, 1);
	expect_refused(img_open(&im), "loops");
	img_close(&im);
}

/* The link in record 4 of an EBR and record 2 empty: still followed. */
static void t_ebr_link_slot(void **st)
{
	struct img im;
	struct ptable t;
	img_new(&im, SECTORS);
	build_mbr(&im);
	uint8_t *e = sec(&im, EXT_START);
	memcpy(e + 446 + 48, e + 446 + 16, 16);
	memset(e + 446 + 16, 0, 16);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	check_mbr_chain(&t, (const int[]){0, 1, 2}, 3);
	img_close(&im);
}

/* A backward link without a loop is legal (fdisk appends new logicals to
 * the chain wherever they lie): all three logicals, in chain order. */
static void t_ebr_out_of_order(void **st)
{
	struct img im;
	struct ptable t;
	img_new(&im, SECTORS);
	build_mbr(&im);
	mbr_record(sec(&im, EXT_START), 1, 0, 0x05, 2 * EBR_GAP, LOG_OFF + LOG_SECTORS);
	mbr_record(sec(&im, EXT_START + 2 * EBR_GAP), 1, 0, 0x05, EBR_GAP, LOG_OFF + LOG_SECTORS);
	memset(sec(&im, EXT_START + EBR_GAP) + 446 + 16, 0, 16);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	check_mbr_chain(&t, (const int[]){0, 2, 1}, 3);
	img_close(&im);
}

static void t_ebr_past_end(void **st)
{
	struct img im;
	struct ptable t;
	/* EBR 1 links far beyond the disk and the container: the chain ends
	 * after logical 6 */
	img_new(&im, SECTORS);
	build_mbr(&im);
	mbr_record(sec(&im, EXT_START + EBR_GAP), 1, 0, 0x05, 0xFFFFFF00u, LOG_OFF + LOG_SECTORS);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	check_mbr_chain(&t, (const int[]){0, 1}, 2);
	img_close(&im);
	/* the container itself lies past the end: no logicals */
	img_new(&im, SECTORS);
	build_mbr(&im);
	mbr_record(sec(&im, 0), 2, 0, 0x0F, 0xFFFFF000u, EXT_SECTORS);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	assert_int_equal(t.count, 3);
	check_part(ptable_find(&t, 3), 3, 0xFFFFF000u, EXT_SECTORS);
	assert_null(ptable_find(&t, 5));
	img_close(&im);
}

/* An MBR partition past the end is reported as the MBR says (like
 * sfdisk), reads of it see zeros past the end, and partition_write refuses
 * to write a table holding it. */
static void t_mbr_past_end(void **st)
{
	static const struct { uint32_t lba, count; } cases[] = {
		{LAST - 100, 4096},          /* ends past the end */
		{0xFFFFFFF0u, 0x100u},       /* starts past the end */
	};
	for (size_t c = 0; c < 2; c++) {
		struct img im;
		struct ptable t;
		img_new(&im, SECTORS);
		build_mbr(&im);
		mbr_record(sec(&im, 0), 3, 0, 0x07, cases[c].lba, cases[c].count);
		assert_int_equal(partition_read(img_open(&im), &t), 0);
		assert_int_equal(t.count, 7);
		const struct part *p = ptable_find(&t, 4);
		check_part(p, 4, cases[c].lba, cases[c].count);
		assert_true(p->start + p->size > overlay_size(im.o));
		uint8_t buf[SS];
		memset(buf, 0xA5, sizeof buf);
		assert_int_equal(overlay_read(im.o, buf, SS, p->start + p->size - SS), 0);
		for (size_t i = 0; i < SS; i++)
			assert_int_equal(buf[i], 0);
		assert_int_equal(partition_write(im.o, &t), -1);
		assert_int_equal(err_code(), E_NOSPACE);
		assert_non_null(strstr(err_msg(), "beyond the end"));
		char why[256];
		assert_int_equal(partition_verify(im.o, why, sizeof why), -1);
		assert_non_null(strstr(why, "partition 4 (start sector"));
		assert_non_null(strstr(why, "runs past the end of the disk"));
		img_close(&im);
	}
}

/* Overlapping partitions are read as they are; writing them is refused
 * and partition_verify fails them. */
static void t_overlaps(void **st)
{
	struct img im;
	struct ptable t;
	char why[256];
	img_new(&im, SECTORS);
	build_mbr(&im);
	mbr_record(sec(&im, 0), 1, 0, 0x83, 4096, 2048);   /* inside partition 1 */
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	check_part(ptable_find(&t, 2), 2, 4096, 2048);
	assert_int_equal(partition_write(im.o, &t), -1);
	assert_int_equal(err_code(), E_NOSPACE);
	assert_non_null(strstr(err_msg(), "partitions 1 and 2 overlap"));
	assert_int_equal(partition_verify(im.o, why, sizeof why), -1);
	assert_non_null(strstr(why, "partitions 1 (bytes 1048576-"));
	assert_non_null(strstr(why, "and 2 (bytes 2097152-3145727) overlap"));
	img_close(&im);

	img_new(&im, SECTORS);
	build_gpt(&im);
	/* MSR now ends at 7000, inside partition 3; arrays and CRCs updated */
	put_le64(sec(&im, 2) + 1 * ESZ + 40, 7000);
	memcpy(sec(&im, LAST - ARRAY_SECTORS), sec(&im, 2), NENT * ESZ);
	gpt_header(&im, 1, LAST, 2);
	gpt_header(&im, LAST, 1, LAST - ARRAY_SECTORS);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	assert_int_equal(t.type, PT_GPT);
	check_part(ptable_find(&t, 2), 2, 4096, 7000 - 4096 + 1);
	assert_int_equal(partition_write(im.o, &t), -1);
	assert_int_equal(err_code(), E_NOSPACE);
	assert_non_null(strstr(err_msg(), "partitions 2 and 3 overlap"));
	assert_int_equal(partition_verify(im.o, why, sizeof why), -1);
	assert_non_null(strstr(why, "partitions 2 (bytes 2097152-"));
	assert_non_null(strstr(why, ") and 3 (bytes"));
	img_close(&im);
}

/* Damage to one GPT header: the other one is used (UEFI 5.3.2), and
 * partition_verify names the damaged one. Damage to both: refused. */
static void gpt_one_bad(void (*damage)(struct img *, uint64_t), const char *why_primary)
{
	struct img im;
	struct ptable t;
	char why[256];
	img_new(&im, SECTORS);
	build_gpt(&im);
	damage(&im, 1);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	check_gpt_table(&t);
	assert_int_equal(partition_verify(im.o, why, sizeof why), -1);
	assert_int_equal(err_code(), E_FORMAT);
	if (!strstr(why, "LBA 1:") || !strstr(why, why_primary))
		fail_msg("verify said '%s'", why);
	img_close(&im);

	img_new(&im, SECTORS);
	build_gpt(&im);
	damage(&im, LAST);
	assert_int_equal(partition_read(img_open(&im), &t), 0);
	check_gpt_table(&t);
	assert_int_equal(partition_verify(im.o, why, sizeof why), -1);
	if (!strstr(why, "LBA 16383:") || !strstr(why, why_primary))
		fail_msg("verify said '%s'", why);
	img_close(&im);

	img_new(&im, SECTORS);
	build_gpt(&im);
	damage(&im, 1);
	damage(&im, LAST);
	expect_refused(img_open(&im), "neither GPT header is valid");
	assert_int_equal(partition_verify(im.o, why, sizeof why), -1);
	assert_non_null(strstr(why, "neither GPT header"));
	img_close(&im);
}

static void bad_header_crc(struct img *im, uint64_t lba)
{
	sec(im, lba)[16] ^= 1;
}

/* 0xFFFFFFFF entries of 2^31 bytes, header CRC valid: libfdisk would try
 * to allocate 2^63 bytes. */
static void huge_array(struct img *im, uint64_t lba)
{
	put_le32(sec(im, lba) + 80, 0xFFFFFFFFu);
	put_le32(sec(im, lba) + 84, 0x80000000u);
	gpt_header_crc(im, lba);
}

/* 128 entries of 8 bytes (not 128 x 2^n), both CRCs valid: libfdisk would
 * read 128-byte entries at 8-byte steps, past its 1 KiB buffer. */
static void small_entries(struct img *im, uint64_t lba)
{
	uint8_t *h = sec(im, lba);
	put_le32(h + 84, 8);
	put_le32(h + 88, crc(sec(im, get_le64(h + 72)), NENT * 8));
	gpt_header_crc(im, lba);
}

/* 2^20 entries of 128 bytes (128 MiB), header CRC valid */
static void big_count(struct img *im, uint64_t lba)
{
	put_le32(sec(im, lba) + 80, 1u << 20);
	gpt_header_crc(im, lba);
}

static void t_gpt_bad_header_crc(void **st) { gpt_one_bad(bad_header_crc, "header CRC32 mismatch"); }
static void t_gpt_huge_array(void **st) { gpt_one_bad(huge_array, "entry array out of bounds"); }
static void t_gpt_small_entries(void **st) { gpt_one_bad(small_entries, "entry array out of bounds"); }
static void t_gpt_big_count(void **st) { gpt_one_bad(big_count, "entry array out of bounds"); }

/* ---- partition_write ------------------------------------------------------- */

static void gents_to_ptable(struct ptable *t)
{
	memset(t, 0, sizeof *t);
	t->type = PT_GPT;
	memcpy(t->disk_guid.b, DISK_GUID, 16);
	for (size_t i = 0; i < NGENTS; i++) {
		const struct gent *g = &GENTS[i];
		struct part *p = &t->parts[t->count++];
		p->number = g->index + 1;
		p->start = g->first * SS;
		p->size = (g->last - g->first + 1) * SS;
		memcpy(p->type_guid.b, g->type, 16);
		unique_guid(g->index, p->part_guid.b);
		p->attrs = g->attrs;
		snprintf(p->name, sizeof p->name, "%s", g->name);
	}
}

/* Checks the header at lba as written, field by field (UEFI 5.3.2), with
 * CRCs computed here. */
static void check_written_header(struct overlay *o, uint64_t lba, uint64_t alt, uint64_t entries_lba,
				 const uint8_t *want_entries)
{
	uint8_t h[SS], arr[NENT * ESZ];
	assert_int_equal(overlay_read(o, h, SS, lba * SS), 0);
	assert_memory_equal(h, "EFI PART", 8);
	assert_int_equal(get_le32(h + 8), 0x00010000);
	uint32_t hsize = get_le32(h + 12);
	assert_true(hsize >= 92 && hsize <= SS);
	uint32_t hcrc = get_le32(h + 16);
	put_le32(h + 16, 0);
	assert_int_equal(crc(h, hsize), hcrc);
	assert_int_equal(get_le64(h + 24), lba);
	assert_int_equal(get_le64(h + 32), alt);
	assert_int_equal(get_le64(h + 40), FIRST_USABLE);
	assert_int_equal(get_le64(h + 48), LAST_USABLE);
	assert_memory_equal(h + 56, DISK_GUID, 16);
	assert_int_equal(get_le64(h + 72), entries_lba);
	assert_int_equal(get_le32(h + 80), NENT);
	assert_int_equal(get_le32(h + 84), ESZ);
	assert_int_equal(overlay_read(o, arr, sizeof arr, entries_lba * SS), 0);
	assert_int_equal(crc(arr, sizeof arr), get_le32(h + 88));
	/* every entry byte as built by fill_entries (types, GUIDs, LBAs,
	 * attributes, UTF-16 names, empty entries zero) */
	assert_memory_equal(arr, want_entries, sizeof arr);
}

static void t_gpt_write_roundtrip(void **st)
{
	struct img im;
	struct ptable t, back;
	char why[256];
	static uint8_t want[NENT * ESZ];
	memset(want, 0, sizeof want);
	fill_entries(want);
	img_new(&im, SECTORS);   /* a blank disk */
	struct overlay *o = img_open(&im);
	gents_to_ptable(&t);
	assert_int_equal(partition_write(o, &t), 0);
	assert_int_equal(partition_read(o, &back), 0);
	check_gpt_table(&back);

	/* protective MBR (UEFI 5.2.3) */
	uint8_t m[SS];
	assert_int_equal(overlay_read(o, m, SS, 0), 0);
	assert_int_equal(m[510], 0x55);
	assert_int_equal(m[511], 0xAA);
	assert_int_equal(m[446 + 4], 0xEE);
	assert_int_equal(get_le32(m + 446 + 8), 1);
	assert_int_equal(get_le32(m + 446 + 12), LAST);
	for (int slot = 1; slot < 4; slot++)
		assert_int_equal(m[446 + 16 * slot + 4], 0);
	check_written_header(o, 1, LAST, 2, want);
	check_written_header(o, LAST, 1, LAST - ARRAY_SECTORS, want);
	assert_int_equal(partition_verify(o, why, sizeof why), 0);

	/* one flipped byte of the primary entry array (a name): verify fails,
	 * naming the array; flipped back: valid again */
	uint64_t off = 2 * SS + 2 * ESZ + 56;
	uint8_t b;
	assert_int_equal(overlay_read(o, &b, 1, off), 0);
	b ^= 0x20;
	assert_int_equal(overlay_write(o, &b, 1, off), 0);
	assert_int_equal(partition_verify(o, why, sizeof why), -1);
	assert_string_equal(why, "GPT entry array of the header at LBA 1: CRC32 mismatch");
	b ^= 0x20;
	assert_int_equal(overlay_write(o, &b, 1, off), 0);
	assert_int_equal(partition_verify(o, why, sizeof why), 0);
	/* the same in the backup array (an attribute byte) */
	off = (uint64_t)(LAST - ARRAY_SECTORS) * SS + 4 * ESZ + 48;
	assert_int_equal(overlay_read(o, &b, 1, off), 0);
	b ^= 0x04;
	assert_int_equal(overlay_write(o, &b, 1, off), 0);
	assert_int_equal(partition_verify(o, why, sizeof why), -1);
	assert_string_equal(why, "GPT entry array of the header at LBA 16383: CRC32 mismatch");
	img_close(&im);
}

/* Reading the hand-built GPT and writing it back over itself changes no
 * byte of it. */
static void t_gpt_rewrite_same(void **st)
{
	struct img im;
	struct ptable t;
	img_new(&im, SECTORS);
	build_gpt(&im);
	struct overlay *o = img_open(&im);
	assert_int_equal(partition_read(o, &t), 0);
	assert_int_equal(partition_write(o, &t), 0);
	uint8_t *now = malloc(im.size);
	assert_int_equal(overlay_read(o, now, im.size, 0), 0);
	for (uint64_t lba = 0; lba < SECTORS; lba++)
		if (memcmp(now + lba * SS, im.b + lba * SS, SS))
			fail_msg("LBA %llu differs", (unsigned long long)lba);
	free(now);
	img_close(&im);
}

/* MBR write: moving the boot flag from 1 to 2 changes only those two
 * bytes of LBA 0; signature and EBR chain kept. */
static void t_mbr_write_flag(void **st)
{
	struct img im;
	struct ptable t;
	img_new(&im, SECTORS);
	build_mbr(&im);
	struct overlay *o = img_open(&im);
	assert_int_equal(partition_read(o, &t), 0);
	t.parts[0].active = false;
	t.parts[1].active = true;
	assert_int_equal(partition_write(o, &t), 0);
	uint8_t *now = malloc(im.size);
	assert_int_equal(overlay_read(o, now, im.size, 0), 0);
	for (uint64_t i = 0; i < im.size; i++) {
		uint8_t want = i == 446 ? 0x00 : i == 446 + 16 ? 0x80 : im.b[i];
		if (now[i] != want)
			fail_msg("byte %llu: %02x, expected %02x", (unsigned long long)i, now[i], want);
	}
	free(now);
	assert_int_equal(partition_read(o, &t), 0);
	assert_false(ptable_find(&t, 1)->active);
	assert_true(ptable_find(&t, 2)->active);
	assert_int_equal(t.disk_signature, SIGNATURE);
	check_mbr_chain(&t, (const int[]){0, 1, 2}, 3);
	img_close(&im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_mbr_read),
		cmocka_unit_test(t_gpt_read),
		cmocka_unit_test(t_ebr_loops),
		cmocka_unit_test(t_ebr_out_of_order),
		cmocka_unit_test(t_ebr_link_slot),
		cmocka_unit_test(t_ebr_past_end),
		cmocka_unit_test(t_mbr_past_end),
		cmocka_unit_test(t_overlaps),
		cmocka_unit_test(t_gpt_bad_header_crc),
		cmocka_unit_test(t_gpt_huge_array),
		cmocka_unit_test(t_gpt_small_entries),
		cmocka_unit_test(t_gpt_big_count),
		cmocka_unit_test(t_gpt_write_roundtrip),
		cmocka_unit_test(t_gpt_rewrite_same),
		cmocka_unit_test(t_mbr_write_flag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
