/* system_hive.h - the SYSTEM hive edits of a conversion (Ntfs/vmbus/
 * storvsc boot start, FirmwareBootDevice, MountedDevices in GPT form)
 * applied with hive.h, from bytes to bytes. Below plan.h: the plan holds
 * these edits, this module knows nothing of the plan.
 */
#ifndef GEN2PREP_SYSTEM_HIVE_H
#define GEN2PREP_SYSTEM_HIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct plan_value_edit {          /* one SYSTEM hive value write */
	char key[160];                /* "ControlSet001\\Services\\Ntfs" */
	char value[128];              /* "Start" */
	uint32_t type;                /* REG_DWORD_, REG_SZ_, REG_BINARY_ */
	uint32_t dword;
	char str[160];
	uint8_t bin[32];
	size_t bin_len;
	uint32_t old_dword;           /* for the report; has_old when known */
	bool has_old;
	char why[96];
};


/* Applies n edits to the SYSTEM hive in (in, len) and returns the new hive
 * bytes (malloc'd) in *out. Refuses a hive whose sequence numbers differ
 * (E_BLOCKED: not written back cleanly) and checks that the result is clean
 * (equal sequence numbers) and reads back every value written. 0 or -1. */
int system_hive_apply(const uint8_t *in, size_t len, const struct plan_value_edit *edits, size_t n,
		      uint8_t **out, size_t *out_len);

#endif
