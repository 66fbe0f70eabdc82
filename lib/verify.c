/* verify.c - see verify.h */
#include "verify.h"
#include "json_text.h"
#include "bcd.h"
#include "disk.h"
#include "fat32.h"
#include "hive.h"
#include "image.h"
#include "ntfs.h"
#include "overlay.h"
#include "partition.h"
#include "patch.h"
#include "pe.h"
#include "rules.h"
#include "util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PE (64u << 20)
#define MAX_HIVE (256u << 20)
#define MAX_BCD (16u << 20)

/* One check per rule of rules.h's table: the rules the plan enforces
 * before writing are the ones checked here, with the same predicates. */
enum {
	C_TABLE = RULE_PARTITION_TABLE, C_ESP = RULE_ESP, C_FAT = RULE_ESP_FILESYSTEM, C_BOOTFILES = RULE_BOOT_FILES,
	C_BCD = RULE_BCD, C_LOADER = RULE_BCD_LOADER, C_HIVE = RULE_SYSTEM_HIVE, C_BOOTSTART = RULE_BOOT_START,
	C_FWDEV = RULE_FIRMWARE_BOOT_DEVICE, C_MOUNTED = RULE_MOUNTED_DEVICES, C_PATCHES = RULE_PATCHES,
	C_CHECKSUMS = RULE_CHECKSUMS, C_LOADER_INTEGRITY = RULE_LOADER_INTEGRITY, C_COUNT = RULE_COUNT
};

struct vctx {
	struct verify_result *r;
	struct disk *disk;
	struct overlay *ov;
	struct ptable table;
	bool table_ok;
	const struct part *esp;
	struct fat32_vol *fat;
	struct bcd *bcd;
	struct guid loader;
	bool have_loader;
	char *loader_path;             /* the loader entry's path and systemroot, */
	const struct part *win;
	struct ntfs_vol *vol;
	char *sysroot;                 /* whole as the store holds them (malloc'd), NULL none */
	unsigned version;
	struct hive *system;
};

__attribute__((format(printf, 4, 5)))
static void set(struct vctx *c, int id, bool pass, const char *fmt, ...)
{
	struct verify_check *k = &c->r->checks[id];
	k->pass = pass;
	va_list ap;
	va_start(ap, fmt);
	msg_vprintf(k->detail, sizeof k->detail, fmt, ap);   /* a detail longer than its field ends in "..." */
	va_end(ap);
}

/* ---- partition table ---- */

static void check_table(struct vctx *c)
{
	if (partition_read(c->ov, &c->table) < 0) { set(c, C_TABLE, false, "%s", err_msg()); return; }
	if (c->table.type == PT_NONE) { set(c, C_TABLE, false, "no partition table"); return; }
	c->table_ok = true;
	/* headers, CRCs and backup; every partition inside the disk (and its
	 * extended container), none overlapping: partition owns table layouts */
	char why[1024];   /* partition_verify names both sizes and the cure (326 bytes seen) */
	if (partition_verify(c->ov, why, sizeof why) < 0) {
		set(c, C_TABLE, false, "%s", why);
		err_clear();
		return;
	}
	if (c->table.type == PT_MBR) {
		set(c, C_TABLE, true, "MBR, signature 0x%08x, %zu partitions", c->table.disk_signature, c->table.count);
		return;
	}
	char g[40];
	set(c, C_TABLE, true, "GPT, disk %s, %zu partitions, primary and backup valid", guid_to_str(&c->table.disk_guid, g), c->table.count);
}

static void check_esp(struct vctx *c)
{
	if (!c->table_ok) { set(c, C_ESP, false, "no partition table"); return; }
	size_t n = 0;
	for (size_t i = 0; i < c->table.count; i++)
		if (part_is_esp(&c->table, &c->table.parts[i])) { n++; if (!c->esp) c->esp = &c->table.parts[i]; }
	if (c->esp) c->r->esp_partition = c->esp->number;
	/* the first one is still read so that later checks report on it */
	if (n != 1) { set(c, C_ESP, false, "%zu EFI system partitions, exactly one expected", n); return; }
	set(c, C_ESP, true, "partition %d, %llu MiB", c->esp->number, (unsigned long long)(c->esp->size >> 20));
}

