/* windows.h - find and describe the Windows installation on a disk:
 * partitions and their roles, the Windows volume, versions (SOFTWARE hive),
 * architecture and file versions (PE), services and boot devices (SYSTEM
 * hive), and the blockers that forbid a conversion. Pure data out: the
 * INSPECTION of DESIGN.md's data flow.
 */
#ifndef GEN2PREP_WINDOWS_H
#define GEN2PREP_WINDOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "partition.h"

struct overlay;

enum part_role { ROLE_UNKNOWN = 0, ROLE_SYSTEM_RESERVED, ROLE_WINDOWS, ROLE_ESP, ROLE_RECOVERY, ROLE_MSR, ROLE_DATA, ROLE_EXTENDED };
const char *part_role_name(enum part_role r);

struct part_info {
	const struct part *part;     /* into inspection.table */
	const char *filesystem;      /* "ntfs", "fat32", "fat16", "bitlocker", "unknown", "" (none) */
	char label[128 * 3 + 1];     /* NTFS label: NTFS_LABEL_MAX_UTF8 + 1 (ntfs.h) */
	enum part_role role;
	bool ntfs_dirty, ntfs_hibernated, bitlocker;
	const char *logfile;         /* NTFS $LogFile: "clean", "unclean", "cached", "damaged"; "" not probed */
	uint64_t ntfs_bytes;         /* NTFS boot sector: total sectors x bytes per sector, 0 if not NTFS */
	bool reusable_as_esp;        /* System Reserved holding only boot files */
	char not_reusable_why[256];
};

enum winfile { WF_NTOSKRNL, WF_HAL, WF_ACPI, WF_VMBUS, WF_STORVSC, WF_WINLOAD_EFI, WF_BOOTMGFW_EFI, WF_COUNT };
extern const char *const winfile_name[WF_COUNT];   /* "ntoskrnl.exe", ... */
extern const char *const winfile_path[WF_COUNT];   /* "\\Windows\\System32\\ntoskrnl.exe", ... */

struct winfile_info {
	bool present;
	char path[256];              /* as stored on disk (case) */
	char version[32];            /* "6.1.7601.17514", "" if no resource */
	uint16_t machine;
	uint64_t size;
	char error[200];             /* why a present file could not be read or parsed, "" if it could */
};

struct control_set {
	char name[32];               /* "ControlSet001" */
	int ntfs_start, vmbus_start, storvsc_start, hyperkbd_start; /* -1 absent */
	char firmware_boot_device[128], system_boot_device[128];
};

struct mounted_device {
	char name[128];              /* "\\DosDevices\\C:" */
	enum { MD_MBR, MD_GPT, MD_OTHER } kind;
	uint32_t signature; uint64_t offset;   /* MD_MBR */
	struct guid part_guid;                 /* MD_GPT */
	int partition;               /* matching partition number, 0 if none */
};

enum blocker_code {
	BLK_NO_PARTITION_TABLE, BLK_NO_WINDOWS, BLK_32BIT, BLK_KERNEL_5X, BLK_UNSUPPORTED_VERSION,
	BLK_HIBERNATED, BLK_NTFS_DIRTY, BLK_BITLOCKER, BLK_HIVE_DIRTY, BLK_NO_INTEGRATION_SERVICES,
	BLK_PARTITION_PAST_END, BLK_PARTITION_OUTSIDE_EXTENDED, BLK_PARTITION_OVERLAP, BLK_DYNAMIC_DISK,
	BLK_SYSTEM_DRIVE, BLK_NTFS_UNCLEAN, BLK_HIVE_NEEDS_RECOVERY, BLK_SYSTEM_HIVE_UNREADABLE,
	BLK_MOUNTED_TOO_MANY, BLK_CONTROL_SETS_TOO_MANY, BLK_NAME_TOO_LONG,
	BLK_COUNT
};
extern const char *const blocker_id[BLK_COUNT];  /* stable codes: "no-windows", ... */

/* code: a blocker_code, or for warnings a value >= BLK_COUNT; finding_id()
 * gives the stable text code of either ("hive-dirty", "old-integration-services"). */
/* message: 1024 bytes hold every finding's text whole (the longest, a
 * partition table against the disk, is under 600) */
struct finding { int code; bool warning; char message[1024]; };
const char *finding_id(const struct finding *f);

struct inspection {
	struct ptable table;
	size_t nparts;
	struct part_info parts[PART_MAX];
	bool windows_found;
	int windows_partition;       /* partition number */
	char product_name[128], edition[64], service_pack[64], current_version[16], build[16];
	char version[32];            /* "6.1.7601" */
	unsigned kernel_version;     /* (major << 8) | minor from ntoskrnl.exe, else from SOFTWARE */
	const char *architecture;    /* "x64", "x86", "arm64", "" */
	struct winfile_info files[WF_COUNT];
	char integration_services[32];  /* vmbus.sys version */
	bool system_hive_dirty;
	bool system_hive_read;       /* control sets and MountedDevices below come from it */
	char system_hive_state[16];  /* "clean", "dirty", "torn", "unreadable", "" (not looked at) */
	char system_root[64];        /* SOFTWARE CurrentVersion SystemRoot, "C:\\Windows" */
	int current_control_set;     /* Select\Current */
	size_t ncontrol_sets;
	struct control_set control_sets[8];
	size_t nmounted;
	struct mounted_device mounted[64];
	char locale[16];             /* "en-US" from the boot file language folders / SYSTEM */
	/* What each kernel patch of the catalog would do (patch_apply dry run
	 * on the files above), for kernels 6.0/6.1 only; npatches 0 otherwise. */
	size_t npatches;
	struct patch_status_info {
		char id[48];             /* catalog id */
		char file[32];           /* winfile_name of the binary */
		int status;              /* enum patch_status (patch.h) */
		char message[256];       /* patch_report's message, whole */
	} patches[32];
	size_t nfindings;
	struct finding findings[32]; /* blockers and warnings */
};

/* Fills ins from the overlay (read-only). -1 only on I/O errors: problems
 * with the content are findings, not errors. */
int windows_inspect(struct overlay *o, struct inspection *ins);
bool inspection_convertible(const struct inspection *ins);
/* What windows_inspect reads from the SYSTEM hive (control sets, services,
 * MountedDevices matched against ins->table, locale; the hive-dirty
 * finding) and the SOFTWARE hive (version strings), from hive bytes instead
 * of a volume. Either may be NULL. Problems are findings, as in
 * windows_inspect. The seam fuzz/fuzz_hive.c drives. */
void windows_read_hives(const uint8_t *system, size_t slen, const uint8_t *software, size_t swlen,
			struct inspection *ins);
const struct part_info *inspection_part(const struct inspection *ins, int number);

#endif
