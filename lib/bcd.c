/* bcd.c - Boot Configuration Data stores over lib/hive.
 *
 * Layout (doc/formats.md, BCD): Description\KeyName
 * "BCD00000000", System / TreatAsSystem dwords;
 * Objects\{guid}\Description\Type (REG_DWORD) and
 * Objects\{guid}\Elements\<type, 8 lowercase hex>\Element. Element type bits
 * 24-27 give the value format, bits 28-31 the class (1 library,
 * 2 application, 3 device, 4 setup template); the application class's names
 * depend on the object's application type (low 20 bits of the object type:
 * 1 firmware boot manager, 2 boot manager, 3 OS loader, 4 resume, 5 memory
 * tester; inherit objects 0x2C?????? carry the same low bits). Element and
 * enum names are those `bcdedit /enum` prints, from the BcdLibraryElementTypes
 * / BcdBootMgrElementTypes / BcdOSLoaderElementTypes / BcdResumeElementTypes
 * / BcdMemDiagElementTypes / BcdDeviceObjectElementTypes documentation and
 * bcdedit's own output (values checked against the two sample stores).
 */
#include "bcd.h"
#include "json_text.h"
#include "bcd_format.h"
#include "partition.h"
#include "hive.h"
#include "util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct bcd {
	struct hive *h;
};

#define FMT_OF(t)   (((t) >> 24) & 0xfu)
#define CLASS_OF(t) (((t) >> 28) & 0xfu)
enum { F_DEVICE = 1, F_STRING, F_OBJECT, F_OBJLIST, F_INTEGER, F_BOOLEAN, F_INTLIST };

/* ---- well-known objects ------------------------------------------------- */

static const struct {
	const char *alias, *guid;
} aliases[] = {
	{ "{bootmgr}", "9dea862c-5cdd-4e70-acc1-f32b344d4795" },
	{ "{fwbootmgr}", "a5a30fa2-3d06-4e9f-b5f4-a01df9d1fcba" },
	{ "{memdiag}", "b2721d73-1db4-4c62-bf78-c548a880142d" },
	{ "{ntldr}", "466f5a88-0af2-4f76-9038-095b170dc21c" },
	{ "{current}", "fa926493-6f1c-4193-a414-58f0b2456d1e" },
	{ "{default}", "1cae1eb7-a0df-4d4d-9851-4860e34ef535" },
	{ "{globalsettings}", "7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e" },
	{ "{dbgsettings}", "4636856e-540f-4170-a130-a84776f4c654" },
	{ "{emssettings}", "0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9" },
	{ "{badmemory}", "5189b25c-5558-4bf2-bca4-289b11bd29e2" },
	{ "{bootloadersettings}", "6efb52bf-1766-41db-a6b3-0ee5eff72bd7" },
	{ "{hypervisorsettings}", "7ff607e0-4395-11db-b0de-0800200c9a66" },
	{ "{resumeloadersettings}", "1afa9c49-16ab-4a5c-901b-212802da9460" },
	{ "{kerneldbgsettings}", "313e8eed-7098-4586-a9bf-309c61f8d449" },
	{ "{ramdiskoptions}", "ae5534e0-a924-466c-b836-758539a3ee3a" },
};

int bcd_alias_guid(const char *alias, struct guid *out)
{
	for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
		if (!ascii_casecmp(alias, aliases[i].alias))
			return guid_from_str(aliases[i].guid, out);
	return -1;
}

const char *bcd_guid_alias(const struct guid *g)
{
	char s[GUID_STR_LEN + 1];
	guid_to_str(g, s);
	for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
		if (!ascii_casecmp(s, aliases[i].guid))
			return aliases[i].alias;
	return NULL;
}

/* ---- element names ------------------------------------------------------ */

struct ename {
	uint8_t set;                    /* enum ename_set */
	uint32_t type;
	const char *name;
};

enum ename_set { BCD_LIB, BCD_BOOTMGR, BCD_OSLOADER, BCD_RESUME, BCD_MEMDIAG, BCD_DEVICE };

static const struct ename names[] = {
#define BCD_NAME(set, type, name) { set, type, #name },
#include "bcd_names.def"
#undef BCD_NAME
};

static const char *lookup(enum ename_set set, uint32_t type)
{
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (names[i].set == set && names[i].type == type)
			return names[i].name;
	return NULL;
}

/* Application type of an object: low 20 bits for application (1) and
 * inherit (2) objects (BCD_OBJECT_DATATYPE). */
static uint32_t app_type(uint32_t object_type)
{
	uint32_t c = object_type >> 28;
	return (c == 1 || c == 2) ? (object_type & 0xfffffu) : 0;
}

const char *bcd_element_name(uint32_t type, uint32_t object_type)
{
	switch (CLASS_OF(type)) {
	case 1:
		return lookup(BCD_LIB, type);
	case 2:
		switch (app_type(object_type)) {
		case 1: case 2: return lookup(BCD_BOOTMGR, type);
		case 3: return lookup(BCD_OSLOADER, type);
		case 4: return lookup(BCD_RESUME, type);
		case 5: return lookup(BCD_MEMDIAG, type);
		}
		return NULL;
	case 3:
		return lookup(BCD_DEVICE, type);
	}
	return NULL;
}

/* bcdedit's words for enumerated integers. */
static const char *const debugtypes[] = { "Serial", "1394", "USB", "NET", "Local" };
static const char *const debugstarts[] = { "Active", "AutoEnable", "Disable" };
static const char *const nxpolicies[] = { "OptIn", "OptOut", "AlwaysOff", "AlwaysOn" };
static const char *const paepolicies[] = { "Default", "ForceEnable", "ForceDisable" };
static const char *const menupolicies[] = { "Legacy", "Standard" };
static const char *const hvlaunch[] = { "Off", "Auto" };
static const char *const messages[] = { "Default", "Resume", "HyperV", "Recovery", "StartupRepair",
					"SystemImageRecovery", "CommandPrompt", "SystemRestore",
					"PushButtonReset" };