static void check_fat(struct vctx *c)
{
	if (!c->esp) { set(c, C_FAT, false, "no ESP"); return; }
	c->fat = fat32_open(c->ov, c->esp->start, c->esp->size);
	if (!c->fat) { set(c, C_FAT, false, "%s", err_msg()); return; }
	if (fat32_check(c->fat) < 0) { set(c, C_FAT, false, "%s", err_msg()); return; }
	/* the plan's geometry rule: a FAT32 of this size with these sectors */
	char why[1024];
	uint32_t ss = disk_info(c->disk)->logical_sector_size;
	if (!rules_esp_geometry(c->esp->size, ss, NULL, NULL, why, sizeof why)) { set(c, C_FAT, false, "%s", why); return; }
	set(c, C_FAT, true, "clean");
}

/* ---- boot files ---- */

static void check_boot_files(struct vctx *c)
{
	const char *const *files = rules_boot_apps;
	if (!c->fat) { set(c, C_BOOTFILES, false, "ESP not readable"); return; }
	for (size_t i = 0; i < RULES_NBOOT_APPS; i++) {
		uint8_t *d = NULL;
		size_t len = 0;
		char why[1024];
		if (fat32_read_file(c->fat, files[i], MAX_PE, &d, &len) < 0) { set(c, C_BOOTFILES, false, "%s: %s", files[i], err_msg()); return; }
		bool ok = rules_efi_application(d, len, why, sizeof why);
		free(d);
		if (!ok) { set(c, C_BOOTFILES, false, "%s: %s", files[i], why); return; }
	}
	set(c, C_BOOTFILES, true, "both present, PE32+ x64 EFI applications");
}

/* ---- BCD ---- */

/* A device element resolved against the table (bcd knows the forms). */
static const struct part *resolve(const struct vctx *c, const struct bcd_device *d)
{
	return c->table_ok ? bcd_device_partition(d, &c->table) : NULL;
}

static void check_bcd(struct vctx *c)
{
	uint8_t *d = NULL;
	size_t len = 0;
	if (!c->fat) { set(c, C_BCD, false, "ESP not readable"); return; }
	if (fat32_read_file(c->fat, RULES_BCD_PATH, MAX_BCD, &d, &len) < 0) { set(c, C_BCD, false, "\\EFI\\Microsoft\\Boot\\BCD: %s", err_msg()); return; }
	c->bcd = bcd_open(d, len);
	free(d);
	if (!c->bcd) { set(c, C_BCD, false, "%s", err_msg()); return; }
	struct guid bm;
	struct bcd_device dev;
	uint32_t type;
	bcd_alias_guid("{bootmgr}", &bm);
	if (bcd_get_object_type(c->bcd, &bm, &type) != 0) { set(c, C_BCD, false, "no {bootmgr} object"); return; }
	/* the default entry first: the loader checks go on even when
	 * {bootmgr}'s own device is wrong, so each fault fails one check */
	if (bcd_get_object(c->bcd, &bm, BCDE_BOOTMGR_DEFAULT, &c->loader) != 0) { set(c, C_BCD, false, "{bootmgr} has no default entry"); return; }
	c->have_loader = true;
	if (bcd_get_device(c->bcd, &bm, BCDE_LIB_APPLICATION_DEVICE, &dev) != 0) { set(c, C_BCD, false, "{bootmgr} has no device"); return; }
	const struct part *p = resolve(c, &dev);
	if (!p || p != c->esp) { set(c, C_BCD, false, "{bootmgr} device is not the ESP of this disk"); return; }
	char g[40];
	set(c, C_BCD, true, "{bootmgr} on partition %d, default {%s}", p->number, guid_to_str(&c->loader, g));
}

static const struct part *loader_partition(struct vctx *c, uint32_t elem, char *why, size_t n)
{
	struct bcd_device dev;
	int r = bcd_get_device(c->bcd, &c->loader, elem, &dev);
	if (r != 0) { msg_printf(why, n, "the loader has no %s", elem == BCDE_OS_DEVICE ? "osdevice" : "device"); return NULL; }
	const struct part *p = resolve(c, &dev);
	if (!p) {
		char a[40], b[40];
		if (dev.gpt) msg_printf(why, n, "%s names GPT disk {%s} partition {%s}: not on this disk", elem == BCDE_OS_DEVICE ? "osdevice" : "device",
					guid_to_str(&dev.disk_guid, a), guid_to_str(&dev.part_guid, b));
		else msg_printf(why, n, "%s names MBR disk 0x%08x offset %llu: not on this disk", elem == BCDE_OS_DEVICE ? "osdevice" : "device",
				dev.disk_signature, (unsigned long long)dev.part_offset);
	}
	return p;
}

