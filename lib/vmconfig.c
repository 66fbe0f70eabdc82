/* vmconfig.c - NanaBox .7b and Hyper-V .ps1 machine definitions for a
 * converted disk (vmconfig.h). */
#include "vmconfig.h"
#include "json_text.h"
#include "util.h"
#include "win32_name.h"
#include "writer.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- checks ---------------------------------------------------------------- */

/* Characters Windows refuses in a file name (Win32 "Naming Files, Paths,
 * and Namespaces": < > : " / \ | ? * and 0-31). The VM name becomes a file
 * name (NanaBox creates <Name>.vmgs and <Name>.vmrs next to the .7b when
 * GuestStateFile/RuntimeStateFile are absent: NanaBox/MainWindow.cpp,
 * InitializeVirtualMachine) and a component of a pipe name. */
static bool windows_name_char_ok(unsigned char ch)
{
	return ch >= 0x20 && !strchr("<>:\"/\\|?*", ch);
}

static bool utf8_valid(const char *s)
{
	json_t *j = json_text(s);   /* jansson refuses invalid UTF-8 */
	json_decref(j);
	return j != NULL;
}

static int check_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0)
		return err_set(E_USAGE, "the VM name is empty (use --vm-name)");
	if (n > 100)
		return err_set(E_USAGE, "the VM name is longer than 100 bytes (use --vm-name)");
	if (!utf8_valid(name))
		return err_set(E_USAGE, "the VM name '%s' is not valid UTF-8 (use --vm-name)", name);
	for (size_t i = 0; i < n; i++)
		if (!windows_name_char_ok((unsigned char)name[i]))
			return err_set(E_USAGE, "the VM name '%s' has a character Windows refuses in a file or pipe name "
				       "(< > : \" / \\ | ? * or a control character; use --vm-name)", name);
	/* Windows drops trailing dots and spaces from file names: <Name>.vmgs
	 * would not be the file NanaBox expects. */
	if (name[n - 1] == '.' || name[n - 1] == ' ' || name[0] == ' ')
		return err_set(E_USAGE, "the VM name '%s' begins with a space or ends with a dot or space (use --vm-name)", name);
	return 0;
}

/* disk_path is backslash-separated: every component must be a Windows name. */
static int check_disk_path(const char *p)
{
	if (!p || !*p)
		return err_set(E_USAGE, "the disk path is empty");
	if (!utf8_valid(p))
		return err_set(E_USAGE, "the disk path '%s' is not valid UTF-8", p);
	if (strlen(p) > 32000)
		return err_set(E_USAGE, "the disk path is longer than Windows allows");
	for (const char *s = p; *s; s++)
		if (*s != '\\' && !windows_name_char_ok((unsigned char)*s))
			return err_set(E_USAGE, "the disk path '%s' has a character Windows refuses in a file name "
				       "(< > : \" | ? * or a control character)", p);
	/* each name on it as Windows opens it (win32_name.h): no device
	 * name (CON.vhdx), no trailing period or space */
	char name[256], why[64];
	for (const char *s = p; *s; s += *s == '\\') {
		size_t n = strcspn(s, "\\");
		msg_printf(name, sizeof name, "%.*s", (int)n, s);
		if (n < sizeof name && win32_name_why(name, why, sizeof why))
			return err_set(E_USAGE, "the disk path '%s' has the name '%s' with a %s, which Windows does not allow: "
				       "the machine could not open the disk (rename it)", p, name, why);
		s += n;
	}
	return 0;
}

int vmconfig_check(const struct vm_config *c)
{
	if (check_name(c->name) < 0) return -1;
	/* 240 virtual processors is the Hyper-V Generation 2 maximum (Windows
	 * Server 2016 and later); NanaBox refuses 0 (DeserializeConfiguration). */
	if (c->cpus < 1 || c->cpus > 240)
		return err_set(E_USAGE, "--vm-cpus: %u processors is not 1-240", c->cpus);
	/* Hyper-V startup memory: at least 32 MB, a multiple of 2 MB;
	 * NanaBox reads MemorySize into 32 bits and refuses 0. */
	if (c->memory_mib < 32 || c->memory_mib > (1u << 24) || c->memory_mib % 2)
		return err_set(E_USAGE, "--vm-memory: %u MiB is not an even number from 32 to 16777216", c->memory_mib);
	/* NanaBox has ComPort1 and ComPort2 only (Specification.h,
	 * ComPortsConfiguration); Set-VMComPort -Number takes 1 or 2. */
	if (c->debug_port > 2)
		return err_set(E_USAGE, "--debug: COM%u cannot be a named pipe in NanaBox or Hyper-V, which have COM1 and COM2 only",
			       c->debug_port);
	return check_disk_path(c->disk_path);
}