static const char *integer_word(const char *name, uint64_t v)
{
#define PICK(n, arr) \
	if (!strcmp(name, n)) return v < sizeof arr / sizeof *arr ? arr[v] : NULL
	if (!name)
		return NULL;
	PICK("debugtype", debugtypes);
	PICK("hypervisordebugtype", debugtypes);
	PICK("debugstart", debugstarts);
	PICK("nx", nxpolicies);
	PICK("pae", paepolicies);
	PICK("bootmenupolicy", menupolicies);
	PICK("hypervisorlaunchtype", hvlaunch);
	PICK("displaymessage", messages);
	PICK("displaymessageoverride", messages);
	return NULL;
#undef PICK
}

/* ---- device values ------------------------------------------------------ */

/* A device element value (layout checked against both sample stores and
 * Microsoft's own BCD writer in ImageStorageServiceManaged, decompiled
 * BcdElementDevice / BcdElementBootDevice / RamDiskIdentifier):
 *   00 GUID  additional options object (zero, or e.g. {ramdiskoptions})
 *   10 boot device: u32 type, u32 flags, u32 size (from here), u32 0
 *   20 identifier, by type:
 *      6 qualified partition ("PartitionEx"), size 0x48: partition GUID
 *        (GPT) or byte offset u64 + 8 zero (MBR); u32 0; u32 style
 *        (0 GPT, 1 MBR); disk GUID (GPT) or signature u32 + 12 zero
 *        (MBR); 16 zero  (doc/formats.md, BCD partition device)
 *      5 boot, size 0x48, identifier all zero
 *      0 block I/O: u32 block type; 3 = ramdisk: u32 0, u32 image base,
 *        u64 image size, u32 image offset, then a file identifier:
 *        u32 version 1, u32 size, u32 5, a nested boot device (as at 10),
 *        then the UTF-16LE path of the image to the end.
 */
#define DEV_HDR      offsetof(struct bcd_device_value, device)
_Static_assert(sizeof(struct bcd_device_value) == BCD_DEVICE_PARTITION_LEN, "bcd.h device length");

/* A partition identifier (struct bcd_partition_identifier) into out. */
static int decode_partition(const uint8_t *id, struct bcd_device *out)
{
	struct bcd_partition_identifier pi;
	memcpy(&pi, id, sizeof pi);
	uint32_t style = le32_get(&pi.partition_style);
	if (style > 1)
		return err_set(E_FORMAT, "partition device: unknown partition style %" PRIu32, style);
	out->kind = BCD_DEV_PARTITION;
	out->gpt = style == 0;
	if (out->gpt) {
		memcpy(out->part_guid.b, pi.partition, 16);
		memcpy(out->disk_guid.b, pi.disk, 16);
	} else {
		out->part_offset = get_le64(pi.partition);
		out->disk_signature = get_le32(pi.disk);
	}
	return 0;
}

static int decode_boot_device(const uint8_t *p, size_t len, struct bcd_device *out, bool nested);

/* A ramdisk's block I/O identifier id[0..idlen) (struct
 * bcd_ramdisk_identifier, whose file identifier goes on with the image's
 * device and path) into out. */
static int decode_ramdisk(const uint8_t *id, size_t idlen, struct bcd_device *out)
{
	struct bcd_ramdisk_identifier ri;
	memcpy(&ri, id, sizeof ri);
	size_t foff = offsetof(struct bcd_ramdisk_identifier, file_version), flen = idlen - foff;
	uint32_t fsize = le32_get(&ri.file_size);
	if (fsize < BCD_FILE_ID_HEADER || fsize > flen)
		return err_set(E_FORMAT, "ramdisk device: bad file identifier size %" PRIu32, fsize);
	const uint8_t *parent = id + sizeof ri;
	size_t plen = fsize - BCD_FILE_ID_HEADER;
	struct bcd_device par = { 0 };
	if (decode_boot_device(parent, plen, &par, true) < 0)
		return err_prefix("ramdisk parent device");
	struct bcd_boot_device ph;
	memcpy(&ph, parent, sizeof ph);   /* decode_boot_device checked plen >= its size >= 16 */
	uint32_t psize = le32_get(&ph.size);
	out->kind = BCD_DEV_RAMDISK;
	out->parent_kind = par.kind;
	out->gpt = par.gpt;
	out->part_guid = par.part_guid;
	out->disk_guid = par.disk_guid;
	out->part_offset = par.part_offset;
	out->disk_signature = par.disk_signature;
	char *path = utf16le_to_utf8(parent + psize, (plen - psize) / 2);
	if (!path) return err_prefix("device path");
	int r = str_copy(out->path, sizeof out->path, path, "BCD ramdisk image path");
	free(path);
	return r;
}

/* Decodes a boot device (struct bcd_boot_device + identifier) at p[0..len). */
static int decode_boot_device(const uint8_t *p, size_t len, struct bcd_device *out, bool nested)
{
	struct bcd_boot_device h;
	if (len < sizeof h)
		return err_set(E_FORMAT, "device value truncated (%zu bytes)", len);
	memcpy(&h, p, sizeof h);
	uint32_t type = le32_get(&h.type), size = le32_get(&h.size);
	if (size < sizeof h || size > len)
		return err_set(E_FORMAT, "device size %" PRIu32 " does not fit its %zu bytes", size, len);
	const uint8_t *id = p + sizeof h;
	size_t idlen = size - sizeof h;
	if (type == BCD_DEV_TYPE_PARTEX && idlen >= sizeof(struct bcd_partition_identifier))
		return decode_partition(id, out);
	if (type == BCD_DEV_TYPE_BOOT) {
		out->kind = BCD_DEV_BOOT;
		return 0;
	}
	if (type == BCD_DEV_TYPE_BLOCKIO && !nested &&
	    idlen >= sizeof(struct bcd_ramdisk_identifier) &&
	    get_le32(id) == BCD_BLOCKIO_RAMDISK)
		return decode_ramdisk(id, idlen, out);
	out->kind = BCD_DEV_UNKNOWN;
	out->raw_type = type;
	return 0;
}

int bcd_device_decode(const uint8_t *p, size_t len, struct bcd_device *out)
{
	memset(out, 0, sizeof *out);
	if (!p || len < DEV_HDR + sizeof(struct bcd_boot_device))
		return err_set(E_FORMAT, "device value too short (%zu bytes)", len);
	memcpy(out->options.b, p, 16);
	return decode_boot_device(p + DEV_HDR, len - DEV_HDR, out, false);
}

