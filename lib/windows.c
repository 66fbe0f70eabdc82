/* windows.c - see windows.h. Finds the Windows installation on a disk and
 * describes it, read-only: partitions (partition.h), NTFS volumes (ntfs.h),
 * the SYSTEM and SOFTWARE hives (hive.h), PE files (pe.h) and the patch
 * catalog in dry-run mode (patch.h). Facts used are in doc/formats.md, Registry hive, and the
 * sections around it; each is cited where it is encoded.
 */
#include "windows.h"
#include "mounted_format.h"
#include "bcd.h"
#include "fat32.h"
#include "hive.h"
#include "ntfs.h"
#include "overlay.h"
#include "patch.h"
#include "pe.h"
#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIVE_MAX  (256u << 20)   /* SYSTEM of a long-lived install: < 100 MiB */
#define PE_MAX    (64u << 20)    /* ntoskrnl.exe is ~5.5 MiB */
#define BCD_MAX   (16u << 20)    /* a BCD store is tens of KiB */

const char *const winfile_name[WF_COUNT] = {
	"ntoskrnl.exe", "hal.dll", "acpi.sys", "vmbus.sys", "storvsc.sys", "winload.efi", "bootmgfw.efi",
};
const char *const winfile_path[WF_COUNT] = {
	"\\Windows\\System32\\ntoskrnl.exe", "\\Windows\\System32\\hal.dll",
	"\\Windows\\System32\\drivers\\acpi.sys", "\\Windows\\System32\\drivers\\vmbus.sys",
	"\\Windows\\System32\\drivers\\storvsc.sys", "\\Windows\\System32\\winload.efi",
	"\\Windows\\Boot\\EFI\\bootmgfw.efi",
};
/* Stable codes, documented in man/gen2prep.1 (BLOCKERS). */
const char *const blocker_id[BLK_COUNT] = {
	"no-partition-table", "no-windows", "32bit", "kernel-5x", "unsupported-version",
	"hibernated", "ntfs-dirty", "bitlocker", "hive-dirty", "no-integration-services",
	"partition-past-end", "partition-outside-extended", "partition-overlap", "dynamic-disk",
	"system-drive-elsewhere", "ntfs-unclean", "hive-needs-recovery", "system-hive-unreadable",
	"mounted-devices-too-many", "control-sets-too-many", "name-too-long",
};
/* Warnings share the findings list; their codes follow the blockers'. */
enum { WARN_OLD_IS = BLK_COUNT, WARN_HIVE_UNREADABLE, WARN_NO_BOOT_FILES, WARN_PATCH_NOT_FOUND, WARN_ALREADY_GEN2,
       WARN_NTFS_LARGER, WARN_HARD_LINKS, WARN_VALUE_TOO_LONG };
static const char *const warning_id[] = { "old-integration-services", "hive-unreadable", "no-uefi-boot-files", "patch-site-not-found",
					  "already-gen2", "ntfs-larger-than-partition", "patched-file-has-hard-links",
					  "registry-value-too-long" };

const char *finding_id(const struct finding *f)
{
	if (f->code >= 0 && f->code < BLK_COUNT) return blocker_id[f->code];
	if (f->code >= BLK_COUNT && f->code < BLK_COUNT + (int)(sizeof warning_id / sizeof *warning_id))
		return warning_id[f->code - BLK_COUNT];
	return "unknown";
}

const char *part_role_name(enum part_role r)
{
	static const char *const n[] = { "unknown", "system-reserved", "windows", "esp", "recovery", "msr", "data", "extended" };
	return (unsigned)r < sizeof n / sizeof *n ? n[r] : "unknown";
}

