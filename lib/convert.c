/* convert.c - see convert.h */
#include "convert.h"
#include "bcd.h"
#include "disk.h"
#include "fat32.h"
#include "image.h"
#include "ntfs.h"
#include "overlay.h"
#include "partition.h"
#include "pe.h"
#include "rules.h"
#include "system_hive.h"
#include "util.h"
#include "windows.h"
#include "writer.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MAX_BOOT_FILE (64u << 20)     /* any single boot file; bootmgfw.efi is ~1 MiB */
#define MAX_KERNEL_FILE (64u << 20)   /* ntoskrnl.exe is ~5 MiB */
#define MAX_HIVE (256u << 20)         /* SYSTEM hives are tens of MiB */
#define MAX_ESP_FILES 4096
#define MAX_TREE_DEPTH 4              /* Boot\EFI\<lang>\file: 2 levels used */

static const char SYSTEM_HIVE_PATH[] = "\\Windows\\System32\\config\\SYSTEM";

/* ---- output checks ---- */

int convert_check_output(const char *in, const char *out, bool overwrite)
{
	struct stat si, so;
	bool have_in = stat(in, &si) == 0;   /* an unreadable input is reported when opened */
	if (stat(out, &so) == 0) {
		if (have_in && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
			return err_set(E_EXISTS, "'%s' is the input: the input is never modified, write to another file", out);
		if (S_ISDIR(so.st_mode))
			return err_set(E_EXISTS, "'%s' is a directory", out);
		if (!overwrite)
			return err_set(E_EXISTS, "'%s' exists (use --overwrite to replace it)", out);
	}
	char *copy = xstrdup(out);
	const char *dir = dirname(copy);
	int ok = access(dir, W_OK | X_OK);
	int saved = errno;
	if (ok < 0) {
		errno = saved;
		err_errno(E_OUTPUT, "cannot write in the output folder '%s'", dir);
		free(copy);
		return -1;
	}
	free(copy);
	return 0;
}

/* Free space on OUT's file system against the estimated output size: a
 * fixed VHDX/VHD holds the whole virtual size; a dynamic or sparse output
 * holds about what the input holds (its allocated bytes) plus the new ESP.
 * An estimate: the writer may still fail later (exit 7 there too). */
static int check_output_space(const char *in, const char *out, const struct plan *p, bool differencing)
{
	struct stat si;
	struct statvfs vf;
	char *copy = xstrdup(out);
	int rc = statvfs(dirname(copy), &vf);
	free(copy);
	if (rc < 0 || stat(in, &si) < 0) return 0;   /* not knowable: left to the writer */
	/* the new ESP adds its two FATs and the boot files (its free clusters
	 * are zeros, which no writer allocates) */
	uint64_t esp = 2 * ((uint64_t)p->esp_clusters + 2) * 4 + p->esp_files_clusters * p->esp_cluster_bytes + (1u << 20);
	uint64_t need = (uint64_t)si.st_blocks * 512 + esp;
	if (p->fixed) need = p->new_size;
	if (need > p->new_size + (16u << 20)) need = p->new_size;
	/* a differencing child holds what is written: ESP, hive, patched files */
	if (differencing) need = esp + (64u << 20);
	uint64_t avail = (uint64_t)vf.f_bavail * vf.f_frsize;
	errno = ENOSPC;
	if (vf.f_files && !vf.f_favail)
		return err_errno(E_NOSPACE, "'%s': no free inode on its file system for the output", out);
	if (avail < need)
		return err_errno(E_NOSPACE, "'%s': not enough free space, %llu MiB free on its file system, the output needs about %llu MiB",
				 out, (unsigned long long)(avail >> 20), (unsigned long long)((need + (1 << 20) - 1) >> 20));
	return 0;
}

/* ---- ESP file list ---- */

struct file_list {
	struct convert_file *v;
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
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	struct convert_file *f = &l->v[l->n++];
	memset(f, 0, sizeof *f);
	snprintf(f->src, sizeof f->src, "%s", src ? src : "");
	snprintf(f->dst, sizeof f->dst, "%s", dst);
	f->size = size;
	f->dir = dir;
	return 0;
}

/* Adds every parent folder of dst ("EFI", "EFI/Microsoft", ...) first. */
static int list_add_parents(struct file_list *l, const char *dst)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", dst);
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

int convert_expand_files(const struct plan *p, struct ntfs_vol *v, struct convert_file **files, size_t *n)
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
static uint64_t dir_entries(const struct convert_file *f, size_t n, const char *dir, size_t dlen)
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
static uint64_t esp_clusters_needed(const struct convert_file *f, size_t n, uint32_t cb, uint64_t extra)
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

/* Why d[n] is not an x64 EFI application, or NULL when it is: PE32+
 * (PE/COFF "Optional Header", magic 0x20B), machine AMD64 (0x8664),
 * subsystem EFI_APPLICATION (10) -- what UEFI 2.x section 2.1.1 lets x64
 * firmware start, and what the boot manager's applications are. */
static const char *efi_image_problem(const uint8_t *d, size_t n, char *why, size_t wn)
{
	struct pe *pe = pe_parse(d, n);
	if (!pe) {
		snprintf(why, wn, "%s", err_msg());
		err_clear();
		return why;
	}
	if (!pe->pe32plus || pe->machine != PE_MACHINE_AMD64)
		snprintf(why, wn, "a %s image for machine 0x%04X, not x64", pe->pe32plus ? "PE32+" : "PE32", pe->machine);
	else if (pe->subsystem != PE_SUBSYSTEM_EFI_APPLICATION)
		snprintf(why, wn, "subsystem %u, not an EFI application (10)", pe->subsystem);
	else
		why = NULL;
	pe_free(pe);
	return why;
}

/* The .efi files of the list, read the way they will be copied: each one
 * that is not an x64 EFI application is a blocker "boot-file-not-pe"
 * naming it (a damaged or foreign boot manager would leave the disk
 * unbootable after a "successful" conversion). -1 only when a file cannot
 * be read (the error names it). */
int convert_check_boot_files(struct plan *p, struct ntfs_vol *v, const struct convert_file *f, size_t n)
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
		if (efi_image_problem(d, len, why, sizeof why))
			plan_add_blocker(p, "boot-file-not-pe", "%s is not an x64 EFI application (%s): copied to the ESP as "
					 "%s it would not boot; restore it (sfc /scannow, or from the installation media) and "
					 "convert again", f[i].src, why, f[i].dst);
		free(d);
	}
	return 0;
}

