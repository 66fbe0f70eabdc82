/* test_plan.c - lib/plan (pure data) and lib/system_hive on hand-made
 * inspections and hives: ESP placement and its reasons, the GPT built from
 * an MBR (numbers, starts, sizes, types, deterministic GUIDs), layout
 * blockers, registry edits, patch targets, BCD plan, option parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fat32.h"
#include "hive.h"
#include "plan.h"
#include "system_hive.h"
#include "util.h"
#include "windows.h"

#define MIB (1ULL << 20)

static struct inspection *ins_new(void)
{
	struct inspection *ins = calloc(1, sizeof *ins);
	return ins;
}

static void add_part(struct inspection *ins, int num, uint64_t start, uint64_t size, uint8_t type,
		     const char *fs, enum part_role role)
{
	struct part *p = &ins->table.parts[ins->table.count++];
	p->number = num;
	p->start = start;
	p->size = size;
	p->mbr_type = type;
	p->logical = num > 4;
	struct part_info *pi = &ins->parts[ins->nparts++];
	pi->part = p;
	pi->filesystem = fs;
	pi->role = role;
	pi->reusable_as_esp = role == ROLE_SYSTEM_RESERVED;
}

/* A Windows 7 Gen1 disk as setup makes it: 1 GiB, System Reserved 100 MiB
 * at 1 MiB, Windows to the last sector. */
static struct inspection *win7(void)
{
	struct inspection *ins = ins_new();
	ins->table.type = PT_MBR;
	ins->table.sector_size = 512;
	ins->table.disk_signature = 0x0B17C0DE;
	add_part(ins, 1, MIB, 100 * MIB, 0x07, "ntfs", ROLE_SYSTEM_RESERVED);
	add_part(ins, 2, 101 * MIB, 923 * MIB, 0x07, "ntfs", ROLE_WINDOWS);
	ins->windows_found = true;
	ins->windows_partition = 2;
	ins->kernel_version = 0x601;
	snprintf(ins->product_name, sizeof ins->product_name, "Windows 7 Professional");
	snprintf(ins->locale, sizeof ins->locale, "de-DE");
	ins->ncontrol_sets = 2;
	for (int i = 0; i < 2; i++) {
		struct control_set *cs = &ins->control_sets[i];
		snprintf(cs->name, sizeof cs->name, "ControlSet00%d", i + 1);
		cs->ntfs_start = 3;
		cs->vmbus_start = 0;
		cs->storvsc_start = 0;
	}
	ins->nmounted = 2;
	snprintf(ins->mounted[0].name, sizeof ins->mounted[0].name, "\\DosDevices\\C:");
	ins->mounted[0].kind = MD_MBR;
	ins->mounted[0].signature = 0x0B17C0DE;
	ins->mounted[0].offset = 101 * MIB;
	ins->mounted[0].partition = 2;
	snprintf(ins->mounted[1].name, sizeof ins->mounted[1].name, "\\DosDevices\\E:");
	ins->mounted[1].kind = MD_MBR;
	ins->mounted[1].signature = 0x12345678;   /* another disk: left alone */
	ins->mounted[1].offset = MIB;
	ins->mounted[1].partition = 0;
	return ins;
}

static struct plan_opts opts_for(uint64_t size)
{
	struct plan_opts o;
	memset(&o, 0, sizeof o);
	o.disk_size = size;
	o.sector_size = 512;
	o.format_given = true;
	o.format = OUT_RAW;
	memset(o.fingerprint, 0x42, sizeof o.fingerprint);
	return o;
}

static const struct plan_value_edit *find_edit(const struct plan *p, const char *key, const char *value)
{
	for (size_t i = 0; i < p->nedits; i++)
		if (!strcmp(p->edits[i].key, key) && !strcmp(p->edits[i].value, value)) return &p->edits[i];
	return NULL;
}