static void add_finding(struct inspection *ins, int code, bool warning, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add_finding(struct inspection *ins, int code, bool warning, const char *fmt, ...)
{
	for (size_t i = 0; i < ins->nfindings; i++)
		if (ins->findings[i].code == code) return;   /* one per code */
	if (ins->nfindings == sizeof ins->findings / sizeof *ins->findings) return;
	struct finding *f = &ins->findings[ins->nfindings++];
	f->code = code;
	f->warning = warning;
	va_list ap;
	va_start(ap, fmt);
	msg_vprintf(f->message, sizeof f->message, fmt, ap);
	va_end(ap);
}

bool inspection_convertible(const struct inspection *ins)
{
	for (size_t i = 0; i < ins->nfindings; i++)
		if (!ins->findings[i].warning) return false;
	return ins->windows_found;
}

const struct part_info *inspection_part(const struct inspection *ins, int number)
{
	for (size_t i = 0; i < ins->nparts; i++)
		if (ins->parts[i].part->number == number) return &ins->parts[i];
	return NULL;
}

/* ---------------------------------------------------------------- partitions */

/* MBR partition types (doc/formats.md, Partition types): 0x05/0x0F/0x85
 * extended containers, 0xEF ESP, 0x27 Windows RE. */
static bool mbr_extended(uint8_t t) { return t == 0x05 || t == 0x0F || t == 0x85; }

static enum part_role role_from_type(const struct ptable *t, const struct part *p)
{
	if (part_is_esp(t, p)) return ROLE_ESP;
	if (t->type == PT_MBR) {
		if (mbr_extended(p->mbr_type)) return ROLE_EXTENDED;
		if (p->mbr_type == 0x27) return ROLE_RECOVERY;
	} else {
		if (guid_eq(&p->type_guid, &GPT_TYPE_RECOVERY)) return ROLE_RECOVERY;
		if (guid_eq(&p->type_guid, &GPT_TYPE_MSR)) return ROLE_MSR;
	}
	return ROLE_UNKNOWN;
}

/* Root entries a System Reserved partition holds when it has only boot
 * files (man page, convert --esp reuse). */
static bool boot_only_entry(const char *name)
{
	static const char *const ok[] = { "bootmgr", "Boot", "BOOTSECT.BAK", "System Volume Information", "$RECYCLE.BIN" };
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
		if (!ascii_casecmp(name, ok[i])) return true;
	return false;
}

static void check_reusable(struct ntfs_vol *v, struct part_info *pi)
{
	struct ntfs_dirent *e = NULL;
	int n = ntfs_list(v, "\\", &e);
	if (n < 0) {
		msg_printf(pi->not_reusable_why, sizeof pi->not_reusable_why, "root directory unreadable");
		err_clear();
		return;
	}
	size_t used = 0;
	pi->not_reusable_why[0] = 0;
	for (int i = 0; i < n; i++) {
		if (boot_only_entry(e[i].name)) continue;
		bool first = !used;
		if (first) text_append(pi->not_reusable_why, sizeof pi->not_reusable_why, &used, "also holds: ");
		text_append(pi->not_reusable_why, sizeof pi->not_reusable_why, &used, "%s%s", first ? "" : ", ",
			    e[i].name);
	}
	pi->reusable_as_esp = used == 0;
	free(e);
}

/* Probes the file system of one partition; for NTFS mounts it read-only to
 * decide between windows / system-reserved / data. */
static int describe_partition(struct overlay *o, const struct ptable *t, struct part_info *pi)
{
	const struct part *p = pi->part;
	pi->role = role_from_type(t, p);
	pi->filesystem = "";
	if (pi->role == ROLE_EXTENDED || pi->role == ROLE_MSR || p->size < 512) return 0;
	uint8_t bs[512];
	if (overlay_read(o, bs, sizeof bs, p->start)) return -1;
	const char *fat = fat_boot_kind(bs);
	if (fat) {
		pi->filesystem = fat;
		if (pi->role == ROLE_UNKNOWN) pi->role = ROLE_DATA;
		return 0;
	}
	struct ntfs_probe pr;
	if (ntfs_probe(o, p->start, p->size, &pr)) {
		/* A corrupt NTFS volume is a finding about that partition,
		 * not a failure of the whole inspection. */
		pi->filesystem = "ntfs";
		msg_printf(pi->not_reusable_why, sizeof pi->not_reusable_why, "%s", err_msg());
		err_clear();
		if (pi->role == ROLE_UNKNOWN) pi->role = ROLE_DATA;
		return 0;
	}
	pi->bitlocker = pr.bitlocker;
	if (pr.bitlocker) pi->filesystem = "bitlocker";
	else if (pr.is_ntfs) pi->filesystem = "ntfs";
	else pi->filesystem = "unknown";
	_Static_assert(sizeof pi->label == sizeof pr.label, "NTFS label fits");
	memcpy(pi->label, pr.label, sizeof pi->label);
	pi->ntfs_dirty = pr.dirty;
	pi->ntfs_hibernated = pr.hibernated;
	pi->logfile = pr.is_ntfs ? ntfs_logfile_name(pr.logfile) : "";
	if (pr.is_ntfs && pr.total_sectors <= UINT64_MAX / 4096) pi->ntfs_bytes = pr.total_sectors * pr.bytes_per_sector;
	if (!pr.is_ntfs) {
		if (pi->role == ROLE_UNKNOWN) pi->role = ROLE_DATA;
		return 0;
	}
	struct ntfs_vol *v = ntfs_open(o, p->start, p->size, false);
	if (!v) { err_clear(); if (pi->role == ROLE_UNKNOWN) pi->role = ROLE_DATA; return 0; }
	bool has_windows = ntfs_stat(v, "\\Windows\\System32\\config\\SYSTEM", NULL, NULL) == 1;
	bool has_bootmgr = ntfs_stat(v, "\\bootmgr", NULL, NULL) == 1;
	err_clear();
	if (pi->role == ROLE_UNKNOWN) {
		/* System Reserved: a small NTFS volume with bootmgr and no
		 * Windows (Windows 7 setup makes it 100 MiB, 8.x 350 MiB). */
		if (has_windows) pi->role = ROLE_WINDOWS;
		else if (has_bootmgr && p->size <= (2ULL << 30)) pi->role = ROLE_SYSTEM_RESERVED;
		else pi->role = ROLE_DATA;
	}
	if (pi->role == ROLE_SYSTEM_RESERVED) check_reusable(v, pi);
	ntfs_close(v);
	err_clear();
	return 0;
}

/* ---------------------------------------------------------------- table */

/* A table that does not describe the disk (partition_check.c) is a blocker
 * of its own; nothing is probed behind it, so no other blocker is derived
 * from partitions that may not exist. */
static bool table_findings(struct overlay *o, struct inspection *ins)
{
	char why[sizeof ins->findings[0].message];
	enum ptable_problem k = ptable_check(&ins->table, overlay_size(o), why, sizeof why);
	int code = k == PTP_PAST_END ? BLK_PARTITION_PAST_END : k == PTP_OUTSIDE_EXTENDED ? BLK_PARTITION_OUTSIDE_EXTENDED
		 : BLK_PARTITION_OVERLAP;
	if (k == PTP_NONE) return false;
	add_finding(ins, code, false, "%s", why);
	for (size_t i = 0; i < ins->table.count && i < PART_MAX; i++) {
		struct part_info *pi = &ins->parts[ins->nparts++];
		pi->part = &ins->table.parts[i];
		pi->role = role_from_type(&ins->table, pi->part);
		pi->filesystem = "";
		pi->logfile = "";
	}
	return true;
}

/* Dynamic disks (Logical Disk Manager): MBR partition type 0x42
 * (PARTITION_LDM, winioctl.h; Linux block/partitions/ldm.h LDM_PARTITION,
 * with the private header "PRIVHEAD" at sector 6, OFF_PRIV1), GPT types
 * PARTITION_LDM_METADATA_GUID 5808C8AA-7E8F-42E0-85D2-E1E90434CFB3 and
 * PARTITION_LDM_DATA_GUID AF9B60A0-1431-4F62-BC68-3311714A69AD (winioctl.h,
 * PARTITION_INFORMATION_GPT). Their volumes are described by the LDM
 * database, not by the table: a basic GPT written over it leaves every
 * volume, and the drive letters, pointing nowhere. */
static void dynamic_findings(struct overlay *o, struct inspection *ins)
{
	struct guid meta, data;
	guid_from_str("5808C8AA-7E8F-42E0-85D2-E1E90434CFB3", &meta);
	guid_from_str("AF9B60A0-1431-4F62-BC68-3311714A69AD", &data);
	uint8_t sec[512];
	bool privhead = overlay_sector_size(o) == 512 && overlay_size(o) >= 7 * 512 &&
			overlay_read(o, sec, sizeof sec, 6 * 512) == 0 && !memcmp(sec, "PRIVHEAD", 8);
	err_clear();
	for (size_t i = 0; i < ins->table.count; i++) {
		const struct part *p = &ins->table.parts[i];
		bool ldm = ins->table.type == PT_MBR ? p->mbr_type == 0x42
						     : guid_eq(&p->type_guid, &meta) || guid_eq(&p->type_guid, &data);
		if (!ldm) continue;
		add_finding(ins, BLK_DYNAMIC_DISK, false,
			    "dynamic disk: partition %d is a Logical Disk Manager %s%s; its volumes are described by the LDM "
			    "database, which a basic GPT would overwrite: gen2prep converts basic disks only",
			    p->number, ins->table.type == PT_MBR ? "partition (MBR type 0x42)" : "partition (GPT LDM type)",
			    privhead ? ", PRIVHEAD at sector 6" : "");
		return;
	}
}

/* The boot sector's volume size (total sectors, the backup boot sector
 * after them) larger than the partition: the file system claims sectors
 * that belong to whatever follows. */
static void ntfs_size_findings(struct inspection *ins)
{
	for (size_t i = 0; i < ins->nparts; i++) {
		const struct part_info *pi = &ins->parts[i];
		if (pi->ntfs_bytes > pi->part->size)
			add_finding(ins, WARN_NTFS_LARGER, true,
				    "NTFS on partition %d says it is %llu bytes, its partition is %llu bytes: the file system "
				    "runs past its partition", pi->part->number, (unsigned long long)pi->ntfs_bytes,
				    (unsigned long long)pi->part->size);
	}
}

/* ---------------------------------------------------------------- hives */

static struct hive *open_hive(struct ntfs_vol *v, const char *path, const char *name, int *dirty)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (ntfs_read_file(v, path, HIVE_MAX, &data, &len)) return NULL;
	if (dirty) *dirty = hive_is_dirty(data, len);
	struct hive *h = hive_open(data, len, false, name);
	free(data);
	return h;
}