static bool has_memtest(const struct convert_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!f[i].dir && !ascii_casecmp(f[i].dst, "EFI/Microsoft/Boot/memtest.efi")) return true;
	return false;
}

/* ---- BCD store ---- */

static struct guid alias(const char *a)
{
	struct guid g;
	if (bcd_alias_guid(a, &g) < 0) memset(&g, 0, sizeof g);
	return g;
}

#define TRY(x) do { if ((x) < 0) goto fail; } while (0)

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

static int bcd_settings_objects(struct bcd *b, const struct plan_bcd *pb)
{
	struct guid gs = alias("{globalsettings}"), dbg = alias("{dbgsettings}"), ems = alias("{emssettings}"),
		    bad = alias("{badmemory}"), bls = alias("{bootloadersettings}"), rls = alias("{resumeloadersettings}"),
		    hv = alias("{hypervisorsettings}");
	struct guid gs_inherit[3] = { dbg, ems, bad };
	struct guid bls_inherit[2] = { gs, hv };
	bool win8 = bcd_is_win8_or_later(pb);
	TRY(bcd_add_object(b, &gs, BCD_TYPE_LIB_SETTINGS));
	TRY(bcd_set_string(b, &gs, BCDE_LIB_PREFERRED_LOCALE, pb->locale));
	TRY(bcd_set_objects(b, &gs, BCDE_LIB_INHERITED_OBJECTS, gs_inherit, 3));
	TRY(bcd_add_object(b, &dbg, BCD_TYPE_LIB_SETTINGS));
	/* debugtype 0 = serial; bcdboot's default port 1 at 115200 */
	TRY(bcd_set_integer(b, &dbg, BCDE_LIB_DEBUGGER_TYPE, 0));
	TRY(bcd_set_integer(b, &dbg, BCDE_LIB_SERIAL_PORT, pb->debug ? pb->debug_port : 1));
	TRY(bcd_set_integer(b, &dbg, BCDE_LIB_BAUDRATE, pb->debug ? pb->debug_baud : 115200));
	if (pb->debug) TRY(bcd_set_integer(b, &dbg, BCDE_LIB_DEBUG_START_POLICY, 0));   /* /start ACTIVE */
	TRY(bcd_add_object(b, &ems, BCD_TYPE_LIB_SETTINGS));
	TRY(bcd_set_boolean(b, &ems, BCDE_LIB_BOOTEMS, false));   /* bootems No */
	TRY(bcd_add_object(b, &bad, BCD_TYPE_LIB_SETTINGS));
	TRY(bcd_add_object(b, &bls, BCD_TYPE_LOADER_SETTINGS));
	TRY(bcd_set_objects(b, &bls, BCDE_LIB_INHERITED_OBJECTS, bls_inherit, win8 ? 2 : 1));
	TRY(bcd_add_object(b, &rls, BCD_TYPE_RESUME_SETTINGS));
	TRY(bcd_set_objects(b, &rls, BCDE_LIB_INHERITED_OBJECTS, &gs, 1));
	if (!win8) return 0;
	TRY(bcd_add_object(b, &hv, BCD_TYPE_LOADER_SETTINGS));
	TRY(bcd_set_integer(b, &hv, BCDE_OS_HYPERVISOR_DEBUG_TYPE, 0));   /* Serial */
	TRY(bcd_set_integer(b, &hv, BCDE_OS_HYPERVISOR_DEBUG_PORT, 1));
	TRY(bcd_set_integer(b, &hv, BCDE_OS_HYPERVISOR_BAUDRATE, 115200));
	return 0;
fail:
	return -1;
}