static bool has_loader_path(const struct vctx *c) { return c->loader_path && c->loader_path[0]; }

static void check_loader(struct vctx *c)
{
	char why[512];
	uint32_t type = 0;
	if (!c->have_loader) { set(c, C_LOADER, false, "no default loader entry"); return; }
	if (bcd_get_object_type(c->bcd, &c->loader, &type) != 0 || type != BCD_TYPE_OSLOADER) {
		set(c, C_LOADER, false, "the default entry is not a Windows Boot Loader (type 0x%08x)", type);
		return;
	}
	char *path = NULL, *root = NULL;
	if (bcd_get_string(c->bcd, &c->loader, BCDE_LIB_APPLICATION_PATH, &path) == 0) c->loader_path = path, path = NULL;
	if (bcd_get_string(c->bcd, &c->loader, BCDE_OS_SYSTEM_ROOT, &root) == 0) c->sysroot = root, root = NULL;
	free(path);
	free(root);
	const struct part *dev = loader_partition(c, BCDE_LIB_APPLICATION_DEVICE, why, sizeof why);
	if (!dev) { set(c, C_LOADER, false, "%s", why); return; }
	const struct part *os = loader_partition(c, BCDE_OS_DEVICE, why, sizeof why);
	if (!os) { set(c, C_LOADER, false, "%s", why); return; }
	if (dev != os) { set(c, C_LOADER, false, "device (partition %d) and osdevice (partition %d) differ", dev->number, os->number); return; }
	if (!has_loader_path(c)) { set(c, C_LOADER, false, "the loader has no path"); return; }
	c->win = os;
	c->vol = ntfs_open(c->ov, os->start, os->size, false);
	if (!c->vol) { set(c, C_LOADER, false, "partition %d: %s", os->number, err_msg()); return; }
	if (ntfs_stat(c->vol, c->loader_path, NULL, NULL) != 1) { set(c, C_LOADER, false, "%s not found on partition %d", c->loader_path, os->number); return; }
	set(c, C_LOADER, true, "partition %d holds %s", os->number, c->loader_path);
}

/* When the loader entry does not resolve, the other checks still look at
 * the Windows volume: the first NTFS partition with a kernel. */
static void find_windows_fallback(struct vctx *c)
{
	if (c->vol || !c->table_ok) return;
	for (size_t i = 0; i < c->table.count && !c->vol; i++) {
		const struct part *p = &c->table.parts[i];
		if (p == c->esp) continue;
		struct ntfs_vol *v = ntfs_open(c->ov, p->start, p->size, false);
		if (!v) continue;
		if (ntfs_stat(v, "\\Windows\\System32\\ntoskrnl.exe", NULL, NULL) == 1) { c->vol = v; c->win = p; break; }
		ntfs_close(v);
	}
	err_clear();
}

/* ---- SYSTEM hive ---- */

/* rel under the loader's systemroot into out[n]; -1 (E_FORMAT naming the
 * length) when that does not fit: the check fails, never reads a cut path. */
static int sys_path(const struct vctx *c, const char *rel, char *out, size_t n)
{
	const char *root = c->sysroot && c->sysroot[0] ? c->sysroot : "\\Windows";
	return fmt_fit(out, n, "systemroot path", "%s\\%s", root, rel) < 0 ? -1 : 0;
}

static void check_hive(struct vctx *c)
{
	char path[256];
	uint8_t *d = NULL;
	size_t len = 0;
	if (!c->vol) { set(c, C_HIVE, false, "no Windows volume found"); return; }
	if (sys_path(c, "System32\\config\\SYSTEM", path, sizeof path) < 0
	    || ntfs_read_file(c->vol, path, MAX_HIVE, &d, &len) < 0) { set(c, C_HIVE, false, "%s", err_msg()); return; }
	int dirty = hive_is_dirty(d, len);
	/* a dirty hive is still read for the other checks (hivex reads the
	 * primary data); only this check reports it */
	if (dirty >= 0) c->system = hive_open(d, len, false, "SYSTEM");
	free(d);
	if (!c->system) { set(c, C_HIVE, false, "%s", dirty < 0 ? "not a registry hive" : err_msg()); err_clear(); return; }
	if (dirty) { set(c, C_HIVE, false, "sequence numbers differ: not written back cleanly (Windows would replay SYSTEM.LOG)"); return; }
	set(c, C_HIVE, true, "clean");
}