/* Where a registry string is read from and what leaving it out means. */
struct reg_string { struct hive *h; const char *hive, *key; };

/* A registry string into out[n]. One too long for it is left out ("",
 * never cut) and named, with its length and what that means (effect), in
 * the finding code: the warning registry-value-too-long, or the blocker
 * name-too-long when a check depends on the value. */
static void copy_string(struct inspection *ins, const struct reg_string *r, const char *value, char *out, size_t n,
			int code, const char *effect)
{
	char *s = NULL;
	if (hive_get_string(r->h, r->key, value, &s) == 0 && s && str_copy(out, n, s, value) < 0) {
		add_finding(ins, code, code != BLK_NAME_TOO_LONG, "%s\\%s\\%s is %zu bytes, longer than the %zu gen2prep keeps: %s",
			    r->hive, r->key, value, strlen(s), n - 1, effect);
		err_clear();
	}
	free(s);
}

/* SOFTWARE, Microsoft\Windows NT\CurrentVersion (doc/formats.md,
 * Windows version). */
static void software_from_hive(struct hive *h, struct inspection *ins)
{
	const char *k = "Microsoft\\Windows NT\\CurrentVersion";
	const struct reg_string r = { h, "SOFTWARE", k };
	const int w = WARN_VALUE_TOO_LONG;
	copy_string(ins, &r, "ProductName", ins->product_name, sizeof ins->product_name, w,
		    "left out, the boot entry is named \"Windows\"");
	copy_string(ins, &r, "EditionID", ins->edition, sizeof ins->edition, w, "left out");
	copy_string(ins, &r, "CSDVersion", ins->service_pack, sizeof ins->service_pack, w, "left out");
	copy_string(ins, &r, "CurrentVersion", ins->current_version, sizeof ins->current_version, w, "left out");
	copy_string(ins, &r, "CurrentBuildNumber", ins->build, sizeof ins->build, w, "left out");
	if (!ins->build[0]) copy_string(ins, &r, "CurrentBuild", ins->build, sizeof ins->build, w, "left out");
	/* its drive letter is the system drive MountedDevices must name */
	copy_string(ins, &r, "SystemRoot", ins->system_root, sizeof ins->system_root, BLK_NAME_TOO_LONG,
		    "the system drive letter cannot be checked");
	/* Windows 10+ keeps CurrentVersion at 6.3 and adds these DWORDs. */
	uint32_t maj, min;
	if (hive_get_dword(h, k, "CurrentMajorVersionNumber", &maj) == 0 &&
	    hive_get_dword(h, k, "CurrentMinorVersionNumber", &min) == 0)
		fmt_fit(ins->current_version, sizeof ins->current_version, "CurrentMajor/MinorVersionNumber",
			"%u.%u", maj, min);   /* absurd numbers: "" (unknown), never cut */
	if (ins->current_version[0])
		fmt_fit(ins->version, sizeof ins->version, "Windows version", "%s%s%s", ins->current_version,
			ins->build[0] ? "." : "", ins->build);
	err_clear();
}

static void read_software(struct ntfs_vol *v, struct inspection *ins)
{
	struct hive *h = open_hive(v, "\\Windows\\System32\\config\\SOFTWARE", "SOFTWARE", NULL);
	if (!h) {
		add_finding(ins, WARN_HIVE_UNREADABLE, true, "SOFTWARE hive unreadable: %s", err_msg());
		err_clear();
		return;
	}
	software_from_hive(h, ins);
	hive_close(h);
}

static int start_of(struct hive *h, const char *cs, const char *svc)
{
	char *k = xasprintf("%s\\Services\\%s", cs, svc);
	if (!k) return -1;   /* E_NOMEM: windows_inspect fails (err_nomem_count) */
	uint32_t v;
	int r = hive_get_dword(h, k, "Start", &v);
	free(k);
	return r == 0 ? (int)v : -1;
}

static bool is_control_set_name(const char *n)
{
	return strlen(n) == 13 && !strncasecmp(n, "ControlSet", 10) && isdigit((unsigned char)n[10]) &&
	       isdigit((unsigned char)n[11]) && isdigit((unsigned char)n[12]);
}

static void read_control_sets(struct hive *h, struct inspection *ins)
{
	uint32_t cur;
	ins->current_control_set = hive_get_dword(h, "Select", "Current", &cur) == 0 ? (int)cur : 0;
	char **names = NULL;
	size_t n = 0;
	if (hive_subkeys(h, "", &names, &n)) { err_clear(); return; }
	for (size_t i = 0; i < n; i++) {
		if (!is_control_set_name(names[i])) continue;
		if (ins->ncontrol_sets == sizeof ins->control_sets / sizeof *ins->control_sets) {
			/* never plan with a set left unedited (Windows keeps 2-3) */
			add_finding(ins, BLK_CONTROL_SETS_TOO_MANY, false, "SYSTEM holds more than the %zu control sets gen2prep reads (%s is one more)",
				    sizeof ins->control_sets / sizeof *ins->control_sets, names[i]);
			break;
		}
		struct control_set *cs = &ins->control_sets[ins->ncontrol_sets++];
		snprintf(cs->name, sizeof cs->name, "%s", names[i]);   /* fits: is_control_set_name, 13 chars */
		cs->ntfs_start = start_of(h, names[i], "Ntfs");
		cs->vmbus_start = start_of(h, names[i], "vmbus");
		cs->storvsc_start = start_of(h, names[i], "storvsc");
		cs->hyperkbd_start = start_of(h, names[i], "hyperkbd");
		char *k = xasprintf("%s\\Control", names[i]);
		if (!k) break;   /* E_NOMEM: windows_inspect fails (err_nomem_count) */
		const struct reg_string r = { h, "SYSTEM", k };
		/* shown only: convert writes FirmwareBootDevice anew */
		copy_string(ins, &r, "FirmwareBootDevice", cs->firmware_boot_device, sizeof cs->firmware_boot_device,
			    WARN_VALUE_TOO_LONG, "left out");
		copy_string(ins, &r, "SystemBootDevice", cs->system_boot_device, sizeof cs->system_boot_device,
			    WARN_VALUE_TOO_LONG, "left out");
		free(k);
	}
	hive_free_names(names, n);
	err_clear();
}

/* MountedDevices (doc/formats.md, MountedDevices): MBR disks 12 bytes
 * (struct mounted_mbr), GPT disks 24 bytes (struct mounted_gpt). */
