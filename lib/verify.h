/* verify.h - check a disk image the way UEFI firmware and Windows will read
 * it (issue 5): partition table, ESP, FAT32, boot files, BCD, the loader
 * entry and the partition it names, SYSTEM hive, MountedDevices, and for
 * kernels 6.0/6.1 the patches, checksums and the patched winload copy.
 * Follows the boot chain (table -> ESP -> BCD -> loader -> Windows volume)
 * and works on any disk, not only those convert wrote.
 */
#ifndef GEN2PREP_VERIFY_H
#define GEN2PREP_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

struct verify_check {
	const char *id;               /* stable: "partition-table", "esp", ... */
	const char *what;             /* one line: what it checks */
	bool pass;
	char detail[1024];            /* why it failed, or what was found */
};

#define VERIFY_MAX_CHECKS 16

struct verify_result {
	size_t n;
	struct verify_check checks[VERIFY_MAX_CHECKS];
	bool ready;                   /* every check passed */
	char kernel_version[16];      /* "6.1", "" when not found */
	int esp_partition, windows_partition;
};

/* Runs every check on the image at path (opened read-only). -1 only when
 * the image cannot be opened at all (err set); content problems are
 * failed checks. */
int verify_image(const char *path, struct verify_result *r);
void *verify_to_json(const struct verify_result *r);  /* json_t * */

#endif
