/* pe.h - PE32/PE32+ images (Microsoft PE/COFF specification), parsed from
 * untrusted bytes without ever reading out of bounds.
 *
 * pe_parse() copies the file into a buffer owned by struct pe; patches edit
 * that buffer (pe->data) and pe_checksum_update() fixes the checksum before
 * the caller writes pe->data/pe->len back. Only this module parses PE
 * headers.
 */
#ifndef GEN2PREP_PE_H
#define GEN2PREP_PE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PE_MACHINE_I386  0x014c
#define PE_MACHINE_AMD64 0x8664
#define PE_MACHINE_ARMNT 0x01c4   /* ARM Thumb-2 (PE32), PE/COFF "Machine Types" */
#define PE_MACHINE_ARM64 0xaa64   /* PE32+ */
#define PE_SUBSYSTEM_NATIVE 1
#define PE_SUBSYSTEM_EFI_APPLICATION 10
#define PE_SUBSYSTEM_EFI_BOOT_SERVICE_DRIVER 11
#define PE_SUBSYSTEM_WINDOWS_BOOT_APPLICATION 16

struct pe_section {
	char name[9];             /* NUL terminated */
	uint32_t va, vsize;       /* RVA and VirtualSize */
	uint32_t raw_off, raw_size;
	uint32_t characteristics;
};

struct pe_export {
	char *name;               /* NULL for ordinal-only */
	uint32_t rva;             /* forwarders are skipped */
	uint16_t ordinal;
};

struct pe_import {
	char *dll;                /* as in the import directory, e.g. "ntoskrnl.exe" */
	char *name;               /* NULL when imported by ordinal */
	uint16_t ordinal;
	uint32_t iat_rva;         /* RVA of the IAT slot the code calls through */
};

struct pe_function {          /* one .pdata RUNTIME_FUNCTION */
	uint32_t begin, end;      /* [begin, end) RVAs */
	uint32_t unwind;          /* UNWIND_INFO RVA */
	uint32_t primary_begin;   /* begin of the function this chunk belongs to
				     (follows UNW_FLAG_CHAININFO); == begin for a primary */
};

struct pe_version {           /* VS_FIXEDFILEINFO + a few strings */
	bool present;
	uint16_t v[4];            /* FileVersion major.minor.build.revision */
	uint16_t pv[4];           /* ProductVersion */
	/* StringFileInfo strings, whole (pe_free frees them); "" when absent */
	char *original_filename;
	char *internal_name;
	char *file_version_str;
};

struct pe {
	uint8_t *data;            /* owned, mutable copy of the file */
	size_t len;
	bool pe32plus;
	uint16_t machine, subsystem, characteristics;
	uint64_t image_base;
	uint32_t size_of_image, size_of_headers, entry_rva;
	uint32_t file_alignment, section_alignment;
	size_t checksum_off;      /* file offset of OptionalHeader.CheckSum */
	uint32_t checksum;        /* as stored */
	uint32_t security_off, security_size;  /* cert table: FILE offset, not RVA */
	size_t nsections;
	struct pe_section *sections;
	size_t nexports;
	struct pe_export *exports;
	size_t nimports;
	struct pe_import *imports;
	size_t nfunctions;        /* sorted by begin */
	struct pe_function *functions;
	struct pe_version version;
};

/* Parses a copy of data. NULL with err set (E_FORMAT "not a PE file: ..."). */
struct pe *pe_parse(const uint8_t *data, size_t len);
void pe_free(struct pe *pe);

const struct pe_section *pe_section_for_rva(const struct pe *pe, uint32_t rva);
/* File offset of [rva, rva+len) when it lies in one section's raw data. */
int pe_rva_to_off(const struct pe *pe, uint32_t rva, uint32_t len, size_t *off);
/* -1 when off is not in any section's raw data. */
int pe_off_to_rva(const struct pe *pe, size_t off, uint32_t *rva);
/* Pointer to len bytes at rva inside pe->data, NULL if out of bounds. */
uint8_t *pe_ptr(const struct pe *pe, uint32_t rva, uint32_t len);

const struct pe_export *pe_export_find(const struct pe *pe, const char *name);
/* dll compared without case and without extension when dll has none. */
const struct pe_import *pe_import_find(const struct pe *pe, const char *dll, const char *name);
/* The .pdata entry containing rva, NULL if none. */
const struct pe_function *pe_function_at(const struct pe *pe, uint32_t rva);
/* All chunks of the function rva belongs to (primary + chained), up to max;
 * returns their count (0 if rva is in no function). */
size_t pe_function_chunks(const struct pe *pe, uint32_t rva, const struct pe_function **out, size_t max);

/* Finds every occurrence of ascii as a NUL-terminated UTF-16LE string in
 * the image's sections; returns the count (stores up to max RVAs). */
size_t pe_find_utf16(const struct pe *pe, const char *ascii, uint32_t *rvas, size_t max);

/* PE checksum (the algorithm of imagehlp CheckSumMappedFile): 16-bit
 * one's-complement sum of the file's 16-bit words with the CheckSum field
 * taken as zero, folded, plus the file length. */
uint32_t pe_checksum_compute(const uint8_t *data, size_t len, size_t checksum_off);
bool pe_checksum_valid(const struct pe *pe);
/* Recomputes and stores the checksum in pe->data. */
void pe_checksum_update(struct pe *pe);

/* "6.1.7601.17514" into buf[n], n >= PE_VERSION_STR_MAX (four 16-bit
 * numbers: never cut); "" when there is no version resource. */
#define PE_VERSION_STR_MAX 24
const char *pe_version_str(const struct pe *pe, char *buf, size_t n);

#endif