static int bcd_loader_object(struct bcd *b, const struct plan_bcd *pb)
{
	const struct guid *id = &pb->loader_id;
	struct guid bls = alias("{bootloadersettings}");
	TRY(bcd_add_object(b, id, BCD_TYPE_OSLOADER));
	TRY(bcd_set_device(b, id, BCDE_LIB_APPLICATION_DEVICE, &pb->windows));
	TRY(bcd_set_string(b, id, BCDE_LIB_APPLICATION_PATH, pb->loader_path));
	TRY(bcd_set_string(b, id, BCDE_LIB_DESCRIPTION, pb->description));
	TRY(bcd_set_string(b, id, BCDE_LIB_PREFERRED_LOCALE, pb->locale));
	TRY(bcd_set_objects(b, id, BCDE_LIB_INHERITED_OBJECTS, &bls, 1));
	TRY(bcd_set_device(b, id, BCDE_OS_DEVICE, &pb->windows));
	TRY(bcd_set_string(b, id, BCDE_OS_SYSTEM_ROOT, "\\Windows"));
	TRY(bcd_set_object(b, id, BCDE_OS_RESUME_OBJECT, &pb->resume_id));
	TRY(bcd_set_integer(b, id, BCDE_OS_NX, 0));   /* nx OptIn, as bcdboot sets it */
	if (bcd_is_win8_or_later(pb)) TRY(bcd_set_integer(b, id, BCDE_OS_BOOTMENU_POLICY, 1));   /* Standard */
	if (pb->nointegritychecks) TRY(bcd_set_boolean(b, id, BCDE_LIB_NO_INTEGRITY_CHECKS, true));
	if (pb->debug) {
		TRY(bcd_set_boolean(b, id, BCDE_OS_DEBUG, true));
		TRY(bcd_set_boolean(b, id, BCDE_OS_SOS, true));
	}
	if (pb->bootdebug) TRY(bcd_set_boolean(b, id, BCDE_LIB_BOOTDEBUG, true));
	return 0;
fail:
	return -1;
}

static int bcd_resume_object(struct bcd *b, const struct plan_bcd *pb)
{
	const struct guid *id = &pb->resume_id;
	struct guid rls = alias("{resumeloadersettings}");
	TRY(bcd_add_object(b, id, BCD_TYPE_RESUME));
	TRY(bcd_set_device(b, id, BCDE_LIB_APPLICATION_DEVICE, &pb->windows));
	TRY(bcd_set_string(b, id, BCDE_LIB_APPLICATION_PATH, "\\Windows\\system32\\winresume.efi"));
	TRY(bcd_set_string(b, id, BCDE_LIB_DESCRIPTION, "Windows Resume Application"));
	TRY(bcd_set_string(b, id, BCDE_LIB_PREFERRED_LOCALE, pb->locale));
	TRY(bcd_set_objects(b, id, BCDE_LIB_INHERITED_OBJECTS, &rls, 1));
	TRY(bcd_set_device(b, id, BCDE_RESUME_FILE_DEVICE, &pb->windows));
	TRY(bcd_set_string(b, id, BCDE_RESUME_FILE_PATH, "\\hiberfil.sys"));
	if (bcd_is_win8_or_later(pb)) TRY(bcd_set_integer(b, id, BCDE_RESUME_BOOTMENU_POLICY, 1));   /* Standard */
	TRY(bcd_set_boolean(b, id, BCDE_RESUME_DEBUG_OPTION_ENABLED, false));
	return 0;
fail:
	return -1;
}

