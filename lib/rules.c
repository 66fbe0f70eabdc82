/* rules.c - see rules.h */
#include "rules.h"
#include "fat32.h"
#include "mounted_format.h"
#include "partition.h"
#include "pe.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MIB (1ULL << 20)

static uint64_t round_mib(uint64_t v) { return (v + MIB - 1) / MIB * MIB; }

uint64_t rules_esp_min_size(uint32_t ss)
{
	uint64_t fat_min = round_mib(fat32_min_size(ss));
	/* Microsoft Learn, UEFI/GPT partitions: 260 MB on 4Kn drives */
	uint64_t windows_min = ss >= 4096 ? 260 * MIB : 0;
	return fat_min > windows_min ? fat_min : windows_min;
}

uint64_t rules_esp_default_size(uint32_t ss)
{
	/* the article's (and Windows setup's) 100 MiB, unless the sector size needs more */
	uint64_t min = rules_esp_min_size(ss);
	return min > 100 * MIB ? min : 100 * MIB;
}

bool rules_esp_geometry(uint64_t size, uint32_t ss, uint32_t *clusters, uint32_t *cluster_bytes, char *why, size_t n)
{
	if (fat32_geometry(size, ss, clusters, cluster_bytes) == 0) return true;
	msg_printf(why, n, "a %llu MiB ESP with %u-byte sectors cannot hold FAT32 (%s); it needs at least %llu MiB",
		 (unsigned long long)(size >> 20), ss, err_msg(), (unsigned long long)(rules_esp_min_size(ss) >> 20));
	err_clear();
	return false;
}

bool rules_control_set_boots_gen2(int vmbus_start, int storvsc_start)
{
	return vmbus_start >= 0 && storvsc_start >= 0;
}

const struct rule rules_table[RULE_COUNT] = {
	[RULE_PARTITION_TABLE] = { "partition-table", "partition table valid (GPT headers, CRCs and backup, or MBR)",
				   "writes the table it planned (partition-past-end, partition-overlap, no-room, ... block a table it cannot write)" },
	[RULE_ESP] = { "esp", "exactly one EFI system partition", "places one ESP (esp-exists, esp-no-room)" },
	[RULE_ESP_FILESYSTEM] = { "esp-filesystem", "FAT32 structure of the ESP sane, its size holds FAT32 for the sector size",
				  "rules_esp_geometry on the planned size (esp-too-small, usage error for --esp-size)" },
	[RULE_BOOT_FILES] = { "boot-files", "\\EFI\\Boot\\bootx64.efi and \\EFI\\Microsoft\\Boot\\bootmgfw.efi are x64 EFI applications",
			      "both in the ESP file list, every .efi checked (no-boot-files, boot-file-not-pe, boot-file-unreadable)" },
	[RULE_BCD] = { "bcd", "BCD store present, parseable, {bootmgr} on the ESP with a default entry",
		       "the BCD object graph: {bootmgr} device = the ESP, default = the loader" },
	[RULE_BCD_LOADER] = { "bcd-loader", "default loader's device and osdevice are a partition of this disk holding its path",
			      "the graph's loader device/osdevice = the Windows partition, path from the volume" },
	[RULE_SYSTEM_HIVE] = { "system-hive", "SYSTEM hive present and clean", "writes the hive back clean (hive-dirty blocks a dirty one)" },
	[RULE_BOOT_START] = { "boot-start", "vmbus, storvsc (and for 6.0/6.1 Ntfs) start at boot in every control set that has them, the current one among them",
			      "Start 0 edits per control set that boots Generation 2 (no-integration-services)" },
	[RULE_FIRMWARE_BOOT_DEVICE] = { "firmware-boot-device", "FirmwareBootDevice names the ESP in every control set with vmbus and storvsc",
					"FirmwareBootDevice edit per such control set (rules_arc_name)" },
	[RULE_MOUNTED_DEVICES] = { "mounted-devices", "MountedDevices names the Windows volume as this layout does",
				   "MountedDevices edits to the new layout's form (rules_mounted_device_value)" },
	[RULE_PATCHES] = { "patches", "6.0/6.1: every required kernel, HAL and ACPI patch applied",
			   "patch targets applied in memory first (patch-site, unsupported-version)" },
	[RULE_CHECKSUMS] = { "checksums", "PE checksums of the kernel, HAL, ACPI driver and loader valid", "patch_apply rewrites each checksum" },
	[RULE_LOADER_INTEGRITY] = { "loader-integrity", "6.0/6.1: loader entry names the patched winload copy with nointegritychecks",
				    "winload copy patched, loader path and nointegritychecks in the graph" },
};

const struct rule rules_parent_linkage = {
	"parent-linkage", "differencing disk: its parent found, and unchanged since the child was made (DataWriteGuid = parent_linkage)",
	"--differencing only over a VHDX input of the same size (output-differencing-parent, output-differencing-grows)" };

const char *const rules_boot_apps[RULES_NBOOT_APPS] = { "EFI/Boot/bootx64.efi", "EFI/Microsoft/Boot/bootmgfw.efi" };

bool rules_efi_application(const uint8_t *d, size_t n, char *why, size_t wn)
{
	struct pe *pe = pe_parse(d, n);
	if (!pe) {
		snprintf(why, wn, "%s", err_msg());
		err_clear();
		return false;
	}
	bool ok = false;
	if (!pe->pe32plus || pe->machine != PE_MACHINE_AMD64)
		snprintf(why, wn, "a %s image for machine 0x%04X, not x64", pe->pe32plus ? "PE32+" : "PE32", pe->machine);
	else if (pe->subsystem != PE_SUBSYSTEM_EFI_APPLICATION)
		snprintf(why, wn, "subsystem %u, not an EFI application (10)", pe->subsystem);
	else
		ok = true;
	pe_free(pe);
	return ok;
}

bool rules_needs_patches(unsigned version)
{
	return version < 0x602;
}

const char *const rules_boot_services[RULES_NBOOT_SERVICES] = { "Ntfs", "vmbus", "storvsc" };

bool rules_boot_start_required(const char *service, unsigned version)
{
	if (!strcasecmp(service, "Ntfs")) return version && rules_needs_patches(version);
	return true;
}

void rules_arc_name(int esp_number, char *out, size_t n)
{
	snprintf(out, n, "multi(0)disk(0)rdisk(0)partition(%d)", esp_number);
}

size_t rules_mounted_device_value(const struct ptable *t, const struct part *p, uint8_t out[24])
{
	/* the declared value layouts (mounted_format.h), as windows.c reads them */
	if (t->type == PT_GPT) {
		struct mounted_gpt g;
		memcpy(g.prefix, MOUNTED_GPT_PREFIX, sizeof g.prefix);
		memcpy(g.partition_guid, p->part_guid.b, sizeof g.partition_guid);
		memcpy(out, &g, sizeof g);
		return sizeof g;
	}
	struct mounted_mbr m;
	le32_set(&m.disk_signature, t->disk_signature);
	le64_set(&m.partition_offset, p->start);
	memcpy(out, &m, sizeof m);
	return sizeof m;
}