int bcd_device_encode(const struct bcd_device *d, uint8_t out[BCD_DEVICE_PARTITION_LEN])
{
	struct bcd_device_value v = {0};
	memcpy(v.options, d->options.b, 16);
	le32_set(&v.device.size, sizeof v.device + sizeof v.id);   /* 0x48 */
	memset(out, 0, BCD_DEVICE_PARTITION_LEN);
	if (d->kind == BCD_DEV_BOOT) {
		le32_set(&v.device.type, BCD_DEV_TYPE_BOOT);
		memcpy(out, &v, sizeof v);
		return 0;
	}
	if (d->kind != BCD_DEV_PARTITION)
		return err_set(E_UNSUPPORTED, "only partition and boot devices can be encoded");
	le32_set(&v.device.type, BCD_DEV_TYPE_PARTEX);
	if (d->gpt) {
		memcpy(v.id.partition, d->part_guid.b, 16);
		le32_set(&v.id.partition_style, 0);
		memcpy(v.id.disk, d->disk_guid.b, 16);
	} else {
		put_le64(v.id.partition, d->part_offset);
		le32_set(&v.id.partition_style, 1);
		put_le32(v.id.disk, d->disk_signature);
	}
	memcpy(out, &v, sizeof v);
	return 0;
}

/* ---- store open / new --------------------------------------------------- */

/* The store over h, which it then owns (closed here when the store
 * cannot be allocated). */
static struct bcd *bcd_of_hive(struct hive *h)
{
	struct bcd *b = xcalloc(1, sizeof *b);
	if (!b) {
		hive_close(h);
		err_prefix("BCD");
		return NULL;
	}
	b->h = h;
	return b;
}

struct bcd *bcd_new(void)
{
	/* Root name as on stores created by bcdedit /createstore ("NewStoreRoot"
	 * in both samples). */
	struct hive *h = hive_new("NewStoreRoot");
	if (!h)
		return NULL;
	if (hive_set_string(h, "Description", "KeyName", "BCD00000000") < 0 ||
	    hive_set_dword(h, "Description", "System", 1) < 0 ||
	    hive_set_dword(h, "Description", "TreatAsSystem", 1) < 0 || hive_add_key(h, "Objects") < 0) {
		hive_close(h);
		return NULL;
	}
	return bcd_of_hive(h);
}

struct bcd *bcd_open(const uint8_t *data, size_t len)
{
	struct hive *h = hive_open(data, len, true, "BCD");
	if (!h)
		return NULL;
	err_clear();
	if (!hive_key_exists(h, "Objects")) {
		hive_close(h);
		if (err_code() == E_OK)   /* absent, not unreadable (out of memory) */
			err_set(E_FORMAT, "BCD: registry hive without an Objects key: not a BCD store");
		return NULL;
	}
	return bcd_of_hive(h);
}

void bcd_free(struct bcd *b)
{
	if (b)
		hive_close(b->h);
	free(b);
}

int bcd_serialize(struct bcd *b, uint8_t **data, size_t *len)
{
	return hive_serialize(b->h, data, len);
}

/* ---- paths -------------------------------------------------------------- */

static char *obj_key(const struct guid *g)
{
	char s[GUID_STR_LEN + 1];
	return xasprintf("Objects\\{%s}", guid_to_str(g, s));
}

static char *elem_key(const struct guid *g, uint32_t elem)
{
	char s[GUID_STR_LEN + 1];
	return xasprintf("Objects\\{%s}\\Elements\\%08x", guid_to_str(g, s), elem);
}

int bcd_add_object(struct bcd *b, const struct guid *id, uint32_t type)
{
	char *k = obj_key(id);
	char *d = k ? xasprintf("%s\\Description", k) : NULL;
	char *e = d ? xasprintf("%s\\Elements", k) : NULL;
	if (!e) {
		free(k);
		free(d);
		return err_prefix("BCD object key");
	}
	int r = hive_set_dword(b->h, d, "Type", type);
	if (r == 0)
		r = hive_add_key(b->h, e);
	free(k);
	free(d);
	free(e);
	return r;
}

static int check_format(uint32_t elem, unsigned want)
{
	if (FMT_OF(elem) != want)
		return err_set(E_INTERNAL, "element %08x has format %u, not %u", elem, FMT_OF(elem), want);
	return 0;
}

static int set_elem(struct bcd *b, const struct guid *obj, uint32_t elem, unsigned fmt, uint32_t regtype,
		    const void *data, size_t len)
{
	if (check_format(elem, fmt) < 0)
		return -1;
	char *k = elem_key(obj, elem);
	int r = hive_set_binary(b->h, k, "Element", regtype, data, len);
	free(k);
	return r;
}

int bcd_set_device(struct bcd *b, const struct guid *obj, uint32_t elem, const struct bcd_device *d)
{
	uint8_t v[BCD_DEVICE_PARTITION_LEN];
	if (bcd_device_encode(d, v) < 0)
		return -1;
	return set_elem(b, obj, elem, F_DEVICE, REG_BINARY_, v, sizeof v);
}

int bcd_set_string(struct bcd *b, const struct guid *obj, uint32_t elem, const char *s)
{
	if (check_format(elem, F_STRING) < 0)
		return -1;
	char *k = elem_key(obj, elem);
	int r = hive_set_string(b->h, k, "Element", s);
	free(k);
	return r;
}

int bcd_set_object(struct bcd *b, const struct guid *obj, uint32_t elem, const struct guid *v)
{
	if (check_format(elem, F_OBJECT) < 0)
		return -1;
	char s[GUID_STR_LEN + 1], t[GUID_STR_LEN + 3];
	snprintf(t, sizeof t, "{%s}", guid_to_str(v, s));   /* fits: {GUID} */
	char *k = elem_key(obj, elem);
	int r = hive_set_string(b->h, k, "Element", t);
	free(k);
	return r;
}

