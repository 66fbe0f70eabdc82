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

#endif
