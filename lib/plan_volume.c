/* plan_volume.c - the part of the PLAN (plan.h) read from the Windows
 * volume: the complete ESP file list with sizes and its fit on the planned
 * FAT32, the boot files checked, and the BCD object graph exactly as the
 * executor (convert.c) will write it. Reads the volume, writes nothing.
 */
#include "plan.h"
#include "bcd.h"
#include "ntfs.h"
#include "pe.h"
#include "rules.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BOOT_FILE (64u << 20)     /* any single boot file; bootmgfw.efi is ~1 MiB */
#define MAX_ESP_FILES 4096
#define MAX_TREE_DEPTH 4              /* Boot\EFI\<lang>\file: 2 levels used */

/* ---- ESP file list ---- */

struct file_list {
	struct plan_file *v;
	size_t n, cap;
};

static bool list_has(const struct file_list *l, const char *dst)
{
	for (size_t i = 0; i < l->n; i++)
		if (!ascii_casecmp(l->v[i].dst, dst)) return true;
	return false;
}

static int list_add(struct file_list *l, const char *src, const char *dst, uint64_t size, bool dir)
{
	if (list_has(l, dst)) return 0;
	if (l->n >= MAX_ESP_FILES) return err_set(E_UNSUPPORTED, "more than %d boot files", MAX_ESP_FILES);
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct plan_file *v = xrealloc(l->v, cap * sizeof *l->v);
		if (!v) return err_prefix("ESP file list");
		l->v = v, l->cap = cap;
	}
	struct plan_file *f = &l->v[l->n++];
	memset(f, 0, sizeof *f);
	/* a boot file's path is whole or the ESP plan fails, never cut */
	if (str_copy(f->src, sizeof f->src, src ? src : "", "boot file path") < 0
	    || str_copy(f->dst, sizeof f->dst, dst, "ESP path") < 0) {
		l->n--;
		return -1;
	}
	f->size = size;
	f->dir = dir;
	return 0;
}

/* Adds every parent folder of dst ("EFI", "EFI/Microsoft", ...) first. */
static int list_add_parents(struct file_list *l, const char *dst)
{
	char buf[256];
	if (str_copy(buf, sizeof buf, dst, "ESP path") < 0) return -1;
	for (char *s = strchr(buf, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		if (list_add(l, NULL, buf, 0, true) < 0) return -1;
		*s = '/';
	}
	return 0;
}

static int expand_tree(struct file_list *l, struct ntfs_vol *v, const char *src, const char *dst, int depth)
{
	if (depth > MAX_TREE_DEPTH) return err_set(E_UNSUPPORTED, "%s: folders nested too deep", src);
	struct ntfs_dirent *ents = NULL;
	int n = ntfs_list(v, src, &ents);
	if (n < 0) return err_prefix("listing %s", src);
	if (list_add_parents(l, dst) < 0 || list_add(l, NULL, dst, 0, true) < 0) { free(ents); return -1; }
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		char s[256], d[256];
		/* a POSIX-namespace name may hold what FAT and our paths cannot */
		if (strpbrk(ents[i].name, "/\\:") || !strcmp(ents[i].name, ".") || !strcmp(ents[i].name, "..")) {
			rc = err_set(E_UNSUPPORTED, "%s: boot file name '%s' cannot be copied to FAT32", src, ents[i].name);
			break;
		}
		if ((size_t)snprintf(s, sizeof s, "%s\\%s", src, ents[i].name) >= sizeof s
		    || (size_t)snprintf(d, sizeof d, "%s/%s", dst, ents[i].name) >= sizeof d) {
			rc = err_set(E_UNSUPPORTED, "%s\\%s: path too long", src, ents[i].name);
			break;
		}
		if (ents[i].is_dir)
			rc = expand_tree(l, v, s, d, depth + 1);
		else
			rc = list_add(l, s, d, ents[i].size, false);
	}
	free(ents);
	return rc;
}

