/* partition.c - MBR and GPT partition tables through libfdisk (see
 * partition.h).
 *
 * libfdisk only works on file descriptors, and the disk we read is an
 * overlay over a (possibly VHDX) image. So both reading and writing go
 * through a "shadow": a sparse memfd of the disk's size into which we copy
 * only the sectors a partition table can occupy. Everything else reads as
 * zeros there, which libfdisk never needs for tables. After libfdisk writes,
 * every sector of the memfd that holds data (SEEK_DATA) and differs from the
 * overlay is copied back into the overlay.
 *
 * References: UEFI Specification 2.10, chapter 5 "GUID Partition Table
 * (GPT) Disk Layout" (5.2.1 legacy MBR, 5.2.3 protective MBR, 5.3.2 GPT
 * header, 5.3.3 partition entry array); the MBR/EBR layout is the classic
 * IBM PC one (entries at offset 446, 16 bytes each, 0x55AA at 510).
 */
#include "partition.h"
#include "overlay.h"
#include "ptable_format.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libfdisk/libfdisk.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* GPT type GUIDs in on-disk byte order (UEFI 5.3.3 table "Defined GPT
 * Partition Entry - Partition Type GUIDs"; Microsoft's: doc/formats.md, Partition types). */
const struct guid GPT_TYPE_ESP = {{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
				   0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}};
const struct guid GPT_TYPE_BASIC_DATA = {{0xa2, 0xa0, 0xd0, 0xeb, 0xe5, 0xb9, 0x33, 0x44,
					  0x87, 0xc0, 0x68, 0xb6, 0xb7, 0x26, 0x99, 0xc7}};
const struct guid GPT_TYPE_MSR = {{0x16, 0xe3, 0xc9, 0xe3, 0x5c, 0x0b, 0xb8, 0x4d,
				   0x81, 0x7d, 0xf9, 0x2d, 0xf0, 0x02, 0x15, 0xae}};
const struct guid GPT_TYPE_RECOVERY = {{0xa4, 0xbb, 0x94, 0xde, 0xd1, 0x06, 0x40, 0x4d,
					0xa1, 0x6a, 0xbf, 0xd5, 0x01, 0x79, 0xd6, 0xac}};

#define SHADOW_EDGE (1024 * 1024)   /* first and last MiB are copied */
#define EBR_HOP_LIMIT 256            /* logical partitions followed at most */
#define GPT_ENTRIES_MAX_BYTES (1024 * 1024) /* entry arrays we copy, per copy */
#define GPT_ENTRIES 128              /* what we write: UEFI 5.3.2 minimum 16384 bytes */
#define GPT_ENTRY_SIZE 128
#define MBR_MAX_SECTORS 0xFFFFFFFFULL /* 32-bit LBA fields of an MBR entry */

const char *ptable_type_name(enum ptable_type t)
{
	switch (t) {
	case PT_MBR: return "mbr";
	case PT_GPT: return "gpt";
	default: return "none";
	}
}

const struct part *ptable_find(const struct ptable *t, int number)
{
	for (size_t i = 0; i < t->count && i < PART_MAX; i++)
		if (t->parts[i].number == number)
			return &t->parts[i];
	return NULL;
}

bool mbr_type_is_extended(uint8_t type)
{
	/* DOS extended (CHS), Windows extended (LBA), Linux extended. */
	return type == 0x05 || type == 0x0F || type == 0x85;
}

bool part_is_extended(const struct part *p)
{
	return !p->logical && mbr_type_is_extended(p->mbr_type);
}

bool part_is_esp(const struct ptable *t, const struct part *p)
{
	/* UEFI 5.2.1 (OSType 0xEF, primary records only), 5.3.3 (the GUID) */
	if (t->type == PT_GPT) return guid_eq(&p->type_guid, &GPT_TYPE_ESP);
	return t->type == PT_MBR && !p->logical && p->mbr_type == 0xEF;
}

/* ---- the shadow memfd -------------------------------------------------- */

struct shadow {
	int fd;
	char path[64];
	uint64_t size;
	uint32_t ss;
	uint64_t hidden[2];  /* GPT headers hidden from libfdisk (see shadow_copy_gpt_entries) */
	int nhidden;
};

static int shadow_copy(struct shadow *s, struct overlay *o, uint64_t off, uint64_t len)
{
	uint8_t buf[65536];
	if (!range_ok(off, len, s->size))
		return 0; /* outside the disk: nothing to copy (tables pointing there are bogus) */
	while (len) {
		size_t n = len > sizeof(buf) ? sizeof(buf) : (size_t)len;
		if (overlay_read(o, buf, n, off) < 0)
			return -1;
		if (pwrite(s->fd, buf, n, (off_t)off) != (ssize_t)n)
			return err_errno(E_IO, "partition table shadow");
		off += n, len -= n;
	}
	return 0;
}

static int shadow_read_sector(struct shadow *s, uint64_t lba, uint8_t *buf)
{
	if (!range_ok(lba * s->ss, s->ss, s->size) || lba > s->size / s->ss)
		return err_set(E_FORMAT, "partition table points past the end of the disk (LBA %llu)",
			       (unsigned long long)lba);
	if (pread(s->fd, buf, s->ss, (off_t)(lba * s->ss)) != (ssize_t)s->ss)
		return err_errno(E_IO, "partition table shadow");
	return 0;
}


/* The record of an EBR that libfdisk (dos.c read_extended, like fdisk
 * before it) follows as the link: the first of the four with a size and
 * an extended type; without one, the first record that is not the logical
 * partition's (the first with a size and a non-zero type, else record 0).
 * The chain goes on while the link's type is extended, whatever its start
 * (0 means the first EBR again). */
