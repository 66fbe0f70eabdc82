/* system_hive.h - the SYSTEM hive edits of a conversion (plan.h
 * plan_value_edit: Ntfs/vmbus/storvsc boot start, FirmwareBootDevice,
 * MountedDevices in GPT form) applied with hive.h, from bytes to bytes.
 */
#ifndef GEN2PREP_SYSTEM_HIVE_H
#define GEN2PREP_SYSTEM_HIVE_H

#include <stddef.h>
#include <stdint.h>

struct plan_value_edit;

/* Applies n edits to the SYSTEM hive in (in, len) and returns the new hive
 * bytes (malloc'd) in *out. Refuses a hive whose sequence numbers differ
 * (E_BLOCKED: not written back cleanly) and checks that the result is clean
 * (equal sequence numbers) and reads back every value written. 0 or -1. */
int system_hive_apply(const uint8_t *in, size_t len, const struct plan_value_edit *edits, size_t n,
		      uint8_t **out, size_t *out_len);

#endif