static int expand_files(const struct plan *p, struct ntfs_vol *v, struct plan_file **files, size_t *n)
{
	struct file_list l = { 0 };
	int rc = 0;
	for (size_t i = 0; i < p->nrules && rc == 0; i++) {
		const struct plan_copy_rule *r = &p->rules[i];
		bool is_dir = false;
		uint64_t size = 0;
		int st = ntfs_stat(v, r->src, &is_dir, &size);
		if (st < 0) { rc = -1; break; }
		if (st == 0 || is_dir != r->tree) {
			if (r->required)
				rc = err_set(E_NOTFOUND, "%s not found on the Windows volume: the UEFI boot files are missing", r->src);
			continue;
		}
		if (r->tree) rc = expand_tree(&l, v, r->src, r->dst, 0);
		else if ((rc = list_add_parents(&l, r->dst)) == 0) rc = list_add(&l, r->src, r->dst, size, false);
	}
	if (rc < 0) { free(l.v); return -1; }
	*files = l.v;
	*n = l.n;
	return 0;
}

/* ---- ESP fit (rules.h geometry, counted before anything is built) ---- */

static uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static size_t parent_len(const char *dst)
{
	const char *s = strrchr(dst, '/');
	return s ? (size_t)(s - dst) : 0;
}

/* Directory entries (32 bytes, fatgen103 "FAT Directory Structure") in the
 * folder dir (dlen bytes of a path; 0 = the root): "." and ".." outside
 * the root, and for each child its short entry plus long-name entries of
 * 13 UTF-16 units each (fatgen103 "FAT Long Directory Entries"), counted
 * for every name so the count is never low. */
static uint64_t dir_entries(const struct plan_file *f, size_t n, const char *dir, size_t dlen)
{
	uint64_t e = dlen ? 2 : 0;
	for (size_t i = 0; i < n; i++) {
		if (parent_len(f[i].dst) != dlen || strncmp(f[i].dst, dir, dlen)) continue;
		const char *name = f[i].dst + dlen + (dlen ? 1 : 0);
		e += 1 + div_up(strlen(name), 13);
	}
	return e;
}

/* Clusters the files, their folders and extra more bytes in the root's
 * EFI/Microsoft/Boot take on a FAT32 of cluster size cb (the BCD store
 * is one of f[] when it is known, else its bytes are passed as extra). */
static uint64_t esp_clusters_needed(const struct plan_file *f, size_t n, uint32_t cb, uint64_t extra)
{
	uint64_t c = div_up(dir_entries(f, n, "", 0) * 32, cb) + div_up(extra, cb) + 1;
	for (size_t i = 0; i < n; i++) {
		if (!f[i].dir) { c += div_up(f[i].size, cb); continue; }
		uint64_t bytes = dir_entries(f, n, f[i].dst, strlen(f[i].dst)) * 32;
		c += bytes ? div_up(bytes, cb) : 1;
	}
	return c;
}

/* ---- boot files must be the images they claim to be ---- */

/* The .efi files of the list, read the way they will be copied: each one
 * that is not an x64 EFI application is a blocker "boot-file-not-pe"
 * naming it (a damaged or foreign boot manager would leave the disk
 * unbootable after a "successful" conversion). -1 only when a file cannot
 * be read (the error names it). */
static int check_boot_files(struct plan *p, struct ntfs_vol *v, const struct plan_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t dl = strlen(f[i].dst);
		bool dup = false;
		for (size_t k = 0; k < i; k++) dup |= !strcmp(f[k].src, f[i].src);
		if (f[i].dir || !f[i].src[0] || dup || dl < 4 || ascii_casecmp(f[i].dst + dl - 4, ".efi")) continue;
		uint8_t *d = NULL;
		size_t len = 0;
		if (ntfs_read_file(v, f[i].src, MAX_BOOT_FILE, &d, &len) < 0) {
			/* a damaged or unsupported file is a blocker of the plan, so
			 * inspect, the dry run and convert agree (issue 8); an I/O or
			 * memory failure stays an error */
			if (err_code() == E_IO || err_code() == E_NOMEM) return -1;
			plan_add_blocker(p, "boot-file-unreadable", "%s", err_msg());
			err_clear();
			continue;
		}
		char why[200];
		if (!rules_efi_application(d, len, why, sizeof why))   /* verify's boot-files rule too */
			plan_add_blocker(p, "boot-file-not-pe", "%s is not an x64 EFI application (%s): copied to the ESP as "
					 "%s it would not boot; restore it (sfc /scannow, or from the installation media) and "
					 "convert again", f[i].src, why, f[i].dst);
		free(d);
	}
	return 0;
}

/* ---- BCD store ---- */

