/* plan.c - see plan.h. Pure data: reads only the inspection and options. */
#include "plan.h"
#include "json_text.h"
#include "fat32.h"
#include "hive.h"
#include "rules.h"
#include "util.h"
#include "windows.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *plan_layout_name(enum plan_layout l) { return l == LAYOUT_MBR ? "mbr" : "gpt"; }

int plan_layout_parse(const char *s, enum plan_layout *out)
{
	if (!ascii_casecmp(s, "gpt")) *out = LAYOUT_GPT;
	else if (!ascii_casecmp(s, "mbr")) *out = LAYOUT_MBR;
	else return err_set(E_USAGE, "unknown layout '%s' (gpt or mbr)", s);
	return 0;
}

static const char *const esp_names[] = { "auto", "existing", "reuse", "append" };

const char *esp_mode_name(enum esp_mode m) { return (unsigned)m < 4 ? esp_names[m] : "?"; }

int esp_mode_parse(const char *s, enum esp_mode *out)
{
	for (int i = 0; i < 4; i++)
		if (!ascii_casecmp(s, esp_names[i])) { *out = (enum esp_mode)i; return 0; }
	return err_set(E_USAGE, "unknown ESP placement '%s' (auto, existing, reuse or append)", s);
}

/* Serial debugging as `bcdedit /dbgsettings SERIAL DEBUGPORT:n BAUDRATE:b`:
 * COM1-COM4 and the rates the Windows serial debugger transport accepts. */
int plan_parse_debug(const char *s, unsigned *port, unsigned *baud)
{
	static const unsigned rates[] = { 9600, 19200, 38400, 57600, 115200 };
	unsigned p, b;
	char tail;
	if (strncmp(s, "serial:", 7) || sscanf(s + 7, "%u:%u%c", &p, &b, &tail) != 2)
		return err_set(E_USAGE, "--debug takes serial:PORT:BAUD (e.g. serial:1:115200), not '%s'", s);
	if (p < 1 || p > 4)
		return err_set(E_USAGE, "--debug: serial port %u is not COM1-COM4", p);
	for (size_t i = 0; i < sizeof rates / sizeof *rates; i++)
		if (rates[i] == b) { *port = p; *baud = b; return 0; }
	return err_set(E_USAGE, "--debug: baud rate %u is not one of 9600, 19200, 38400, 57600, 115200", b);
}

int plan_id(const struct plan_opts *opts, const char *name, struct guid *out)
{
	if (opts->random_ids)
		return guid_random(out);
	guid_derive(out, name, opts->fingerprint, sizeof opts->fingerprint);
	return 0;
}

/* One more entry of a heap table (*arr, *n used, *cap allocated, size
 * bytes each), zeroed: the table doubles when full. NULL with E_NOMEM and
 * p->nomem set (the table as it was). */
static void *table_add(struct plan *p, void *arr, size_t *n, size_t *cap, size_t size)
{
	void **a = arr;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		void *g = c <= SIZE_MAX / size / 2 ? xrealloc(*a, c * size) : NULL;
		if (!g) {
			if (c > SIZE_MAX / size / 2) err_set(E_NOMEM, "out of memory (%zu plan entries)", c);
			p->nomem = true;
			return NULL;
		}
		*a = g;
		*cap = c;
	}
	char *e = (char *)*a + (*n)++ * size;
	memset(e, 0, size);
	return e;
}

__attribute__((format(printf, 3, 0)))
static int vadd(struct plan_blocker *b, const char *id, const char *fmt, va_list ap)
{
	b->id = id;
	/* sized to its text: a long path from the image is kept whole */
	char *s = NULL;
	if ((xalloc_fail_hook && xalloc_fail_hook()) || vasprintf(&s, fmt, ap) < 0)
		return err_set(E_NOMEM, "out of memory (a plan message)");
	b->message = s;
	return 0;
}

__attribute__((format(printf, 4, 0)))
static int vadd_to(struct plan *p, bool warning, const char *id, const char *fmt, va_list ap)
{
	struct plan_blocker *b = warning ? table_add(p, &p->warnings, &p->nwarnings, &p->cap_warnings, sizeof *b)
					 : table_add(p, &p->blockers, &p->nblockers, &p->cap_blockers, sizeof *b);
	if (!b) return -1;
	if (vadd(b, id, fmt, ap) < 0) {
		/* the entry is lost: count it out and mark the plan (E_NOMEM) */
		if (warning) p->nwarnings--; else p->nblockers--;
		p->nomem = true;
		return -1;
	}
	return 0;
}

int plan_add_blocker(struct plan *p, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vadd_to(p, false, id, fmt, ap);
	va_end(ap);
	return r;
}

int plan_add_warning(struct plan *p, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vadd_to(p, true, id, fmt, ap);
	va_end(ap);
	return r;
}

#define add_blocker plan_add_blocker
#define add_warning plan_add_warning

bool plan_ok(const struct plan *p) { return p->nblockers == 0 && !p->nomem; }

bool plan_has_blocker(const struct plan *p, const char *id)
{
	for (size_t i = 0; i < p->nblockers; i++)
		if (!strcmp(p->blockers[i].id, id)) return true;
	return false;
}

int plan_err_code(const struct plan *p)
{
	if (p->nomem) return E_NOMEM;
	if (!p->nblockers) return E_OK;
	for (size_t i = 0; i < p->nblockers; i++)
		if (!strncmp(p->blockers[i].id, "output-", 7)) return E_OUTPUT;
	if (plan_has_blocker(p, "patch-site")) return E_PATCH;
	return E_BLOCKED;
}