int bcd_set_objects(struct bcd *b, const struct guid *obj, uint32_t elem, const struct guid *v, size_t n)
{
	if (check_format(elem, F_OBJLIST) < 0)
		return -1;
	char **items = xcalloc(n ? n : 1, sizeof *items);
	if (!items) return err_prefix("BCD object list");
	for (size_t i = 0; i < n; i++) {
		char s[GUID_STR_LEN + 1];
		if (!(items[i] = xasprintf("{%s}", guid_to_str(&v[i], s)))) {
			hive_free_names(items, i);
			return err_prefix("BCD object list");
		}
	}
	char *k = elem_key(obj, elem);
	int r = hive_set_multi_sz(b->h, k, "Element", (const char *const *)items, n);
	free(k);
	hive_free_names(items, n);
	return r;
}

int bcd_set_integer(struct bcd *b, const struct guid *obj, uint32_t elem, uint64_t v)
{
	uint8_t d[8];
	put_le64(d, v);
	return set_elem(b, obj, elem, F_INTEGER, REG_BINARY_, d, 8);
}

int bcd_set_boolean(struct bcd *b, const struct guid *obj, uint32_t elem, bool v)
{
	uint8_t d = v ? 1 : 0;
	return set_elem(b, obj, elem, F_BOOLEAN, REG_BINARY_, &d, 1);
}

/* ---- getters ------------------------------------------------------------ */

int bcd_get_object_type(struct bcd *b, const struct guid *obj, uint32_t *type)
{
	char *k = obj_key(obj);
	char *d = k ? xasprintf("%s\\Description", k) : NULL;
	if (!d) {
		free(k);
		return err_prefix("BCD object key");
	}
	int r = hive_get_dword(b->h, d, "Type", type);
	free(k);
	free(d);
	return r;
}

static int get_raw(struct bcd *b, const struct guid *obj, uint32_t elem, uint8_t **d, size_t *n, uint32_t *t)
{
	char *k = elem_key(obj, elem);
	int r = hive_get_binary(b->h, k, "Element", d, n, t);
	free(k);
	return r;
}

/* Fetches a REG_BINARY element (integer, boolean: doc/formats.md, BCD) of
 * want bytes, or a device element of any size (want 0). */
static int get_binary(struct bcd *b, const struct guid *obj, uint32_t elem, size_t want, uint8_t **d, size_t *n)
{
	uint32_t t;
	int r = get_raw(b, obj, elem, d, n, &t);
	if (r)
		return r;
	if (t != REG_BINARY_ || (want && *n != want)) {
		free(*d);
		if (!want)
			return err_set(E_FORMAT, "element %08x: device value is not REG_BINARY", elem);
		return err_set(E_FORMAT, "element %08x: expected %zu bytes of REG_BINARY, found type %" PRIu32 " with %zu bytes",
			       elem, want, t, *n);
	}
	return 0;
}

/* Fetches a binary-typed element of want bytes into out. */
static int get_fixed(struct bcd *b, const struct guid *obj, uint32_t elem, size_t want, uint8_t *out)
{
	uint8_t *d;
	size_t n;
	int r = get_binary(b, obj, elem, want, &d, &n);
	if (r)
		return r;
	memcpy(out, d, want);
	free(d);
	return 0;
}

int bcd_get_integer(struct bcd *b, const struct guid *obj, uint32_t elem, uint64_t *v)
{
	uint8_t d[8];
	int r = get_fixed(b, obj, elem, 8, d);
	if (r == 0)
		*v = get_le64(d);
	return r;
}

int bcd_get_boolean(struct bcd *b, const struct guid *obj, uint32_t elem, bool *v)
{
	uint8_t d;
	int r = get_fixed(b, obj, elem, 1, &d);
	if (r == 0)
		*v = d != 0;
	return r;
}

int bcd_get_device(struct bcd *b, const struct guid *obj, uint32_t elem, struct bcd_device *dev)
{
	uint8_t *d;
	size_t n;
	int r = get_binary(b, obj, elem, 0, &d, &n);
	if (r)
		return r;
	r = bcd_device_decode(d, n, dev);
	free(d);
	return r;
}

int bcd_get_string(struct bcd *b, const struct guid *obj, uint32_t elem, char **s)
{
	char *k = elem_key(obj, elem);
	int r = hive_get_string(b->h, k, "Element", s);
	free(k);
	return r;
}

int bcd_get_object(struct bcd *b, const struct guid *obj, uint32_t elem, struct guid *v)
{
	char *s;
	int r = bcd_get_string(b, obj, elem, &s);
	if (r)
		return r;
	r = guid_from_str(s, v);
	if (r < 0)
		err_set(E_FORMAT, "element %08x: '%s' is not an object identifier", elem, s);
	free(s);
	return r;
}

static int cmp_guid_text(const void *a, const void *b)
{
	char x[GUID_STR_LEN + 1], y[GUID_STR_LEN + 1];
	return strcmp(guid_to_str(a, x), guid_to_str(b, y));
}

int bcd_objects(struct bcd *b, struct guid **ids, size_t *count)
{
	char **names;
	size_t n;
	if (hive_subkeys(b->h, "Objects", &names, &n) < 0)
		return -1;
	struct guid *out = xcalloc(n ? n : 1, sizeof *out);
	if (!out) {
		hive_free_names(names, n);
		return err_prefix("BCD object list");
	}
	size_t k = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (guid_from_str(names[i], &out[k]) < 0) {
			rc = err_set(E_FORMAT, "BCD: object key '%s' is not a {guid}", names[i]);
			break;
		}
		k++;
	}
	hive_free_names(names, n);
	if (rc < 0) {
		free(out);
		return -1;
	}
	qsort(out, k, sizeof *out, cmp_guid_text);
	*ids = out;
	*count = k;
	return 0;
}

/* ---- presentation ------------------------------------------------------- */

/* An element read and decoded for printing. */
struct pelem {
	uint32_t type;
	const char *name;      /* NULL: custom */
	unsigned fmt;
	uint8_t *raw;
	size_t len;
	uint32_t regtype;
	char **list;           /* strings / object lists */
	size_t count;
};

struct pobj {
	struct guid id;
	uint32_t type;
	int rank;
	struct pelem *el;
	size_t nel;
};