static int bcd_bootmgr_object(struct bcd *b, const struct plan_bcd *pb, bool memdiag)
{
	struct guid bm = alias("{bootmgr}"), gs = alias("{globalsettings}"), md = alias("{memdiag}");
	TRY(bcd_add_object(b, &bm, BCD_TYPE_BOOTMGR));
	TRY(bcd_set_device(b, &bm, BCDE_LIB_APPLICATION_DEVICE, &pb->esp));
	TRY(bcd_set_string(b, &bm, BCDE_LIB_APPLICATION_PATH, "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"));
	TRY(bcd_set_string(b, &bm, BCDE_LIB_DESCRIPTION, "Windows Boot Manager"));
	TRY(bcd_set_string(b, &bm, BCDE_LIB_PREFERRED_LOCALE, pb->locale));
	TRY(bcd_set_objects(b, &bm, BCDE_LIB_INHERITED_OBJECTS, &gs, 1));
	TRY(bcd_set_object(b, &bm, BCDE_BOOTMGR_DEFAULT, &pb->loader_id));
	TRY(bcd_set_object(b, &bm, BCDE_BOOTMGR_RESUME_OBJECT, &pb->resume_id));
	TRY(bcd_set_objects(b, &bm, BCDE_BOOTMGR_DISPLAY_ORDER, &pb->loader_id, 1));
	TRY(bcd_set_integer(b, &bm, BCDE_BOOTMGR_TIMEOUT, 30));
	if (!memdiag) return 0;
	TRY(bcd_set_objects(b, &bm, BCDE_BOOTMGR_TOOLS_ORDER, &md, 1));
	TRY(bcd_add_object(b, &md, BCD_TYPE_MEMDIAG));
	TRY(bcd_set_device(b, &md, BCDE_LIB_APPLICATION_DEVICE, &pb->esp));
	TRY(bcd_set_string(b, &md, BCDE_LIB_APPLICATION_PATH, "\\EFI\\Microsoft\\Boot\\memtest.efi"));
	TRY(bcd_set_string(b, &md, BCDE_LIB_DESCRIPTION, "Windows Memory Diagnostic"));
	TRY(bcd_set_string(b, &md, BCDE_LIB_PREFERRED_LOCALE, pb->locale));
	TRY(bcd_set_objects(b, &md, BCDE_LIB_INHERITED_OBJECTS, &gs, 1));
	TRY(bcd_set_boolean(b, &md, BCDE_LIB_ALLOW_BAD_MEMORY_ACCESS, true));
	return 0;
fail:
	return -1;
}

struct bcd *convert_build_bcd(const struct plan *p, bool memdiag)
{
	struct bcd *b = bcd_new();
	if (!b) return NULL;
	if (bcd_bootmgr_object(b, &p->bcd, memdiag) < 0 || bcd_loader_object(b, &p->bcd) < 0
	    || bcd_resume_object(b, &p->bcd) < 0 || bcd_settings_objects(b, &p->bcd) < 0) {
		err_prefix("BCD store");
		bcd_free(b);
		return NULL;
	}
	return b;
}

/* ---- steps ---- */

struct job {
	const struct convert_opts *opts;
	struct convert_report *r;
	struct disk *disk;
	struct overlay *ov;
	struct inspection *ins;
	struct ntfs_vol *vol;
	struct fat32_builder *fat;
	struct pe *pes[PLAN_MAX_PATCHES];
};

static int stage(struct job *j, enum convert_stage s, const char *phase)
{
	j->r->stage = s;
	progress_update(j->opts->progress, phase, 0, 1);
	return 0;
}

/* A read error while opening or inspecting the input is about the input
 * (exit 3 "unreadable input", as a malformed one), not a runtime failure. */
__attribute__((format(printf, 1, 2)))
static int input_error(const char *fmt, ...)
{
	char ctx[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof ctx, fmt, ap);
	va_end(ap);
	err_prefix("%s", ctx);
	return err_code() == E_IO ? err_recode(E_FORMAT) : -1;
}

static int open_input(struct job *j)
{
	stage(j, STAGE_INPUT, "reading input");
	j->ov = image_open(j->opts->in, &j->disk);   /* the one way to open an image (image.h) */
	if (!j->ov) return -1;
	j->ins = xcalloc(1, sizeof *j->ins);
	if (windows_inspect(j->ov, j->ins) < 0) return input_error("inspecting %s", j->opts->in);
	j->r->inspected = true;
	snprintf(j->r->windows_version, sizeof j->r->windows_version, "%s", j->ins->version);
	snprintf(j->r->product_name, sizeof j->r->product_name, "%s", j->ins->product_name);
	return 0;
}