static struct guid alias(const char *a)
{
	struct guid g;
	if (bcd_alias_guid(a, &g) < 0) memset(&g, 0, sizeof g);
	return g;
}

#define TRY(x) do { if ((x) < 0) goto fail; } while (0)

/* The graph's counterparts of bcd_add_object/bcd_set_* (bcd.h): the same
 * calls in the same order, recorded as data for the plan. */
static int g_add_object(struct plan_bcd_graph *g, const struct guid *id, uint32_t type)
{
	if (g->nobjects == PLAN_BCD_MAX_OBJECTS)
		return err_set(E_INTERNAL, "more than %d BCD objects", PLAN_BCD_MAX_OBJECTS);
	struct plan_bcd_object *o = &g->objects[g->nobjects++];
	memset(o, 0, sizeof *o);
	o->id = *id;
	o->type = type;
	return 0;
}

static struct plan_bcd_element *g_element(struct plan_bcd_graph *g, const struct guid *id, uint32_t type, enum plan_bcd_kind k)
{
	for (size_t i = g->nobjects; i-- > 0;) {
		struct plan_bcd_object *o = &g->objects[i];
		if (!guid_eq(&o->id, id)) continue;
		if (o->nelements == PLAN_BCD_MAX_ELEMENTS) break;
		struct plan_bcd_element *e = &o->elements[o->nelements++];
		memset(e, 0, sizeof *e);
		e->type = type;
		e->kind = k;
		return e;
	}
	err_set(E_INTERNAL, "BCD element 0x%08x: no such object or more than %d elements", type, PLAN_BCD_MAX_ELEMENTS);
	return NULL;
}

static int g_set_device(struct plan_bcd_graph *g, const struct guid *id, uint32_t type, const struct bcd_device *d)
{
	struct plan_bcd_element *e = g_element(g, id, type, PBE_DEVICE);
	if (!e) return -1;
	e->u.device = *d;
	return 0;
}

static int g_set_string(struct plan_bcd_graph *g, const struct guid *id, uint32_t type, const char *s)
{
	struct plan_bcd_element *e = g_element(g, id, type, PBE_STRING);
	if (!e) return -1;
	if ((size_t)snprintf(e->u.string, sizeof e->u.string, "%s", s) >= sizeof e->u.string)
		return err_set(E_UNSUPPORTED, "BCD string '%.40s...' longer than %zu bytes", s, sizeof e->u.string - 1);
	return 0;
}

static int g_set_objects(struct plan_bcd_graph *g, const struct guid *id, uint32_t type, const struct guid *v, size_t n)
{
	if (n > PLAN_BCD_MAX_LIST) return err_set(E_INTERNAL, "BCD element 0x%08x: more than %d objects", type, PLAN_BCD_MAX_LIST);
	struct plan_bcd_element *e = g_element(g, id, type, PBE_OBJECTS);
	if (!e) return -1;
	memcpy(e->u.objects.v, v, n * sizeof *v);
	e->u.objects.n = n;
	return 0;
}

static int g_set_object(struct plan_bcd_graph *g, const struct guid *id, uint32_t type, const struct guid *v)
{
	if (g_set_objects(g, id, type, v, 1) < 0) return -1;
	g->objects[g->nobjects - 1].elements[g->objects[g->nobjects - 1].nelements - 1].kind = PBE_OBJECT;
	return 0;
}

static int g_set_integer(struct plan_bcd_graph *g, const struct guid *id, uint32_t type, uint64_t v)
{
	struct plan_bcd_element *e = g_element(g, id, type, PBE_INTEGER);
	if (!e) return -1;
	e->u.integer = v;
	return 0;
}

static int g_set_boolean(struct plan_bcd_graph *g, const struct guid *id, uint32_t type, bool v)
{
	struct plan_bcd_element *e = g_element(g, id, type, PBE_BOOLEAN);
	if (!e) return -1;
	e->u.boolean = v;
	return 0;
}