static void decode_mounted(struct mounted_device *m, const uint8_t *d, size_t len, const struct ptable *t)
{
	struct mounted_mbr mbr;
	struct mounted_gpt gpt;
	m->kind = MD_OTHER;
	if (len == sizeof mbr) {
		memcpy(&mbr, d, sizeof mbr);
		m->kind = MD_MBR;
		m->signature = le32_get(&mbr.disk_signature);
		m->offset = le64_get(&mbr.partition_offset);
	} else if (len == sizeof gpt && !memcmp(d, MOUNTED_GPT_PREFIX, 8)) {
		memcpy(&gpt, d, sizeof gpt);
		m->kind = MD_GPT;
		memcpy(m->part_guid.b, gpt.partition_guid, 16);
	}
	for (size_t i = 0; i < t->count; i++) {
		const struct part *p = &t->parts[i];
		if ((m->kind == MD_MBR && t->type == PT_MBR && m->signature == t->disk_signature && m->offset == p->start) ||
		    (m->kind == MD_GPT && t->type == PT_GPT && guid_eq(&m->part_guid, &p->part_guid)))
			m->partition = p->number;
	}
}

/* A value convert may edit or the system-drive check reads: one naming a
 * drive letter, or a volume of this disk (doc/formats.md, MountedDevices).
 * Values of other disks (USB sticks seen once) are listed only. */
static bool relevant_as(const char *name, const struct mounted_device *m, const struct inspection *ins)
{
	return !strncasecmp(name, "\\DosDevices\\", 12) ||
	       (m->kind == MD_MBR && m->signature == ins->table.disk_signature) || m->kind == MD_GPT;
}

static bool mounted_relevant(const struct mounted_device *m, const struct inspection *ins)
{
	return relevant_as(m->name, m, ins);
}

/* The slot for a decoded value: the next free one, or when the table is
 * full and m is relevant, the last one holding an irrelevant value; NULL
 * when none (the value is dropped). */
static struct mounted_device *mounted_slot(struct inspection *ins, const struct mounted_device *m)
{
	const size_t cap = sizeof ins->mounted / sizeof *ins->mounted;
	if (ins->nmounted < cap) return &ins->mounted[ins->nmounted++];
	if (!mounted_relevant(m, ins)) return NULL;
	for (size_t i = cap; i-- > 0;)
		if (!mounted_relevant(&ins->mounted[i], ins)) return &ins->mounted[i];
	return NULL;
}

static void read_mounted_devices(struct hive *h, struct inspection *ins)
{
	char **names = NULL;
	size_t n = 0, lost = 0;
	if (hive_values(h, "MountedDevices", &names, &n)) { err_clear(); return; }
	for (size_t i = 0; i < n; i++) {
		uint8_t *d = NULL;
		size_t len = 0;
		uint32_t type;
		if (hive_get_binary(h, "MountedDevices", names[i], &d, &len, &type)) { err_clear(); continue; }
		struct mounted_device m;
		memset(&m, 0, sizeof m);
		decode_mounted(&m, d, len, &ins->table);
		free(d);
		/* A value name is what convert rewrites: one that does not fit is
		 * never edited under a cut name. Names of this disk's volumes
		 * ("\\DosDevices\\C:", "\\??\\Volume{guid}") fit; a longer one
		 * naming a letter or this disk is the blocker name-too-long,
		 * another disk's is left out. */
		if (str_copy(m.name, sizeof m.name, names[i], "MountedDevices value name") < 0) {
			if (relevant_as(names[i], &m, ins))
				add_finding(ins, BLK_NAME_TOO_LONG, false, "%s, and it names a drive letter or a volume of this disk: "
					    "convert would have to rewrite it", err_msg());
			err_clear();
			continue;
		}
		struct mounted_device *slot = mounted_slot(ins, &m);
		if (slot) *slot = m;
		else if (mounted_relevant(&m, ins)) lost++;
	}
	hive_free_names(names, n);
	/* never plan without a value that names this disk or a drive letter */
	if (lost)
		add_finding(ins, BLK_MOUNTED_TOO_MANY, false,
			    "MountedDevices holds %zu more drive-letter or this-disk values than the %zu gen2prep reads",
			    lost, sizeof ins->mounted / sizeof *ins->mounted);
}

/* LCID → locale name for the languages Windows 7 shipped boot files in
 * (MS-LCID). */
static const struct { uint16_t lcid; const char *name; } lcids[] = {
	{0x0409, "en-US"}, {0x0809, "en-GB"}, {0x0407, "de-DE"}, {0x040C, "fr-FR"}, {0x0410, "it-IT"},
	{0x0C0A, "es-ES"}, {0x0411, "ja-JP"}, {0x0412, "ko-KR"}, {0x0804, "zh-CN"}, {0x0404, "zh-TW"},
	{0x0C04, "zh-HK"}, {0x0416, "pt-BR"}, {0x0816, "pt-PT"}, {0x0419, "ru-RU"}, {0x0413, "nl-NL"},
	{0x041D, "sv-SE"}, {0x0406, "da-DK"}, {0x0414, "nb-NO"}, {0x040B, "fi-FI"}, {0x0415, "pl-PL"},
	{0x0405, "cs-CZ"}, {0x040E, "hu-HU"}, {0x041F, "tr-TR"}, {0x0408, "el-GR"}, {0x040D, "he-IL"},
	{0x0401, "ar-SA"}, {0x041E, "th-TH"}, {0x0418, "ro-RO"}, {0x041B, "sk-SK"}, {0x0424, "sl-SI"},
	{0x041A, "hr-HR"}, {0x0402, "bg-BG"}, {0x0425, "et-EE"}, {0x0426, "lv-LV"}, {0x0427, "lt-LT"},
	{0x0422, "uk-UA"}, {0x081A, "sr-Latn-CS"},
};

static void read_locale(struct hive *h, struct inspection *ins)
{
	char key[64];
	int cs = ins->current_control_set > 0 ? ins->current_control_set : 1;
	snprintf(key, sizeof key, "ControlSet%03d\\Control\\Nls\\Language", cs);   /* fits: 43 chars for any int */
	char *s = NULL;
	if (hive_get_string(h, key, "InstallLanguage", &s) != 0 || !s) {
		free(s); s = NULL;
		if (hive_get_string(h, key, "Default", &s) != 0) s = NULL;
	}
	err_clear();
	if (!s) return;
	unsigned long lcid = strtoul(s, NULL, 16);
	free(s);
	for (size_t i = 0; i < sizeof lcids / sizeof *lcids; i++)
		if (lcids[i].lcid == lcid) snprintf(ins->locale, sizeof ins->locale, "%s", lcids[i].name);   /* fits: lcids[] names <= 10 */
}

/* Otherwise: the language folder (xx-YY) next to bootmgfw.efi. */
static void locale_from_boot_files(struct ntfs_vol *v, struct inspection *ins)
{
	if (ins->locale[0]) return;
	struct ntfs_dirent *e = NULL;
	int n = ntfs_list(v, "\\Windows\\Boot\\EFI", &e);
	if (n < 0) { err_clear(); return; }
	for (int i = 0; i < n && !ins->locale[0]; i++)
		if (e[i].is_dir && !ascii_casecmp(e[i].name, "en-US")) snprintf(ins->locale, sizeof ins->locale, "en-US");   /* fits: 5 chars */
	for (int i = 0; i < n && !ins->locale[0]; i++)
		if (e[i].is_dir && strlen(e[i].name) == 5 && e[i].name[2] == '-')
			memcpy(ins->locale, e[i].name, 6);   /* "ll-CC" and its NUL */
	free(e);
}