static int service_start(struct hive *h, const char *cs, const char *svc)
{
	char key[128];
	uint32_t v;
	snprintf(key, sizeof key, "%s\\Services\\%s", cs, svc);   /* fits: ControlSetNNN (13) + 10 + a service name */
	return hive_get_dword(h, key, "Start", &v) == 0 ? (int)v : -1;
}

/* Control sets named ControlSet001..ControlSet999 under the root that can
 * boot in Generation 2 (rules.h: the plan edits exactly these). The others
 * are named in skipped ("ControlSet002, ..."). */
static int control_sets(struct vctx *c, char ***names, size_t *n, char *skipped, size_t sn)
{
	char **all = NULL;
	size_t cnt = 0, k = 0, used = 0;
	if (skipped && sn) skipped[0] = 0;
	if (hive_subkeys(c->system, "", &all, &cnt) < 0) return -1;
	for (size_t i = 0; i < cnt; i++) {
		bool cs = !strncasecmp(all[i], "ControlSet", 10) && strlen(all[i]) == 13;
		if (cs && rules_control_set_boots_gen2(service_start(c->system, all[i], "vmbus"),
						       service_start(c->system, all[i], "storvsc"))) {
			all[k++] = all[i];
			continue;
		}
		if (cs && skipped)
			text_append(skipped, sn, &used, "%s%s", used ? ", " : "", all[i]);
		free(all[i]);
	}
	*names = all;
	*n = k;
	return 0;
}

static void check_boot_start(struct vctx *c)
{
	char **cs = NULL;
	size_t n = 0;
	if (!c->system) { set(c, C_BOOTSTART, false, "no SYSTEM hive"); return; }
	char skipped[256];
	if (control_sets(c, &cs, &n, skipped, sizeof skipped) < 0 || !n) {
		set(c, C_BOOTSTART, false, "no control set with vmbus and storvsc services%s%s", skipped[0] ? ": " : "", skipped);
		hive_free_names(cs, n);
		return;
	}
	/* doc/patches.md, Registry edits: Ntfs boot start is the article's fix for 6.0/6.1; 6.2+
	 * loads its boot file system without it */
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++)
		for (size_t s = 0; s < RULES_NBOOT_SERVICES && ok; s++) {
			char key[128];
			uint32_t v = 99;
			if (!rules_boot_start_required(rules_boot_services[s], c->version)) continue;
			snprintf(key, sizeof key, "%s\\Services\\%s", cs[i], rules_boot_services[s]);   /* fits: 13 + 10 + 7 */
			int r = hive_get_dword(c->system, key, "Start", &v);
			if (r != 0 || v != 0) {
				ok = false;
				if (r != 0) set(c, C_BOOTSTART, false, "%s\\Start missing", key);
				else set(c, C_BOOTSTART, false, "%s\\Start is %u, not 0 (boot)", key, v);
			}
		}
	/* Windows boots the set Select\\Current names (the plan's blocker too) */
	uint32_t cur = 0;
	char curname[16] = "";
	if (ok && hive_get_dword(c->system, "Select", "Current", &cur) == 0) {
		snprintf(curname, sizeof curname, "ControlSet%03u", cur % 1000);   /* fits: 13 chars */
		bool found = false;
		for (size_t i = 0; i < n; i++) found |= !ascii_casecmp(cs[i], curname);
		if (!found) {
			ok = false;
			set(c, C_BOOTSTART, false, "the current control set %s has no vmbus or storvsc service", curname);
		}
	}
	if (ok) set(c, C_BOOTSTART, true, "%zu control sets%s%s%s", n, skipped[0] ? "; not checked: " : "", skipped,
		    skipped[0] ? " (no vmbus/storvsc: cannot boot in Generation 2)" : "");
	hive_free_names(cs, n);
}

