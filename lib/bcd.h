/* bcd.h - Boot Configuration Data stores: a registry hive (hive.h) with
 * Objects\{guid}\Elements\<type>\Element (doc/formats.md, BCD). Only this
 * module knows element encodings, names and the device value layout.
 */
#ifndef GEN2PREP_BCD_H
#define GEN2PREP_BCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "guid.h"

struct bcd;
struct hive;

/* Object types */
#define BCD_TYPE_BOOTMGR          0x10100002u
#define BCD_TYPE_FWBOOTMGR        0x10100001u
#define BCD_TYPE_OSLOADER         0x10200003u
#define BCD_TYPE_RESUME           0x10200004u
#define BCD_TYPE_MEMDIAG          0x10200005u
#define BCD_TYPE_LIB_SETTINGS     0x20100000u
#define BCD_TYPE_LOADER_SETTINGS  0x20200003u
#define BCD_TYPE_RESUME_SETTINGS  0x20200004u

/* Elements used by convert (doc/formats.md, BCD) */
#define BCDE_LIB_APPLICATION_DEVICE   0x11000001u
#define BCDE_LIB_APPLICATION_PATH     0x12000002u
#define BCDE_LIB_DESCRIPTION          0x12000004u
#define BCDE_LIB_PREFERRED_LOCALE     0x12000005u
#define BCDE_LIB_INHERITED_OBJECTS    0x14000006u
#define BCDE_LIB_BOOTDEBUG            0x16000010u
#define BCDE_LIB_DEBUGGER_TYPE        0x15000011u
#define BCDE_LIB_SERIAL_PORT          0x15000013u
#define BCDE_LIB_BAUDRATE             0x15000014u
#define BCDE_LIB_DEBUG_START_POLICY   0x15000018u
#define BCDE_LIB_NO_INTEGRITY_CHECKS  0x16000048u
#define BCDE_LIB_TESTSIGNING          0x16000049u
#define BCDE_BOOTMGR_DISPLAY_ORDER    0x24000001u
#define BCDE_BOOTMGR_DEFAULT          0x23000003u
#define BCDE_BOOTMGR_TIMEOUT          0x25000004u
#define BCDE_BOOTMGR_TOOLS_ORDER      0x24000010u
#define BCDE_OS_DEVICE                0x21000001u
#define BCDE_OS_SYSTEM_ROOT           0x22000002u
#define BCDE_OS_NX                    0x25000020u
#define BCDE_OS_SOS                   0x26000091u
#define BCDE_OS_DEBUG                 0x260000a0u
/* Added for bcdboot parity (MS BcdLibrary/BcdBootMgr/BcdOSLoader/
 * BcdResumeElementTypes; values as in ../samples/bcd/win10-uefi.BCD). */
#define BCDE_LIB_ALLOW_BAD_MEMORY_ACCESS 0x1600000bu
#define BCDE_LIB_BOOTEMS              0x16000020u
#define BCDE_BOOTMGR_RESUME_OBJECT    0x23000006u
#define BCDE_OS_RESUME_OBJECT         0x23000003u
#define BCDE_OS_BOOTMENU_POLICY       0x250000c2u
#define BCDE_OS_HYPERVISOR_DEBUG_TYPE 0x250000f3u
#define BCDE_OS_HYPERVISOR_DEBUG_PORT 0x250000f4u
#define BCDE_OS_HYPERVISOR_BAUDRATE   0x250000f5u
#define BCDE_RESUME_FILE_DEVICE       0x21000001u
#define BCDE_RESUME_FILE_PATH         0x22000002u
#define BCDE_RESUME_DEBUG_OPTION_ENABLED 0x26000006u
#define BCDE_RESUME_BOOTMENU_POLICY   0x25000008u

enum bcd_device_kind {
	BCD_DEV_PARTITION,        /* qualified partition (type 6), GPT or MBR form */
	BCD_DEV_BOOT,             /* "boot" */
	BCD_DEV_UNKNOWN,          /* anything else (kept as raw bytes) */
	BCD_DEV_RAMDISK,          /* ramdisk=[parent]path,{options} (WinRE) */
};