#define SYSTEM_HIVE "\\Windows\\System32\\config\\SYSTEM"

/* The transaction logs beside a hive (SYSTEM.LOG1, SYSTEM.LOG2 since
 * Vista; SYSTEM.LOG before): "SYSTEM.LOG1 (8192 bytes)" or "no log files". */
static void hive_logs(struct ntfs_vol *v, char *out, size_t n)
{
	static const char *const logs[] = { ".LOG1", ".LOG2", ".LOG" };
	size_t used = 0;
	out[0] = 0;
	if (!v) { msg_printf(out, n, "log files not looked at"); return; }   /* windows_read_hives */
	for (size_t i = 0; i < sizeof logs / sizeof *logs; i++) {
		char path[64];
		uint64_t size = 0;
		snprintf(path, sizeof path, "%s%s", SYSTEM_HIVE, logs[i]);   /* fits: 34 + 5 chars */
		if (ntfs_stat(v, path, NULL, &size) == 1 && size > 0)
			text_append(out, n, &used, "%sSYSTEM%s (%llu bytes)", used ? ", " : "", logs[i], (unsigned long long)size);
	}
	err_clear();
	if (!used) msg_printf(out, n, "no SYSTEM.LOG1/LOG2 beside it");
}

/* The base block's state (hive.h, hive_base_state) decides what can be
 * trusted: a torn base block (bad checksum) is recovered by Windows from
 * the logs at the next boot, so what hivex would read now is not what
 * Windows will load; a dirty one (sequence numbers differ) has log data
 * not yet written back. Only a clean hive is read for the other checks. */
static bool system_hive_state(struct ntfs_vol *v, struct inspection *ins, const uint8_t *data, size_t len)
{
	struct hive_base b;
	char logs[160];
	hive_logs(v, logs, sizeof logs);
	if (hive_base_state(data, len, &b) < 0) {
		snprintf(ins->system_hive_state, sizeof ins->system_hive_state, "unreadable");   /* fits: a word in 16 */
		add_finding(ins, BLK_SYSTEM_HIVE_UNREADABLE, false,
			    "%s is not a registry hive (no \"regf\" base block; %s): boot Windows and shut it down cleanly",
			    SYSTEM_HIVE, logs);
		return false;
	}
	if (b.state == HIVE_TORN) {
		snprintf(ins->system_hive_state, sizeof ins->system_hive_state, "torn");   /* fits: a word in 16 */
		add_finding(ins, BLK_HIVE_NEEDS_RECOVERY, false,
			    "%s needs recovery from its transaction logs: base block checksum 0x%08x, computed 0x%08x "
			    "(sequence numbers %u/%u; %s): boot Windows so it recovers the hive, then shut it down cleanly",
			    SYSTEM_HIVE, b.stored_checksum, b.checksum, b.seq1, b.seq2, logs);
		return false;
	}
	if (b.state == HIVE_DIRTY) {
		snprintf(ins->system_hive_state, sizeof ins->system_hive_state, "dirty");   /* fits: a word in 16 */
		ins->system_hive_dirty = true;
		add_finding(ins, BLK_HIVE_DIRTY, false,
			    "%s has unreplayed log data (sequence numbers %u/%u differ; %s): boot Windows and shut it down cleanly",
			    SYSTEM_HIVE, b.seq1, b.seq2, logs);
		return true;   /* readable, though not what Windows will load */
	}
	snprintf(ins->system_hive_state, sizeof ins->system_hive_state, "clean");   /* fits: a word in 16 */
	return true;
}

/* The SYSTEM hive's bytes: state, then control sets, MountedDevices and
 * locale from a clean or dirty hive. v (for the log files) may be NULL. */
static void system_from_bytes(struct ntfs_vol *v, struct inspection *ins, const uint8_t *data, size_t len)
{
	struct hive *h = system_hive_state(v, ins, data, len) ? hive_open(data, len, false, "SYSTEM") : NULL;
	if (!h) {
		if (!strcmp(ins->system_hive_state, "clean") || !strcmp(ins->system_hive_state, "dirty")) {
			snprintf(ins->system_hive_state, sizeof ins->system_hive_state, "unreadable");   /* fits: a word in 16 */
			add_finding(ins, BLK_SYSTEM_HIVE_UNREADABLE, false, "%s cannot be read: %s", SYSTEM_HIVE, err_msg());
		}
		err_clear();
		return;
	}
	ins->system_hive_read = true;
	read_control_sets(h, ins);
	read_mounted_devices(h, ins);
	read_locale(h, ins);
	hive_close(h);
}

static void read_system(struct ntfs_vol *v, struct inspection *ins)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (ntfs_read_file(v, SYSTEM_HIVE, HIVE_MAX, &data, &len)) {
		snprintf(ins->system_hive_state, sizeof ins->system_hive_state, "unreadable");   /* fits: a word in 16 */
		add_finding(ins, BLK_SYSTEM_HIVE_UNREADABLE, false, "%s cannot be read: %s", SYSTEM_HIVE, err_msg());
		err_clear();
		return;
	}
	system_from_bytes(v, ins, data, len);
	free(data);
}

void windows_read_hives(const uint8_t *system, size_t slen, const uint8_t *software, size_t swlen,
			struct inspection *ins)
{
	if (system) system_from_bytes(NULL, ins, system, slen);
	if (software) {
		struct hive *h = hive_open(software, swlen, false, "SOFTWARE");
		if (h) {
			software_from_hive(h, ins);
			hive_close(h);
		}
		err_clear();
	}
}

/* ---------------------------------------------------------------- PE files */

static struct pe *load_pe(struct ntfs_vol *v, enum winfile f, struct winfile_info *fi)
{
	char *real = ntfs_real_path(v, winfile_path[f]);
	if (!real) { err_clear(); return NULL; }
	fi->present = true;
	if (str_copy(fi->path, sizeof fi->path, real, "path") < 0) {
		msg_printf(fi->error, sizeof fi->error, "%s", err_msg());
		err_clear();
		free(real);
		return NULL;
	}
	free(real);
	uint8_t *data = NULL;
	size_t len = 0;
	/* the reason is kept: a corrupt or unsupported WOF-compressed file is
	 * not "missing" (wof.h) */
	if (ntfs_read_file(v, winfile_path[f], PE_MAX, &data, &len)) {
		msg_printf(fi->error, sizeof fi->error, "%s", err_msg());
		err_clear();
		return NULL;
	}
	fi->size = len;
	struct pe *pe = pe_parse(data, len);
	free(data);
	if (!pe) { msg_printf(fi->error, sizeof fi->error, "%s", err_msg()); err_clear(); return NULL; }
	fi->machine = pe->machine;
	pe_version_str(pe, fi->version, sizeof fi->version);
	return pe;
}