struct view {
	struct pobj *objs;
	size_t n;
	struct guid def;       /* {bootmgr} default, shown as {default} */
	bool has_def;
};

static const struct guid *guid_of(const char *alias, struct guid *tmp)
{
	bcd_alias_guid(alias, tmp);
	return tmp;
}

/* Display order of bcdedit /enum all: firmware boot manager, boot manager,
 * firmware applications, loaders, resume, memory tester, then the
 * inheritable settings groups and device objects. */
static int object_rank(const struct guid *g, uint32_t type)
{
	static const char *const order[] = { "{fwbootmgr}", "{bootmgr}" };
	static const char *const groups[] = { "{emssettings}", "{dbgsettings}", "{badmemory}",
					      "{globalsettings}", "{bootloadersettings}",
					      "{hypervisorsettings}", "{resumeloadersettings}" };
	const char *a = bcd_guid_alias(g);
	for (size_t i = 0; a && i < 2; i++)
		if (!strcmp(a, order[i]))
			return (int)i;
	if (type == 0x101fffffu)
		return 2;
	if (type >> 28 == 1) {
		uint32_t app = type & 0xfffffu;
		return app == 3 ? 3 : app == 4 ? 4 : app == 5 ? 5 : 6;
	}
	for (size_t i = 0; a && i < sizeof groups / sizeof *groups; i++)
		if (!strcmp(a, groups[i]))
			return 7 + (int)i;
	return type >> 28 == 2 ? 14 : type >> 28 == 3 ? 15 : 16;
}

static const char *object_heading(const struct guid *g, uint32_t type, char *buf, size_t n)
{
	const char *a = bcd_guid_alias(g);
	static const struct {
		const char *alias, *heading;
	} by_alias[] = {
		{ "{emssettings}", "EMS Settings" }, { "{dbgsettings}", "Debugger Settings" },
		{ "{badmemory}", "RAM Defects" }, { "{globalsettings}", "Global Settings" },
		{ "{bootloadersettings}", "Boot Loader Settings" },
		{ "{hypervisorsettings}", "Hypervisor Settings" },
		{ "{resumeloadersettings}", "Resume Loader Settings" },
	};
	for (size_t i = 0; a && i < sizeof by_alias / sizeof *by_alias; i++)
		if (!strcmp(a, by_alias[i].alias))
			return by_alias[i].heading;
	switch (type) {
	case 0x10100001: return "Firmware Boot Manager";
	case 0x10100002: return "Windows Boot Manager";
	case 0x10200003: return "Windows Boot Loader";
	case 0x10200004: return "Resume from Hibernate";
	case 0x10200005: return "Windows Memory Tester";
	case 0x10300006: return "Windows Legacy OS Loader";
	case 0x101fffff: return "Firmware Application (101fffff)";
	case 0x20100000: return "Library Settings";
	case 0x20200003: return "Boot Loader Settings";
	case 0x20200004: return "Resume Loader Settings";
	case 0x30000000: return "Device options";
	}
	snprintf(buf, n, "Object of type %08x", type);   /* fits: 23 chars, callers pass 64 */
	return buf;
}

static void free_pobj(struct pobj *o)
{
	for (size_t i = 0; i < o->nel; i++) {
		free(o->el[i].raw);
		hive_free_names(o->el[i].list, o->el[i].count);
	}
	free(o->el);
}

static void free_view(struct view *v)
{
	for (size_t i = 0; i < v->n; i++)
		free_pobj(&v->objs[i]);
	free(v->objs);
}

/* Reads one element and checks that its registry type and size fit its
 * format: malformed values are an error (the store is not what Windows
 * writes), never guessed at. */
static int load_elem(struct bcd *b, const struct guid *obj, uint32_t otype, uint32_t type, struct pelem *e)
{
	memset(e, 0, sizeof *e);
	e->type = type;
	e->fmt = FMT_OF(type);
	e->name = bcd_element_name(type, otype);
	int r = get_raw(b, obj, type, &e->raw, &e->len, &e->regtype);
	if (r)
		return r > 0 ? err_set(E_FORMAT, "element %08x has no Element value", type) : -1;
	bool bin = e->regtype == REG_BINARY_;
	switch (e->fmt) {
	case F_DEVICE: {
		if (!bin)
			return err_set(E_FORMAT, "element %08x: device value is not REG_BINARY", type);
		/* Unknown device types print as hex; a value whose own sizes
		 * do not add up is malformed. */
		struct bcd_device d;
		if (bcd_device_decode(e->raw, e->len, &d) < 0)
			return err_prefix("element %08x", type);
		return 0;
	}
	case F_STRING:
	case F_OBJECT:
		if (e->regtype != REG_SZ_)
			return err_set(E_FORMAT, "element %08x: expected REG_SZ, found type %" PRIu32, type,
				       e->regtype);
		e->list = xcalloc(1, sizeof *e->list);
		if (!e->list) return err_prefix("element %08x", type);
		e->count = 1;
		e->list[0] = utf16le_to_utf8(e->raw, e->len / 2);
		if (!e->list[0]) return err_prefix("element %08x", type);
		if (e->fmt == F_OBJECT) {
			struct guid g;
			if (guid_from_str(e->list[0], &g) < 0)
				return err_set(E_FORMAT, "element %08x: '%s' is not an object identifier", type,
					       e->list[0]);
		}
		return 0;
	case F_OBJLIST: {
		if (e->regtype != REG_MULTI_SZ_)
			return err_set(E_FORMAT, "element %08x: expected REG_MULTI_SZ, found type %" PRIu32, type,
				       e->regtype);
		char *k = elem_key(obj, type);
		r = hive_get_multi_sz(b->h, k, "Element", &e->list, &e->count);
		free(k);
		if (r)
			return -1;
		for (size_t i = 0; i < e->count; i++) {
			struct guid g;
			if (guid_from_str(e->list[i], &g) < 0)
				return err_set(E_FORMAT, "element %08x: '%s' is not an object identifier", type,
					       e->list[i]);
		}
		return 0;
	}
	case F_INTEGER:
		if (!bin || e->len != 8)
			return err_set(E_FORMAT, "element %08x: integer must be 8 bytes of REG_BINARY (type %" PRIu32 ", %zu bytes)",
				       type, e->regtype, e->len);
		return 0;
	case F_BOOLEAN:
		if (!bin || e->len != 1)
			return err_set(E_FORMAT, "element %08x: boolean must be 1 byte of REG_BINARY (type %" PRIu32 ", %zu bytes)",
				       type, e->regtype, e->len);
		return 0;
	case F_INTLIST:
		if (!bin || e->len % 8)
			return err_set(E_FORMAT, "element %08x: integer list must be 8-byte REG_BINARY items", type);
		return 0;
	}
	return 0; /* other formats: shown as hex */
}