static const struct mbr_record *ebr_link(const struct mbr_sector *sec)
{
	const struct mbr_record *q = sec->partition_record, *link = NULL, *table = NULL;
	for (int i = 0; i < 4; i++) {
		const struct mbr_record *e = q + i;
		if (le32_get(&e->size_in_lba) == 0)
			continue;
		if (mbr_type_is_extended(e->os_type))
			link = link ? link : e;
		else if (e->os_type)
			table = table ? table : e;
	}
	if (!table)
		table = q != link ? q : q + 1;
	if (!link)
		link = q != table ? q : q + 1;
	return link;
}

/* Follows the chain of extended boot records of one extended partition and
 * copies each EBR sector into the shadow. An EBR's first entry is the
 * logical partition (start relative to the EBR), its second entry links to
 * the next EBR (start relative to the start of the extended partition).
 * Links may point backwards (fdisk appends new logicals to the chain
 * wherever they lie), so the chain is followed in any order; an EBR seen
 * twice is a loop, which libfdisk would follow until its 60-partition limit
 * and report the same logical partitions over and over: refused. */
static int shadow_copy_ebr_chain(struct shadow *s, struct overlay *o, uint64_t ext_lba, uint64_t ext_sectors)
{
	uint8_t *sec = xmalloc(s->ss);
	if (!sec) return err_prefix("extended boot record sector");
	uint64_t seen[EBR_HOP_LIMIT], rel = 0;
	int rc = 0;
	for (int hop = 0; hop < EBR_HOP_LIMIT; hop++) {
		uint64_t lba = ext_lba + rel;
		if (rel >= ext_sectors || !range_ok(lba * s->ss, s->ss, s->size))
			break; /* link outside the container: libfdisk will report it */
		for (int i = 0; i < hop && rc == 0; i++)
			if (seen[i] == rel)
				rc = err_set(E_FORMAT, "the chain of extended boot records loops (back to LBA %llu)",
					     (unsigned long long)lba);
		seen[hop] = rel;
		if (rc < 0 || (rc = shadow_copy(s, o, lba * s->ss, s->ss)) < 0 ||
		    (rc = shadow_read_sector(s, lba, sec)) < 0)
			break;
		struct mbr_sector ebr;
		memcpy(&ebr, sec, sizeof(ebr)); /* s->ss >= 512 */
		if (ebr.signature[0] != 0x55 || ebr.signature[1] != 0xAA)
			break;
		const struct mbr_record *link = ebr_link(&ebr);
		if (!mbr_type_is_extended(link->os_type))
			break; /* end of chain */
		rel = le32_get(&link->starting_lba);
	}
	free(sec);
	return rc;
}

/* GPT header at lba: copy its partition entry array, wherever the header
 * says it lies (UEFI 5.3.2 PartitionEntryLBA, NumberOfPartitionEntries,
 * SizeOfPartitionEntry), bounded so a hostile header cannot make us copy
 * the whole disk.
 * libfdisk (2.38) allocates and reads NumberOfPartitionEntries x
 * SizeOfPartitionEntry bytes as soon as the header CRC matches, and then
 * steps through the array by SizeOfPartitionEntry reading 128-byte
 * entries: a huge product exhausts memory, an entry size under 128 reads
 * past its buffer. UEFI 5.3.2 requires SizeOfPartitionEntry = 128 x 2^n,
 * and a header that fails a check is invalid (the other one is used), so
 * such a header is hidden from libfdisk: its signature is zeroed in the
 * shadow (shadow_write_back never copies that back). */
static int shadow_copy_gpt_entries(struct shadow *s, struct overlay *o, uint64_t lba)
{
	uint8_t *h = xmalloc(s->ss);
	if (!h) return err_prefix("GPT header sector");
	int rc = 0;
	struct gpt_header gh;
	if (shadow_read_sector(s, lba, h) < 0 || memcmp(h, GPT_SIGNATURE, 8)) {
		err_clear();
		goto out;
	}
	memcpy(&gh, h, sizeof(gh)); /* s->ss >= 512 */
	uint64_t entries_lba = le64_get(&gh.partition_entry_lba);
	uint32_t esize = le32_get(&gh.size_of_partition_entry);
	uint64_t bytes = (uint64_t)le32_get(&gh.number_of_partition_entries) * esize;
	if (esize < 128 || (esize & (esize - 1)) || bytes > GPT_ENTRIES_MAX_BYTES) {
		memset(h, 0, sizeof(gh.signature));
		if (pwrite(s->fd, h, 8, (off_t)(lba * s->ss)) != 8)
			rc = err_errno(E_IO, "partition table shadow");
		s->hidden[s->nhidden++] = lba;
		goto out;
	}
	bytes = (bytes + s->ss - 1) / s->ss * s->ss;
	if (entries_lba < s->size / s->ss && range_ok(entries_lba * s->ss, bytes, s->size))
		rc = shadow_copy(s, o, entries_lba * s->ss, bytes);
out:
	free(h);
	return rc;
}

/* A hidden GPT header (see above) that libfdisk left alone: the shadow
 * still differs from the overlay only by the zeroed signature. */
static bool shadow_hidden_untouched(const struct shadow *s, uint64_t off, const uint8_t *shadow, const uint8_t *disk)
{
	for (int i = 0; i < s->nhidden; i++)
		if (s->hidden[i] * s->ss == off)
			return !memcmp(shadow, "\0\0\0\0\0\0\0\0", 8) && !memcmp(shadow + 8, disk + 8, s->ss - 8);
	return false;
}