static const char *arch_of(uint16_t machine)
{
	switch (machine) {
	case PE_MACHINE_AMD64: return "x64";
	case PE_MACHINE_I386: return "x86";
	case 0xAA64: return "arm64";
	default: return "";
	}
}

/* "6.2.9200.16385" < other? Compares numerically, missing parts as 0. */
static int version_cmp(const char *a, const char *b)
{
	for (int i = 0; i < 4; i++) {
		unsigned long x = strtoul(a, (char **)&a, 10), y = strtoul(b, (char **)&b, 10);
		if (x != y) return x < y ? -1 : 1;
		if (*a == '.') a++;
		if (*b == '.') b++;
	}
	return 0;
}

static void dry_run(struct pe *pe, enum pe_kind kind, const struct inspection *ins, struct patch_report *rep)
{
	struct patch_opts opts = { .dry_run = true, .force_version = ins->kernel_version };
	memset(rep, 0, sizeof *rep);
	patch_apply(pe, kind, &opts, rep);
	err_clear();
}

/* Whether every site of the report carries the edit already (or does not
 * apply to this kernel): a file patched by an earlier conversion. */
static bool all_applied(const struct patch_report *rep)
{
	for (size_t i = 0; i < rep->nresults; i++)
		if (rep->results[i].status != PATCH_ALREADY_APPLIED && rep->results[i].status != PATCH_NOT_APPLICABLE) return false;
	return rep->nresults > 0;
}

/* convert patches winload.efi as a copy beside it, winload-gen2.efi
 * (lib/plan.c, build_patches; the BCD loader entry names the copy). On a
 * disk converted already that copy holds the edit: its dry run, when every
 * site is already applied, is what the loader's patch status is, as verify's
 * loader-integrity reads the loader the BCD names. Otherwise (no copy, or
 * one without the edit, which convert writes anew from winload.efi) the
 * original's. Returns the name of the file reported. */
static const char *winload_report(struct ntfs_vol *v, struct pe *orig, const struct inspection *ins, struct patch_report *rep)
{
	const char *path = ins->files[WF_WINLOAD_EFI].path, *slash = strrchr(path, '\\');
	char copy[sizeof ins->files[0].path + 32];
	uint8_t *data = NULL;
	size_t len = 0;
	struct pe *pe = NULL;
	if (slash && snprintf(copy, sizeof copy, "%.*s\\winload-gen2.efi", (int)(slash - path), path) < (int)sizeof copy &&
	    ntfs_read_file(v, copy, PE_MAX, &data, &len) == 0)
		pe = pe_parse(data, len);
	free(data);
	err_clear();   /* no copy, or an unreadable one: the original is reported */
	if (pe) {
		dry_run(pe, KIND_WINLOAD, ins, rep);
		pe_free(pe);
		if (all_applied(rep)) return "winload-gen2.efi";
	}
	dry_run(orig, KIND_WINLOAD, ins, rep);
	return winfile_name[WF_WINLOAD_EFI];
}

static void dry_run_patches(struct ntfs_vol *v, struct pe *pe, enum pe_kind kind, enum winfile f, struct inspection *ins)
{
	/* on the heap: a patch_report is 171 KB (patch.h) */
	struct patch_report *rep = xcalloc(1, sizeof *rep);
	if (!rep) return;   /* E_NOMEM: windows_inspect fails (err_nomem_count) */
	const char *name = winfile_name[f];
	if (kind == KIND_WINLOAD) name = winload_report(v, pe, ins, rep);
	else dry_run(pe, kind, ins, rep);
	for (size_t i = 0; i < rep->nresults && ins->npatches < sizeof ins->patches / sizeof *ins->patches; i++) {
		struct patch_status_info *p = &ins->patches[ins->npatches++];
		snprintf(p->id, sizeof p->id, "%s", rep->results[i].id ? rep->results[i].id : "");   /* fits: patch_catalog.def ids <= 20 */
		snprintf(p->file, sizeof p->file, "%s", name);   /* fits: winfile_name[] or "winload-gen2.efi" */
		p->status = rep->results[i].status;
		_Static_assert(sizeof p->message == sizeof rep->results[i].message, "patch message fits whole");
		memcpy(p->message, rep->results[i].message, sizeof p->message);
		/* convert would stop with exit 5 on these: say so up front. */
		if (p->status == PATCH_NOT_FOUND || p->status == PATCH_AMBIGUOUS)
			add_finding(ins, WARN_PATCH_NOT_FOUND, true,
				    "kernel patch %s (%s) is %s: convert would stop (exit 5)", p->id, p->file,
				    patch_status_name(rep->results[i].status));
	}
	free(rep);
}

static void read_files(struct ntfs_vol *v, struct inspection *ins)
{
	struct pe *pes[WF_COUNT] = { 0 };
	for (int f = 0; f < WF_COUNT; f++)
		pes[f] = load_pe(v, f, &ins->files[f]);
	const struct winfile_info *k = &ins->files[WF_NTOSKRNL];
	ins->architecture = k->present ? arch_of(k->machine) : "";
	if (pes[WF_NTOSKRNL] && pes[WF_NTOSKRNL]->version.present)
		ins->kernel_version = (unsigned)(pes[WF_NTOSKRNL]->version.v[0] << 8) | pes[WF_NTOSKRNL]->version.v[1];
	else if (ins->current_version[0]) {
		unsigned maj = 0, min = 0;
		sscanf(ins->current_version, "%u.%u", &maj, &min);
		ins->kernel_version = (maj << 8) | min;
	}
	_Static_assert(sizeof ins->integration_services == sizeof ins->files[WF_VMBUS].version, "version fits whole");
	memcpy(ins->integration_services, ins->files[WF_VMBUS].version, sizeof ins->integration_services);
	/* Kernels 6.0 and 6.1 need the catalog (doc/patches.md "Versions"); later ones do not. */
	if (ins->kernel_version == 0x600 || ins->kernel_version == 0x601) {
		static const struct { enum winfile f; enum pe_kind k; } bins[] = {
			{WF_NTOSKRNL, KIND_NTOSKRNL}, {WF_HAL, KIND_HAL}, {WF_ACPI, KIND_ACPI}, {WF_WINLOAD_EFI, KIND_WINLOAD},
		};
		for (size_t i = 0; i < sizeof bins / sizeof *bins; i++)
			if (pes[bins[i].f]) dry_run_patches(v, pes[bins[i].f], bins[i].k, bins[i].f, ins);
	}
	for (int f = 0; f < WF_COUNT; f++) pe_free(pes[f]);
}

/* Files convert patches in place (plan.c, build_patches: the kernel, HAL
 * and ACPI driver of 6.0/6.1; winload is patched as a copy). A name of
 * theirs in WinSxS is the same file (a hard link, NTFS $FILE_NAME
 * attributes of one record): it changes with them, and sfc reports it. */