static int cmp_pelem(const void *a, const void *b)
{
	uint32_t x = ((const struct pelem *)a)->type, y = ((const struct pelem *)b)->type;
	return x < y ? -1 : x > y;
}

static int load_object(struct bcd *b, const struct guid *g, struct pobj *o)
{
	memset(o, 0, sizeof *o);
	o->id = *g;
	int r = bcd_get_object_type(b, g, &o->type);
	if (r)
		return r > 0 ? err_set(E_FORMAT, "object has no Description\\Type") : -1;
	o->rank = object_rank(g, o->type);
	char *k = obj_key(g);
	char *ek = k ? xasprintf("%s\\Elements", k) : NULL;
	free(k);
	if (!ek) return err_prefix("BCD object key");
	char **names = NULL;
	size_t n = 0;
	if (hive_key_exists(b->h, ek) && hive_subkeys(b->h, ek, &names, &n) < 0) {
		free(ek);
		return -1;
	}
	free(ek);
	o->el = xcalloc(n ? n : 1, sizeof *o->el);
	if (!o->el) {
		hive_free_names(names, n);
		return err_prefix("BCD elements");
	}
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char *end;
		unsigned long t = strtoul(names[i], &end, 16);
		if (strlen(names[i]) != 8 || *end) {
			rc = err_set(E_FORMAT, "element key '%s' is not 8 hex digits", names[i]);
			break;
		}
		if (load_elem(b, g, o->type, (uint32_t)t, &o->el[o->nel]) < 0) {
			o->nel++;
			rc = -1;
			break;
		}
		o->nel++;
	}
	hive_free_names(names, n);
	qsort(o->el, o->nel, sizeof *o->el, cmp_pelem);
	return rc;
}

static int cmp_pobj(const void *a, const void *b)
{
	const struct pobj *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	return cmp_guid_text(&x->id, &y->id);
}

static int load_view(struct bcd *b, struct view *v)
{
	memset(v, 0, sizeof *v);
	struct guid *ids;
	size_t n;
	if (bcd_objects(b, &ids, &n) < 0)
		return -1;
	v->objs = xcalloc(n ? n : 1, sizeof *v->objs);
	if (!v->objs) {
		free(ids);
		return err_prefix("BCD objects");
	}
	for (size_t i = 0; i < n; i++) {
		char s[GUID_STR_LEN + 1];
		if (load_object(b, &ids[i], &v->objs[v->n]) != 0) {
			v->n++;
			err_prefix("BCD object {%s}", guid_to_str(&ids[i], s));
			free(ids);
			free_view(v);
			return -1;
		}
		v->n++;
	}
	free(ids);
	qsort(v->objs, v->n, sizeof *v->objs, cmp_pobj);
	struct guid bm, tmp;
	guid_of("{bootmgr}", &bm);
	if (bcd_get_object(b, &bm, BCDE_BOOTMGR_DEFAULT, &tmp) == 0) {
		v->def = tmp;
		v->has_def = true;
	}
	err_clear();
	return 0;
}

/* "{bootmgr}", "{default}" or "{guid}" into out[n], n >= ID_TEXT_MAX:
 * the longest alias ("{resumeloadersettings}", 22) is shorter than {guid}. */
#define ID_TEXT_MAX (GUID_STR_LEN + 3)
static void id_text(const struct view *v, const struct guid *g, char *out, size_t n)
{
	const char *a = bcd_guid_alias(g);
	char s[GUID_STR_LEN + 1];
	if (a)
		snprintf(out, n, "%s", a);   /* fits: n >= ID_TEXT_MAX, aliases[] are shorter */
	else if (v->has_def && guid_eq(g, &v->def))
		snprintf(out, n, "{default}");   /* fits: n >= ID_TEXT_MAX */
	else
		snprintf(out, n, "{%s}", guid_to_str(g, s));   /* fits: n >= ID_TEXT_MAX */
}

/* An object reference as text, whole (malloc'd): id_text of a GUID, else
 * the string as the store holds it. */
static char *id_text_alloc(const struct view *v, const char *s)
{
	struct guid g;
	char buf[ID_TEXT_MAX];
	if (guid_from_str(s, &g) < 0)
		return xstrdup(s);
	id_text(v, &g, buf, sizeof buf);
	return xstrdup(buf);
}

/* p[0..n) as lowercase hex, whole (malloc'd, 2n + 1 bytes). */
static char *hex_alloc(const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *out = xmalloc(2 * n + 1);
	if (!out) return NULL;   /* E_NOMEM set */
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
	return out;
}

static void partition_text(const struct bcd_device *d, char *out, size_t n, bcd_device_namer namer, void *ctx)
{
	if (namer) {
		namer(ctx, d, out, n);
		return;
	}
	bcd_partition_identity_text(d, out, n);
}

void bcd_partition_identity_text(const struct bcd_device *d, char *out, size_t n)
{
	char a[GUID_STR_LEN + 1], b[GUID_STR_LEN + 1];
	if (d->gpt)
		snprintf(out, n, "partition=GPT disk {%s} partition {%s}", guid_to_str(&d->disk_guid, a),
			 guid_to_str(&d->part_guid, b));   /* fits: 106 chars, n >= BCD_IDENTITY_TEXT_MAX */
	else
		snprintf(out, n, "partition=MBR disk 0x%08" PRIx32 " offset %" PRIu64, d->disk_signature,
			 d->part_offset);   /* fits: at most 58 chars, n >= BCD_IDENTITY_TEXT_MAX */
}