static void test_win7_gpt_reuse(void **st)
{
	struct inspection *ins = win7();
	struct plan_opts o = opts_for(1024 * MIB);
	struct plan *p = calloc(1, sizeof *p);
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_ok(p));
	assert_int_equal(p->esp_mode, ESP_REUSE);
	assert_int_equal(p->esp_number, 1);
	assert_int_equal(p->esp_start, MIB);
	assert_int_equal(p->esp_size, 100 * MIB);
	/* 33 backup sectors past the last partition: +1 MiB, aligned */
	assert_int_equal(p->new_size, 1025 * MIB);
	assert_int_equal(p->table.type, PT_GPT);
	assert_int_equal(p->table.count, 2);
	const struct part *esp = ptable_find(&p->table, 1), *win = ptable_find(&p->table, 2);
	assert_non_null(esp);
	assert_non_null(win);
	assert_true(guid_eq(&esp->type_guid, &GPT_TYPE_ESP));
	assert_true(guid_eq(&win->type_guid, &GPT_TYPE_BASIC_DATA));
	assert_int_equal(win->start, 101 * MIB);
	assert_int_equal(win->size, 923 * MIB);
	assert_false(guid_eq(&esp->part_guid, &win->part_guid));
	assert_string_equal(p->arc_esp, "multi(0)disk(0)rdisk(0)partition(1)");
	/* BCD: GPT devices from the new table, patched winload copy */
	assert_true(p->bcd.esp.gpt);
	assert_true(guid_eq(&p->bcd.windows.part_guid, &win->part_guid));
	assert_true(guid_eq(&p->bcd.windows.disk_guid, &p->table.disk_guid));
	assert_string_equal(p->bcd.loader_path, "\\Windows\\System32\\winload-gen2.efi");
	assert_true(p->bcd.nointegritychecks);
	assert_string_equal(p->bcd.locale, "de-DE");
	assert_int_equal(p->npatches, 4);
	assert_int_equal(p->patches[3].kind, KIND_WINLOAD);
	assert_string_equal(p->patches[3].copy_from, "\\Windows\\System32\\winload.efi");
	/* registry edits */
	const struct plan_value_edit *e = find_edit(p, "ControlSet002\\Services\\Ntfs", "Start");
	assert_non_null(e);
	assert_int_equal(e->dword, 0);
	assert_int_equal(e->old_dword, 3);
	e = find_edit(p, "ControlSet001\\Control", "FirmwareBootDevice");
	assert_non_null(e);
	assert_string_equal(e->str, "multi(0)disk(0)rdisk(0)partition(1)");
	e = find_edit(p, "MountedDevices", "\\DosDevices\\C:");
	assert_non_null(e);
	assert_int_equal(e->bin_len, 24);
	assert_memory_equal(e->bin, "DMIO:ID:", 8);
	assert_memory_equal(e->bin + 8, win->part_guid.b, 16);
	assert_null(find_edit(p, "MountedDevices", "\\DosDevices\\E:"));
	/* deterministic: the same fingerprint gives the same ids, another one others */
	struct plan *q = calloc(1, sizeof *q);
	assert_int_equal(plan_build(ins, &o, q), 0);
	assert_true(guid_eq(&q->table.disk_guid, &p->table.disk_guid));
	assert_true(guid_eq(&q->bcd.loader_id, &p->bcd.loader_id));
	o.fingerprint[0] ^= 1;
	assert_int_equal(plan_build(ins, &o, q), 0);
	assert_false(guid_eq(&q->table.disk_guid, &p->table.disk_guid));
	plan_free(q);
	free(q);
	plan_free(p);
	free(p);
	free(ins);
}