static void link_findings(struct ntfs_vol *v, struct inspection *ins)
{
	static const enum winfile inplace[] = { WF_NTOSKRNL, WF_HAL, WF_ACPI };
	char all[1024] = "", names[512];
	size_t used = 0;
	if (ins->kernel_version != 0x600 && ins->kernel_version != 0x601) return;
	for (size_t i = 0; i < sizeof inplace / sizeof *inplace; i++) {
		int n = ntfs_link_names(v, winfile_path[inplace[i]], names, sizeof names);
		err_clear();
		for (char *tok = n > 1 ? strtok(names, ",") : NULL; tok; tok = strtok(NULL, ",")) {
			while (*tok == ' ') tok++;
			if (ascii_casecmp(tok, ins->files[inplace[i]].path))
				text_append(all, sizeof all, &used, "%s%s is also %s", used ? "; " : "",
					    winfile_name[inplace[i]], tok);
		}
	}
	if (used)
		add_finding(ins, WARN_HARD_LINKS, true,
			    "hard links: %s; patching changes every name (sfc /scannow will report them)", all);
}

/* MountedDevices "\DosDevices\X:" for the letter of SystemRoot (SOFTWARE,
 * "C:\Windows"; C when absent): Windows finds its system drive by that
 * entry, and convert rewrites the entries that name the Windows partition
 * of this disk for the new table (doc/formats.md, MountedDevices). One that
 * names something else would point nowhere after the conversion. */
static void describe_target(const struct inspection *ins, const struct mounted_device *m, char *out, size_t n)
{
	char g[40];
	if (m->partition)
		msg_printf(out, n, "partition %d of this disk", m->partition);
	else if (m->kind == MD_MBR && ins->table.type != PT_MBR)
		msg_printf(out, n, "an MBR disk with signature 0x%08X (this disk is GPT)", m->signature);
	else if (m->kind == MD_MBR && m->signature != ins->table.disk_signature)
		msg_printf(out, n, "another disk (MBR signature 0x%08X; this disk: 0x%08X)", m->signature, ins->table.disk_signature);
	else if (m->kind == MD_MBR)
		msg_printf(out, n, "byte offset %llu of this disk, where no partition starts", (unsigned long long)m->offset);
	else if (m->kind == MD_GPT)
		msg_printf(out, n, "GPT partition %s, not on this disk", guid_to_str(&m->part_guid, g));
	else
		msg_printf(out, n, "a device that is not a basic partition (a dynamic volume or removable device)");
}

static void system_drive_findings(struct inspection *ins)
{
	if (!ins->system_hive_read) return;
	const char *sr = ins->system_root;
	char name[20], where[160];
	snprintf(name, sizeof name, "\\DosDevices\\%c:", sr[0] && sr[1] == ':' ? toupper((unsigned char)sr[0]) : 'C');   /* fits: 14 chars */
	for (size_t i = 0; i < ins->nmounted; i++) {
		const struct mounted_device *m = &ins->mounted[i];
		if (strcasecmp(m->name, name)) continue;
		if (m->partition == ins->windows_partition) return;
		describe_target(ins, m, where, sizeof where);
		add_finding(ins, BLK_SYSTEM_DRIVE, false,
			    "%s (the system drive) in MountedDevices points to %s, not to the Windows partition %d: "
			    "Windows would not find its system drive on the converted disk", name, where, ins->windows_partition);
		return;
	}
}

/* ---------------------------------------------------------------- UEFI boot */

/* The loader {bootmgr} starts by default, when it is a Windows Boot Loader
 * whose device is a partition of t: that partition, its path in path. */
static const struct part *default_loader(struct bcd *b, const struct ptable *t, char *path, size_t n)
{
	struct guid bm, ld;
	struct bcd_device dev;
	uint32_t type = 0;
	char *s = NULL;
	bcd_alias_guid("{bootmgr}", &bm);
	if (bcd_get_object(b, &bm, BCDE_BOOTMGR_DEFAULT, &ld) != 0 || bcd_get_object_type(b, &ld, &type) != 0
	    || type != BCD_TYPE_OSLOADER || bcd_get_device(b, &ld, BCDE_LIB_APPLICATION_DEVICE, &dev) != 0
	    || bcd_get_string(b, &ld, BCDE_LIB_APPLICATION_PATH, &s) != 0 || !s)
		return NULL;
	int fits = str_copy(path, n, s, "BCD loader path");
	free(s);
	if (fits < 0) { err_clear(); return NULL; }   /* a cut path would name another file */
	return bcd_device_partition(&dev, t);
}

/* Does esp boot Windows the UEFI way? Its \EFI\Microsoft\Boot\BCD names, as
 * {bootmgr}'s default, a Windows Boot Loader on a partition of this disk
 * that holds the loader's path: what Generation 2 firmware starts (a disk
 * gen2prep converted, or a Windows 8+ UEFI install). */
static const struct part *esp_boots_windows(struct overlay *o, const struct ptable *t, const struct part *esp, char *path, size_t n)
{
	uint8_t *data = NULL;
	size_t len = 0;
	const struct part *win = NULL;
	struct fat32_vol *fv = fat32_open(o, esp->start, esp->size);
	if (!fv) return NULL;
	struct bcd *b = fat32_read_file(fv, "EFI/Microsoft/Boot/BCD", BCD_MAX, &data, &len) == 0 ? bcd_open(data, len) : NULL;
	free(data);
	fat32_close(fv);
	if (b) win = default_loader(b, t, path, n);
	if (b) bcd_free(b);
	struct ntfs_vol *v = win ? ntfs_open(o, win->start, win->size, false) : NULL;
	bool found = v && ntfs_stat(v, path, NULL, NULL) == 1;
	if (v) ntfs_close(v);
	return found ? win : NULL;
}

static void check_already_gen2(struct overlay *o, struct inspection *ins)
{
	for (size_t i = 0; i < ins->nparts; i++) {
		const struct part_info *pi = &ins->parts[i];
		char path[256];
		if (pi->role != ROLE_ESP || strcmp(pi->filesystem, "fat32")) continue;
		const struct part *win = esp_boots_windows(o, &ins->table, pi->part, path, sizeof path);
		err_clear();
		if (!win) continue;
		add_finding(ins, WARN_ALREADY_GEN2, true,
			    "already Generation 2 ready: the ESP (partition %d) has a BCD whose default loader %s is on partition %d",
			    pi->part->number, path, win->number);
		return;
	}
}

/* ---------------------------------------------------------------- verdict */

