/* rules.c - see rules.h */
#include "rules.h"
#include "fat32.h"
#include "util.h"

#include <stdio.h>

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
	snprintf(why, n, "a %llu MiB ESP with %u-byte sectors cannot hold FAT32 (%s); it needs at least %llu MiB",
		 (unsigned long long)(size >> 20), ss, err_msg(), (unsigned long long)(rules_esp_min_size(ss) >> 20));
	err_clear();
	return false;
}

bool rules_control_set_boots_gen2(int vmbus_start, int storvsc_start)
{
	return vmbus_start >= 0 && storvsc_start >= 0;
}
