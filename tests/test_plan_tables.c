/* test_plan_tables.c - the plan's tables (blockers, warnings, registry
 * edits, patch targets) hold what the disk needs, never cut (issue 11,
 * "Sizes that cannot silently cut"): more blockers than the old 24-entry
 * array, every one in the plan, its JSON and its text; the most edits an
 * inspection can carry (8 control sets, 64 mounted devices: 96, the old
 * array's size) all in the JSON; an allocation failure at any point of
 * plan_build is E_NOMEM, never a plan with an entry missing, and a blocker
 * lost to one makes the plan not ok. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"
#include "system_hive.h"
#include "util.h"
#include "windows.h"

#define MIB (1ULL << 20)

static void add_part(struct inspection *ins, int num, uint64_t start, uint64_t size, enum part_role role)
{
	struct part *p = &ins->table.parts[ins->table.count++];
	p->number = num;
	p->start = start;
	p->size = size;
	p->mbr_type = 0x07;
	struct part_info *pi = &ins->parts[ins->nparts++];
	pi->part = p;
	pi->filesystem = "ntfs";
	pi->role = role;
	pi->reusable_as_esp = role == ROLE_SYSTEM_RESERVED;
}

/* A Windows 7 MBR disk (System Reserved + Windows) with every control set
 * and every MountedDevices entry the inspection holds, each naming the
 * Windows partition: the most registry edits a plan can have. */
static struct inspection *full_win7(void)
{
	struct inspection *ins = calloc(1, sizeof *ins);
	ins->table.type = PT_MBR;
	ins->table.sector_size = 512;
	ins->table.disk_signature = 0x0B17C0DE;
	add_part(ins, 1, MIB, 100 * MIB, ROLE_SYSTEM_RESERVED);
	add_part(ins, 2, 101 * MIB, 923 * MIB, ROLE_WINDOWS);
	ins->windows_found = true;
	ins->windows_partition = 2;
	ins->kernel_version = 0x601;
	ins->current_control_set = 1;
	snprintf(ins->product_name, sizeof ins->product_name, "Windows 7 Professional");
	snprintf(ins->locale, sizeof ins->locale, "en-US");
	ins->ncontrol_sets = sizeof ins->control_sets / sizeof *ins->control_sets;
	for (size_t i = 0; i < ins->ncontrol_sets; i++) {
		struct control_set *cs = &ins->control_sets[i];
		snprintf(cs->name, sizeof cs->name, "ControlSet%03zu", i + 1);
		cs->ntfs_start = 3;
		cs->vmbus_start = 0;
		cs->storvsc_start = 0;
	}
	ins->nmounted = sizeof ins->mounted / sizeof *ins->mounted;
	for (size_t i = 0; i < ins->nmounted; i++) {
		struct mounted_device *m = &ins->mounted[i];
		snprintf(m->name, sizeof m->name, "\\??\\Volume{%08zx-0000-0000-0000-000000000000}", i);
		m->kind = MD_MBR;
		m->signature = 0x0B17C0DE;
		m->offset = 101 * MIB;
		m->partition = 2;
	}
	return ins;
}

static struct plan_opts opts_gpt(void)
{
	struct plan_opts o;
	memset(&o, 0, sizeof o);
	o.disk_size = 1024 * MIB;
	o.sector_size = 512;
	o.format_given = true;
	o.format = OUT_RAW;
	memset(o.fingerprint, 0x42, sizeof o.fingerprint);
	return o;
}

/* 24 was the old array: 100 blockers and 40 warnings, each kept in order,
 * in plan_to_json and in plan_blockers_text */
static void test_many_blockers(void **st)
{
	(void)st;
	struct inspection *ins = full_win7();
	/* the inspection's own findings (32 at most) become blockers, past 24 too */
	ins->nfindings = sizeof ins->findings / sizeof *ins->findings;
	for (size_t i = 0; i < ins->nfindings; i++) {
		ins->findings[i].code = BLK_BITLOCKER;
		snprintf(ins->findings[i].message, sizeof ins->findings[i].message, "finding %zu", i);
	}
	struct plan_opts o = opts_gpt();
	struct plan *p = calloc(1, sizeof *p);
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_int_equal(p->nblockers, 32);
	assert_string_equal(p->blockers[31].message, "finding 31");
	for (size_t i = 32; i < 100; i++)
		assert_int_equal(plan_add_blocker(p, "esp-too-small", "blocker %zu", i), 0);
	for (size_t i = 0; i < 40; i++)
		assert_int_equal(plan_add_warning(p, "esp-reformat", "warning %zu", i), 0);
	assert_int_equal(p->nblockers, 100);
	assert_int_equal(p->nwarnings, 40);
	assert_false(plan_ok(p));
	assert_int_equal(plan_err_code(p), E_BLOCKED);
	assert_true(plan_has_blocker(p, "esp-too-small"));
	json_t *j = plan_to_json(p);
	json_t *b = json_object_get(j, "blockers"), *w = json_object_get(j, "warnings");
	assert_int_equal(json_array_size(b), 100);
	assert_int_equal(json_array_size(w), 40);
	for (size_t i = 0; i < 100; i++) {
		char want[32];
		snprintf(want, sizeof want, i < 32 ? "finding %zu" : "blocker %zu", i);
		assert_string_equal(json_string_value(json_object_get(json_array_get(b, i), "message")), want);
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(w, 39), "message")), "warning 39");
	assert_string_equal(json_string_value(json_object_get(json_array_get(w, 39), "code")), "esp-reformat");
	json_decref(j);
	char text[16384];   /* 100 blockers, each "code: message" */
	plan_blockers_text(p, text, sizeof text);
	assert_non_null(strstr(text, "finding 0; "));
	assert_non_null(strstr(text, ": blocker 99"));
	plan_free(p);
	assert_int_equal(p->nblockers, 0);
	assert_null(p->blockers);
	free(p);
	free(ins);
}