static int make_plan(struct job *j)
{
	if (j->opts->keep_input) {
		j->r->disk = j->disk;
		j->r->ov = j->ov;
		j->r->ins = j->ins;
	}
	stage(j, STAGE_PLAN, "planning");
	struct plan_opts po = j->opts->plan;
	const struct disk_info *di = disk_info(j->disk);
	disk_fingerprint(j->disk, po.fingerprint);
	po.disk_size = di->virtual_size;
	po.sector_size = di->logical_sector_size;
	if (!po.out_path) po.out_path = j->opts->out;
	if (plan_build(j->ins, &po, &j->r->plan) < 0) return -1;
	return 0;
}

static int mount_windows(struct job *j, bool rw)
{
	const struct part *w = ptable_find(&j->ins->table, j->r->plan.windows_number);
	if (!w) return err_set(E_INTERNAL, "Windows partition %d not in the table", j->r->plan.windows_number);
	j->vol = ntfs_open(j->ov, w->start, w->size, rw);
	if (!j->vol) return err_prefix("Windows volume (partition %d)", w->number);
	return 0;
}

/* The ESP file list and its fit: a required boot file missing or files
 * that do not fit the planned ESP are blockers of the plan (exit 4 in
 * inspect, dry run and convert alike). The BCD store is built here too, to
 * count its real size. */
static int list_files(struct job *j)
{
	struct plan *p = &j->r->plan;
	if (convert_expand_files(p, j->vol, &j->r->files, &j->r->nfiles) < 0) {
		if (err_code() != E_NOTFOUND) return -1;
		plan_add_blocker(p, "no-boot-files", "%s", err_msg());
		err_clear();
		return 0;
	}
	j->r->memdiag = has_memtest(j->r->files, j->r->nfiles);
	if (convert_check_boot_files(p, j->vol, j->r->files, j->r->nfiles) < 0) return -1;
	struct bcd *b = convert_build_bcd(p, j->r->memdiag);
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = b ? bcd_serialize(b, &data, &len) : -1;
	bcd_free(b);
	free(data);
	if (rc < 0) return err_prefix("BCD store");
	p->nfiles = j->r->nfiles + 1;
	p->files_known = true;
	p->esp_files_clusters = esp_clusters_needed(j->r->files, j->r->nfiles, p->esp_cluster_bytes, len);
	if (p->esp_files_clusters > p->esp_clusters)
		plan_add_blocker(p, "esp-too-small", "the boot files need %llu clusters of %u bytes, the %llu MiB ESP has %u: use --esp append with a larger --esp-size",
				 (unsigned long long)p->esp_files_clusters, p->esp_cluster_bytes,
				 (unsigned long long)(p->esp_size >> 20), p->esp_clusters);
	return 0;
}

/* Patches every target in memory first, so a missing patch site stops the
 * run before anything is written (doc/patches.md "Rules every entry keeps": zero or two sites = error). */
static int compute_patches(struct job *j)
{
	stage(j, STAGE_PATCH, "patching kernel files");
	const struct plan *p = &j->r->plan;
	for (size_t i = 0; i < p->npatches; i++) {
		const struct plan_patch_target *t = &p->patches[i];
		struct convert_patch *cp = &j->r->patches[j->r->npatches++];
		snprintf(cp->path, sizeof cp->path, "%s", t->path);
		const char *src = t->copy_from[0] ? t->copy_from : t->path;
		uint8_t *data = NULL;
		size_t len = 0;
		if (ntfs_read_file(j->vol, src, MAX_KERNEL_FILE, &data, &len) < 0) return err_prefix("%s", src);
		j->pes[i] = pe_parse(data, len);
		free(data);
		if (!j->pes[i]) return err_prefix("%s", src);
		struct patch_opts po = { .skip = t->skip[0] ? t->skip : NULL, .force_version = p->version };
		if (patch_apply(j->pes[i], t->kind, &po, &cp->report) < 0) {
			/* zero or two sites: the patch cannot be made (patch.h) */
			if (err_code() != E_NOTFOUND && err_code() != E_AMBIGUOUS) return err_prefix("%s", src);
			plan_add_blocker(&j->r->plan, "patch-site", "%s: %s", src, err_msg());
			err_clear();
		}
	}
	return 0;
}

static bool report_changed(const struct patch_report *r)
{
	for (size_t i = 0; i < r->nresults; i++)
		if (r->results[i].status == PATCH_APPLIED) return true;
	return false;
}