static void shadow_close(struct shadow *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Builds the shadow of o: first and last MiB, every EBR of every extended
 * primary partition, and GPT entry arrays that lie elsewhere. */
static int shadow_open(struct shadow *s, struct overlay *o)
{
	s->size = overlay_size(o);
	s->ss = overlay_sector_size(o);
	s->fd = memfd_create("gen2prep-ptable", MFD_CLOEXEC);
	if (s->fd < 0)
		return err_errno(E_IO, "memfd_create");
	snprintf(s->path, sizeof(s->path), "/proc/self/fd/%d", s->fd);   /* fits: 25 chars at most */
	if (ftruncate(s->fd, (off_t)s->size) < 0) {
		shadow_close(s);
		return err_errno(E_IO, "partition table shadow of %llu bytes", (unsigned long long)s->size);
	}
	uint64_t edge = s->size < SHADOW_EDGE ? s->size : SHADOW_EDGE;
	if (shadow_copy(s, o, 0, edge) < 0 || shadow_copy(s, o, s->size - edge, edge) < 0)
		goto fail;
	uint8_t *sec = xmalloc(s->ss);
	if (!sec) {
		err_prefix("MBR sector");
		goto fail;
	}
	struct mbr_sector mbr = {0};
	if (s->size >= s->ss && shadow_read_sector(s, 0, sec) == 0)
		memcpy(&mbr, sec, sizeof(mbr)); /* s->ss >= 512 */
	if (mbr.signature[0] == 0x55 && mbr.signature[1] == 0xAA) {
		for (int i = 0; i < 4; i++) {
			const struct mbr_record *e = &mbr.partition_record[i];
			if (mbr_type_is_extended(e->os_type) &&
			    shadow_copy_ebr_chain(s, o, le32_get(&e->starting_lba), le32_get(&e->size_in_lba)) < 0) {
				free(sec);
				goto fail;
			}
		}
	}
	free(sec);
	if (s->size / s->ss > 1 &&
	    (shadow_copy_gpt_entries(s, o, 1) < 0 || shadow_copy_gpt_entries(s, o, s->size / s->ss - 1) < 0))
		goto fail;
	return 0;
fail:
	shadow_close(s);
	return -1;
}

/* Copies every shadow sector that holds data and differs from the overlay
 * back into the overlay. */
static int shadow_write_back(struct shadow *s, struct overlay *o)
{
	uint8_t *a = xmalloc(s->ss), *b = a ? xmalloc(s->ss) : NULL;
	if (!b) {
		free(a);
		return err_prefix("partition table sectors");
	}
	int rc = 0;
	off_t pos = 0;
	while (rc == 0 && (uint64_t)pos < s->size) {
		off_t data = lseek(s->fd, pos, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: no more data */
		off_t hole = lseek(s->fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)s->size;
		uint64_t from = (uint64_t)data / s->ss * s->ss;
		for (uint64_t off = from; off < (uint64_t)hole && off + s->ss <= s->size; off += s->ss) {
			if (pread(s->fd, a, s->ss, (off_t)off) != (ssize_t)s->ss) {
				rc = err_errno(E_IO, "partition table shadow");
				break;
			}
			if ((rc = overlay_read(o, b, s->ss, off)) < 0)
				break;
			if (memcmp(a, b, s->ss) && !shadow_hidden_untouched(s, off, a, b) &&
			    (rc = overlay_write(o, a, s->ss, off)) < 0)
				break;
		}
		pos = hole;
	}
	free(a);
	free(b);
	return rc;
}

/* ---- libfdisk context ---------------------------------------------------- */

/* libfdisk reports through "ask" dialogs; without a callback it would print
 * to stdout. We keep the last warning so a failure can show the reason. */
static char fdisk_last_warning[256];

static int fdisk_quiet_ask(struct fdisk_context *cxt, struct fdisk_ask *ask, void *data)
{
	int t = fdisk_ask_get_type(ask);
	if (t == FDISK_ASKTYPE_WARN || t == FDISK_ASKTYPE_WARNX) {
		const char *m = fdisk_ask_print_get_mesg(ask);
		msg_printf(fdisk_last_warning, sizeof(fdisk_last_warning), "%s", m ? m : "");
	}
	return 0;
}

/* " (libfdisk: <last warning>)" or "" */
static const char *fdisk_why(void)
{
	static char buf[300];
	if (!fdisk_last_warning[0])
		return "";
	msg_printf(buf, sizeof(buf), " (libfdisk: %s)", fdisk_last_warning);   /* fits: 256 + 13 */
	return buf;
}

static struct fdisk_context *fdisk_open_shadow(struct shadow *s, bool readonly)
{
	struct fdisk_context *cxt = fdisk_new_context();
	if (!cxt) {
		err_set(E_NOMEM, "libfdisk context");
		return NULL;
	}
	fdisk_last_warning[0] = 0;
	fdisk_set_ask(cxt, fdisk_quiet_ask, NULL);
	/* a memfd has no block-device sector size: tell libfdisk the disk's. */
	fdisk_save_user_sector_size(cxt, s->ss, s->ss);
	int rc = fdisk_assign_device_by_fd(cxt, s->fd, s->path, readonly);
	if (rc < 0) {
		err_set(rc == -ENOMEM ? E_NOMEM : E_FORMAT, "libfdisk cannot open the partition table: %s", strerror(-rc));
		fdisk_unref_context(cxt);
		return NULL;
	}
	fdisk_disable_dialogs(cxt, 1);
	return cxt;
}

/* The shadow of o (shadow_open) with a libfdisk context on it; NULL with
 * the error set (and nothing open) on failure. */
static struct fdisk_context *shadow_fdisk_open(struct shadow *s, struct overlay *o, bool readonly)
{
	if (shadow_open(s, o) < 0)
		return NULL;
	struct fdisk_context *cxt = fdisk_open_shadow(s, readonly);
	if (!cxt)
		shadow_close(s);
	return cxt;
}

static void shadow_fdisk_close(struct fdisk_context *cxt, struct shadow *s)
{
	fdisk_unref_context(cxt);
	shadow_close(s);
}

/* ---- reading --------------------------------------------------------------- */

static int read_one(struct fdisk_context *cxt, struct fdisk_partition *pa, bool gpt, uint32_t ss, struct part *p)
{
	if (!fdisk_partition_has_start(pa) || !fdisk_partition_has_size(pa) || !fdisk_partition_has_partno(pa))
		return err_set(E_FORMAT, "partition without start, size or number");
	size_t partno = fdisk_partition_get_partno(pa);
	fdisk_sector_t start = fdisk_partition_get_start(pa), size = fdisk_partition_get_size(pa);
	if (start > UINT64_MAX / ss || size > UINT64_MAX / ss)
		return err_set(E_FORMAT, "partition %zu out of range", partno + 1);
	memset(p, 0, sizeof(*p));
	p->number = (int)partno + 1;
	p->start = start * ss;
	p->size = size * ss;
	struct fdisk_parttype *t = fdisk_partition_get_type(pa);
	if (gpt) {
		const char *ts = t ? fdisk_parttype_get_string(t) : NULL;
		const char *us = fdisk_partition_get_uuid(pa);
		if (!ts || guid_from_str(ts, &p->type_guid) < 0)
			return err_prefix("GPT entry %d type", p->number);
		if (!us || guid_from_str(us, &p->part_guid) < 0)
			return err_prefix("GPT entry %d unique GUID", p->number);
		if (fdisk_gpt_get_partition_attrs(cxt, partno, &p->attrs) < 0)
			return err_set(E_FORMAT, "GPT entry %d: attributes unreadable", p->number);
		const char *name = fdisk_partition_get_name(pa);
		/* 36 UTF-16 units (UEFI 5.3.3) fit in 128 bytes of UTF-8; refused, never cut */
		if (str_copy(p->name, sizeof(p->name), name ? name : "", "GPT partition name") < 0)
			return -1;
	} else {
		p->mbr_type = t ? (uint8_t)fdisk_parttype_get_code(t) : 0;
		p->active = fdisk_partition_is_bootable(pa) == 1;
		/* libfdisk numbers logical partitions from 5, like the kernel. */
		p->logical = partno >= 4;
	}
	return 0;
}

static int read_label_ids(struct fdisk_context *cxt, struct ptable *out)
{
	char *id = NULL;
	int r = fdisk_get_disklabel_id(cxt, &id);
	if (r == -ENOMEM)
		return err_set(E_NOMEM, "libfdisk: out of memory reading the disk identifier");
	if (r < 0 || !id)
		return err_set(E_FORMAT, "partition table without a disk identifier");
	int rc = 0;
	if (out->type == PT_GPT) {
		rc = guid_from_str(id, &out->disk_guid);
		struct fdisk_labelitem *it = fdisk_new_labelitem();
		uint64_t first = 0, last = 0;
		if (!it) {
			free(id);
			return err_set(E_NOMEM, "libfdisk: out of memory reading the GPT header");
		}
		if (fdisk_get_disklabel_item(cxt, GPT_LABELITEM_FIRSTLBA, it) == 0)
			fdisk_labelitem_get_data_u64(it, &first);
		fdisk_reset_labelitem(it);
		if (fdisk_get_disklabel_item(cxt, GPT_LABELITEM_LASTLBA, it) == 0)
			fdisk_labelitem_get_data_u64(it, &last);
		fdisk_unref_labelitem(it);
		out->first_usable = first * out->sector_size;
		out->last_usable = last * out->sector_size;
	} else {
		char *end;
		unsigned long v = strtoul(id, &end, 16);
		if (*end)
			rc = err_set(E_FORMAT, "MBR disk identifier '%s' unreadable", id);
		out->disk_signature = (uint32_t)v;
	}
	free(id);
	return rc;
}

static int read_table(struct fdisk_context *cxt, struct ptable *out)
{
	struct fdisk_table *tb = NULL;
	int r = fdisk_get_partitions(cxt, &tb);
	if (r == -ENOMEM || (r >= 0 && !tb))
		return err_set(E_NOMEM, "libfdisk: out of memory listing the partitions");
	if (r < 0)
		return err_set(E_FORMAT, "%s partition table unreadable", ptable_type_name(out->type));
	struct fdisk_iter *it = fdisk_new_iter(FDISK_ITER_FORWARD);
	struct fdisk_partition *pa;
	int rc = 0;
	if (!it) {
		fdisk_unref_table(tb);
		return err_set(E_NOMEM, "libfdisk: out of memory listing the partitions");
	}
	while (rc == 0 && fdisk_table_next_partition(tb, it, &pa) == 0) {
		if (out->count >= PART_MAX) {
			rc = err_set(E_UNSUPPORTED, "more than %d partitions", PART_MAX);
			break;
		}
		rc = read_one(cxt, pa, out->type == PT_GPT, out->sector_size, &out->parts[out->count]);
		if (rc == 0)
			out->count++;
	}
	fdisk_free_iter(it);
	fdisk_unref_table(tb);
	return rc;
}

/* libfdisk falls back to reading the MBR when neither GPT header is valid,
 * so a GPT disk whose headers are both damaged would read as an MBR disk
 * with one partition of type 0xEE. UEFI 5.2.3: an 0xEE record marks the
 * disk as GPT; without a valid GPT header the disk has no usable table. */
static int refuse_protective_without_gpt(const struct ptable *t)
{
	for (size_t i = 0; i < t->count; i++)
		if (!t->parts[i].logical && t->parts[i].mbr_type == 0xEE)
			return err_set(E_FORMAT, "protective MBR (type 0xEE) but neither GPT header is valid");
	return 0;
}

int partition_read(struct overlay *o, struct ptable *out)
{
	memset(out, 0, sizeof(*out));
	out->sector_size = overlay_sector_size(o);
	struct shadow s = {.fd = -1};
	if (out->sector_size < 512 || overlay_size(o) < out->sector_size)
		return 0; /* nothing that can hold a table */
	/* libfdisk goes on past some failed allocations (an extended boot
	 * record it could not read ends the chain early: logical partitions
	 * missing, no error). malloc sets ENOMEM and nothing here resets it
	 * to that: seen after the reading, the table is not trusted. */
	errno = 0;
	struct fdisk_context *cxt = shadow_fdisk_open(&s, o, true);
	if (!cxt)
		return err_prefix("partition table");
	int rc = 0;
	if (!fdisk_has_label(cxt))
		goto out;
	if (fdisk_is_label(cxt, GPT))
		out->type = PT_GPT;
	else if (fdisk_is_label(cxt, DOS))
		out->type = PT_MBR;
	else {
		rc = err_set(E_UNSUPPORTED, "partition table type '%s' is neither MBR nor GPT",
			     fdisk_label_get_name(fdisk_get_label(cxt, NULL)));
		goto out;
	}
	if ((rc = read_label_ids(cxt, out)) == 0)
		rc = read_table(cxt, out);
	if (rc == 0 && out->type == PT_MBR)
		rc = refuse_protective_without_gpt(out);
	if (rc == 0 && errno == ENOMEM)
		rc = err_set(E_NOMEM, "libfdisk ran out of memory while reading it: the table read may be incomplete");
out:
	shadow_fdisk_close(cxt, &s);
	if (rc < 0)
		err_prefix("partition table");
	return rc;
}

/* ---- writing: layout checks -------------------------------------------- */

static int check_overlaps(const struct ptable *t, uint32_t ss)
{
	for (size_t i = 0; i < t->count; i++) {
		const struct part *a = &t->parts[i];
		if (a->size == 0 || a->start % ss || a->size % ss)
			return err_set(E_USAGE, "partition %d: start/size not whole %u-byte sectors (or empty)",
				       a->number, ss);
		for (size_t j = i + 1; j < t->count; j++) {
			const struct part *b = &t->parts[j];
			if (a->number == b->number)
				return err_set(E_USAGE, "partition number %d used twice", a->number);
			if (part_is_extended(a) || part_is_extended(b) || (t->type == PT_MBR && (a->logical || b->logical)))
				continue; /* logicals nest inside their container */
			if (a->start < b->start + b->size && b->start < a->start + a->size)
				return err_set(E_NOSPACE, "partitions %d and %d overlap", a->number, b->number);
		}
	}
	return 0;
}

/* Every partition inside the disk and none overlapping another: what a
 * table must satisfy to be written, and what verify demands of one read. */
static int check_extents(const struct ptable *t, uint64_t size, uint32_t ss)
{
	for (size_t i = 0; i < t->count; i++)
		if (!range_ok(t->parts[i].start, t->parts[i].size, size))
			return err_set(E_NOSPACE, "partition %d lies beyond the end of the disk", t->parts[i].number);
	return check_overlaps(t, ss);
}

/* UEFI 5.3.2: the primary header is at LBA 1 and its entry array follows
 * (at least 16384 bytes: 128 entries of 128 bytes, LBA 2-33 with 512-byte
 * sectors); the backup entry array and header occupy the last sectors of the
 * disk, the backup header at the very last LBA. FirstUsableLBA and
 * LastUsableLBA bound every partition. */
static int check_gpt_layout(const struct ptable *t, uint64_t disk_size, uint32_t ss)
{
	uint64_t entry_sectors = (GPT_ENTRIES * GPT_ENTRY_SIZE + ss - 1) / ss;
	uint64_t sectors = disk_size / ss;
	uint64_t first_usable = 2 + entry_sectors;
	if (sectors < 2 * first_usable + 1)
		return err_set(E_NOSPACE, "disk too small for a GPT");
	uint64_t last_usable = sectors - 1 - entry_sectors - 1;
	for (size_t i = 0; i < t->count; i++) {
		const struct part *p = &t->parts[i];
		uint64_t s = p->start / ss, e = (p->start + p->size) / ss - 1;
		if (p->number < 1 || p->number > GPT_ENTRIES)
			return err_set(E_USAGE, "GPT partition number %d not in 1..%d", p->number, GPT_ENTRIES);
		if (s < first_usable)
			return err_set(E_NOSPACE,
				       "partition %d starts at LBA %llu, before LBA %llu: no room for the GPT entries",
				       p->number, (unsigned long long)s, (unsigned long long)first_usable);
		if (e > last_usable)
			return err_set(E_NOSPACE,
				       "partition %d ends at LBA %llu, inside the backup GPT area (last usable LBA %llu)",
				       p->number, (unsigned long long)e, (unsigned long long)last_usable);
	}
	return 0;
}

/* An MBR entry holds 32-bit LBA start and count (UEFI 5.2.1 table "Legacy
 * MBR Partition Record"): nothing may start or end beyond 2^32 sectors. */
static int check_mbr_layout(const struct ptable *t, uint32_t ss)
{
	int primaries = 0;
	for (size_t i = 0; i < t->count; i++) {
		const struct part *p = &t->parts[i];
		if (p->logical)
			continue;
		if (p->number < 1 || p->number > 4)
			return err_set(E_NOSPACE, "no free MBR slot for partition %d (an MBR has 4 primary slots)",
				       p->number);
		primaries++;
		if (p->start / ss == 0)
			return err_set(E_NOSPACE, "partition %d would overwrite the MBR at LBA 0", p->number);
		if ((p->start + p->size) / ss > MBR_MAX_SECTORS)
			return err_set(E_NOSPACE, "partition %d ends beyond 2 TiB (2^32 sectors), which an MBR cannot address",
				       p->number);
	}
	if (primaries > 4)
		return err_set(E_NOSPACE, "no free MBR slot: %d primary partitions", primaries);
	return 0;
}

/* ---- writing: GPT ------------------------------------------------------- */

static struct fdisk_partition *new_fdisk_part(const struct part *p, uint32_t ss, struct fdisk_parttype *type)
{
	struct fdisk_partition *pa = fdisk_new_partition();
	fdisk_partition_set_partno(pa, (size_t)p->number - 1);
	fdisk_partition_set_start(pa, p->start / ss);
	fdisk_partition_set_size(pa, p->size / ss);
	/* exact size: without this libfdisk rounds the end to its alignment */
	fdisk_partition_size_explicit(pa, 1);
	fdisk_partition_set_type(pa, type);
	return pa;
}

static int add_gpt_part(struct fdisk_context *cxt, const struct ptable *t, const struct part *p, uint32_t ss)
{
	char ts[GUID_STR_LEN + 1], us[GUID_STR_LEN + 1];
	struct guid ug = p->part_guid;
	if (guid_is_zero(&ug)) {
		/* deterministic default: derived from the disk GUID and number */
		uint8_t seed[20];
		memcpy(seed, t->disk_guid.b, 16);
		put_le32(seed + 16, (uint32_t)p->number);
		guid_derive(&ug, "gpt-partition", seed, sizeof(seed));
	}
	guid_to_str(&p->type_guid, ts);
	guid_to_str(&ug, us);
	struct fdisk_parttype *type = fdisk_label_get_parttype_from_string(fdisk_get_label(cxt, NULL), ts);
	if (!type)
		type = fdisk_new_unknown_parttype(0, ts);
	struct fdisk_partition *pa = new_fdisk_part(p, ss, type);
	fdisk_partition_set_uuid(pa, us);
	if (p->name[0])
		fdisk_partition_set_name(pa, p->name);
	int rc = fdisk_add_partition(cxt, pa, NULL);
	fdisk_unref_partition(pa);
	fdisk_unref_parttype(type);
	if (rc < 0)
		return err_set(E_NOSPACE, "libfdisk refused GPT partition %d (LBA %llu, %llu sectors): %s%s",
			       p->number, (unsigned long long)(p->start / ss), (unsigned long long)(p->size / ss),
			       strerror(-rc), fdisk_why());
	if (p->attrs && fdisk_gpt_set_partition_attrs(cxt, (size_t)p->number - 1, p->attrs) < 0)
		return err_set(E_INTERNAL, "cannot set attributes of GPT partition %d", p->number);
	return 0;
}

static int write_gpt(struct fdisk_context *cxt, const struct ptable *t, uint32_t ss)
{
	char id[GUID_STR_LEN + 1];
	struct guid dg = t->disk_guid;
	if (guid_is_zero(&dg))
		return err_set(E_USAGE, "GPT disk GUID not set");
	/* libfdisk makes FirstUsableLBA its alignment start (LBA 2048) unless a
	 * script header says "first-lba"; the layout we must keep may start
	 * right after the entry array (LBA 34), as UEFI 5.3.2 allows. */
	char first[32];
	snprintf(first, sizeof(first), "%u", 2 + (GPT_ENTRIES * GPT_ENTRY_SIZE + ss - 1) / ss);   /* fits: a u32 is 10 digits */
	struct fdisk_script *sc = fdisk_new_script(cxt);
	if (!sc || fdisk_script_set_header(sc, "first-lba", first) < 0 || fdisk_set_script(cxt, sc) < 0) {
		fdisk_unref_script(sc);
		return err_set(E_INTERNAL, "libfdisk script setup failed");
	}
	int rc = fdisk_create_disklabel(cxt, "gpt");
	fdisk_set_script(cxt, NULL);
	fdisk_unref_script(sc);
	if (rc < 0)
		return err_set(E_INTERNAL, "libfdisk cannot create a GPT%s", fdisk_why());
	if (fdisk_gpt_set_npartitions(cxt, GPT_ENTRIES) < 0)
		return err_set(E_INTERNAL, "libfdisk cannot size the GPT entry array");
	if (fdisk_set_disklabel_id_from_string(cxt, guid_to_str(&dg, id)) < 0)
		return err_set(E_INTERNAL, "libfdisk cannot set the disk GUID");
	for (size_t i = 0; i < t->count; i++)
		if (add_gpt_part(cxt, t, &t->parts[i], ss) < 0)
			return -1;
	return 0;
}

/* ---- writing: MBR ------------------------------------------------------- */

static int set_mbr_type(struct fdisk_context *cxt, size_t n, const struct part *want)
{
	struct fdisk_parttype *type = fdisk_new_unknown_parttype(want->mbr_type, NULL);
	int rc = fdisk_set_partition_type(cxt, n, type);
	fdisk_unref_parttype(type);
	if (rc < 0)
		return err_set(E_INTERNAL, "cannot set the type of MBR partition %zu", n + 1);
	bool active = false;
	struct fdisk_partition *cur = NULL;
	if (fdisk_get_partition(cxt, n, &cur) == 0)
		active = fdisk_partition_is_bootable(cur) == 1;
	fdisk_unref_partition(cur);
	if (active != want->active && fdisk_toggle_partition_flag(cxt, n, DOS_FLAG_ACTIVE) < 0)
		return err_set(E_INTERNAL, "cannot set the boot flag of partition %zu", n + 1);
	return 0;
}

/* Keeps the existing table (boot code, logical partitions) and rewrites the
 * four primary slots as t says. */
static int write_mbr(struct fdisk_context *cxt, const struct ptable *t, uint32_t ss)
{
	if (!fdisk_has_label(cxt) || !fdisk_is_label(cxt, DOS)) {
		if (fdisk_create_disklabel(cxt, "dos") < 0)
			return err_set(E_INTERNAL, "libfdisk cannot create an MBR");
	}
	char id[16];
	snprintf(id, sizeof(id), "0x%08x", t->disk_signature);   /* fits: 10 chars */
	if (fdisk_set_disklabel_id_from_string(cxt, id) < 0)
		return err_set(E_INTERNAL, "libfdisk cannot set the disk signature");
	for (size_t n = 0; n < 4; n++) {
		struct fdisk_partition *cur = NULL;
		const struct part *want = ptable_find(t, (int)n + 1);
		bool used = fdisk_is_partition_used(cxt, n);
		if (used && fdisk_get_partition(cxt, n, &cur) == 0 && want &&
		    fdisk_partition_get_start(cur) == want->start / ss &&
		    fdisk_partition_get_size(cur) == want->size / ss &&
		    fdisk_partition_get_type(cur) && fdisk_parttype_get_code(fdisk_partition_get_type(cur)) == want->mbr_type) {
			bool active = fdisk_partition_is_bootable(cur) == 1;
			fdisk_unref_partition(cur);
			if (active != want->active && fdisk_toggle_partition_flag(cxt, n, DOS_FLAG_ACTIVE) < 0)
				return err_set(E_INTERNAL, "cannot set the boot flag of partition %zu", n + 1);
			continue; /* unchanged: keep its entry bytes (CHS) exactly */
		}
		if (used && cur && want && fdisk_partition_get_start(cur) == want->start / ss &&
		    fdisk_partition_get_size(cur) == want->size / ss) {
			/* same extent, new type (System Reserved -> 0xEF ESP): change the
			 * type byte in place. Deleting and re-adding would let libfdisk
			 * judge the start by its alignment and refuse LBA 63, which the
			 * existing entry may validly have (issue 9 item 6). */
			fdisk_unref_partition(cur);
			if (set_mbr_type(cxt, n, want) < 0)
				return -1;
			continue;
		}
		fdisk_unref_partition(cur);
		if (used && fdisk_delete_partition(cxt, n) < 0)
			return err_set(E_INTERNAL, "cannot replace MBR partition %zu", n + 1);
		if (!want)
			continue;
		if (part_is_extended(want))
			return err_set(E_UNSUPPORTED, "creating an extended partition is not supported");
		struct fdisk_parttype *type = fdisk_new_unknown_parttype(want->mbr_type, NULL);
		struct fdisk_partition *pa = new_fdisk_part(want, ss, type);
		int rc = fdisk_add_partition(cxt, pa, NULL);
		fdisk_unref_partition(pa);
		fdisk_unref_parttype(type);
		if (rc < 0)
			return err_set(E_NOSPACE, "libfdisk refused MBR partition %zu (LBA %llu, %llu sectors): %s%s",
				       n + 1, (unsigned long long)(want->start / ss),
				       (unsigned long long)(want->size / ss), strerror(-rc), fdisk_why());
		if (want->active && fdisk_toggle_partition_flag(cxt, n, DOS_FLAG_ACTIVE) < 0)
			return err_set(E_INTERNAL, "cannot set the boot flag of partition %zu", n + 1);
	}
	return 0;
}

int partition_write(struct overlay *o, const struct ptable *t)
{
	uint32_t ss = overlay_sector_size(o);
	uint64_t size = overlay_size(o);
	if (t->type != PT_GPT && t->type != PT_MBR)
		return err_set(E_USAGE, "partition_write: table type must be gpt or mbr");
	if (t->count > PART_MAX)
		return err_set(E_USAGE, "too many partitions");
	if (ss < 512 || size / ss < 64)
		return err_set(E_NOSPACE, "disk too small for a partition table");
	if (check_extents(t, size, ss) < 0 ||
	    (t->type == PT_GPT ? check_gpt_layout(t, size, ss) : check_mbr_layout(t, ss)) < 0)
		return -1;

	struct shadow s = {.fd = -1};
	struct fdisk_context *cxt = shadow_fdisk_open(&s, o, false);
	if (!cxt)
		return err_prefix("writing the %s", ptable_type_name(t->type));
	int rc = t->type == PT_GPT ? write_gpt(cxt, t, ss) : write_mbr(cxt, t, ss);
	if (rc == 0 && fdisk_write_disklabel(cxt) < 0)
		rc = err_set(E_IO, "libfdisk failed to write the %s", ptable_type_name(t->type));
	if (rc == 0 && fdisk_deassign_device(cxt, 1) < 0)
		rc = err_set(E_IO, "libfdisk failed to close the partition table");
	if (rc == 0)
		rc = shadow_write_back(&s, o);
	shadow_fdisk_close(cxt, &s);
	if (rc < 0)
		err_prefix("writing the %s", ptable_type_name(t->type));
	return rc;
}

/* ---- verifying: the table as firmware reads it ---------------------------- */

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, initial value and
 * final XOR 0xFFFFFFFF) as UEFI 2.10 5.3.2 uses for HeaderCRC32 and
 * PartitionEntryArrayCRC32. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
	}
	return ~c;
}