const char *plan_blockers_text(const struct plan *p, char *buf, size_t n)
{
	size_t used = 0;
	buf[0] = 0;
	/* each blocker's stable code in front of its message (man page,
	 * BLOCKERS: "inspect's JSON, convert's message"); a list longer than
	 * buf ends in " ..." */
	for (size_t i = 0; i < p->nblockers; i++)
		if (text_append(buf, n, &used, "%s%s: %s", i ? "; " : "", p->blockers[i].id, p->blockers[i].message) < 0) break;
	return buf;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* UEFI spec 2.10, 5.3: a GPT needs LBA 0 (protective MBR), LBA 1 (header)
 * and the partition entry array (128 entries x 128 bytes = 16 KiB) before
 * the first usable LBA, and the entry array + backup header in the last
 * LBAs. With 512-byte sectors: 34 sectors in front, 33 at the end. */
static uint64_t gpt_front_bytes(uint32_t ss) { return 2ULL * ss + align_up(16384, ss); }
static uint64_t gpt_back_bytes(uint32_t ss) { return 1ULL * ss + align_up(16384, ss); }

static uint64_t table_end(const struct ptable *t)
{
	uint64_t end = 0;
	for (size_t i = 0; i < t->count; i++) {
		const struct part *q = &t->parts[i];
		if (t->type == PT_MBR && mbr_type_is_extended(q->mbr_type)) continue;
		if (q->start + q->size > end) end = q->start + q->size;
	}
	return end;
}

/* ---- ESP placement ---- */

static const struct part_info *find_existing_esp(const struct inspection *ins, enum plan_layout layout)
{
	for (size_t i = 0; i < ins->nparts; i++) {
		const struct part_info *pi = &ins->parts[i];
		if (!pi->part) continue;
		bool fat = pi->filesystem && !strcmp(pi->filesystem, "fat32");
		if (pi->role != ROLE_ESP && !fat) continue;
		/* UEFI 5.2.1: firmware reads only the four primary MBR records */
		if (layout == LAYOUT_MBR && pi->part->logical) continue;
		if (!fat) continue;   /* an ESP must hold FAT32 for us to fill it */
		return pi;
	}
	return NULL;
}

/* a partition typed ESP (GPT type ESP or MBR type 0xEF, UEFI 5.2.1 and 5.3.3) */
static const struct part_info *find_typed_esp(const struct inspection *ins)
{
	for (size_t i = 0; i < ins->nparts; i++)
		if (ins->parts[i].part && ins->parts[i].role == ROLE_ESP) return &ins->parts[i];
	return NULL;
}

static const struct part_info *find_reusable(const struct inspection *ins, enum plan_layout layout, char *why, size_t n)
{
	why[0] = 0;
	for (size_t i = 0; i < ins->nparts; i++) {
		const struct part_info *pi = &ins->parts[i];
		if (!pi->part || pi->role != ROLE_SYSTEM_RESERVED) continue;
		if (pi->part->number == ins->windows_partition) continue;
		if (!pi->reusable_as_esp) {
			msg_printf(why, n, "the System Reserved partition %d is not reusable: %s", pi->part->number,
				   pi->not_reusable_why[0] ? pi->not_reusable_why : "it holds more than boot files");
			continue;
		}
		if (layout == LAYOUT_MBR && pi->part->logical) {
			msg_printf(why, n, "the System Reserved partition %d is a logical partition", pi->part->number);
			continue;
		}
		return pi;
	}
	if (!why[0]) msg_printf(why, n, "there is no System Reserved partition");
	return NULL;
}

static int free_number(const struct ptable *t, enum plan_layout layout)
{
	int max = layout == LAYOUT_MBR ? 4 : 128;
	for (int n = 1; n <= max; n++) {
		bool used = false;
		for (size_t i = 0; i < t->count; i++) {
			const struct part *q = &t->parts[i];
			if (q->number != n) continue;
			/* the MBR extended container is dropped in a GPT */
			if (layout == LAYOUT_GPT && t->type == PT_MBR && mbr_type_is_extended(q->mbr_type)) continue;
			used = true;
		}
		if (!used) return n;
	}
	return 0;
}

/* Checks that the layout fits the disk of new_size with the ESP where the
 * plan puts it; writes the reason into why. */
static bool layout_fits(const struct plan *p, const struct ptable *old, uint64_t new_size, char *why, size_t n)
{
	uint32_t ss = p->sector_size;
	if (p->layout == LAYOUT_GPT) {
		uint64_t front = gpt_front_bytes(ss), back = gpt_back_bytes(ss);
		for (size_t i = 0; i < old->count; i++) {
			const struct part *q = &old->parts[i];
			if (old->type == PT_MBR && mbr_type_is_extended(q->mbr_type)) continue;
			if (q->start < front) {
				msg_printf(why, n, "partition %d starts at sector %llu, inside the %llu sectors a GPT needs at the front",
					   q->number, (unsigned long long)(q->start / ss), (unsigned long long)(front / ss));
				return false;
			}
		}
		uint64_t end = table_end(old);
		if (p->esp_new_entry && p->esp_start + p->esp_size > end) end = p->esp_start + p->esp_size;
		if (end + back > new_size) {
			msg_printf(why, n, "the partitions reach into the last %llu sectors, where the GPT backup must go",
				   (unsigned long long)(back / ss));
			return false;
		}
		return true;
	}
	/* MBR partition records hold 32-bit LBAs (start and count): 2 TiB with 512-byte sectors */
	uint64_t limit = (1ULL << 32) * ss;
	if (p->esp_start + p->esp_size > limit) {
		msg_printf(why, n, "the ESP would end beyond %llu GiB, past what an MBR can address",
			   (unsigned long long)(limit >> 30));
		return false;
	}
	return true;
}

/* Windows setup fills a BIOS disk to its last sector; a GPT needs its
 * backup there (UEFI 5.3.1), so the disk grows by the 1 MiB-aligned room
 * for it when the partitions reach the end. */
static uint64_t size_for_backup(const struct plan *p, const struct ptable *old)
{
	if (p->layout != LAYOUT_GPT) return p->old_size;
	uint64_t need = table_end(old) + gpt_back_bytes(p->sector_size);
	return need > p->old_size ? align_up(need, PLAN_ALIGN) : p->old_size;
}

/* The ESP is an existing partition (its entry kept): the disk grows only
 * for the GPT backup. */
static bool esp_in_place(struct plan *p, const struct inspection *ins, const struct part *part, char *why, size_t n)
{
	p->esp_number = part->number;
	p->esp_start = part->start;
	p->esp_size = part->size;
	p->esp_new_entry = false;
	p->new_size = size_for_backup(p, &ins->table);
	return layout_fits(p, &ins->table, p->new_size, why, n);
}

static bool try_existing(struct plan *p, const struct inspection *ins, char *why, size_t n)
{
	const struct part_info *pi = find_existing_esp(ins, p->layout);
	if (!pi) { msg_printf(why, n, "there is no FAT32 partition or ESP to use"); return false; }
	if (!rules_esp_geometry(pi->part->size, p->sector_size, NULL, NULL, why, n)) return false;
	if (!esp_in_place(p, ins, pi->part, why, n)) return false;
	snprintf(p->esp_why, sizeof p->esp_why, "partition %d already holds FAT32: it becomes the ESP (its content is replaced by the boot files)", p->esp_number);   /* fits: 105 chars for any int */
	return true;
}

static bool try_reuse(struct plan *p, const struct inspection *ins, char *why, size_t n);

bool plan_reusable_as_esp(const struct plan *p, const struct part_info *pi, char *why, size_t n)
{
	if (n) why[0] = 0;
	if (!pi->reusable_as_esp) {
		msg_printf(why, n, "%s", pi->not_reusable_why[0] ? pi->not_reusable_why : "it holds more than boot files");
		return false;
	}
	char fat_why[200];
	uint32_t ss = p && p->sector_size ? p->sector_size : 512;
	if (!rules_esp_geometry(pi->part->size, ss, NULL, NULL, fat_why, sizeof fat_why)) {
		msg_printf(why, n, "too small: %s", fat_why);
		return false;
	}
	return true;
}

bool plan_esp_in_place(const struct plan *p, const struct inspection *ins, enum esp_mode m, enum plan_layout layout,
		       char *why, size_t n)
{
	struct plan t = *p;   /* scratch: the try_ functions set the ESP fields; no table is touched */
	t.layout = layout;
	bool ok = m == ESP_EXISTING ? try_existing(&t, ins, why, n) : m == ESP_REUSE && try_reuse(&t, ins, why, n);
	if (ok && t.new_size != t.old_size) {
		msg_printf(why, n, "the disk grows %llu -> %llu MiB for the GPT's backup",
			   (unsigned long long)(t.old_size >> 20), (unsigned long long)(t.new_size >> 20));
		ok = false;
	}
	return ok;
}

static bool try_reuse(struct plan *p, const struct inspection *ins, char *why, size_t n)
{
	const struct part_info *pi = find_reusable(ins, p->layout, why, n);
	if (!pi) return false;
	char fat_why[200];
	if (!plan_reusable_as_esp(p, pi, fat_why, sizeof fat_why)) {
		msg_printf(why, n, "the System Reserved partition %d is %s", pi->part->number, fat_why);
		return false;
	}
	if (!esp_in_place(p, ins, pi->part, why, n)) return false;
	snprintf(p->esp_why, sizeof p->esp_why, "the System Reserved partition %d holds only boot files: reformatted as the FAT32 ESP", p->esp_number);   /* fits: 93 chars for any int */
	return true;
}

static bool try_append(struct plan *p, const struct inspection *ins, uint64_t size, char *why, size_t n)
{
	int num = free_number(&ins->table, p->layout);
	if (!num) {
		msg_printf(why, n, "%s", p->layout == LAYOUT_MBR ? "all four primary MBR slots are in use" : "all 128 GPT entries are in use");
		return false;
	}
	uint64_t start = align_up(p->old_size > table_end(&ins->table) ? p->old_size : table_end(&ins->table), PLAN_ALIGN);
	p->esp_number = num;
	p->esp_start = start;
	p->esp_size = size;
	p->esp_new_entry = true;
	/* room for the GPT backup (33 sectors), rounded so the size stays a multiple of 1 MiB (MS-VHDX 2.6.2.2) */
	p->new_size = start + size + (p->layout == LAYOUT_GPT ? PLAN_ALIGN : 0);
	if (!layout_fits(p, &ins->table, p->new_size, why, n)) return false;
	snprintf(p->esp_why, sizeof p->esp_why, "the disk grows by %llu MiB and the ESP is added at its end as partition %d",
		 (unsigned long long)((p->new_size - p->old_size) >> 20), num);   /* fits: 99 chars for any integers */
	return true;
}

static int choose_esp(struct plan *p, const struct inspection *ins, const struct plan_opts *opts)
{
	char why[3][256] = { "", "", "" };
	/* rules.h: 100 MiB, 260 MiB on 4096-byte sectors (FAT32 cluster count) */
	uint64_t size = opts->esp_size ? opts->esp_size : rules_esp_default_size(p->sector_size);
	uint64_t min = rules_esp_min_size(p->sector_size);
	if (opts->esp_size && size < min)
		return err_set(E_USAGE, "--esp-size %llu MiB is below the minimum of %llu MiB for a disk with %u-byte sectors",
			       (unsigned long long)(size >> 20), (unsigned long long)(min >> 20), p->sector_size);
	size = align_up(size, PLAN_ALIGN);
	enum esp_mode m = opts->esp;
	/* one ESP per disk: a second one (an appended partition on a disk
	 * converted before) is what verify refuses (esp, firmware-boot-device) */
	const struct part_info *esp = find_typed_esp(ins);
	if (m == ESP_APPEND && esp) {
		add_blocker(p, "esp-exists", "partition %d is an ESP already: --esp append would add a second one; use --esp existing",
			    esp->part->number);
		return 0;
	}
	if ((m == ESP_AUTO || m == ESP_EXISTING) && try_existing(p, ins, why[0], sizeof why[0])) p->esp_mode = ESP_EXISTING;
	else if ((m == ESP_AUTO || m == ESP_REUSE) && try_reuse(p, ins, why[1], sizeof why[1])) p->esp_mode = ESP_REUSE;
	else if ((m == ESP_AUTO || m == ESP_APPEND) && try_append(p, ins, size, why[2], sizeof why[2])) p->esp_mode = ESP_APPEND;
	else {
		p->esp_number = 0;
		if (m == ESP_AUTO)
			add_blocker(p, "esp-no-room", "no place for the ESP: existing: %s; reuse: %s; append: %s", why[0], why[1], why[2]);
		else
			add_blocker(p, "esp-no-room", "--esp %s is not possible: %s", esp_mode_name(m), why[m - 1]);
		return 0;
	}
	/* the geometry fat32_new will use: checked now, not when the ESP is built */
	char gwhy[256];
	if (!rules_esp_geometry(p->esp_size, p->sector_size, &p->esp_clusters, &p->esp_cluster_bytes, gwhy, sizeof gwhy))
		add_blocker(p, "esp-too-small", "%s", gwhy);
	return 0;
}

/* ---- the new partition table ---- */

/* GPT type for an MBR type (doc/formats.md, Partition types): NTFS 0x07 ->
 * Microsoft basic data, 0x27 -> Windows recovery (attributes required +
 * no drive letter), FAT types -> basic data, 0xEF -> ESP. */
static void gpt_type_for(const struct part *q, struct part *out, struct plan *p)
{
	switch (q->mbr_type) {
	case 0x27:
		out->type_guid = GPT_TYPE_RECOVERY;
		out->attrs = GPT_ATTR_RECOVERY;
		snprintf(out->name, sizeof out->name, "Basic data partition");   /* fits: constant */
		return;
	case 0xEF:
		out->type_guid = GPT_TYPE_ESP;
		snprintf(out->name, sizeof out->name, "EFI system partition");   /* fits: constant */
		return;
	case 0x07: case 0x06: case 0x0B: case 0x0C: case 0x0E:
		break;
	default:
		add_warning(p, "mbr-type", "partition %d has MBR type 0x%02x: it becomes a Microsoft basic data partition", q->number, q->mbr_type);
	}
	out->type_guid = GPT_TYPE_BASIC_DATA;
	snprintf(out->name, sizeof out->name, "Basic data partition");   /* fits: constant */
}

static int build_gpt_table(struct plan *p, const struct inspection *ins, const struct plan_opts *opts)
{
	const struct ptable *old = &ins->table;
	struct ptable *t = &p->table;
	memset(t, 0, sizeof *t);
	t->type = PT_GPT;
	t->sector_size = p->sector_size;
	t->first_usable = gpt_front_bytes(p->sector_size);
	t->last_usable = p->new_size - gpt_back_bytes(p->sector_size) - p->sector_size;
	if (old->type == PT_GPT) {
		/* already GPT (a Gen2-style data layout): keep every identity */
		t->disk_guid = old->disk_guid;
		for (size_t i = 0; i < old->count; i++) t->parts[t->count++] = old->parts[i];
	} else {
		if (plan_id(opts, "gpt disk", &t->disk_guid) < 0) return -1;
		for (size_t i = 0; i < old->count && t->count < PART_MAX; i++) {
			const struct part *q = &old->parts[i];
			if (mbr_type_is_extended(q->mbr_type)) continue;
			struct part *np = &t->parts[t->count++];
			memset(np, 0, sizeof *np);
			np->number = q->number;
			np->start = q->start;
			np->size = q->size;
			gpt_type_for(q, np, p);
			char name[32];
			snprintf(name, sizeof name, "gpt partition %d", q->number);   /* fits: 25 chars for any int */
			if (plan_id(opts, name, &np->part_guid) < 0) return -1;
		}
	}
	struct part *esp = NULL;
	for (size_t i = 0; i < t->count; i++)
		if (t->parts[i].number == p->esp_number) esp = &t->parts[i];
	if (!esp) {
		esp = &t->parts[t->count++];
		memset(esp, 0, sizeof *esp);
		esp->number = p->esp_number;
		if (plan_id(opts, "gpt partition esp", &esp->part_guid) < 0) return -1;
	}
	esp->start = p->esp_start;
	esp->size = p->esp_size;
	esp->type_guid = GPT_TYPE_ESP;
	esp->attrs = 0;
	snprintf(esp->name, sizeof esp->name, "EFI system partition");   /* fits: constant */
	return 0;
}

static void build_mbr_table(struct plan *p, const struct inspection *ins)
{
	struct ptable *t = &p->table;
	*t = ins->table;
	struct part *esp = NULL;
	for (size_t i = 0; i < t->count; i++)
		if (t->parts[i].number == p->esp_number) esp = &t->parts[i];
	if (!esp && t->count < PART_MAX) {
		esp = &t->parts[t->count++];
		memset(esp, 0, sizeof *esp);
		esp->number = p->esp_number;
	}
	esp->start = p->esp_start;
	esp->size = p->esp_size;
	esp->mbr_type = 0xEF;   /* UEFI 5.2.1: OSType 0xEF = EFI System Partition */
	esp->active = false;
}

/* ---- SYSTEM hive edits ---- */

/* Names read from the image reach the plan only through the inspection's
 * fields; each plan field they are copied into is at least as large, so a
 * copy never cuts a name (the inspection refuses or bounds what it reads). */
#define FITS FIELD_FITS
FITS(struct plan_value_edit, value, struct mounted_device, name);
FITS(struct plan_patch_target, path, struct winfile_info, path);
FITS(struct plan_bcd, description, struct inspection, product_name);
FITS(struct plan_bcd, locale, struct inspection, locale);
FITS(struct plan_value_edit, str, struct plan, arc_esp);
/* key = control set name + "\\Services\\" + the longest service name ("storvsc") */
_Static_assert(sizeof(((struct plan_value_edit *)0)->key) >= sizeof(((struct control_set *)0)->name) + 16, "edit key holds any control set key");

/* A name from the image formatted into dst[n] whole, or the blocker
 * name-too-long naming it and its length (-1): never a cut name in an
 * edit, a patch target or the BCD. The FITS asserts above say it cannot
 * happen today; this keeps it so when a size changes. */
__attribute__((format(printf, 5, 6)))
static int fit_name(struct plan *p, char *dst, size_t n, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = fmt_vfit(dst, n, what, fmt, ap);
	va_end(ap);
	if (r >= 0) return 0;
	add_blocker(p, "name-too-long", "%s", err_msg());
	err_clear();
	return -1;
}

static struct plan_value_edit *new_edit(struct plan *p, const char *key, const char *value, const char *why)
{
	struct plan_value_edit *e = table_add(p, &p->edits, &p->nedits, &p->cap_edits, sizeof *e);
	if (!e) return NULL;
	if (fit_name(p, e->key, sizeof e->key, "registry key", "%s", key) < 0
	    || fit_name(p, e->value, sizeof e->value, "registry value name", "%s", value) < 0) {
		p->nedits--;
		return NULL;
	}
	msg_printf(e->why, sizeof e->why, "%s", why);
	return e;
}

static void edit_start(struct plan *p, const struct control_set *cs, const char *svc, int old, const char *why)
{
	char key[sizeof p->edits->key];
	if (fit_name(p, key, sizeof key, "registry key", "%s\\Services\\%s", cs->name, svc) < 0) return;
	struct plan_value_edit *e = new_edit(p, key, "Start", why);
	if (!e) return;
	e->type = REG_DWORD_;
	e->dword = 0;
	e->has_old = old >= 0;
	e->old_dword = old >= 0 ? (uint32_t)old : 0;
}

static const struct part *new_part(const struct plan *p, int number)
{
	return ptable_find(&p->table, number);
}

/* doc/formats.md, MountedDevices: on GPT disks a volume is named by 24 bytes,
 * "DMIO:ID:" + the partition's unique GUID as stored in its GPT entry. */
static void edit_mounted_devices(struct plan *p, const struct inspection *ins)
{
	for (size_t i = 0; i < ins->nmounted; i++) {
		const struct mounted_device *md = &ins->mounted[i];
		if (md->kind != MD_MBR || md->signature != ins->table.disk_signature || !md->partition) continue;
		const struct part *np = new_part(p, md->partition);
		if (!np) continue;
		struct plan_value_edit *e = new_edit(p, "MountedDevices", md->name, "the volume is named by its GPT partition GUID now");
		if (!e) return;
		e->type = REG_BINARY_;
		/* the form verify checks (rules.h): the new table's */
		e->bin_len = rules_mounted_device_value(&p->table, np, e->bin);
	}
}

/* rules.h: only a control set with vmbus and storvsc can boot in
 * Generation 2; it is edited, the others are named in a warning and left
 * as they are (verify skips them by the same rule). Windows boots the set
 * Select\Current names: if that one cannot, the disk cannot. */
static bool control_set_skipped(struct plan *p, const struct inspection *ins, const struct control_set *cs)
{
	if (rules_control_set_boots_gen2(cs->vmbus_start, cs->storvsc_start)) return false;
	int num = atoi(cs->name + 10);
	if (num == ins->current_control_set) {
		if (!plan_has_blocker(p, "no-integration-services"))
			add_blocker(p, "no-integration-services", "the current control set %s has no %s service: Windows would boot it and not find its SCSI boot disk",
			    cs->name, cs->vmbus_start < 0 ? "vmbus" : "storvsc");
	} else
		add_warning(p, "control-set-not-gen2", "%s has no %s service: it cannot boot in Generation 2 and is left unchanged (do not choose it as Last Known Good)",
			    cs->name, cs->vmbus_start < 0 ? "vmbus" : "storvsc");
	return true;
}

static void build_edits(struct plan *p, const struct inspection *ins)
{
	for (size_t i = 0; i < ins->ncontrol_sets; i++) {
		const struct control_set *cs = &ins->control_sets[i];
		if (control_set_skipped(p, ins, cs)) continue;
		/* doc/patches.md, Registry edits: Ntfs boot start, else INACCESSIBLE_BOOT_DEVICE */
		/* rules.h rules_boot_services, in its order: every one set to boot
		 * start (Ntfs on 6.2+ too, which verify accepts) */
		static const char *const why[RULES_NBOOT_SERVICES] = {
			"the system volume is NTFS: load its driver at boot", "VMBus carries the synthetic SCSI boot disk",
			"storvsc is the Generation 2 boot disk controller" };
		const int old[RULES_NBOOT_SERVICES] = { cs->ntfs_start, cs->vmbus_start, cs->storvsc_start };
		for (size_t k = 0; k < RULES_NBOOT_SERVICES; k++) edit_start(p, cs, rules_boot_services[k], old[k], why[k]);
		char key[sizeof p->edits->key];
		if (fit_name(p, key, sizeof key, "registry key", "%s\\Control", cs->name) < 0) return;
		struct plan_value_edit *e = new_edit(p, key, "FirmwareBootDevice", "ARC name of the partition the firmware boots from: the ESP");
		if (!e) return;
		e->type = REG_SZ_;
		snprintf(e->str, sizeof e->str, "%s", p->arc_esp);   /* fits: FITS(str, arc_esp) above */
	}
	if (p->layout == LAYOUT_GPT && ins->table.type == PT_MBR)
		edit_mounted_devices(p, ins);
}

/* ---- patches ---- */

static int path_dir(struct plan *p, const char *path, char *out, size_t n)
{
	if (fit_name(p, out, n, "file path", "%s", path) < 0) return -1;
	char *s = strrchr(out, '\\');
	if (s) *s = 0;
	return 0;
}

static const char *file_path(const struct inspection *ins, enum winfile f)
{
	return ins->files[f].present && ins->files[f].path[0] ? ins->files[f].path : winfile_path[f];
}

static void add_patch(struct plan *p, enum pe_kind kind, const char *path, const char *copy_from, const char *skip)
{
	struct plan_patch_target *t = table_add(p, &p->patches, &p->npatches, &p->cap_patches, sizeof *t);
	if (!t) return;
	t->kind = kind;
	if (fit_name(p, t->path, sizeof t->path, "patch target path", "%s", path) < 0
	    || fit_name(p, t->copy_from, sizeof t->copy_from, "patch source path", "%s", copy_from ? copy_from : "") < 0) {
		p->npatches--;
		return;
	}
	snprintf(t->skip, sizeof t->skip, "%s", skip ? skip : "");   /* fits: a catalog id or "" */
}

/* doc/patches.md "Versions": kernels 6.0 and 6.1 need the catalog (ntoskrnl, hal, acpi)
 * and a patched winload copy named by the loader entry; 6.2+ none. */
static void build_patches(struct plan *p, const struct inspection *ins, const struct plan_opts *opts)
{
	unsigned v = opts->force_version ? opts->force_version : ins->kernel_version;
	p->version = v;
	snprintf(p->bcd.loader_path, sizeof p->bcd.loader_path, "\\Windows\\system32\\winload.efi");   /* fits: constant */
	if (opts->force_version && ins->kernel_version >= 0x602)
		add_warning(p, "force-version", "--force-version %u.%u on a %u.%u kernel: %s", v >> 8, v & 0xFF, ins->kernel_version >> 8,
			    ins->kernel_version & 0xFF, v < 0x602 ? "the catalog patches a kernel it was not made for"
								 : "it needs no patch; the option changes nothing");
	/* doc/patches.md "Versions": the 6.0 and 6.1 catalogs differ (timer-source
	 * is Vista only); a version read from the kernel is the one patched and
	 * verified, so --force-version is for kernels whose version cannot be read */
	unsigned k = ins->kernel_version;
	if (opts->force_version && ins->windows_found && (k == 0x600 || k == 0x601) && v != k) {
		add_blocker(p, "force-version-mismatch", "--force-version %u.%u on a %u.%u kernel: the %u.%u patches are applied and verified; "
			    "drop --force-version (or try the patches with gen2prep patch)", v >> 8, v & 0xFF, k >> 8, k & 0xFF, k >> 8, k & 0xFF);
		return;
	}
	if (!rules_needs_patches(v)) return;
	/* no Windows found: the blocker that says why (bitlocker, no-windows) is enough */
	if (!ins->windows_found && !opts->force_version) return;
	if (v != 0x600 && v != 0x601) {
		add_blocker(p, "unsupported-version", "kernel version %u.%u: only 6.0, 6.1 (patched) and 6.2 or later can be converted",
			    v >> 8, v & 0xFF);
		return;
	}
	add_patch(p, KIND_NTOSKRNL, file_path(ins, WF_NTOSKRNL), NULL, opts->no_crash_report ? "crash-report" : NULL);
	add_patch(p, KIND_HAL, file_path(ins, WF_HAL), NULL, NULL);
	add_patch(p, KIND_ACPI, file_path(ins, WF_ACPI), NULL, NULL);
	char dir[256], copy[256];
	if (path_dir(p, file_path(ins, WF_WINLOAD_EFI), dir, sizeof dir) < 0) return;
	if (snprintf(copy, sizeof copy, "%s\\winload-gen2.efi", dir) >= (int)sizeof copy) {
		add_blocker(p, "path-too-long", "%s: the directory name is too long for the patched loader's copy", dir);
		return;
	}
	add_patch(p, KIND_WINLOAD, copy, file_path(ins, WF_WINLOAD_EFI), NULL);
	/* doc/patches.md, loader-integrity: the boot manager starts a modified
	 * winload only with nointegritychecks on its entry */
	if (fit_name(p, p->bcd.loader_path, sizeof p->bcd.loader_path, "BCD loader path", "%s", copy) < 0) return;
	p->bcd.nointegritychecks = true;
}

/* ---- BCD ---- */

static void device_for(const struct plan *p, int number, struct bcd_device *d)
{
	const struct part *q = new_part(p, number);
	memset(d, 0, sizeof *d);
	d->kind = BCD_DEV_PARTITION;
	d->gpt = p->table.type == PT_GPT;
	if (!q) return;
	if (d->gpt) {
		d->part_guid = q->part_guid;
		d->disk_guid = p->table.disk_guid;
	} else {
		d->part_offset = q->start;
		d->disk_signature = p->table.disk_signature;
	}
}

static int build_bcd(struct plan *p, const struct inspection *ins, const struct plan_opts *opts)
{
	struct plan_bcd *b = &p->bcd;
	device_for(p, p->esp_number, &b->esp);
	device_for(p, p->windows_number, &b->windows);
	if (plan_id(opts, "bcd loader", &b->loader_id) < 0) return -1;
	if (plan_id(opts, "bcd resume", &b->resume_id) < 0) return -1;
	if (fit_name(p, b->description, sizeof b->description, "BCD description (ProductName)", "%s",
		     ins->product_name[0] ? ins->product_name : "Windows") < 0
	    || fit_name(p, b->locale, sizeof b->locale, "BCD locale", "%s", ins->locale[0] ? ins->locale : "en-US") < 0)
		return 0;
	b->debug = opts->debug;
	b->debug_port = opts->debug_port;
	b->debug_baud = opts->debug_baud;
	b->bootdebug = opts->bootdebug;
	b->memdiag_if_present = true;
	b->windows_version = opts->force_version ? opts->force_version : ins->kernel_version;
	if (opts->bootdebug)
		add_warning(p, "bootdebug", "--bootdebug: the boot debugger waits on COM%u for a debugger at every boot, forever when none is attached",
			    opts->debug_port ? opts->debug_port : 1);
	return 0;
}

/* ---- the plan ---- */

static void copy_rules(struct plan *p)
{
	/* doc/formats.md, Boot files: what `bcdboot <windir> /f UEFI` copies */
	static const struct plan_copy_rule rules[] = {
		{ "\\Windows\\Boot\\EFI", "EFI/Microsoft/Boot", true, true },
		{ "\\Windows\\Boot\\Fonts", "EFI/Microsoft/Boot/Fonts", true, false },
		{ "\\Windows\\Boot\\EFI\\bootmgfw.efi", "EFI/Boot/bootx64.efi", false, true },
	};
	_Static_assert(sizeof rules <= sizeof p->rules, "plan_copy_rule table fits PLAN_MAX_RULES");
	p->nrules = sizeof rules / sizeof *rules;
	memcpy(p->rules, rules, sizeof rules);
}

static void copy_inspection_blockers(struct plan *p, const struct inspection *ins, const struct plan_opts *opts)
{
	for (size_t i = 0; i < ins->nfindings; i++) {
		const struct finding *f = &ins->findings[i];
		/* a disk that boots as Generation 2 already: converting it again
		 * formats its ESP anew, so only on request */
		if (f->warning && !strcmp(finding_id(f), "already-gen2")) {
			if (opts->force)
				add_warning(p, "already-gen2", "%s; --force: converted again (the ESP is formatted anew)", f->message);
			else
				add_blocker(p, "already-gen2", "%s; convert refuses it unless --force (the ESP would be formatted anew)",
					    f->message);
			continue;
		}
		if (f->warning) {
			add_warning(p, finding_id(f), "%s", f->message);
			continue;
		}
		const char *id = f->code >= 0 && f->code < BLK_COUNT ? blocker_id[f->code] : "inspect";
		add_blocker(p, id, "%s", f->message);
	}
	if (!ins->windows_found && !p->nblockers)
		add_blocker(p, "no-windows", "no Windows installation found");
}

static int choose_format(struct plan *p, const struct plan_opts *opts)
{
	p->fixed = opts->fixed;
	if (opts->format_given) {
		p->format = opts->format;
		p->format_known = true;
	} else if (opts->out_path) {
		if (out_format_from_path(opts->out_path, &p->format) < 0)
			return err_set(E_USAGE, "cannot tell the output format from '%s': use -O vhdx, vhd or raw", opts->out_path);
		p->format_known = true;
	}
	if (p->fixed && p->format_known && p->format == OUT_RAW)
		return err_set(E_USAGE, "-o subformat=fixed applies to vhdx and vhd outputs only");
	return 0;
}

static int build(const struct inspection *ins, const struct plan_opts *opts, struct plan *p)
{
	p->layout = opts->layout;
	p->sector_size = opts->sector_size ? opts->sector_size : 512;
	/* a disk is whole sectors (UEFI 2.10 5.1: a block device of LBAs); a
	 * raw image with bytes appended past its last whole sector has a tail
	 * no LBA reaches: not copied, and said (warning partial-sector) */
	uint64_t tail = opts->disk_size % p->sector_size;
	p->old_size = p->new_size = opts->disk_size - tail;
	p->windows_number = ins->windows_partition;
	snprintf(p->esp_label, sizeof p->esp_label, "SYSTEM");   /* fits: constant */
	if (choose_format(p, opts) < 0) return -1;
	if (opts->bootdebug && !opts->debug)
		return err_set(E_USAGE, "--bootdebug needs --debug serial:PORT:BAUD (the port the boot debugger waits on)");
	copy_inspection_blockers(p, ins, opts);
	if (tail)
		add_warning(p, "partial-sector", "the image is %llu bytes, %llu bytes past its last whole %u-byte sector: "
			    "the trailing partial sector is ignored (not copied; the disk is %llu bytes)",
			    (unsigned long long)opts->disk_size, (unsigned long long)tail, p->sector_size,
			    (unsigned long long)p->old_size);
	if (ins->table.type == PT_NONE) {
		if (!p->nblockers) add_blocker(p, "no-partition-table", "the disk has no partition table");
		return 0;
	}
	/* nothing to plan without a Windows volume: no blocker is derived
	 * from what was never read (kernel version 0.0, ...) */
	if (!ins->windows_found) return 0;
	if (ins->table.type == PT_GPT && p->layout == LAYOUT_MBR)
		add_blocker(p, "layout", "the disk is GPT already: --layout mbr converts MBR disks only");
	struct guid g;
	if (plan_id(opts, "esp volume id", &g) < 0) return -1;
	p->esp_volume_id = get_le32(g.b);
	if (plan_id(opts, "output disk id", &p->out_disk_id) < 0) return -1;
	if (plan_id(opts, "output write guid", &p->out_write_guid) < 0) return -1;
	copy_rules(p);
	if (choose_esp(p, ins, opts) < 0) return -1;
	if (!p->esp_number) return 0;
	rules_arc_name(p->esp_number, p->arc_esp, sizeof p->arc_esp);
	if (p->layout == LAYOUT_GPT) {
		if (build_gpt_table(p, ins, opts) < 0) return -1;
	} else {
		build_mbr_table(p, ins);
	}
	if (opts->esp_size && p->esp_mode != ESP_APPEND)
		add_warning(p, "esp-size-ignored", "--esp-size %llu is ignored: the ESP is partition %d as it is (%llu MiB); --esp append adds one of that size",
			    (unsigned long long)(opts->esp_size >> 20), p->esp_number, (unsigned long long)(p->esp_size >> 20));
	if (p->esp_mode == ESP_EXISTING)
		add_warning(p, "esp-reformat", "partition %d is reformatted as the ESP: files on it are not kept", p->esp_number);
	build_patches(p, ins, opts);
	if (build_bcd(p, ins, opts) < 0) return -1;
	build_edits(p, ins);
	return 0;
}

int plan_build(const struct inspection *ins, const struct plan_opts *opts, struct plan *p)
{
	plan_free(p);
	memset(p, 0, sizeof *p);
	if (build(ins, opts, p) < 0) return -1;
	/* an entry lost to a failed allocation: no plan, rather than one
	 * missing a blocker or an edit */
	if (p->nomem) return err_set(E_NOMEM, "out of memory (plan tables)");
	return 0;
}

/* ---- JSON ---- */

static json_t *device_json(const struct bcd_device *d)
{
	char a[40], b[40];
	/* every key in both styles, the other style's null (doc/schema.json) */
	if (d->gpt)
		return json_pack("{s:s, s:s, s:s, s:n, s:n}", "style", "gpt", "partition_guid", guid_to_str(&d->part_guid, a),
				 "disk_guid", guid_to_str(&d->disk_guid, b), "partition_offset", "disk_signature");
	snprintf(a, sizeof a, "0x%08x", d->disk_signature);   /* fits: 10 chars */
	return json_pack("{s:s, s:n, s:n, s:I, s:s}", "style", "mbr", "partition_guid", "disk_guid", "partition_offset",
			 (json_int_t)d->part_offset, "disk_signature", a);
}

static json_t *table_json(const struct ptable *t)
{
	json_t *arr = json_array();
	char g[40];
	for (size_t i = 0; i < t->count; i++) {
		const struct part *q = &t->parts[i];
		json_t *o = json_pack("{s:i, s:I, s:I}", "number", q->number, "start", (json_int_t)q->start, "size", (json_int_t)q->size);
		/* GPT keys null on MBR and the other way round: every key always there */
		bool gpt = t->type == PT_GPT;
		char ty[8];
		snprintf(ty, sizeof ty, "0x%02x", q->mbr_type);   /* fits: a byte, 4 chars */
		json_object_set_new(o, "type_guid", gpt ? json_text(guid_to_str(&q->type_guid, g)) : json_null());
		json_object_set_new(o, "partition_guid", gpt ? json_text(guid_to_str(&q->part_guid, g)) : json_null());
		json_object_set_new(o, "attributes", gpt ? json_integer((json_int_t)q->attrs) : json_null());
		json_object_set_new(o, "name", gpt ? json_text(q->name) : json_null());
		json_object_set_new(o, "mbr_type", gpt ? json_null() : json_text(ty));
		json_object_set_new(o, "logical", gpt ? json_null() : json_boolean(q->logical));
		json_array_append_new(arr, o);
	}
	json_t *o = json_pack("{s:s, s:o}", "type", ptable_type_name(t->type), "partitions", arr);
	char sig[16];
	snprintf(sig, sizeof sig, "0x%08x", t->disk_signature);   /* fits: 10 chars */
	json_object_set_new(o, "disk_guid", t->type == PT_GPT ? json_text(guid_to_str(&t->disk_guid, g)) : json_null());
	json_object_set_new(o, "disk_signature", t->type == PT_GPT ? json_null() : json_text(sig));
	return o;
}

static json_t *edits_json(const struct plan *p)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < p->nedits; i++) {
		const struct plan_value_edit *e = &p->edits[i];
		json_t *o = json_pack("{s:o, s:o}", "key", json_text(e->key), "value", json_text(e->value));
		if (e->type == REG_DWORD_) {
			json_object_set_new(o, "type", json_text("REG_DWORD"));
			json_object_set_new(o, "data", json_integer(e->dword));
			json_object_set_new(o, "old", e->has_old ? json_integer(e->old_dword) : json_null());
		} else if (e->type == REG_SZ_) {
			json_object_set_new(o, "type", json_text("REG_SZ"));
			json_object_set_new(o, "data", json_text(e->str));
			json_object_set_new(o, "old", json_null());
		} else {
			char hex[2 * sizeof e->bin + 1];
			for (size_t k = 0; k < e->bin_len; k++) snprintf(hex + 2 * k, 3, "%02x", e->bin[k]);   /* fits: a byte */
			hex[2 * e->bin_len] = 0;
			json_object_set_new(o, "type", json_text("REG_BINARY"));
			json_object_set_new(o, "data", json_text(hex));
			json_object_set_new(o, "old", json_null());
		}
		json_object_set_new(o, "why", json_text(e->why));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *bcd_json(const struct plan_bcd *b)
{
	char g[40];
	json_t *o = json_pack("{s:o, s:o, s:s, s:o, s:o, s:o, s:b, s:b, s:b}",
			      "esp_device", device_json(&b->esp), "windows_device", device_json(&b->windows),
			      "loader_id", guid_to_str(&b->loader_id, g), "description", json_text(b->description),
			      "locale", json_text(b->locale), "loader_path", json_text(b->loader_path),
			      "nointegritychecks", b->nointegritychecks, "debug", b->debug, "bootdebug", b->bootdebug);
	json_object_set_new(o, "debug_port", b->debug ? json_integer(b->debug_port) : json_null());
	json_object_set_new(o, "baudrate", b->debug ? json_integer(b->debug_baud) : json_null());
	return o;
}

static json_t *patches_json(const struct plan *p)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < p->npatches; i++) {
		const struct plan_patch_target *t = &p->patches[i];
		json_t *o = json_pack("{s:s, s:o}", "binary", pe_kind_name(t->kind), "path", json_text(t->path));
		json_object_set_new(o, "copy_of", t->copy_from[0] ? json_text(t->copy_from) : json_null());
		json_object_set_new(o, "skip", t->skip[0] ? json_text(t->skip) : json_null());
		json_t *ids = json_array();
		for (size_t k = 0; k < patch_catalog_count(); k++)
			if (patch_catalog_binary(k) == t->kind && patch_catalog_applies(k, p->version)
			    && !(t->skip[0] && !strcmp(t->skip, patch_catalog_id(k))))
				json_array_append_new(ids, json_text(patch_catalog_id(k)));
		json_object_set_new(o, "patches", ids);
		json_array_append_new(arr, o);
	}
	return arr;
}