static int write_patches(struct job *j)
{
	const struct plan *p = &j->r->plan;
	for (size_t i = 0; i < p->npatches; i++) {
		struct convert_patch *cp = &j->r->patches[i];
		/* a copy is always written; an original only when edited now */
		if (!p->patches[i].copy_from[0] && !report_changed(&cp->report)) continue;
		if (ntfs_write_file(j->vol, p->patches[i].path, j->pes[i]->data, j->pes[i]->len) < 0)
			return err_prefix("writing %s", p->patches[i].path);
		cp->written = true;
	}
	return 0;
}

static int edit_system_hive(struct job *j)
{
	const struct plan *p = &j->r->plan;
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0, out_len = 0;
	if (ntfs_read_file(j->vol, SYSTEM_HIVE_PATH, MAX_HIVE, &in, &len) < 0) return err_prefix("%s", SYSTEM_HIVE_PATH);
	int rc = system_hive_apply(in, len, p->edits, p->nedits, &out, &out_len);
	free(in);
	if (rc == 0 && ntfs_write_file(j->vol, SYSTEM_HIVE_PATH, out, out_len) < 0) rc = err_prefix("writing %s", SYSTEM_HIVE_PATH);
	free(out);
	return rc;
}

static int add_bcd_to_esp(struct job *j)
{
	struct bcd *b = convert_build_bcd(&j->r->plan, j->r->memdiag);
	if (!b) return -1;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = bcd_serialize(b, &data, &len);
	bcd_free(b);
	if (rc < 0) return err_prefix("BCD store");
	rc = fat32_add_file(j->fat, "EFI/Microsoft/Boot/BCD", data, len);
	free(data);
	if (rc < 0) return err_prefix("ESP: EFI/Microsoft/Boot/BCD");
	struct file_list l = { j->r->files, j->r->nfiles, j->r->nfiles };
	list_add(&l, NULL, "EFI/Microsoft/Boot/BCD", len, false);
	j->r->files = l.v;
	j->r->nfiles = l.n;
	return 0;
}

static int build_esp(struct job *j)
{
	const struct plan *p = &j->r->plan;
	j->fat = fat32_new(p->esp_size, p->sector_size, p->esp_volume_id, p->esp_label);
	if (!j->fat) return err_prefix("ESP");
	for (size_t i = 0; i < j->r->nfiles; i++) {
		const struct convert_file *f = &j->r->files[i];
		if (f->dir) {
			if (fat32_mkdir(j->fat, f->dst) < 0) return err_prefix("ESP: %s", f->dst);
			continue;
		}
		uint8_t *data = NULL;
		size_t len = 0;
		if (ntfs_read_file(j->vol, f->src, MAX_BOOT_FILE, &data, &len) < 0) return -1;   /* names f->src */
		int rc = fat32_add_file(j->fat, f->dst, data, len);
		free(data);
		/* the plan counted the fit (list_files): running out here is a bug */
		if (rc < 0 && err_code() == E_NOSPACE)
			return err_set(E_INTERNAL, "the boot files do not fit the %llu MiB ESP (at %s), though the plan counted they would",
				       (unsigned long long)(p->esp_size >> 20), f->dst);
		if (rc < 0) return err_prefix("ESP: %s", f->dst);
	}
	return add_bcd_to_esp(j);
}

static int edit_disk(struct job *j)
{
	const struct plan *p = &j->r->plan;
	stage(j, STAGE_EDIT, "editing");
	if (p->new_size > overlay_size(j->ov) && overlay_resize(j->ov, p->new_size) < 0) return err_prefix("growing the disk");
	if (write_patches(j) < 0 || edit_system_hive(j) < 0 || build_esp(j) < 0) return -1;
	int rc = ntfs_close(j->vol);
	j->vol = NULL;
	if (rc < 0) return err_prefix("Windows volume");
	if (partition_write(j->ov, &p->table) < 0) return err_prefix("partition table");
	/* the ESP area starts as zeros (a reused partition held NTFS) */
	if (overlay_zero(j->ov, p->esp_start, p->esp_size) < 0 || fat32_write(j->fat, j->ov, p->esp_start) < 0)
		return err_prefix("ESP");
	j->r->overlay_bytes = overlay_bytes_written(j->ov);
	return 0;
}