/* The namer's (or the identity) text of a partition fits here: the
 * namer names the image by its path (PATH_MAX). */
#define PARTITION_TEXT_MAX (4096 + 64)
_Static_assert(PARTITION_TEXT_MAX >= BCD_IDENTITY_TEXT_MAX, "a namer's buffer holds the identity text");

/* Device element text, whole (malloc'd): "partition=...", "boot",
 * "ramdisk=[...]path,{opt}", or "unknown (hex)". */
static char *device_text(const struct view *v, const uint8_t *raw, size_t len, bcd_device_namer namer, void *ctx)
{
	struct bcd_device d;
	if (bcd_device_decode(raw, len, &d) < 0 || d.kind == BCD_DEV_UNKNOWN) {
		err_clear();
		char *hex = hex_alloc(raw, len), *t = hex ? xasprintf("unknown (%s)", hex) : NULL;
		free(hex);
		return t;   /* NULL: E_NOMEM set, bcd_print / bcd_to_json fail */
	}
	if (d.kind == BCD_DEV_BOOT)
		return xstrdup("boot");
	char *parent = xmalloc(PARTITION_TEXT_MAX), opt[ID_TEXT_MAX];
	if (!parent) return NULL;   /* E_NOMEM set, bcd_print / bcd_to_json fail */
	if (d.kind == BCD_DEV_PARTITION) {
		partition_text(&d, parent, PARTITION_TEXT_MAX, namer, ctx);
		return parent;
	}
	/* ramdisk */
	if (d.parent_kind == BCD_DEV_PARTITION) {
		struct bcd_device p = d;
		p.kind = BCD_DEV_PARTITION;
		partition_text(&p, parent, PARTITION_TEXT_MAX, namer, ctx);
		/* bcdedit writes the parent without the "partition=" prefix */
		if (!strncmp(parent, "partition=", 10))
			memmove(parent, parent + 10, strlen(parent + 10) + 1);
	} else {
		strcpy(parent, d.parent_kind == BCD_DEV_BOOT ? "boot" : "unknown");   /* fits: PARTITION_TEXT_MAX */
	}
	id_text(v, &d.options, opt, sizeof opt);
	char *t = xasprintf("ramdisk=[%s]%s,%s", parent, d.path, opt);
	free(parent);
	return t;
}

/* An element's bcdedit name into out[n], n >= NAME_TEXT_MAX. */
#define NAME_TEXT_MAX 32
static void name_text(const struct pelem *e, char *out, size_t n)
{
	if (e->name)
		snprintf(out, n, "%s", e->name);   /* fits: n >= NAME_TEXT_MAX, bcd_names.def's longest is 25 */
	else
		snprintf(out, n, "custom:%08x", e->type);   /* fits: 15 chars */
}

#define NAME_COL 24

/* The value column of an element (malloc'd, whole); NULL for an object
 * list, which print_elem writes one line an entry. */
static char *elem_value_text(const struct view *v, const struct pelem *e, bcd_device_namer namer, void *ctx)
{
	switch (e->fmt) {
	case F_DEVICE:
		return device_text(v, e->raw, e->len, namer, ctx);
	case F_STRING:
		return xstrdup(e->list[0]);
	case F_OBJECT:
		return id_text_alloc(v, e->list[0]);
	case F_OBJLIST:
		return NULL;
	case F_INTEGER: {
		uint64_t x = get_le64(e->raw);
		const char *w = integer_word(e->name, x);
		return w ? xstrdup(w) : xasprintf("%" PRIu64, x);
	}
	case F_BOOLEAN:
		return xstrdup(e->raw[0] ? "Yes" : "No");
	case F_INTLIST: {
		char *t = xmalloc(e->len / 8 * 20 + 1);   /* " 0x" + 16 digits each */
		if (!t) return NULL;   /* E_NOMEM set: bcd_print fails */
		size_t o = 0;
		t[0] = 0;
		for (size_t i = 0; i + 8 <= e->len; i += 8)
			o += (size_t)sprintf(t + o, "%s0x%" PRIx64, i ? " " : "", get_le64(e->raw + i));   /* fits: 19 of the 20 a value has */
		return t;
	}
	default:
		return hex_alloc(e->raw, e->len);
	}
}

static void print_elem(FILE *f, const struct view *v, const struct pelem *e, bcd_device_namer namer, void *ctx)
{
	char name[NAME_TEXT_MAX];
	name_text(e, name, sizeof name);
	if (e->fmt == F_OBJLIST) {
		for (size_t i = 0; i < e->count; i++) {
			char *t = id_text_alloc(v, e->list[i]);
			fprintf(f, "%-*s%s\n", NAME_COL, i ? "" : name, t);
			free(t);
		}
		if (e->count == 0)
			fprintf(f, "%s\n", name);
		return;
	}
	char *val = elem_value_text(v, e, namer, ctx);
	fprintf(f, "%-*s%s\n", NAME_COL, name, val);
	free(val);
}

int bcd_print(struct bcd *b, FILE *f, bcd_device_namer namer, void *ctx)
{
	struct view v;
	/* a value text that could not be allocated would print as "(null)":
	 * out of memory fails the print (E_NOMEM), whatever it wrote */
	unsigned long nomem = err_nomem_count();
	if (load_view(b, &v) < 0)
		return -1;
	for (size_t i = 0; i < v.n; i++) {
		const struct pobj *o = &v.objs[i];
		char buf[64], id[ID_TEXT_MAX];
		const char *h = object_heading(&o->id, o->type, buf, sizeof buf);
		size_t hl = strlen(h);
		fprintf(f, "%s%s\n", i ? "\n" : "", h);
		for (size_t k = 0; k < hl; k++)
			fputc('-', f);
		fputc('\n', f);
		id_text(&v, &o->id, id, sizeof id);
		fprintf(f, "%-*s%s\n", NAME_COL, "identifier", id);
		for (size_t k = 0; k < o->nel; k++)
			print_elem(f, &v, &o->el[k], namer, ctx);
	}
	free_view(&v);
	return err_nomem_count() != nomem ? err_set(E_NOMEM, "out of memory printing the BCD store") : 0;
}

/* ---- JSON --------------------------------------------------------------- */