/* The ESP as convert writes it (plan_build_volume), null before the
 * volume was read: [{path, dir, size, from}], from null for the BCD store,
 * size null for a folder. */
static json_t *esp_contents_json(const struct plan *p)
{
	if (!p->files_known) return json_null();
	json_t *a = json_array();
	for (size_t i = 0; i < p->nfiles; i++) {
		const struct plan_file *f = &p->files[i];
		json_array_append_new(a, json_pack("{s:o, s:b, s:o, s:o}", "path", json_text(f->dst), "dir", f->dir, "size",
						   f->dir ? json_null() : json_integer((json_int_t)f->size),
						   "from", f->src[0] ? json_text(f->src) : json_null()));
	}
	return a;
}

/* The BCD object graph in the form `gen2prep bcd --json` prints a store
 * (bcd_to_json's "objects", devices by GPT/MBR identity): the store built
 * from the graph as convert builds it. null before the volume was read. */
static json_t *bcd_objects_json(const struct plan *p)
{
	if (!p->files_known || !p->bcd_graph) return json_null();
	/* a serializer leaves the caller's error as it was: building the
	 * store starts from a clear error state (bcd_new), and a failed run
	 * prints its plan with the error that ended it (--json) */
	enum err_code ec = err_code();
	char *msg = ec != E_OK ? xstrdup(err_msg()) : NULL;
	struct bcd *b = plan_bcd_store(p);
	json_t *j = b ? bcd_to_json(b, NULL, NULL) : NULL;
	bcd_free(b);
	if (ec == E_OK) err_clear();
	else if (msg) err_set(ec, "%s", msg);
	free(msg);
	if (!j) return json_null();
	json_t *objs = json_incref(json_object_get(j, "objects"));
	json_decref(j);
	return objs;
}