/* The store `bcdboot <windir> /f UEFI` writes (doc/formats.md, BCD), then the
 * article's bcdedit settings (timeout 30; debug/sos/dbgsettings with --debug;
 * bootdebug with --bootdebug). This is the one place that decides which
 * objects and elements the store has; what each choice rests on:
 *
 *  - every generation (6.0 Vista SP2 / Server 2008 SP2, 6.1, 6.2+): {bootmgr},
 *    the Windows Boot Loader, {memdiag} when memtest.efi is copied, the
 *    settings objects {globalsettings} (inherit {dbgsettings} {emssettings}
 *    {badmemory}), {bootloadersettings} and {resumeloadersettings} (inherit
 *    {globalsettings}), as in ../samples/bcd/win10-uefi.BCD.
 *  - every generation: a "Resume from Hibernate" object (type 0x10200004,
 *    doc/formats.md, BCD) on the Windows partition, path \Windows\system32\winresume.efi,
 *    inherit {resumeloadersettings}, filedevice/filepath \hiberfil.sys (the
 *    "Reserved1/Reserved2" 0x21000001/0x22000002 of MS BcdResumeElementTypes),
 *    debugoptionenabled No (0x26000006), and the links to it: the loader's
 *    resumeobject (BcdOSLoaderObject_AssociatedResumeObject 0x23000003) and
 *    {bootmgr}'s (BcdBootMgrObject_ResumeObject 0x23000006). Values as the
 *    sample has them; that a Windows 7 installation writes a resume loader
 *    beside the OS loader, and Server 2008 (6.0) too, is stated by the
 *    "Windows 7 VHD boot" notes (windows7boot.blogspot.com, 2010) and
 *    "Microsoft Windows Server 2008 Administration", table 1-3 (resume
 *    loader). No winresume.efi on the volume only means no resume.
 *  - every generation: {memdiag} badmemoryaccess Yes (BcdLibraryBoolean_
 *    AllowBadMemoryAccess 0x1600000b, a Vista-era library element), as in
 *    the sample.
 *  - 6.2 and later only: bootmenupolicy Standard (0x250000c2 on the loader,
 *    0x25000008 on the resume object) as in the sample and a Windows 8
 *    `bcdedit /v` listing; MS BcdResumeElementTypes gives Windows 8 as the
 *    minimum and menupolicylegacy (0) as the default, so older loaders get
 *    none. {hypervisorsettings} (type 0x20200003, hypervisordebugtype 0
 *    serial, port 1, 115200 baud: 0x250000f3/f4/f5) inherited by
 *    {bootloadersettings}, as in the sample; no store of a 6.0/6.1 bcdboot
 *    is at hand to show it there, so those get the inherit list without it.
 *  - not written: what the sample has only for features a converted disk
 *    lacks or a 6.x loader predates: recoverysequence/recoveryenabled/
 *    displaymessageoverride (need a WinRE entry), isolatedcontext,
 *    flightsigning, allowedinmemorysettings (Windows 10), {fwbootmgr}
 *    (written by the firmware sync of a running Windows, not by bcdboot
 *    offline), {dbgsettings} debugtype Local (Windows 10's default; the
 *    article's /dbgsettings needs serial, which is also 6.x's default).
 */
static bool bcd_is_win8_or_later(const struct plan_bcd *pb)
{
	return pb->windows_version >= 0x602;
}

