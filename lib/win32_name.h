/* win32_name.h - whether a name can be a file or folder name on Windows.
 *
 * Hyper-V opens a disk, and a differencing disk's parent (MS-VHDX
 * 2.6.2.6.3 relative_path), through the Win32 file API, whose names
 * ([MS-FSCC] 2.1.5.2 "Filename"; Win32 "Naming Files, Paths, and
 * Namespaces") exclude the characters < > : " / \ | ? * and 0x01-0x1F,
 * end neither in a period nor a space, and are not a device name CON,
 * PRN, AUX, NUL, COM1-9, LPT1-9, in any case, even with an extension
 * ("NUL.vhdx"); and a Linux name must be UTF-8 to have a UTF-16 form at
 * all. The one predicate for every name gen2prep records or
 * writes for Windows (writer_diff.c, convert's checks, vmconfig.c).
 */
#ifndef GEN2PREP_WIN32_NAME_H
#define GEN2PREP_WIN32_NAME_H

#include <stddef.h>

/* NULL when name (one name, no separator; "." and ".." allowed) is a
 * valid Win32 file or folder name; else why[n] filled with the reason
 * ("character '?'", "control character 0x01", "trailing period",
 * "reserved device name CON", "byte 0xe9 that is not UTF-8") and returned. */
const char *win32_name_why(const char *name, char *why, size_t n);

#endif