void *plan_findings_json(const struct plan_blocker *f, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:o}", "code", f[i].id, "message", json_text(f[i].message)));
	return a;
}

void *plan_to_json(const struct plan *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "convertible", json_boolean(plan_ok(p)));
	json_object_set_new(o, "blockers", plan_findings_json(p->blockers, p->nblockers));
	json_object_set_new(o, "warnings", plan_findings_json(p->warnings, p->nwarnings));
	json_object_set_new(o, "layout", json_text(plan_layout_name(p->layout)));
	/* an absent value is null, in every command's JSON (doc/schema.json) */
	json_object_set_new(o, "output_format", p->format_known ? json_text(out_format_name(p->format)) : json_null());
	json_object_set_new(o, "subformat", !p->format_known ? json_null()
				 : json_text(p->format == OUT_RAW ? "sparse" : p->fixed ? "fixed" : "dynamic"));
	json_object_set_new(o, "virtual_size", json_integer((json_int_t)p->old_size));
	json_object_set_new(o, "new_virtual_size", json_integer((json_int_t)p->new_size));
	if (!p->esp_number) {
		static const char *const later[] = { "esp", "windows_partition", "partition_table", "esp_files", "esp_contents",
						     "bcd", "bcd_objects", "registry", "kernel_version", "patches" };
		for (size_t i = 0; i < sizeof later / sizeof *later; i++) json_object_set_new(o, later[i], json_null());
		return o;
	}
	json_t *esp = json_pack("{s:s, s:o, s:i, s:I, s:I, s:o, s:b, s:i, s:i}", "placement", esp_mode_name(p->esp_mode),
				"why", json_text(p->esp_why), "partition", p->esp_number, "start", (json_int_t)p->esp_start,
				"size", (json_int_t)p->esp_size, "arc_name", json_text(p->arc_esp), "new_entry", p->esp_new_entry,
				"sector_size", (int)p->sector_size, "clusters", (int)p->esp_clusters);
	json_object_set_new(esp, "cluster_size", json_integer(p->esp_cluster_bytes));
	json_object_set_new(esp, "files_clusters", p->files_known ? json_integer((json_int_t)p->esp_files_clusters) : json_null());
	json_object_set_new(o, "esp", esp);
	json_object_set_new(o, "windows_partition", json_integer(p->windows_number));
	json_object_set_new(o, "partition_table", table_json(&p->table));
	json_t *files = json_array();
	for (size_t i = 0; i < p->nrules; i++)
		json_array_append_new(files, json_pack("{s:o, s:o, s:b}", "from", json_text(p->rules[i].src), "to", json_text(p->rules[i].dst), "tree", p->rules[i].tree));
	json_object_set_new(o, "esp_files", files);
	json_object_set_new(o, "esp_contents", esp_contents_json(p));
	json_object_set_new(o, "bcd", bcd_json(&p->bcd));
	json_object_set_new(o, "bcd_objects", bcd_objects_json(p));
	json_object_set_new(o, "registry", edits_json(p));
	char v[16];
	snprintf(v, sizeof v, "%u.%u", p->version >> 8, p->version & 0xFF);   /* fits: 14 chars for any unsigned */
	json_object_set_new(o, "kernel_version", json_text(v));
	json_object_set_new(o, "patches", patches_json(p));
	return o;
}