static int bcd_settings_objects(struct plan_bcd_graph *b, const struct plan_bcd *pb)
{
	struct guid gs = alias("{globalsettings}"), dbg = alias("{dbgsettings}"), ems = alias("{emssettings}"),
		    bad = alias("{badmemory}"), bls = alias("{bootloadersettings}"), rls = alias("{resumeloadersettings}"),
		    hv = alias("{hypervisorsettings}");
	struct guid gs_inherit[3] = { dbg, ems, bad };
	struct guid bls_inherit[2] = { gs, hv };
	bool win8 = bcd_is_win8_or_later(pb);
	TRY(g_add_object(b, &gs, BCD_TYPE_LIB_SETTINGS));
	TRY(g_set_string(b, &gs, BCDE_LIB_PREFERRED_LOCALE, pb->locale));
	TRY(g_set_objects(b, &gs, BCDE_LIB_INHERITED_OBJECTS, gs_inherit, 3));
	TRY(g_add_object(b, &dbg, BCD_TYPE_LIB_SETTINGS));
	/* debugtype 0 = serial; bcdboot's default port 1 at 115200 */
	TRY(g_set_integer(b, &dbg, BCDE_LIB_DEBUGGER_TYPE, 0));
	TRY(g_set_integer(b, &dbg, BCDE_LIB_SERIAL_PORT, pb->debug ? pb->debug_port : 1));
	TRY(g_set_integer(b, &dbg, BCDE_LIB_BAUDRATE, pb->debug ? pb->debug_baud : 115200));
	if (pb->debug) TRY(g_set_integer(b, &dbg, BCDE_LIB_DEBUG_START_POLICY, 0));   /* /start ACTIVE */
	TRY(g_add_object(b, &ems, BCD_TYPE_LIB_SETTINGS));
	TRY(g_set_boolean(b, &ems, BCDE_LIB_BOOTEMS, false));   /* bootems No */
	TRY(g_add_object(b, &bad, BCD_TYPE_LIB_SETTINGS));
	TRY(g_add_object(b, &bls, BCD_TYPE_LOADER_SETTINGS));
	TRY(g_set_objects(b, &bls, BCDE_LIB_INHERITED_OBJECTS, bls_inherit, win8 ? 2 : 1));
	TRY(g_add_object(b, &rls, BCD_TYPE_RESUME_SETTINGS));
	TRY(g_set_objects(b, &rls, BCDE_LIB_INHERITED_OBJECTS, &gs, 1));
	if (!win8) return 0;
	TRY(g_add_object(b, &hv, BCD_TYPE_LOADER_SETTINGS));
	TRY(g_set_integer(b, &hv, BCDE_OS_HYPERVISOR_DEBUG_TYPE, 0));   /* Serial */
	TRY(g_set_integer(b, &hv, BCDE_OS_HYPERVISOR_DEBUG_PORT, 1));
	TRY(g_set_integer(b, &hv, BCDE_OS_HYPERVISOR_BAUDRATE, 115200));
	return 0;
fail:
	return -1;
}

/* What every boot application object of the store begins with, in this
 * order (bcdboot's objects in the samples): its type, the device and path
 * of its .efi, a description, the store's locale and the one settings
 * object it inherits. */
struct g_app {
	uint32_t type;
	const struct bcd_device *device;
	const char *path, *description;
	const char *inherit;            /* the settings object's alias ("{globalsettings}") */
};

static int g_application(struct plan_bcd_graph *b, const struct guid *id, const struct plan_bcd *pb, const struct g_app *a)
{
	struct guid inherit = alias(a->inherit);
	TRY(g_add_object(b, id, a->type));
	TRY(g_set_device(b, id, BCDE_LIB_APPLICATION_DEVICE, a->device));
	TRY(g_set_string(b, id, BCDE_LIB_APPLICATION_PATH, a->path));
	TRY(g_set_string(b, id, BCDE_LIB_DESCRIPTION, a->description));
	TRY(g_set_string(b, id, BCDE_LIB_PREFERRED_LOCALE, pb->locale));
	TRY(g_set_objects(b, id, BCDE_LIB_INHERITED_OBJECTS, &inherit, 1));
	return 0;
fail:
	return -1;
}

static int bcd_loader_object(struct plan_bcd_graph *b, const struct plan_bcd *pb)
{
	const struct guid *id = &pb->loader_id;
	TRY(g_application(b, id, pb, &(struct g_app){ BCD_TYPE_OSLOADER, &pb->windows, pb->loader_path, pb->description,
						      "{bootloadersettings}" }));
	TRY(g_set_device(b, id, BCDE_OS_DEVICE, &pb->windows));
	TRY(g_set_string(b, id, BCDE_OS_SYSTEM_ROOT, "\\Windows"));
	TRY(g_set_object(b, id, BCDE_OS_RESUME_OBJECT, &pb->resume_id));
	TRY(g_set_integer(b, id, BCDE_OS_NX, 0));   /* nx OptIn, as bcdboot sets it */
	if (bcd_is_win8_or_later(pb)) TRY(g_set_integer(b, id, BCDE_OS_BOOTMENU_POLICY, 1));   /* Standard */
	if (pb->nointegritychecks) TRY(g_set_boolean(b, id, BCDE_LIB_NO_INTEGRITY_CHECKS, true));
	if (pb->debug) {
		TRY(g_set_boolean(b, id, BCDE_OS_DEBUG, true));
		TRY(g_set_boolean(b, id, BCDE_OS_SOS, true));
	}
	if (pb->bootdebug) TRY(g_set_boolean(b, id, BCDE_LIB_BOOTDEBUG, true));
	return 0;
fail:
	return -1;
}