static void assess(struct inspection *ins)
{
	if (!ins->windows_found) {
		add_finding(ins, BLK_NO_WINDOWS, false, "no partition holds \\Windows\\System32\\config\\SYSTEM");
		return;
	}
	const char *arch = ins->architecture ? ins->architecture : "";
	if (!strcmp(arch, "x86"))
		add_finding(ins, BLK_32BIT, false, "32-bit Windows: Generation 2 runs 64-bit Windows only");
	else if (!*arch && ins->files[WF_NTOSKRNL].error[0])
		add_finding(ins, BLK_UNSUPPORTED_VERSION, false, "ntoskrnl.exe unreadable (%s): architecture and kernel version unknown",
			    ins->files[WF_NTOSKRNL].error);
	else if (!*arch)
		add_finding(ins, BLK_UNSUPPORTED_VERSION, false,
			    "ntoskrnl.exe missing or not a PE file: architecture and kernel version unknown");
	else if (strcmp(arch, "x64"))
		add_finding(ins, BLK_32BIT, false, "%s Windows: Generation 2 on Hyper-V x64 runs x64 Windows only", arch);
	unsigned kv = ins->kernel_version;
	if (kv >> 8 == 5)
		add_finding(ins, BLK_KERNEL_5X, false,
			    "kernel %u.%u (Windows XP x64 / Server 2003 x64) is out of reach (see the article)", kv >> 8, kv & 0xff);
	else if (kv && kv < 0x600)
		add_finding(ins, BLK_UNSUPPORTED_VERSION, false, "Windows kernel %u.%u is not supported", kv >> 8, kv & 0xff);
	else if (!kv)
		add_finding(ins, BLK_UNSUPPORTED_VERSION, false, "Windows version unknown (no ntoskrnl.exe version, no SOFTWARE CurrentVersion)");
	/* services are only known from a SYSTEM hive that could be read; its
	 * own blocker says why when it could not */
	bool have_svc = !ins->system_hive_read;
	for (size_t i = 0; i < ins->ncontrol_sets; i++)
		if (ins->control_sets[i].vmbus_start >= 0 && ins->control_sets[i].storvsc_start >= 0) have_svc = true;
	if (!have_svc || !ins->files[WF_VMBUS].present || !ins->files[WF_STORVSC].present)
		add_finding(ins, BLK_NO_INTEGRATION_SERVICES, false,
			    "Hyper-V Integration Services missing (vmbus/storvsc service or driver): the SCSI boot disk would be inaccessible");
	else if (ins->integration_services[0] && version_cmp(ins->integration_services, "6.2.9200.16385") < 0)
		add_finding(ins, WARN_OLD_IS, true,
			    "Integration Services %s older than 6.2.9200.16385: the Generation 2 keyboard will not work",
			    ins->integration_services);
	if (!ins->files[WF_BOOTMGFW_EFI].present || !ins->files[WF_WINLOAD_EFI].present)
		add_finding(ins, WARN_NO_BOOT_FILES, true,
			    "UEFI boot files missing (\\Windows\\Boot\\EFI\\bootmgfw.efi or System32\\winload.efi)");
}

/* $LogFile state (ntfs.h, read with ntfs-3g's own checks): what would make
 * the read-write mount of convert fail. The dirty bit and hibernation have
 * their own blockers; a journal that says "not shut down" without them is
 * a power cut or a VM exported while running. */
static void logfile_finding(struct inspection *ins, const struct part_info *pi)
{
	const char *lf = pi->logfile ? pi->logfile : "";
	if (!strcmp(lf, "unclean"))
		add_finding(ins, BLK_NTFS_UNCLEAN, false,
			    "NTFS on partition %d was not shut down cleanly: its $LogFile restart area has a client in use "
			    "and no clean flag (power lost, or the VM exported while running): boot Windows and shut down fully",
			    pi->part->number);
	else if (!strcmp(lf, "cached"))
		add_finding(ins, BLK_NTFS_UNCLEAN, false,
			    "NTFS on partition %d: $LogFile restart page version 2.0, Windows kept metadata cached (fast startup "
			    "or access cut off): boot Windows and shut down fully (shutdown /s /f /t 0, fast startup off)",
			    pi->part->number);
	else if (!strcmp(lf, "damaged"))
		add_finding(ins, BLK_NTFS_UNCLEAN, false,
			    "NTFS on partition %d: $LogFile restart pages are inconsistent, so the volume state is unknown: "
			    "boot Windows, let chkdsk run and shut down fully", pi->part->number);
}

static void volume_findings(struct inspection *ins, const struct part_info *pi, bool is_windows)
{
	if (!is_windows) return;
	if (pi->bitlocker)
		add_finding(ins, BLK_BITLOCKER, false, "partition %d is encrypted with BitLocker: decrypt it first", pi->part->number);
	if (pi->ntfs_hibernated)
		add_finding(ins, BLK_HIBERNATED, false,
			    "Windows is hibernated on partition %d (hiberfil.sys): boot it and shut down fully", pi->part->number);
	if (pi->ntfs_dirty)
		add_finding(ins, BLK_NTFS_DIRTY, false,
			    "NTFS on partition %d is marked dirty: boot Windows, let chkdsk run, shut down cleanly", pi->part->number);
	logfile_finding(ins, pi);
}

static int inspect_body(struct overlay *o, struct inspection *ins)
{
	memset(ins, 0, sizeof *ins);
	ins->architecture = "";
	if (partition_read(o, &ins->table)) return err_prefix("partition table");
	if (ins->table.type == PT_NONE) {
		add_finding(ins, BLK_NO_PARTITION_TABLE, false, "the disk has neither an MBR nor a GPT partition table");
		return 0;
	}
	if (table_findings(o, ins)) return 0;
	dynamic_findings(o, ins);
	for (size_t i = 0; i < ins->table.count && i < PART_MAX; i++) {
		struct part_info *pi = &ins->parts[ins->nparts++];
		pi->part = &ins->table.parts[i];
		if (describe_partition(o, &ins->table, pi)) return err_prefix("partition %d", pi->part->number);
	}
	ntfs_size_findings(ins);
	struct part_info *win = NULL;
	for (size_t i = 0; i < ins->nparts && !win; i++)
		if (ins->parts[i].role == ROLE_WINDOWS) win = &ins->parts[i];
	/* A BitLocker volume hides whether Windows is on it: if it is the only
	 * candidate, report BitLocker rather than "no Windows". */
	for (size_t i = 0; i < ins->nparts && !win; i++)
		if (ins->parts[i].bitlocker) {
			volume_findings(ins, &ins->parts[i], true);
			return 0;
		}
	if (!win) { assess(ins); return 0; }
	ins->windows_found = true;
	ins->windows_partition = win->part->number;
	volume_findings(ins, win, true);
	struct ntfs_vol *v = ntfs_open(o, win->part->start, win->part->size, false);
	if (!v) return err_prefix("Windows volume (partition %d)", win->part->number);
	read_software(v, ins);
	read_system(v, ins);
	read_files(v, ins);
	link_findings(v, ins);
	system_drive_findings(ins);
	locale_from_boot_files(v, ins);
	int rc = ntfs_close(v);
	if (rc == 0) check_already_gen2(o, ins);
	assess(ins);
	return rc;
}

/* The reads above go on past a value that is absent (err_clear): when an
 * allocation failed on the way, the inspection may lack a detail it would
 * have had, so the run fails (E_NOMEM, exit 1) rather than decide on it. */
int windows_inspect(struct overlay *o, struct inspection *ins)
{
	unsigned long nomem = err_nomem_count();
	int rc = inspect_body(o, ins);
	if (rc == 0 && err_nomem_count() != nomem)
		return err_set(E_NOMEM, "out of memory while inspecting the disk: the inspection is incomplete");
	return rc;
}