static int write_output(struct job *j)
{
	const struct plan *p = &j->r->plan;
	const struct disk_info *di = disk_info(j->disk);
	stage(j, STAGE_OUTPUT, "writing output");
	/* --differencing: the input (never opened for writing) is the parent */
	struct writer_parent parent = { .path = j->opts->in, .data_write_guid = di->data_write_guid,
					.disk_id = di->disk_id, .size = di->virtual_size };
	struct writer_opts wo = {
		.format = p->format,
		.fixed = p->fixed,
		.logical_sector_size = di->logical_sector_size,
		.physical_sector_size = di->physical_sector_size,
		.disk_id = p->out_disk_id,
		.file_write_guid = p->out_write_guid,
		.timestamp = build_epoch(),
		.overwrite = j->opts->overwrite,
		.progress = j->opts->progress,
		.parent = j->opts->differencing ? &parent : NULL,
	};
	int r = writer_stream(j->ov, j->opts->out, &wo);
	if (r == -2) j->r->input_error = true;   /* the message names the input */
	if (r < 0) return r == -2 ? -1 : err_prefix("%s", j->opts->out);
	return 0;
}

static void job_free(struct job *j)
{
	for (size_t i = 0; i < PLAN_MAX_PATCHES; i++) pe_free(j->pes[i]);
	if (j->fat) fat32_free(j->fat);
	if (j->vol) ntfs_close(j->vol);
	if (j->opts->keep_input && j->r->disk) return;   /* the report owns them */
	if (j->ov) overlay_free(j->ov);
	if (j->disk) disk_close(j->disk);
	free(j->ins);
}

/* --differencing (doc/notes-diff.md): the parent must be a VHDX, since a
 * VHDX child names its parent by the parent's DataWriteGuid (MS-VHDX
 * 2.6.2.6.3 parent_linkage), which only a VHDX header has (2.2.2), and the
 * one locator type the specification defines is VHDX's; and the child keeps
 * its parent's virtual size (2.6.1.2: the Virtual Disk Size item is copied
 * when forking; no section lets a child outgrow its parent, and libvhdi's
 * chain and ours read only the parent's size), so an appended ESP cannot be
 * used. Output blockers (exit 7): the input is fine, this output of it is
 * not possible. */
static void plan_differencing(struct job *j)
{
	struct plan *p = &j->r->plan;
	const struct disk_info *di = disk_info(j->disk);
	if (di->format != DISK_VHDX)
		plan_add_blocker(p, "output-differencing-parent", "--differencing needs a VHDX input (the parent); '%s' is %s: convert without --differencing",
				 j->opts->in, di->format == DISK_VHD ? "a VHD" : "a raw image");
	else if (p->esp_number && p->new_size != p->old_size)
		plan_add_blocker(p, "output-differencing-grows", "--differencing keeps the parent's size, but %s grows the disk %llu -> %llu MiB: %s, or convert without --differencing",
				 p->esp_mode == ESP_APPEND ? "the appended ESP" : "room for the GPT's backup at its end",
				 (unsigned long long)(p->old_size >> 20), (unsigned long long)(p->new_size >> 20),
				 p->esp_mode == ESP_APPEND ? "use --esp reuse or --esp existing (with --layout mbr if the GPT needs room too)"
							   : "use --layout mbr");
}

/* The output side of the plan: OUT itself (exists, is IN, folder) and the
 * room on its file system. Checked by the dry run as by the conversion;
 * a refusal is an "output-refused" blocker (exit 7). */
static void plan_output(struct job *j)
{
	const struct convert_opts *o = j->opts;
	struct plan *p = &j->r->plan;
	if (!o->out) return;
	if (convert_check_output(o->in, o->out, o->overwrite) < 0 || check_output_space(o->in, o->out, p, o->differencing) < 0) {
		plan_add_blocker(p, "output-refused", "%s", err_msg());
		err_clear();
	}
	/* doc/formats.md, VHDX metadata: only VHDX records the logical sector
	 * size (MS-VHDX 2.6.2.4); a VHD footer or a raw file has none, and
	 * every reader (verify, qemu, Hyper-V) takes 512, so the GPT written at
	 * 4096-byte LBAs would not be found: refused, in the dry run as well */
	if (p->sector_size != 512 && p->format_known && p->format != OUT_VHDX)
		plan_add_blocker(p, "output-sector-size", "the input has %u-byte sectors: VHD and raw outputs cannot record them (readers take 512); use -O vhdx",
				 p->sector_size);
	if (o->differencing) plan_differencing(j);
}

/* Everything that decides the outcome, read-only: the plan, then (when it
 * has no blocker yet) the ESP file list and its fit and the patches
 * applied in memory. */