/* A pipe name may hold any character but a backslash, but WinDbg's
 * "-k com:pipe,port=NAME,baud=..." ends NAME at a comma and a shell at a
 * space: outside [A-Za-z0-9._-] every byte becomes '_'. */
char *vmconfig_pipe_name(const char *name, unsigned port)
{
	char *safe = xstrdup(name);
	if (!safe) return NULL;
	for (char *p = safe; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._-", *p)))
			*p = '_';
	char *pipe = xasprintf("\\\\.\\pipe\\%s-com%u", safe, port);
	free(safe);
	return pipe;
}

/* The boot debugger and the kernel debugger own their COM port; a UEFI
 * serial console on the same port would read WinDbg's bytes as key presses
 * and mix its text into the KD stream. So the console goes to the other
 * port, on its own pipe, where a terminal can watch the firmware. */
unsigned vmconfig_uefi_console_port(const struct vm_config *c)
{
	if (c->debug_port == 1) return 2;
	if (c->debug_port == 2) return 1;
	return 0;
}

/* ---- NanaBox ---------------------------------------------------------------- */

/* The NanaBox configuration file, as read from the public repository
 * M2Team/NanaBox (commit 9b4f9e0):
 *
 *  - Documents/ConfigurationReference.md: extension .7b; "Save Encoding:
 *    UTF-8 with BOM as mandatory"; JSON with one root object "NanaBox".
 *    NanaBox/Utils.cpp ReadAllTextFromUtf8TextFile throws "UTF-8 with BOM is
 *    required." unless the file starts EF BB BF, and WriteAllTextToUtf8TextFile
 *    writes the BOM before the JSON (which nlohmann::json::parse skips).
 *  - NanaBox/ConfigurationManager.cpp DeserializeConfiguration: NanaBox.Type
 *    must be the string "VirtualMachine", Version must be 1, ProcessorCount
 *    and MemorySize must be non-zero, else the file is refused.
 *    Documents/ConfigurationSchema.json also requires Type, Version,
 *    GuestType and Name, and ComPorts.UefiConsole inside ComPorts.
 *  - NanaBox/NanaBox.Configuration.Parser.cpp / Specification.h: GuestType
 *    "Windows" | "Linux" | "Unknown" (string); Name (string, also the Host
 *    Compute System id); ProcessorCount (number); MemorySize (number, MB);
 *    ComPorts {UefiConsole "Disabled"|"Default"|"ComPort1"|"ComPort2",
 *    ComPort1, ComPort2 (named pipe paths)}; Gpu {AssignmentMode
 *    "Disabled"|"Default"|"List"|"Mirror"}; NetworkAdapters [{Connected
 *    bool, MacAddress and EndpointId optional: NanaBox generates them}];
 *    ScsiDevices [{Type "VirtualDisk"|"VirtualImage"|"PhysicalDevice",
 *    Path}] (a VirtualDisk without Path is dropped; "vhdx and vhd files";
 *    a relative path is supported); SecureBoot and Tpm booleans (absent =
 *    false). Unknown values silently become defaults, so spelling matters.
 *  - NanaBox/NanaBox.cpp sets the current directory to the .7b's folder
 *    and ConfigurationManager.cpp makes each SCSI path absolute with
 *    GetFullPathNameW: a relative Path is relative to the .7b.
 *  - There is no generation field: every NanaBox machine is a Generation 2
 *    (UEFI) machine.
 * NanaBox's own writer (SerializeConfiguration) sorts keys and indents by
 * 2; we do the same. The network adapter is what NanaBox's "new virtual
 * machine" page writes (QuickStartPage.cpp: one adapter, Connected). */
static json_t *nanabox_com_ports(const struct vm_config *c)
{
	json_t *ports = json_object();
	unsigned console = vmconfig_uefi_console_port(c);
	json_object_set_new(ports, "UefiConsole",
			    json_text(console == 1 ? "ComPort1" : console == 2 ? "ComPort2" : "Disabled"));
	for (unsigned port = 1; port <= 2; port++) {
		if (port != c->debug_port && port != console) continue;
		char key[16], *pipe = vmconfig_pipe_name(c->name, port);
		snprintf(key, sizeof key, "ComPort%u", port);   /* fits: port 1 or 2 */
		json_object_set_new(ports, key, json_text(pipe));
		free(pipe);
	}
	return ports;
}

static json_t *nanabox_machine(const struct vm_config *c)
{
	json_t *m = json_object();
	json_object_set_new(m, "Type", json_text("VirtualMachine"));
	json_object_set_new(m, "Version", json_integer(1));
	json_object_set_new(m, "GuestType", json_text("Windows"));
	json_object_set_new(m, "Name", json_text(c->name));
	json_object_set_new(m, "ProcessorCount", json_integer(c->cpus));
	json_object_set_new(m, "MemorySize", json_integer(c->memory_mib));
	json_object_set_new(m, "ComPorts", nanabox_com_ports(c));
	json_object_set_new(m, "Gpu", json_pack("{s:s}", "AssignmentMode", "Disabled"));
	json_object_set_new(m, "NetworkAdapters", json_pack("[{s:b}]", "Connected", 1));
	json_object_set_new(m, "ScsiDevices", json_pack("[{s:s,s:s}]", "Type", "VirtualDisk", "Path", c->disk_path));
	json_object_set_new(m, "SecureBoot", json_false());
	json_object_set_new(m, "Tpm", json_false());
	return m;
}

int vmconfig_nanabox(const struct vm_config *c, char **out, size_t *len)
{
	if (vmconfig_check(c) < 0) return -1;
	json_t *root = json_pack("{s:o}", "NanaBox", nanabox_machine(c));
	char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(root);
	if (!text) return err_set(E_INTERNAL, "cannot build the NanaBox configuration");
	*out = xasprintf("\xEF\xBB\xBF%s\n", text);   /* BOM: mandatory (see above) */
	free(text);
	if (!*out) return err_prefix("NanaBox configuration");
	*len = strlen(*out);
	return 0;
}

/* ---- Hyper-V ------------------------------------------------------------------ */

/* A PowerShell single-quoted string: the only escape is a doubled quote,
 * and PowerShell takes U+2018, U+2019, U+201A and U+201B as single quotes
 * too (about_Quoting_Rules; the language specification's
 * single-quote-character), so each of those is doubled as well. */
char *vmconfig_ps_quote(const char *s)
{
	if (!s) return NULL;   /* a string its caller could not allocate: passed on */
	size_t n = strlen(s), k = 0;
	char *q = xmalloc(2 * n + 3);
	if (!q) return NULL;
	q[k++] = '\'';
	for (size_t i = 0; i < n; i++) {
		const unsigned char *u = (const unsigned char *)s + i;
		if (*u == '\'') { q[k++] = '\''; q[k++] = '\''; continue; }
		if (u[0] == 0xE2 && i + 2 < n && u[1] == 0x80 && u[2] >= 0x98 && u[2] <= 0x9B) {
			memcpy(q + k, u, 3); memcpy(q + k + 3, u, 3); k += 6; i += 2; continue;
		}
		q[k++] = (char)*u;
	}
	q[k++] = '\'';
	q[k] = 0;
	return q;
}

static void buf_add(char **buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends to *buf; out of memory: *buf becomes NULL (E_NOMEM set) and
 * stays so through later calls, for the caller to check once. */
static void buf_add(char **buf, const char *fmt, ...)
{
	va_list ap;
	char *add;
	if (!*buf) return;
	va_start(ap, fmt);
	int r = vasprintf(&add, fmt, ap);
	va_end(ap);
	char *joined = r < 0 ? NULL : xasprintf("%s%s", *buf, add);
	if (r < 0) err_set(E_NOMEM, "out of memory (formatting a string)");
	else free(add);
	free(*buf);
	*buf = joined;
}

static void hyperv_com_ports(const struct vm_config *c, char **s)
{
	if (!c->debug_port) return;
	unsigned console = vmconfig_uefi_console_port(c);
	char *dbg = vmconfig_pipe_name(c->name, c->debug_port), *con = vmconfig_pipe_name(c->name, console);
	char *qdbg = dbg ? vmconfig_ps_quote(dbg) : NULL, *qcon = con ? vmconfig_ps_quote(con) : NULL;
	if (!qdbg || !qcon) {
		err_set(E_NOMEM, "out of memory (COM port pipe names)");
		free(*s);
		*s = NULL;
	}
	if (qdbg && qcon) buf_add(s, "# The kernel debugger's COM%u as a named pipe. WinDbg (as administrator):\n"
		   "#   windbg -k com:pipe,port=%s,baud=%u,resets=0,reconnect\n"
		   "Set-VMComPort -VMName $VMName -Number %u -Path %s\n"
		   "# The UEFI console on the other port, away from the debugger's bytes.\n"
		   "Set-VMComPort -VMName $VMName -Number %u -Path %s\n"
		   "Set-VMFirmware -VMName $VMName -ConsoleMode COM%u\n",
		c->debug_port, dbg, c->debug_baud, c->debug_port, qdbg, console, qcon, console);
	free(dbg); free(con); free(qdbg); free(qcon);
}

/* Cmdlets and parameters from Microsoft's Hyper-V module reference
 * (learn.microsoft.com/powershell/module/hyper-v): New-VM -Name
 * -Generation -MemoryStartupBytes -NoVHD; Set-VMProcessor -VMName -Count;
 * Set-VMFirmware -VMName -EnableSecureBoot Off|On, -FirstBootDevice
 * <VMComponentObject>, -ConsoleMode (ConsoleModeType: Default, COM1, COM2,
 * None); Add-VMHardDiskDrive -VMName -ControllerType SCSI -Path -Passthru;
 * Set-VMComPort -VMName -Number (1 or 2) -Path <named pipe>. */
int vmconfig_hyperv_script(const struct vm_config *c, char **out, size_t *len)
{
	if (vmconfig_check(c) < 0) return -1;
	char *qname = vmconfig_ps_quote(c->name), *qdisk = vmconfig_ps_quote(c->disk_path);
	char *s = qname && qdisk ? xstrdup("") : NULL;
	if (!s) {
		free(qname);
		free(qdisk);
		return err_set(E_NOMEM, "out of memory (Hyper-V script)");
	}
	buf_add(&s, "# Written by gen2prep: a Hyper-V Generation 2 virtual machine for the converted disk.\n"
		    "# Run it on the Hyper-V host in an elevated PowerShell; the disk path is relative\n"
		    "# to this script's folder.\n"
		    "#Requires -RunAsAdministrator\n"
		    "#Requires -Modules Hyper-V\n"
		    "$ErrorActionPreference = 'Stop'\n"
		    "$VMName = %s\n"
		    "$Disk = Join-Path $PSScriptRoot %s\n"
		    "New-VM -Name $VMName -Generation 2 -MemoryStartupBytes %uMB -NoVHD | Out-Null\n"
		    "Set-VMProcessor -VMName $VMName -Count %u\n"
		    "# The converted Windows boot files are not signed for Secure Boot.\n"
		    "Set-VMFirmware -VMName $VMName -EnableSecureBoot Off\n"
		    "# Generation 2 has no IDE: the disk goes on the SCSI controller, first in the boot order.\n"
		    "$Drive = Add-VMHardDiskDrive -VMName $VMName -ControllerType SCSI -Path $Disk -Passthru\n"
		    "Set-VMFirmware -VMName $VMName -FirstBootDevice $Drive\n",
		qname, qdisk, c->memory_mib, c->cpus);
	hyperv_com_ports(c, &s);
	free(qname);
	free(qdisk);
	if (!s) return err_prefix("Hyper-V script");
	/* CRLF: the script is for Windows; PowerShell reads either. UTF-8
	 * with a BOM: "Without the BOM, Windows PowerShell misinterprets your
	 * script as being encoded in the legacy ANSI codepage" (Microsoft,
	 * "Understanding file encoding in VS Code and PowerShell",
	 * learn.microsoft.com/powershell/scripting/dev-cross-plat/vscode/
	 * understanding-file-encoding), garbling a non-ASCII VM name or path. */
	size_t n = 3;
	for (const char *p = s; *p; p++) n += *p == '\n' ? 2 : 1;
	char *crlf = xmalloc(n + 1), *w = crlf;
	if (!crlf) {
		free(s);
		return err_prefix("Hyper-V script");
	}
	memcpy(w, "\xEF\xBB\xBF", 3);
	w += 3;
	for (const char *p = s; *p; p++) {
		if (*p == '\n') *w++ = '\r';
		*w++ = *p;
	}
	*w = 0;
	free(s);
	*out = crlf;
	*len = n;
	return 0;
}

/* ---- paths and files ------------------------------------------------------------ */

char *vmconfig_default_name(const char *out_path)
{
	const char *slash = strrchr(out_path, '/');
	char *name = xstrdup(slash ? slash + 1 : out_path);
	if (!name) return NULL;
	char *dot = strrchr(name, '.');
	if (dot && dot != name) *dot = 0;
	return name;
}

static char *real_dir_of(const char *path)
{
	char *d = xstrdup(path);
	if (!d) return NULL;
	char *r = realpath(dirname(d), NULL);
	if (!r) err_errno(E_IO, "cannot resolve the folder of '%s'", path);
	free(d);
	return r;
}

/* Splits a canonical absolute path into its components (in place). */
static size_t split_components(char *path, char ***out)
{
	size_t n = 0;
	char **v = NULL, *save = NULL;
	for (char *c = strtok_r(path, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		char **g = xrealloc(v, (n + 1) * sizeof *v);
		if (!g) {
			free(v);
			*out = NULL;
			return SIZE_MAX;   /* E_NOMEM set */
		}
		v = g;
		v[n++] = c;
	}
	*out = v;
	return n;
}

/* From folder FDIR to TARGET_DIR/BASE: "..\" for each component of FDIR
 * past the common prefix, then TARGET_DIR's remaining components. */
static char *relative_between(char *fdir, char *tdir, const char *base)
{
	char **f, **t;
	size_t nf = split_components(fdir, &f), nt = split_components(tdir, &t), k = 0;
	if (nf == SIZE_MAX || nt == SIZE_MAX) {
		free(f);
		free(t);
		return NULL;
	}
	while (k < nf && k < nt && !strcmp(f[k], t[k])) k++;
	char *rel = xstrdup("");
	for (size_t i = k; i < nf; i++) buf_add(&rel, "..\\");
	for (size_t i = k; i < nt; i++) buf_add(&rel, "%s\\", t[i]);
	buf_add(&rel, "%s", base);
	free(f);
	free(t);
	return rel;
}

char *vmconfig_relative_path(const char *file, const char *target)
{
	char *fdir = real_dir_of(file);
	if (!fdir) return NULL;
	char *tdir = real_dir_of(target);
	if (!tdir) { free(fdir); return NULL; }
	const char *slash = strrchr(target, '/');
	if (strchr(tdir, '\\') || strchr(slash ? slash + 1 : target, '\\')) {
		err_set(E_USAGE, "'%s': a backslash in a Linux path would be a folder separator on Windows", target);
		free(fdir);
		free(tdir);
		return NULL;
	}
	char *rel = relative_between(fdir, tdir, slash ? slash + 1 : target);
	free(fdir);
	free(tdir);
	return rel;
}

int vmconfig_check_output(const char *path, bool overwrite)
{
	struct stat st;
	if (!overwrite && lstat(path, &st) == 0)
		return err_set(E_EXISTS, "'%s' already exists (use --overwrite to replace it)", path);
	char *d = real_dir_of(path);
	if (!d) return -1;
	/* the definition is written after the conversion: a folder it cannot
	 * be written in is found now, before any work (issue 8) */
	int rc = 0;
	if (access(d, W_OK | X_OK) < 0) rc = err_errno(E_OUTPUT, "cannot write '%s': its folder '%s' is not writable", path, d);
	free(d);
	return rc;
}

/* Nameless until complete, then linked (writer.h): a killed run leaves
 * neither a half-written definition nor a temporary file. */
int vmconfig_save(const char *path, const char *buf, size_t len, bool overwrite)
{
	return writer_save_buffer(path, buf, len, overwrite, 0);
}