static void check_fwdev(struct vctx *c)
{
	char **cs = NULL, want[64];
	size_t n = 0;
	if (!c->system) { set(c, C_FWDEV, false, "no SYSTEM hive"); return; }
	if (!c->esp) { set(c, C_FWDEV, false, "no ESP"); return; }
	/* doc/formats.md, SYSTEM hive values: ARC name, N = 1-based partition number in table order */
	rules_arc_name(c->esp->number, want, sizeof want);
	if (control_sets(c, &cs, &n, NULL, 0) < 0 || !n) { set(c, C_FWDEV, false, "no control set with vmbus and storvsc services"); hive_free_names(cs, n); return; }
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		char key[128], *v = NULL;
		snprintf(key, sizeof key, "%s\\Control", cs[i]);   /* fits: ControlSetNNN (13) + 8 */
		if (hive_get_string(c->system, key, "FirmwareBootDevice", &v) != 0 || ascii_casecmp(v, want)) {
			set(c, C_FWDEV, false, "%s\\FirmwareBootDevice is '%s', expected '%s'", key, v ? v : "(missing)", want);
			ok = false;
		}
		free(v);
	}
	if (ok) set(c, C_FWDEV, true, "%s", want);
	hive_free_names(cs, n);
}

/* doc/formats.md, MountedDevices: MBR = signature (4) + offset (8); GPT =
 * "DMIO:ID:" + partition GUID. The Windows volume must be named in the
 * form of this disk's layout (or no drive letters recorded at all). */
static void check_mounted(struct vctx *c)
{
	char **vals = NULL;
	size_t n = 0, dos = 0;
	bool found = false;
	if (!c->system) { set(c, C_MOUNTED, false, "no SYSTEM hive"); return; }
	if (!c->win) { set(c, C_MOUNTED, false, "no Windows volume"); return; }
	if (hive_values(c->system, "MountedDevices", &vals, &n) < 0) { set(c, C_MOUNTED, true, "no MountedDevices key: letters assigned at first boot"); err_clear(); return; }
	for (size_t i = 0; i < n && !found; i++) {
		if (strncasecmp(vals[i], "\\DosDevices\\", 12)) continue;
		dos++;
		uint8_t *b = NULL;
		size_t len = 0;
		uint32_t type;
		if (hive_get_binary(c->system, "MountedDevices", vals[i], &b, &len, &type) != 0) continue;
		uint8_t want[24];
		size_t wl = rules_mounted_device_value(&c->table, c->win, want);
		if (len == wl && !memcmp(b, want, wl)) found = true;
		if (found) set(c, C_MOUNTED, true, "%s names the Windows volume", vals[i]);
		free(b);
	}
	if (!found && !dos) set(c, C_MOUNTED, true, "no drive letters recorded: assigned at first boot");
	else if (!found) set(c, C_MOUNTED, false, "no \\DosDevices value names partition %d in %s form: the system volume would get another letter",
			     c->win->number, c->table.type == PT_GPT ? "GPT (DMIO:ID:)" : "MBR (signature + offset)");
	hive_free_names(vals, n);
}

/* ---- kernel files ---- */

static struct pe *read_pe(struct vctx *c, const char *path)
{
	uint8_t *d = NULL;
	size_t len = 0;
	if (!c->vol || ntfs_read_file(c->vol, path, MAX_PE, &d, &len) < 0) return NULL;
	struct pe *pe = pe_parse(d, len);
	free(d);
	return pe;
}

static void find_version(struct vctx *c)
{
	char path[256];
	struct pe *pe = sys_path(c, "System32\\ntoskrnl.exe", path, sizeof path) < 0 ? NULL : read_pe(c, path);
	if (pe && pe->version.present) c->version = (unsigned)pe->version.v[0] << 8 | (pe->version.v[1] & 0xFF);
	pe_free(pe);
	err_clear();
	if (c->version) snprintf(c->r->kernel_version, sizeof c->r->kernel_version, "%u.%u", c->version >> 8, c->version & 0xFF);   /* fits: 12 chars for any unsigned */
}

/* A patch counts as applied when the dry run finds our edit in place;
 * crash-report is optional (--no-crash-report). */
static bool patches_applied(struct pe *pe, enum pe_kind kind, unsigned version, char *why, size_t n)
{
	struct patch_opts po = { .dry_run = true, .force_version = version };
	/* on the heap: a patch_report is 171 KB (patch.h) */
	struct patch_report *rep = xcalloc(1, sizeof *rep);
	int rc = rep ? patch_apply(pe, kind, &po, rep) : -1;
	bool ok = rc == 0;
	for (size_t i = 0; rep && i < rep->nresults; i++) {
		const struct patch_result *r = &rep->results[i];
		if (r->status == PATCH_ALREADY_APPLIED || r->status == PATCH_NOT_APPLICABLE) continue;
		if (r->status == PATCH_WOULD_APPLY && r->id && !strcmp(r->id, "crash-report")) continue;
		msg_printf(why, n, "%s: %s", r->id ? r->id : "?", r->status == PATCH_WOULD_APPLY ? "not applied" : patch_status_name(r->status));
		ok = false;
		rc = 0;   /* this result is the reason */
		break;
	}
	if (rc < 0) msg_printf(why, n, "%s", err_msg());
	free(rep);
	return ok;
}