static int plan_all(struct job *j)
{
	const struct convert_opts *o = j->opts;
	if (open_input(j) < 0 || make_plan(j) < 0) return -1;
	struct plan *p = &j->r->plan;
	if (plan_ok(p)) {
		if (mount_windows(j, !o->dry_run) < 0 || list_files(j) < 0) return -1;
		if (plan_ok(p) && compute_patches(j) < 0) return -1;
	}
	plan_output(j);
	return 0;
}

static int run(struct job *j)
{
	const struct convert_opts *o = j->opts;
	/* a refused OUT costs no reading of IN (the dry run reads on, to show the plan) */
	if (!o->dry_run) {
		j->r->stage = STAGE_OUTPUT;
		if (convert_check_output(o->in, o->out, o->overwrite) < 0) return -1;
		/* before the work: a second run to the same OUT fails at once */
		if (writer_lock(o->out) < 0) return -1;
	}
	if (plan_all(j) < 0) return -1;
	const struct plan *p = &j->r->plan;
	if (o->dry_run) return 0;
	if (!plan_ok(p)) {
		char buf[1024];
		bool output = plan_err_code(p) == E_OUTPUT;
		j->r->stage = output ? STAGE_OUTPUT : STAGE_PLAN;
		return err_set(plan_err_code(p), "%s%s", output ? "" : "not convertible: ", plan_blockers_text(p, buf, sizeof buf));
	}
	if (!p->format_known) return err_set(E_USAGE, "no output format: give -O vhdx, vhd or raw");
	if (edit_disk(j) < 0 || write_output(j) < 0) return -1;
	j->r->stage = STAGE_DONE;
	return 0;
}

int convert_run(const struct convert_opts *opts, struct convert_report *report)
{
	memset(report, 0, sizeof *report);
	struct job j = { .opts = opts, .r = report };
	report->stage = STAGE_ARGS;
	report->dry_run = opts->dry_run;
	int rc = run(&j);
	job_free(&j);
	writer_unlock();
	if (rc == 0 && opts->dry_run) report->stage = STAGE_DONE;
	return rc;
}

void convert_report_free(struct convert_report *r)
{
	if (r->ov) overlay_free(r->ov);
	if (r->disk) disk_close(r->disk);
	free(r->ins);
	r->ov = NULL;
	r->disk = NULL;
	r->ins = NULL;
	free(r->files);
	r->files = NULL;
	r->nfiles = 0;
}

/* a dry run applies the patches in memory only: to the reader that is
 * "would-apply", as inspect says */
static json_t *patch_report_json(const struct convert_patch *cp, bool dry_run)
{
	json_t *res = json_array();
	for (size_t i = 0; i < cp->report.nresults; i++) {
		const struct patch_result *pr = &cp->report.results[i];
		enum patch_status st = dry_run && pr->status == PATCH_APPLIED ? PATCH_WOULD_APPLY : pr->status;
		json_t *o = json_pack("{s:s, s:s}", "id", pr->id ? pr->id : "", "status", patch_status_name(st));
		if (pr->message[0]) json_object_set_new(o, "message", json_string(pr->message));
		json_array_append_new(res, o);
	}
	return json_pack("{s:s, s:s, s:b, s:o}", "path", cp->path, "binary", pe_kind_name(cp->report.kind),
			 "written", cp->written, "results", res);
}

void *convert_report_json(const struct convert_report *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "windows", r->inspected && r->windows_version[0] ? json_pack("{s:s, s:s}", "product_name", r->product_name,
								   "version", r->windows_version) : json_null());
	json_object_set_new(o, "plan", r->inspected ? plan_to_json(&r->plan) : json_null());
	json_t *files = json_array();
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct convert_file *f = &r->files[i];
		json_t *fo = json_pack("{s:s, s:b}", "path", f->dst, "dir", f->dir);
		if (!f->dir) json_object_set_new(fo, "size", json_integer((json_int_t)f->size));
		if (f->src[0]) json_object_set_new(fo, "from", json_string(f->src));
		json_array_append_new(files, fo);
	}
	json_object_set_new(o, "esp_files", files);
	json_object_set_new(o, "memdiag", json_boolean(r->memdiag));
	json_t *pa = json_array();
	for (size_t i = 0; i < r->npatches; i++) json_array_append_new(pa, patch_report_json(&r->patches[i], r->dry_run));
	json_object_set_new(o, "patch_results", pa);
	/* done: the output was written (a dry run writes nothing) */
	json_object_set_new(o, "done", json_boolean(r->stage == STAGE_DONE && !r->dry_run));
	return o;
}