static void test_mbr_and_append(void **st)
{
	struct inspection *ins = win7();
	struct plan_opts o = opts_for(1024 * MIB);
	struct plan *p = calloc(1, sizeof *p);
	o.layout = LAYOUT_MBR;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_ok(p));
	assert_int_equal(p->esp_mode, ESP_REUSE);
	assert_int_equal(p->new_size, 1024 * MIB);          /* MBR needs no backup area */
	assert_int_equal(ptable_find(&p->table, 1)->mbr_type, 0xEF);
	assert_int_equal(p->table.disk_signature, 0x0B17C0DE);
	assert_false(p->bcd.windows.gpt);
	assert_int_equal(p->bcd.windows.part_offset, 101 * MIB);
	assert_int_equal(p->bcd.windows.disk_signature, 0x0B17C0DE);
	assert_null(find_edit(p, "MountedDevices", "\\DosDevices\\C:"));
	/* append: new entry 3 at the old end, disk grows by the ESP */
	o.esp = ESP_APPEND;
	o.esp_size = 64 * MIB;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_ok(p));
	assert_int_equal(p->esp_number, 3);
	assert_int_equal(p->esp_start, 1024 * MIB);
	assert_int_equal(p->new_size, (1024 + 64) * MIB);
	o.layout = LAYOUT_GPT;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_int_equal(p->new_size, (1024 + 64 + 1) * MIB);
	assert_true(guid_eq(&ptable_find(&p->table, 1)->type_guid, &GPT_TYPE_BASIC_DATA));
	plan_free(p);
	free(p);
	free(ins);
}

static bool has_blocker(const struct plan *p, const char *id)
{
	for (size_t i = 0; i < p->nblockers; i++)
		if (!strcmp(p->blockers[i].id, id)) return true;
	return false;
}

static void test_blockers(void **st)
{
	struct inspection *ins = win7();
	struct plan_opts o = opts_for(1024 * MIB);
	struct plan *p = calloc(1, sizeof *p);
	/* no FAT32 partition: --esp existing impossible */
	o.esp = ESP_EXISTING;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, "esp-no-room"));
	assert_non_null(strstr(p->blockers[0].message, "FAT32"));
	/* --esp-size below FAT32's minimum (33 MiB with 512-byte sectors): a usage error stating it */
	o.esp = ESP_APPEND;
	o.esp_size = 8 * MIB;
	assert_int_equal(plan_build(ins, &o, p), -1);
	assert_int_equal(err_code(), E_USAGE);
	assert_non_null(strstr(err_msg(), "minimum of 33 MiB"));
	err_clear();
	/* four primaries on MBR: no slot to append */
	o.esp_size = 0;
	o.layout = LAYOUT_MBR;
	add_part(ins, 3, 1024 * MIB, MIB, 0x07, "ntfs", ROLE_DATA);
	add_part(ins, 4, 1025 * MIB, MIB, 0x07, "ntfs", ROLE_DATA);
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, "esp-no-room"));
	assert_non_null(strstr(p->blockers[0].message, "four primary"));
	free(ins);
	/* a partition inside the GPT's front area (LBA 1) */
	ins = win7();
	ins->table.parts[0].start = 512;
	ins->parts[0].reusable_as_esp = false;
	o = opts_for(1024 * MIB);
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, "esp-no-room"));
	assert_non_null(strstr(p->blockers[0].message, "GPT needs at the front"));
	free(ins);
	/* MBR over 2 TiB */
	ins = win7();
	o = opts_for(1024 * MIB);
	o.layout = LAYOUT_MBR;
	o.esp = ESP_APPEND;
	o.disk_size = (2048ULL << 30);
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, "esp-no-room"));
	assert_non_null(strstr(p->blockers[0].message, "MBR"));
	/* inspect's blockers carried over with their ids */
	ins->nfindings = 1;
	ins->findings[0].code = BLK_BITLOCKER;
	snprintf(ins->findings[0].message, sizeof ins->findings[0].message, "BitLocker");
	o = opts_for(1024 * MIB);
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, blocker_id[BLK_BITLOCKER]));
	free(ins);
	plan_free(p);
	free(p);
}

/* issue 9 item 5: 4096-byte sectors. The ESP is 260 MiB (Windows' 4Kn
 * minimum, FAT32 needs 65525 clusters of 4 KiB), a 100 MiB System Reserved
 * cannot be reused, --esp-size below 260 is a usage error naming 260. */