/* UEFI 2.10, 5.3.2 GPT Header (struct gpt_header): HeaderCRC32 is
 * computed with the field zeroed over HeaderSize bytes; SizeOfPartitionEntry
 * is 128 x 2^n. On success *entries_crc is the header's
 * PartitionEntryArrayCRC32. */
static int gpt_header_verify(struct overlay *o, uint64_t lba, uint64_t want_alt, uint32_t *entries_crc, char *why, size_t n)
{
	uint32_t ss = overlay_sector_size(o);
	uint8_t *h = xmalloc(ss), *e = NULL;
	struct gpt_header gh;
	int rc = -1;
	if (!h) {
		err_prefix("GPT header at LBA %llu", (unsigned long long)lba);
		msg_printf(why, n, "%s", err_msg());
		return -1;
	}
	if (overlay_read(o, h, ss, lba * ss) < 0) {
		msg_printf(why, n, "cannot read LBA %llu", (unsigned long long)lba);
		goto out;
	}
	memcpy(&gh, h, sizeof(gh)); /* ss >= 512 */
	uint32_t hsize = le32_get(&gh.header_size), crc = le32_get(&gh.header_crc32);
	if (memcmp(gh.signature, GPT_SIGNATURE, 8)) {
		msg_printf(why, n, "no GPT header signature at LBA %llu", (unsigned long long)lba);
		goto out;
	}
	if (hsize < sizeof(gh) || hsize > ss) {
		msg_printf(why, n, "GPT header at LBA %llu: size %u", (unsigned long long)lba, hsize);
		goto out;
	}
	memset(h + offsetof(struct gpt_header, header_crc32), 0, sizeof(gh.header_crc32));
	if (crc32_ieee(h, hsize) != crc) {
		msg_printf(why, n, "GPT header at LBA %llu: header CRC32 mismatch", (unsigned long long)lba);
		goto out;
	}
	uint64_t my = le64_get(&gh.my_lba), alt = le64_get(&gh.alternate_lba);
	if (my != lba || alt != want_alt) {
		msg_printf(why, n, "GPT header at LBA %llu: MyLBA/AlternateLBA %llu/%llu, expected %llu/%llu",
			 (unsigned long long)lba, (unsigned long long)my, (unsigned long long)alt,
			 (unsigned long long)lba, (unsigned long long)want_alt);
		goto out;
	}
	uint64_t elba = le64_get(&gh.partition_entry_lba);
	uint32_t count = le32_get(&gh.number_of_partition_entries), esize = le32_get(&gh.size_of_partition_entry);
	uint64_t bytes = (uint64_t)count * esize;
	if (esize < 128 || (esize & (esize - 1)) || bytes > GPT_ENTRIES_MAX_BYTES || elba > UINT64_MAX / ss
	    || !range_ok(elba * ss, bytes, overlay_size(o))) {
		msg_printf(why, n, "GPT header at LBA %llu: entry array out of bounds", (unsigned long long)lba);
		goto out;
	}
	e = xmalloc(bytes ? bytes : 1);
	if (!e) {
		err_prefix("GPT entry array at LBA %llu", (unsigned long long)elba);
		msg_printf(why, n, "%s", err_msg());
		goto out;
	}
	*entries_crc = le32_get(&gh.partition_entry_array_crc32);
	if (overlay_read(o, e, bytes, elba * ss) < 0 || crc32_ieee(e, bytes) != *entries_crc) {
		msg_printf(why, n, "GPT entry array of the header at LBA %llu: CRC32 mismatch", (unsigned long long)lba);
		goto out;
	}
	rc = 0;
out:
	free(e);
	free(h);
	return rc;
}