static const struct { const char *rel; enum pe_kind kind; } kernel_files[] = {
	{ "System32\\ntoskrnl.exe", KIND_NTOSKRNL },
	{ "System32\\hal.dll", KIND_HAL },
	{ "System32\\drivers\\acpi.sys", KIND_ACPI },
};

static void check_patches(struct vctx *c)
{
	if (!c->vol) { set(c, C_PATCHES, false, "no Windows volume"); return; }
	if (!c->version) { set(c, C_PATCHES, false, "kernel version unknown"); return; }
	if (!rules_needs_patches(c->version)) { set(c, C_PATCHES, true, "kernel %s: no patch needed", c->r->kernel_version); return; }
	for (size_t i = 0; i < 3; i++) {
		char path[256], why[300];
		if (sys_path(c, kernel_files[i].rel, path, sizeof path) < 0) { set(c, C_PATCHES, false, "%s", err_msg()); return; }
		struct pe *pe = read_pe(c, path);
		if (!pe) { set(c, C_PATCHES, false, "%s: %s", path, err_msg()); return; }
		bool ok = patches_applied(pe, kernel_files[i].kind, c->version, why, sizeof why);
		pe_free(pe);
		if (!ok) { set(c, C_PATCHES, false, "%s: %s", path, why); return; }
	}
	set(c, C_PATCHES, true, "kernel %s: ntoskrnl, hal, acpi patched", c->r->kernel_version);
}

static void check_checksums(struct vctx *c)
{
	if (!c->vol) { set(c, C_CHECKSUMS, false, "no Windows volume"); return; }
	char kernel[3][256];
	const char *paths[4];
	size_t n = 0;
	for (size_t i = 0; i < 3; i++, n++) {
		if (sys_path(c, kernel_files[i].rel, kernel[i], sizeof kernel[i]) < 0) { set(c, C_CHECKSUMS, false, "%s", err_msg()); return; }
		paths[n] = kernel[i];
	}
	if (has_loader_path(c) && c->win && c->vol) paths[n++] = c->loader_path;
	for (size_t i = 0; i < n; i++) {
		struct pe *pe = read_pe(c, paths[i]);
		if (!pe) { set(c, C_CHECKSUMS, false, "%s: %s", paths[i], err_msg()); return; }
		bool ok = pe_checksum_valid(pe);
		uint32_t stored = pe->checksum, want = pe_checksum_compute(pe->data, pe->len, pe->checksum_off);
		pe_free(pe);
		if (!ok) { set(c, C_CHECKSUMS, false, "%s: checksum 0x%08x, computed 0x%08x", paths[i], stored, want); return; }
	}
	set(c, C_CHECKSUMS, true, "%zu files", n);
}

static void check_loader_integrity(struct vctx *c)
{
	char why[300];
	if (!rules_needs_patches(c->version)) { set(c, C_LOADER_INTEGRITY, true, "kernel %s: the signed winload.efi is used", c->r->kernel_version); return; }
	if (!c->have_loader || !has_loader_path(c)) { set(c, C_LOADER_INTEGRITY, false, "no loader entry"); return; }
	bool nic = false;
	if (bcd_get_boolean(c->bcd, &c->loader, BCDE_LIB_NO_INTEGRITY_CHECKS, &nic) != 0 || !nic) {
		set(c, C_LOADER_INTEGRITY, false, "nointegritychecks is not set on the loader entry: the boot manager refuses a patched winload");
		return;
	}
	struct pe *pe = read_pe(c, c->loader_path);
	if (!pe) { set(c, C_LOADER_INTEGRITY, false, "%s: %s", c->loader_path, err_msg()); return; }
	bool ok = patches_applied(pe, KIND_WINLOAD, c->version, why, sizeof why);
	pe_free(pe);
	if (!ok) { set(c, C_LOADER_INTEGRITY, false, "%s: %s (winload refuses the patched kernel)", c->loader_path, why); return; }
	set(c, C_LOADER_INTEGRITY, true, "%s patched, nointegritychecks set", c->loader_path);
}

/* ---- driver ---- */

/* ---- parent of a differencing disk ---- */