static int bcd_resume_object(struct plan_bcd_graph *b, const struct plan_bcd *pb)
{
	const struct guid *id = &pb->resume_id;
	TRY(g_application(b, id, pb, &(struct g_app){ BCD_TYPE_RESUME, &pb->windows, "\\Windows\\system32\\winresume.efi",
						      "Windows Resume Application", "{resumeloadersettings}" }));
	TRY(g_set_device(b, id, BCDE_RESUME_FILE_DEVICE, &pb->windows));
	TRY(g_set_string(b, id, BCDE_RESUME_FILE_PATH, "\\hiberfil.sys"));
	if (bcd_is_win8_or_later(pb)) TRY(g_set_integer(b, id, BCDE_RESUME_BOOTMENU_POLICY, 1));   /* Standard */
	TRY(g_set_boolean(b, id, BCDE_RESUME_DEBUG_OPTION_ENABLED, false));
	return 0;
fail:
	return -1;
}

static int bcd_bootmgr_object(struct plan_bcd_graph *b, const struct plan_bcd *pb, bool memdiag)
{
	struct guid bm = alias("{bootmgr}"), md = alias("{memdiag}");
	TRY(g_application(b, &bm, pb, &(struct g_app){ BCD_TYPE_BOOTMGR, &pb->esp, "\\EFI\\Microsoft\\Boot\\bootmgfw.efi",
						       "Windows Boot Manager", "{globalsettings}" }));
	TRY(g_set_object(b, &bm, BCDE_BOOTMGR_DEFAULT, &pb->loader_id));
	TRY(g_set_object(b, &bm, BCDE_BOOTMGR_RESUME_OBJECT, &pb->resume_id));
	TRY(g_set_objects(b, &bm, BCDE_BOOTMGR_DISPLAY_ORDER, &pb->loader_id, 1));
	TRY(g_set_integer(b, &bm, BCDE_BOOTMGR_TIMEOUT, 30));
	if (!memdiag) return 0;
	TRY(g_set_objects(b, &bm, BCDE_BOOTMGR_TOOLS_ORDER, &md, 1));
	TRY(g_application(b, &md, pb, &(struct g_app){ BCD_TYPE_MEMDIAG, &pb->esp, "\\EFI\\Microsoft\\Boot\\memtest.efi",
						       "Windows Memory Diagnostic", "{globalsettings}" }));
	TRY(g_set_boolean(b, &md, BCDE_LIB_ALLOW_BAD_MEMORY_ACCESS, true));
	return 0;
fail:
	return -1;
}

/* The graph of the store, decided here once (the comment above says why
 * each object and element is there). */
static int build_graph(struct plan_bcd_graph *g, const struct plan_bcd *pb, bool memdiag)
{
	if (bcd_bootmgr_object(g, pb, memdiag) < 0 || bcd_loader_object(g, pb) < 0 || bcd_resume_object(g, pb) < 0
	    || bcd_settings_objects(g, pb) < 0)
		return err_prefix("BCD store");
	return 0;
}

/* Sets one element of the store as the graph holds it (bcd.h). */
static int store_element(struct bcd *b, const struct guid *id, const struct plan_bcd_element *e)
{
	switch (e->kind) {
	case PBE_DEVICE: return bcd_set_device(b, id, e->type, &e->u.device);
	case PBE_STRING: return bcd_set_string(b, id, e->type, e->u.string);
	case PBE_OBJECT: return bcd_set_object(b, id, e->type, &e->u.objects.v[0]);
	case PBE_OBJECTS: return bcd_set_objects(b, id, e->type, e->u.objects.v, e->u.objects.n);
	case PBE_INTEGER: return bcd_set_integer(b, id, e->type, e->u.integer);
	case PBE_BOOLEAN: return bcd_set_boolean(b, id, e->type, e->u.boolean);
	}
	return err_set(E_INTERNAL, "BCD element 0x%08x of an unknown kind", e->type);
}

struct bcd *plan_bcd_store(const struct plan *p)
{
	const struct plan_bcd_graph *g = p->bcd_graph;
	if (!g) {
		err_set(E_INTERNAL, "the plan has no BCD object graph");
		return NULL;
	}
	struct bcd *b = bcd_new();
	if (!b) return NULL;
	for (size_t i = 0; i < g->nobjects; i++) {
		const struct plan_bcd_object *o = &g->objects[i];
		if (bcd_add_object(b, &o->id, o->type) < 0) goto fail;
		for (size_t k = 0; k < o->nelements; k++)
			if (store_element(b, &o->id, &o->elements[k]) < 0) goto fail;
	}
	return b;
fail:
	err_prefix("BCD store");
	bcd_free(b);
	return NULL;
}