static void test_4kn(void **st)
{
	struct inspection *ins = win7();
	struct plan_opts o = opts_for(1024 * MIB);
	struct plan *p = calloc(1, sizeof *p);
	o.sector_size = 4096;
	ins->table.sector_size = 4096;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_ok(p));
	assert_int_equal(p->esp_mode, ESP_APPEND);
	assert_int_equal(p->esp_size, 260 * MIB);
	assert_int_equal(p->esp_cluster_bytes, 4096);
	assert_true(p->esp_clusters >= 65525);
	o.esp_size = 200 * MIB;
	assert_int_equal(plan_build(ins, &o, p), -1);
	assert_int_equal(err_code(), E_USAGE);
	assert_non_null(strstr(err_msg(), "minimum of 260 MiB"));
	err_clear();
	o.esp = ESP_REUSE;
	o.esp_size = 0;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, "esp-no-room"));
	assert_non_null(strstr(p->blockers[0].message, "65525"));
	free(ins);
	plan_free(p);
	free(p);
}

static bool edits_key(const struct plan *p, const char *prefix)
{
	for (size_t i = 0; i < p->nedits; i++)
		if (!strncmp(p->edits[i].key, prefix, strlen(prefix))) return true;
	return false;
}

/* issue 9 item 7: a control set without vmbus/storvsc is not edited and is
 * named in a warning; if it is the current one, that is a blocker. */
static void test_control_sets(void **st)
{
	struct inspection *ins = win7();
	struct plan_opts o = opts_for(1024 * MIB);
	struct plan *p = calloc(1, sizeof *p);
	ins->current_control_set = 1;
	ins->control_sets[1].vmbus_start = -1;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_ok(p));
	assert_true(edits_key(p, "ControlSet001\\Services\\vmbus"));
	assert_false(edits_key(p, "ControlSet002"));
	assert_int_equal(p->nwarnings, 1);
	assert_string_equal(p->warnings[0].id, "control-set-not-gen2");
	assert_non_null(strstr(p->warnings[0].message, "ControlSet002"));
	ins->current_control_set = 2;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, "no-integration-services"));
	assert_non_null(strstr(p->blockers[0].message, "ControlSet002"));
	assert_int_equal(plan_err_code(p), E_BLOCKED);
	free(ins);
	plan_free(p);
	free(p);
}

static void test_versions_and_options(void **st)
{
	struct inspection *ins = win7();
	struct plan_opts o = opts_for(1024 * MIB);
	struct plan *p = calloc(1, sizeof *p);
	ins->kernel_version = 0x603;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_int_equal(p->npatches, 0);
	assert_string_equal(p->bcd.loader_path, "\\Windows\\system32\\winload.efi");
	assert_false(p->bcd.nointegritychecks);
	ins->kernel_version = 0x600;
	o.no_crash_report = true;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_int_equal(p->npatches, 4);
	assert_string_equal(p->patches[0].skip, "crash-report");
	ins->kernel_version = 0x502;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, "unsupported-version"));
	o.force_version = 0x601;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_ok(p));
	/* a version read from the kernel (6.0 or 6.1) is not overridden */
	ins->kernel_version = 0x600;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(has_blocker(p, "force-version-mismatch"));
	o.force_version = 0x600;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_false(has_blocker(p, "force-version-mismatch"));
	o.force_version = 0x601;
	o.bootdebug = true;
	assert_int_equal(plan_build(ins, &o, p), -1);
	assert_int_equal(err_code(), E_USAGE);
	unsigned port, baud;
	assert_int_equal(plan_parse_debug("serial:1:115200", &port, &baud), 0);
	assert_int_equal(port, 1);
	assert_int_equal(baud, 115200);
	assert_int_equal(plan_parse_debug("serial:5:115200", &port, &baud), -1);
	assert_int_equal(plan_parse_debug("serial:1:1234", &port, &baud), -1);
	assert_int_equal(plan_parse_debug("net:1:115200", &port, &baud), -1);
	assert_int_equal(plan_parse_debug("serial:1:115200x", &port, &baud), -1);
	o = opts_for(1024 * MIB);
	o.format_given = false;
	o.out_path = "x.qcow2";
	assert_int_equal(plan_build(ins, &o, p), -1);
	o.out_path = "x.VHDX";
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_int_equal(p->format, OUT_VHDX);
	enum esp_mode m;
	enum plan_layout l;
	assert_int_equal(esp_mode_parse("Append", &m), 0);
	assert_int_equal(m, ESP_APPEND);
	assert_int_equal(esp_mode_parse("nowhere", &m), -1);
	assert_int_equal(plan_layout_parse("mbr", &l), 0);
	assert_int_equal(plan_layout_parse("apm", &l), -1);
	free(ins);
	plan_free(p);
	free(p);
}

