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
#define RULE(e, id, what, how) [RULE_##e] = { id, what, how },
#include "rules_table.def"
#undef RULE
};

/* every rule of the enum has its row (a missing one would be NULL) */
enum {
	RULES_DEF_ROWS = 0
#define RULE(e, id, what, how) + 1
#include "rules_table.def"
#undef RULE
};
_Static_assert((int)RULES_DEF_ROWS == (int)RULE_COUNT, "rules_table.def: one row per rule");

const struct rule rules_parent_linkage = {
	"parent-linkage", "differencing disk: its parent found, and unchanged since the child was made (DataWriteGuid = parent_linkage)",
	"--differencing only over a VHDX input of the same size (output-differencing-parent, output-differencing-grows)" };

const char *const rules_boot_apps[RULES_NBOOT_APPS] = { "EFI/Boot/bootx64.efi", "EFI/Microsoft/Boot/bootmgfw.efi" };

bool rules_efi_application(const uint8_t *d, size_t n, char *why, size_t wn)
{
	struct pe *pe = pe_parse(d, n);
	if (!pe) {
		msg_printf(why, wn, "%s", err_msg());
		err_clear();
		return false;
	}
	bool ok = false;
	if (!pe->pe32plus || pe->machine != PE_MACHINE_AMD64)
		msg_printf(why, wn, "a %s image for machine 0x%04X, not x64", pe->pe32plus ? "PE32+" : "PE32", pe->machine);
	else if (pe->subsystem != PE_SUBSYSTEM_EFI_APPLICATION)
		msg_printf(why, wn, "subsystem %u, not an EFI application (10)", pe->subsystem);
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
	snprintf(out, n, "multi(0)disk(0)rdisk(0)partition(%d)", esp_number);   /* fits: 45 chars for any int, n >= 64 */
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