/* every edit the fullest inspection asks for: 8 control sets x 4 values
 * + 64 MountedDevices values, each in the plan and in its JSON "registry" */
static void test_many_edits(void **st)
{
	(void)st;
	struct inspection *ins = full_win7();
	struct plan_opts o = opts_gpt();
	struct plan *p = calloc(1, sizeof *p);
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_ok(p));
	assert_int_equal(p->nedits, 8 * 4 + 64);
	assert_string_equal(p->edits[31].key, "ControlSet008\\Control");
	assert_string_equal(p->edits[95].key, "MountedDevices");
	assert_string_equal(p->edits[95].value, ins->mounted[63].name);
	json_t *j = plan_to_json(p);
	json_t *r = json_object_get(j, "registry");
	assert_int_equal(json_array_size(r), 96);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 95), "value")), ins->mounted[63].name);
	json_decref(j);
	/* a plan built again over the old one: its tables freed and made anew (ASan: no leak) */
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_int_equal(p->nedits, 96);
	assert_int_equal(p->npatches, 4);
	plan_free(p);
	free(p);
	free(ins);
}

static long fail_at, nalloc;
static bool fail_nth(void) { return nalloc++ == fail_at; }
static bool fail_all(void) { return true; }

/* E_NOMEM at every allocation plan_build makes, in turn: -1 with E_NOMEM
 * or, once past the last, the whole plan - never a plan with a table cut */
static void test_nomem(void **st)
{
	(void)st;
	struct inspection *ins = full_win7();
	ins->nfindings = 30;
	for (size_t i = 0; i < ins->nfindings; i++) {
		ins->findings[i].code = BLK_BITLOCKER;
		snprintf(ins->findings[i].message, sizeof ins->findings[i].message, "finding %zu", i);
	}
	struct plan_opts o = opts_gpt();
	struct plan *p = calloc(1, sizeof *p);
	long failed = 0;
	for (fail_at = 0;; fail_at++) {
		nalloc = 0;
		xalloc_fail_hook = fail_nth;
		int rc = plan_build(ins, &o, p);
		xalloc_fail_hook = NULL;
		if (rc == 0) {
			assert_true(nalloc <= fail_at);   /* passed every allocation */
			break;
		}
		assert_int_equal(err_code(), E_NOMEM);
		assert_non_null(strstr(err_msg(), "out of memory"));
		assert_false(plan_ok(p));
		assert_int_equal(plan_err_code(p), E_NOMEM);
		err_clear();
		failed++;
	}
	assert_true(failed >= 4);   /* blockers, warnings, edits, patches tables at least */
	assert_int_equal(p->nblockers, 30);
	assert_int_equal(p->nedits, 96);
	assert_int_equal(p->npatches, 4);
	assert_false(p->nomem);
	/* a blocker added later and lost: the plan is not ok, E_NOMEM */
	plan_free(p);
	ins->nfindings = 0;
	assert_int_equal(plan_build(ins, &o, p), 0);
	assert_true(plan_ok(p));
	size_t cap = p->cap_blockers;
	for (size_t i = p->nblockers; i < cap; i++) assert_int_equal(plan_add_blocker(p, "x", "fits"), 0);
	xalloc_fail_hook = fail_all;
	assert_int_equal(plan_add_blocker(p, "output-refused", "lost"), -1);
	xalloc_fail_hook = NULL;
	assert_int_equal(err_code(), E_NOMEM);
	err_clear();
	assert_int_equal(p->nblockers, cap);
	assert_true(p->nomem);
	assert_false(plan_ok(p));
	assert_int_equal(plan_err_code(p), E_NOMEM);
	plan_free(p);
	free(p);
	free(ins);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_blockers),
		cmocka_unit_test(test_many_edits),
		cmocka_unit_test(test_nomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