/* UEFI 2.10, 5.3.1: the primary header at LBA 1 names the backup in the
 * last LBA and the backup names LBA 1; both arrays must hold the same
 * entries (compared by their CRC32). */
static int gpt_verify(struct overlay *o, char *why, size_t n)
{
	uint32_t ss = overlay_sector_size(o), crc1 = 0, crc2 = 0;
	uint64_t last = overlay_size(o) / ss - 1;
	if (gpt_header_verify(o, 1, last, &crc1, why, n) < 0 || gpt_header_verify(o, last, 1, &crc2, why, n) < 0)
		return -1;
	if (crc1 != crc2) {
		msg_printf(why, n, "primary and backup GPT entry arrays differ");
		return -1;
	}
	return 0;
}

int partition_verify(struct overlay *o, char *why, size_t n)
{
	struct ptable t;
	why[0] = 0;
	if (partition_read(o, &t) < 0) {
		msg_printf(why, n, "%s", err_msg());
		return -1;
	}
	int rc = 0;
	if (t.type == PT_NONE) {
		msg_printf(why, n, "no partition table");
		rc = -1;
	} else if (t.type == PT_GPT) {
		rc = gpt_verify(o, why, n);
	}
	/* the blockers inspect reports (partition_check.c), in the same words */
	if (rc == 0 && ptable_check(&t, overlay_size(o), why, n) != PTP_NONE)
		rc = -1;
	if (rc == 0 && check_extents(&t, overlay_size(o), t.sector_size) < 0) {
		msg_printf(why, n, "%s", err_msg());
		rc = -1;
	}
	/* an MBR libfdisk accepted has its 0x55AA signature and sane entries */
	return rc < 0 ? err_set(E_FORMAT, "%s", why) : 0;
}