struct bcd_device {
	enum bcd_device_kind kind;
	bool gpt;                 /* partition style */
	struct guid part_guid, disk_guid;  /* GPT */
	uint64_t part_offset;     /* MBR: partition byte offset */
	uint32_t disk_signature;  /* MBR */
	/* Added by bcd: decoding details of values Windows writes. */
	struct guid options;      /* additional options object (first 16 bytes) */
	uint32_t raw_type;        /* BCD_DEV_UNKNOWN: the device type field */
	enum bcd_device_kind parent_kind; /* BCD_DEV_RAMDISK: the image's device
	                           * (partition fields above describe it) */
	char path[260];           /* BCD_DEV_RAMDISK: image path, UTF-8 */
};

/* The 88-byte partition device value as bcdboot writes it (doc/formats.md,
 * BCD partition device). */
#define BCD_DEVICE_PARTITION_LEN 88
int bcd_device_encode(const struct bcd_device *d, uint8_t out[BCD_DEVICE_PARTITION_LEN]);
int bcd_device_decode(const uint8_t *p, size_t len, struct bcd_device *out);
/* The partition of t a partition device names: GPT form by disk GUID +
 * partition GUID, MBR form by disk signature + byte offset (doc/formats.md,
 * BCD partition device); NULL when it names none of t's (or is not a partition device). */
struct ptable;
struct part;
const struct part *bcd_device_partition(const struct bcd_device *d, const struct ptable *t);
/* "partition=GPT disk {..} partition {..}" / "partition=MBR disk 0x.. offset N":
 * a partition device named by its identity, for namers that find no match.
 * n >= BCD_IDENTITY_TEXT_MAX (the GPT form is 106 chars): never cut. */
#define BCD_IDENTITY_TEXT_MAX 128
void bcd_partition_identity_text(const struct bcd_device *d, char *out, size_t n);

/* Well-known object aliases ("{bootmgr}", ...) <-> GUIDs. */
int bcd_alias_guid(const char *alias, struct guid *out);   /* -1 unknown */
const char *bcd_guid_alias(const struct guid *g);          /* NULL if none */
/* bcdedit name of an element type ("device", "path", ...); NULL if unknown. */
const char *bcd_element_name(uint32_t type, uint32_t object_type);

struct bcd *bcd_new(void);                              /* empty store */
struct bcd *bcd_open(const uint8_t *data, size_t len);  /* NULL + err */
void bcd_free(struct bcd *b);
int bcd_serialize(struct bcd *b, uint8_t **data, size_t *len);

int bcd_add_object(struct bcd *b, const struct guid *id, uint32_t type);
int bcd_set_device(struct bcd *b, const struct guid *obj, uint32_t elem, const struct bcd_device *d);
int bcd_set_string(struct bcd *b, const struct guid *obj, uint32_t elem, const char *s);
int bcd_set_object(struct bcd *b, const struct guid *obj, uint32_t elem, const struct guid *v);
int bcd_set_objects(struct bcd *b, const struct guid *obj, uint32_t elem, const struct guid *v, size_t n);
int bcd_set_integer(struct bcd *b, const struct guid *obj, uint32_t elem, uint64_t v);
int bcd_set_boolean(struct bcd *b, const struct guid *obj, uint32_t elem, bool v);

/* Getters: 0 found, 1 missing, -1 error. */
int bcd_get_object_type(struct bcd *b, const struct guid *obj, uint32_t *type);
int bcd_get_device(struct bcd *b, const struct guid *obj, uint32_t elem, struct bcd_device *d);
int bcd_get_string(struct bcd *b, const struct guid *obj, uint32_t elem, char **s);
int bcd_get_object(struct bcd *b, const struct guid *obj, uint32_t elem, struct guid *v);
int bcd_get_integer(struct bcd *b, const struct guid *obj, uint32_t elem, uint64_t *v);
int bcd_get_boolean(struct bcd *b, const struct guid *obj, uint32_t elem, bool *v);
/* Object ids in the store (sorted by text form). */
int bcd_objects(struct bcd *b, struct guid **ids, size_t *count);

/* How device elements are named when printing: a callback that turns a
 * device into "partition=\Device\HarddiskVolume1"-like text; NULL prints
 * "partition=GPT disk {...} partition {...}" / "MBR disk 0x... offset ...". */
typedef void (*bcd_device_namer)(void *ctx, const struct bcd_device *d, char *out, size_t n);
/* Text like `bcdedit /enum all`. */
int bcd_print(struct bcd *b, FILE *f, bcd_device_namer namer, void *ctx);
/* JSON (jansson json_t *), returned as void * to keep jansson out of this header. */
void *bcd_to_json(struct bcd *b, bcd_device_namer namer, void *ctx);

#endif
