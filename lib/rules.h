/* rules.h - the rules a Generation 2 disk must follow that both the plan
 * (plan.c: what convert will do, decided before anything is written) and
 * verify (verify.c: what a finished image is checked against) apply. One
 * definition each, so a fresh conversion cannot fail verify on a rule the
 * plan judged differently (issue 8).
 */
#ifndef GEN2PREP_RULES_H
#define GEN2PREP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ESP size Windows setup uses, and the least an appended ESP or
 * --esp-size may be, for a disk of logical sector size ss (bytes):
 * 100 MiB, and 260 MiB on 4096-byte-sector disks, where FAT32 (1 sector
 * per cluster) needs at least 65,525 clusters of 4 KiB ("Configure
 * UEFI/GPT-based hard drive partitions", Microsoft Learn: "For Advanced
 * Format 4K Native drives (4-KB-per-sector) drives, the minimum size is
 * 260 MB, due to a limitation of the FAT32 file format"). Never below the
 * FAT32 minimum of fat32_min_size(ss). Bytes, a multiple of 1 MiB. */
uint64_t rules_esp_default_size(uint32_t ss);
/* The least an ESP that is appended or given by --esp-size may be. */
uint64_t rules_esp_min_size(uint32_t ss);

/* Whether a FAT32 volume of size bytes with ss-byte sectors can be built
 * (fatgen103: at least 65,525 clusters). On false, why holds the reason
 * (cluster count and the minimum). clusters/cluster_bytes may be NULL. */
bool rules_esp_geometry(uint64_t size, uint32_t ss, uint32_t *clusters, uint32_t *cluster_bytes, char *why, size_t n);

/* A control set can boot in Generation 2 only when both the vmbus and the
 * storvsc services exist in it (their Start values, -1 = absent): the
 * boot disk is on VMBus SCSI (doc/patches.md, Registry edits). Sets that can
 * are edited by convert and checked by verify; the others are warned
 * about by both and left alone. */
bool rules_control_set_boots_gen2(int vmbus_start, int storvsc_start);

/* ---- the rule table: what a Generation 2 output must satisfy ----
 *
 * One entry per rule that can be checked on an output image. verify runs
 * one check per entry (its id and text come from here); the plan enforces
 * each before anything is written, by the blockers named in plan or by
 * what it writes, using the same predicates below. */
enum rule_id {
	RULE_PARTITION_TABLE, RULE_ESP, RULE_ESP_FILESYSTEM, RULE_BOOT_FILES, RULE_BCD, RULE_BCD_LOADER,
	RULE_SYSTEM_HIVE, RULE_BOOT_START, RULE_FIRMWARE_BOOT_DEVICE, RULE_MOUNTED_DEVICES, RULE_PATCHES,
	RULE_CHECKSUMS, RULE_LOADER_INTEGRITY, RULE_COUNT
};
struct rule {
	const char *id;               /* verify's check id ("esp-filesystem") */
	const char *what;             /* the rule as verify states it */
	const char *plan;             /* how the plan enforces it (blocker ids, what it writes) */
};
extern const struct rule rules_table[RULE_COUNT];
/* Checked only on a differencing disk (verify adds it after the others). */
extern const struct rule rules_parent_linkage;

/* The BCD store on the ESP (FAT32 path, '/'). */
#define RULES_BCD_PATH "EFI/Microsoft/Boot/BCD"
/* The ESP files every output must have, x64 EFI applications: the
 * fallback path of UEFI 2.x 3.5.1.1 and the Windows Boot Manager. */
#define RULES_NBOOT_APPS 2
extern const char *const rules_boot_apps[RULES_NBOOT_APPS];
/* Whether d[n] is an image x64 UEFI firmware starts: PE32+ (PE/COFF
 * "Optional Header", magic 0x20B), machine AMD64 (0x8664), subsystem
 * EFI_APPLICATION (10) - UEFI 2.x section 2.1.1. On false why says why. */
bool rules_efi_application(const uint8_t *d, size_t n, char *why, size_t wn);

/* Kernels 6.0 and 6.1 need the catalog's patches and a patched winload
 * copy with nointegritychecks; 6.2 and later none (doc/patches.md,
 * Versions). version = (major << 8) | minor. */
bool rules_needs_patches(unsigned version);

/* Services whose Start must be 0 (boot) in every control set that can
 * boot in Generation 2 (doc/patches.md, Registry edits): vmbus and storvsc
 * always, Ntfs on 6.0/6.1 (6.2+ loads its boot file system without it; the
 * plan sets it anyway, which verify accepts). */
#define RULES_NBOOT_SERVICES 3
extern const char *const rules_boot_services[RULES_NBOOT_SERVICES];   /* "Ntfs", "vmbus", "storvsc" */
bool rules_boot_start_required(const char *service, unsigned version);

/* FirmwareBootDevice: the ARC name of the ESP, N = its 1-based number in
 * table order (doc/formats.md, SYSTEM hive values), into out[n], n >= 64. */
void rules_arc_name(int esp_number, char *out, size_t n);

/* The MountedDevices value that names partition p of table t in t's style
 * (doc/formats.md, MountedDevices): MBR 12 bytes, signature (LE32) + byte
 * offset (LE64); GPT 24 bytes, "DMIO:ID:" + the partition GUID. Returns
 * the length written to out. */
struct ptable;
struct part;
size_t rules_mounted_device_value(const struct ptable *t, const struct part *p, uint8_t out[24]);

#endif
