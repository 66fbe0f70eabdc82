/* vmconfig.h - machine definitions for a converted disk: a NanaBox virtual
 * machine configuration (.7b) and a Hyper-V PowerShell script (.ps1).
 *
 * The writers are pure (a struct vm_config in, bytes out); vmconfig_save
 * puts the bytes in a file atomically. Paths inside the files are Windows
 * paths relative to the folder of the file written (NanaBox resolves a
 * relative path against the .7b's folder; the script joins it to
 * $PSScriptRoot), so the disk and its definition can be copied together
 * from the Linux machine that converted it to the Windows host.
 */
#ifndef GEN2PREP_VMCONFIG_H
#define GEN2PREP_VMCONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define VM_DEFAULT_CPUS 2u
#define VM_DEFAULT_MEMORY_MIB 2048u

struct vm_config {
	const char *name;        /* VM name (also NanaBox's HCS id and the pipe names) */
	unsigned cpus;           /* processor count */
	unsigned memory_mib;     /* startup memory in MiB (NanaBox's MemorySize is in MB = MiB) */
	const char *disk_path;   /* the disk, Windows form (backslashes), relative to the file */
	unsigned debug_port;     /* 0: no debugger; 1 or 2: COM port of the kernel debugger */
	unsigned debug_baud;
};

/* Checks name, counts, port and disk path: 0, or -1 with E_USAGE and why. */
int vmconfig_check(const struct vm_config *c);

/* "\\.\pipe\<name>-com<port>" (malloc'd); bytes of <name> outside [A-Za-z0-9._-] become '_'.
 * NULL (E_NOMEM set) when out of memory, as for every malloc'd result below. */
char *vmconfig_pipe_name(const char *name, unsigned port);

/* The COM port that carries the UEFI console: with a debugger on COM n,
 * the other of COM1/COM2 (never the debugger's own port); 0 without. */
unsigned vmconfig_uefi_console_port(const struct vm_config *c);

/* NanaBox .7b: UTF-8 with BOM, JSON. *out malloc'd, 0 or -1 (err set). */
int vmconfig_nanabox(const struct vm_config *c, char **out, size_t *len);

/* Hyper-V PowerShell script. *out malloc'd, 0 or -1 (err set). */
int vmconfig_hyperv_script(const struct vm_config *c, char **out, size_t *len);

/* s as a PowerShell single-quoted string, quotes doubled (malloc'd). */
char *vmconfig_ps_quote(const char *s);

/* OUT's base name without its last extension (malloc'd). */
char *vmconfig_default_name(const char *out_path);

/* The path of TARGET relative to the folder that will hold FILE (which
 * need not exist yet; its folder and TARGET's folder must), with
 * backslashes. NULL with err set when a folder cannot be resolved. */
char *vmconfig_relative_path(const char *file, const char *target);

/* Refuses an existing PATH unless overwrite (E_EXISTS), a folder that
 * does not exist (E_IO) and one this process cannot write in (E_OUTPUT). */
int vmconfig_check_output(const char *path, bool overwrite);

/* Writes BUF to PATH through a nameless file in the same folder, fsync,
 * link (no replace without overwrite): writer_save_buffer. 0 or -1 (err
 * set: E_EXISTS, E_OUTPUT, E_NOSPACE). */
int vmconfig_save(const char *path, const char *buf, size_t len, bool overwrite);

#endif