static const char *format_name(unsigned fmt)
{
	static const char *const n[] = { "unknown", "device", "string", "object", "objectlist",
					 "integer", "boolean", "integerlist" };
	return fmt < sizeof n / sizeof *n ? n[fmt] : "binary";
}

static json_t *device_json(const struct view *v, const struct pelem *e, bcd_device_namer namer, void *ctx)
{
	json_t *j = json_object();
	char s[GUID_STR_LEN + 1], *text = device_text(v, e->raw, e->len, namer, ctx);
	json_object_set_new(j, "text", json_text(text));
	free(text);
	struct bcd_device d;
	if (bcd_device_decode(e->raw, e->len, &d) < 0 || d.kind == BCD_DEV_UNKNOWN) {
		err_clear();
		json_object_set_new(j, "kind", json_text("unknown"));
		return j;
	}
	static const char *const kinds[] = { "partition", "boot", "unknown", "ramdisk" };
	json_object_set_new(j, "kind", json_text(kinds[d.kind]));
	if (d.kind == BCD_DEV_PARTITION || (d.kind == BCD_DEV_RAMDISK && d.parent_kind == BCD_DEV_PARTITION)) {
		json_object_set_new(j, "style", json_text(d.gpt ? "gpt" : "mbr"));
		if (d.gpt) {
			json_object_set_new(j, "disk_guid", json_text(guid_to_str(&d.disk_guid, s)));
			json_object_set_new(j, "partition_guid", json_text(guid_to_str(&d.part_guid, s)));
		} else {
			json_object_set_new(j, "disk_signature", json_integer(d.disk_signature));
			json_object_set_new(j, "partition_offset", json_integer((json_int_t)d.part_offset));
		}
	}
	if (d.kind == BCD_DEV_RAMDISK)
		json_object_set_new(j, "path", json_text(d.path));
	return j;
}

/* json_string of a malloc'd text, which it frees. */
static json_t *json_string_whole(char *text)
{
	json_t *j = json_text(text);
	free(text);
	return j;
}

static json_t *elem_json(const struct view *v, const struct pelem *e, bcd_device_namer namer, void *ctx)
{
	json_t *j = json_object();
	char buf[64], name[NAME_TEXT_MAX];
	snprintf(buf, sizeof buf, "0x%08x", e->type);   /* fits: 10 chars */
	name_text(e, name, sizeof name);
	json_object_set_new(j, "type", json_text(buf));
	json_object_set_new(j, "name", json_text(name));
	json_object_set_new(j, "format", json_text(format_name(e->fmt)));
	json_t *val;
	switch (e->fmt) {
	case F_DEVICE:
		val = device_json(v, e, namer, ctx);
		break;
	case F_STRING:
		val = json_text(e->list[0]);
		break;
	case F_OBJECT:
		val = json_string_whole(id_text_alloc(v, e->list[0]));
		break;
	case F_OBJLIST:
		val = json_array();
		for (size_t i = 0; i < e->count; i++)
			json_array_append_new(val, json_string_whole(id_text_alloc(v, e->list[i])));
		break;
	case F_INTEGER:
		val = json_integer((json_int_t)get_le64(e->raw));
		break;
	case F_BOOLEAN:
		val = json_boolean(e->raw[0] != 0);
		break;
	case F_INTLIST:
		val = json_array();
		for (size_t i = 0; i + 8 <= e->len; i += 8)
			json_array_append_new(val, json_integer((json_int_t)get_le64(e->raw + i)));
		break;
	default: {
		char *hex = hex_alloc(e->raw, e->len);
		val = hex ? json_text(hex) : NULL;   /* NULL: the caller's json_object_set_new fails */
		free(hex);
	}
	}
	json_object_set_new(j, "value", val);
	return j;
}

void *bcd_to_json(struct bcd *b, bcd_device_namer namer, void *ctx)
{
	struct view v;
	unsigned long nomem = err_nomem_count();   /* a member lost to a failed allocation: NULL */
	if (load_view(b, &v) < 0)
		return NULL;
	json_t *root = json_object(), *arr = json_array();
	for (size_t i = 0; i < v.n; i++) {
		const struct pobj *o = &v.objs[i];
		json_t *jo = json_object(), *els = json_array();
		char s[GUID_STR_LEN + 1], buf[64], id[ID_TEXT_MAX];
		const char *a = bcd_guid_alias(&o->id);
		snprintf(buf, sizeof buf, "{%s}", guid_to_str(&o->id, s));   /* fits: {GUID} in 64 */
		json_object_set_new(jo, "id", json_text(buf));
		id_text(&v, &o->id, id, sizeof id);
		json_object_set_new(jo, "identifier", json_text(id));
		json_object_set_new(jo, "alias", a ? json_text(a) : json_null());
		snprintf(buf, sizeof buf, "0x%08x", o->type);   /* fits: 10 chars */
		json_object_set_new(jo, "type", json_text(buf));
		char hb[64];
		json_object_set_new(jo, "type_name", json_text(object_heading(&o->id, o->type, hb, sizeof hb)));
		for (size_t k = 0; k < o->nel; k++)
			json_array_append_new(els, elem_json(&v, &o->el[k], namer, ctx));
		json_object_set_new(jo, "elements", els);
		json_array_append_new(arr, jo);
	}
	json_object_set_new(root, "objects", arr);
	free_view(&v);
	if (err_nomem_count() != nomem) {
		json_decref(root);
		err_set(E_NOMEM, "out of memory building the BCD store's JSON");
		return NULL;
	}
	return root;
}

const struct part *bcd_device_partition(const struct bcd_device *d, const struct ptable *t)
{
	if (d->kind != BCD_DEV_PARTITION) return NULL;
	for (size_t i = 0; i < t->count; i++) {
		const struct part *p = &t->parts[i];
		if (d->gpt && t->type == PT_GPT && guid_eq(&d->disk_guid, &t->disk_guid) && guid_eq(&d->part_guid, &p->part_guid))
			return p;
		if (!d->gpt && t->type == PT_MBR && d->disk_signature == t->disk_signature && d->part_offset == p->start)
			return p;
	}
	return NULL;
}