/* ---- the plan from the volume ---- */

static bool has_memtest(const struct plan_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!f[i].dir && !ascii_casecmp(f[i].dst, "EFI/Microsoft/Boot/memtest.efi")) return true;
	return false;
}

/* The bytes of the store the graph gives, serialized as convert will. */
static int bcd_store_size(const struct plan *p, uint64_t *size)
{
	struct bcd *b = plan_bcd_store(p);
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = b ? bcd_serialize(b, &data, &len) : -1;
	bcd_free(b);
	free(data);
	if (rc < 0) return err_prefix("BCD store");
	*size = len;
	return 0;
}

int plan_build_volume(struct plan *p, struct ntfs_vol *v)
{
	struct file_list l = { 0 };
	if (expand_files(p, v, &l.v, &l.n) < 0) {
		if (err_code() != E_NOTFOUND) return -1;
		if (plan_add_blocker(p, "no-boot-files", "%s", err_msg()) < 0) return -1;
		err_clear();
		return 0;
	}
	l.cap = l.n;
	p->files = l.v;
	p->nfiles = l.n;
	p->memdiag = has_memtest(l.v, l.n);
	/* rules.h: the boot applications verify demands are on the list */
	for (size_t i = 0; i < RULES_NBOOT_APPS; i++)
		if (!list_has(&l, rules_boot_apps[i]))
			plan_add_blocker(p, "no-boot-files", "the boot files copied from the Windows volume do not include %s", rules_boot_apps[i]);
	if (check_boot_files(p, v, l.v, l.n) < 0) return -1;
	p->bcd_graph = xcalloc(1, sizeof *p->bcd_graph);
	if (!p->bcd_graph) return err_prefix("BCD object graph");
	uint64_t bcd_len = 0;
	if (build_graph(p->bcd_graph, &p->bcd, p->memdiag) < 0 || bcd_store_size(p, &bcd_len) < 0) return -1;
	/* the store is one of the files (last: its folder exists by then) */
	if (list_add(&l, NULL, RULES_BCD_PATH, bcd_len, false) < 0) return -1;
	p->files = l.v;
	p->nfiles = l.n;
	p->files_known = true;
	p->esp_files_clusters = esp_clusters_needed(l.v, l.n, p->esp_cluster_bytes, 0);
	if (p->esp_files_clusters > p->esp_clusters)
		plan_add_blocker(p, "esp-too-small", "the boot files need %llu clusters of %u bytes, the %llu MiB ESP has %u: use --esp append with a larger --esp-size",
				 (unsigned long long)p->esp_files_clusters, p->esp_cluster_bytes,
				 (unsigned long long)(p->esp_size >> 20), p->esp_clusters);
	if (p->nomem) return err_set(E_NOMEM, "out of memory (plan tables)");
	return 0;
}

const char *plan_bcd_summary(const struct plan *p, char *buf, size_t n)
{
	const struct plan_bcd_graph *g = p->bcd_graph;
	if (!g || !p->files_known) return NULL;
	size_t nel = 0;
	for (size_t i = 0; i < g->nobjects; i++) nel += g->objects[i].nelements;
	msg_printf(buf, n, "%zu objects, %zu elements, %llu bytes", g->nobjects, nel,
		   (unsigned long long)p->files[p->nfiles - 1].size);
	return buf;
}

void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->nblockers; i++) free(p->blockers[i].message);
	for (size_t i = 0; i < p->nwarnings; i++) free(p->warnings[i].message);
	free(p->files);
	free(p->bcd_graph);
	free(p->blockers);
	free(p->warnings);
	free(p->edits);
	free(p->patches);
	p->files = NULL;
	p->bcd_graph = NULL;
	p->nfiles = 0;
	p->files_known = false;
	p->blockers = p->warnings = NULL;
	p->nblockers = p->cap_blockers = p->nwarnings = p->cap_warnings = 0;
	p->edits = NULL;
	p->nedits = p->cap_edits = 0;
	p->patches = NULL;
	p->npatches = p->cap_patches = 0;
	p->nomem = false;
}