/* system_hive: edits applied through hivex, sequence numbers equal,
 * values read back; a dirty hive refused. */
static void test_system_hive(void **st)
{
	struct hive *h = hive_new("SYSTEM");
	assert_non_null(h);
	assert_int_equal(hive_set_dword(h, "ControlSet001\\Services\\Ntfs", "Start", 3), 0);
	assert_int_equal(hive_set_string(h, "ControlSet001\\Control", "FirmwareBootDevice", "multi(0)disk(0)rdisk(0)partition(1)"), 0);
	uint8_t md[12] = { 0xDE, 0xC0, 0x17, 0x0B, 0, 0, 0x50, 0x06 };
	assert_int_equal(hive_set_binary(h, "MountedDevices", "\\DosDevices\\C:", REG_BINARY_, md, sizeof md), 0);
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0, out_len = 0;
	assert_int_equal(hive_serialize(h, &in, &len), 0);
	hive_close(h);
	struct plan_value_edit e[3];
	memset(e, 0, sizeof e);
	snprintf(e[0].key, sizeof e[0].key, "ControlSet001\\Services\\Ntfs");
	snprintf(e[0].value, sizeof e[0].value, "Start");
	e[0].type = REG_DWORD_;
	e[0].dword = 0;
	snprintf(e[1].key, sizeof e[1].key, "ControlSet001\\Control");
	snprintf(e[1].value, sizeof e[1].value, "FirmwareBootDevice");
	e[1].type = REG_SZ_;
	snprintf(e[1].str, sizeof e[1].str, "multi(0)disk(0)rdisk(0)partition(3)");
	snprintf(e[2].key, sizeof e[2].key, "MountedDevices");
	snprintf(e[2].value, sizeof e[2].value, "\\DosDevices\\C:");
	e[2].type = REG_BINARY_;
	memcpy(e[2].bin, "DMIO:ID:0123456789abcdef", 24);
	e[2].bin_len = 24;
	assert_int_equal(system_hive_apply(in, len, e, 3, &out, &out_len), 0);
	assert_int_equal(hive_is_dirty(out, out_len), 0);
	assert_int_equal(get_le32(out + 4), get_le32(out + 8));
	h = hive_open(out, out_len, false, "out");
	uint32_t v = 9;
	char *s = NULL;
	uint8_t *b = NULL;
	size_t bl = 0;
	uint32_t t;
	assert_int_equal(hive_get_dword(h, "ControlSet001\\Services\\Ntfs", "Start", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(hive_get_string(h, "ControlSet001\\Control", "FirmwareBootDevice", &s), 0);
	assert_string_equal(s, "multi(0)disk(0)rdisk(0)partition(3)");
	assert_int_equal(hive_get_binary(h, "MountedDevices", "\\DosDevices\\C:", &b, &bl, &t), 0);
	assert_int_equal(bl, 24);
	assert_memory_equal(b, "DMIO:ID:", 8);
	free(s);
	free(b);
	hive_close(h);
	free(out);
	/* a hive with unequal sequence numbers is refused */
	put_le32(in + 4, get_le32(in + 4) + 1);
	assert_int_equal(system_hive_apply(in, len, e, 3, &out, &out_len), -1);
	assert_int_equal(err_code(), E_BLOCKED);
	/* not a hive */
	memset(in, 0, 16);
	assert_int_equal(system_hive_apply(in, len, e, 3, &out, &out_len), -1);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_win7_gpt_reuse),
		cmocka_unit_test(test_mbr_and_append),
		cmocka_unit_test(test_blockers),
		cmocka_unit_test(test_4kn),
		cmocka_unit_test(test_control_sets),
		cmocka_unit_test(test_versions_and_options),
		cmocka_unit_test(test_system_hive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