/* A differencing disk reads right only over the parent it was made from,
 * unchanged since (MS-VHDX 2.6.2.6.3 parent_linkage = the parent's
 * DataWriteGuid). A missing, changed, looping or unreadable parent has
 * already failed image_open with the message inspect, bcd and convert
 * give (disk.c: one cause, one status and message, man page EXIT STATUS);
 * what is left here: the parent found only by its name beside the child,
 * which Hyper-V does not look for. k says which parent it needs. */
_Static_assert(C_COUNT + 1 <= VERIFY_MAX_CHECKS, "room for the parent-linkage check");

static int check_parent(const char *path, const struct disk_info *di, struct verify_check *k)
{
	char hs[GUID_STR_LEN + 1];
	k->id = rules_parent_linkage.id;   /* rules.h: the plan's differencing blockers enforce it */
	k->what = rules_parent_linkage.what;
	if (di->parent_by_name)
		/* MS-VHDX 2.6.2.6: Hyper-V opens the parent where relative_path
		 * (then volume_path, absolute_win32_path) leads; a same-named file
		 * beside the child is read by gen2prep, never by Hyper-V */
		return err_set(E_NOTFOUND, "%s: records its parent as '%s' and nothing is there (a file of that name beside it, '%s', "
			       "was read, but Hyper-V follows the recorded path): put the parent back or make the child again",
			       path, di->parent_locator, di->parent_path);
	msg_printf(k->detail, sizeof k->detail, "parent '%s' (DataWriteGuid {%s}); it must stay unchanged", di->parent_path,
		   guid_to_str(&di->parent_linkage, hs));
	k->pass = true;
	return 0;
}

static void vctx_free(struct vctx *c)
{
	if (c->system) hive_close(c->system);
	if (c->vol) ntfs_close(c->vol);
	if (c->bcd) bcd_free(c->bcd);
	if (c->fat) fat32_close(c->fat);
	if (c->ov) overlay_free(c->ov);
	if (c->disk) disk_close(c->disk);
	free(c->loader_path);
	free(c->sysroot);
}

int verify_image(const char *path, struct verify_result *r)
{
	memset(r, 0, sizeof *r);
	struct vctx c = { .r = r };
	struct verify_check parent = { 0 };
	c.ov = image_open(path, &c.disk);   /* the one way to open an image (image.h) */
	if (!c.ov) return -1;
	bool diff = disk_info(c.disk)->parent_path != NULL;
	if (diff && check_parent(path, disk_info(c.disk), &parent) < 0) {
		vctx_free(&c);
		return -1;
	}
	r->n = C_COUNT;
	for (int i = 0; i < C_COUNT; i++) {
		r->checks[i].id = rules_table[i].id;
		r->checks[i].what = rules_table[i].what;
	}
	check_table(&c);
	check_esp(&c);
	check_fat(&c);
	check_boot_files(&c);
	check_bcd(&c);
	check_loader(&c);
	find_windows_fallback(&c);
	if (c.win) r->windows_partition = c.win->number;
	find_version(&c);
	check_hive(&c);
	check_boot_start(&c);
	check_fwdev(&c);
	check_mounted(&c);
	check_patches(&c);
	check_checksums(&c);
	check_loader_integrity(&c);
	if (diff) r->checks[r->n++] = parent;
	r->ready = true;
	for (size_t i = 0; i < r->n; i++) r->ready &= r->checks[i].pass;
	vctx_free(&c);
	err_clear();
	return 0;
}

void *verify_to_json(const struct verify_result *r)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < r->n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:b, s:o, s:o}", "id", r->checks[i].id, "pass", r->checks[i].pass,
						     "detail", json_text(r->checks[i].detail), "what", json_text(r->checks[i].what)));
	/* a value not found (no kernel read, no ESP, no Windows partition) is
	 * null, not "" or 0 (man page, JSON OUTPUT: absent values are null) */
	json_t *o = json_object();
	json_object_set_new(o, "ready", json_boolean(r->ready));
	json_object_set_new(o, "kernel_version", r->kernel_version[0] ? json_text(r->kernel_version) : json_null());
	json_object_set_new(o, "esp_partition", r->esp_partition ? json_integer(r->esp_partition) : json_null());
	json_object_set_new(o, "windows_partition",
			    r->windows_partition ? json_integer(r->windows_partition) : json_null());
	json_object_set_new(o, "checks", arr);
	return o;
}
