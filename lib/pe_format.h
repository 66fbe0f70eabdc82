/* pe_format.h - the PE/COFF records pe.c reads, as Microsoft's "PE Format"
 * specification (learn.microsoft.com/windows/win32/debug/pe-format) names
 * them; section titles given. All fields little-endian. doc/formats.md, PE.
 */
#ifndef GEN2PREP_PE_FORMAT_H
#define GEN2PREP_PE_FORMAT_H

#include <stdint.h>
#include "ondisk.h"

/* "MS-DOS Stub (Image Only)": IMAGE_DOS_HEADER, "MZ" and e_lfanew at 0x3C,
 * the file offset of the "PE\0\0" signature ("Signature (Image Only)"). */
struct pe_dos_header {
	uint8_t e_magic[2];             /* "MZ" */
	uint8_t e_other[58];            /* real-mode fields, not used */
	le32 e_lfanew;
} ONDISK;
_Static_assert(sizeof(struct pe_dos_header) == 64, "PE MS-DOS header");

/* "COFF File Header (Object and Image)", after the signature. */
struct pe_coff_header {
	le16 machine;
	le16 number_of_sections;
	le32 time_date_stamp;
	le32 pointer_to_symbol_table;
	le32 number_of_symbols;
	le16 size_of_optional_header;
	le16 characteristics;
} ONDISK;
_Static_assert(sizeof(struct pe_coff_header) == 20, "PE COFF File Header");

/* "Optional Header Standard Fields (Image Only)", common part. */
struct pe_opt_standard {
	le16 magic;                     /* 0x10B PE32, 0x20B PE32+ */
	uint8_t major_linker_version;
	uint8_t minor_linker_version;
	le32 size_of_code;
	le32 size_of_initialized_data;
	le32 size_of_uninitialized_data;
	le32 address_of_entry_point;
	le32 base_of_code;
} ONDISK;
_Static_assert(sizeof(struct pe_opt_standard) == 24, "PE Optional Header Standard Fields");

/* "Optional Header Windows-Specific Fields (Image Only)" from
 * SectionAlignment to DllCharacteristics: the same in PE32 and PE32+. */
struct pe_opt_windows {
	le32 section_alignment;
	le32 file_alignment;
	le16 major_os_version, minor_os_version;
	le16 major_image_version, minor_image_version;
	le16 major_subsystem_version, minor_subsystem_version;
	le32 win32_version_value;
	le32 size_of_image;
	le32 size_of_headers;
	le32 checksum;                  /* CheckSumMappedFile */
	le16 subsystem;
	le16 dll_characteristics;
} ONDISK;
_Static_assert(sizeof(struct pe_opt_windows) == 40, "PE Optional Header Windows-Specific Fields");

/* PE32: BaseOfData and a 4-byte ImageBase; 4-byte stack and heap sizes. */
struct pe_optional_header32 {
	struct pe_opt_standard std;
	le32 base_of_data, image_base;  /* BaseOfData: PE32 only */
	struct pe_opt_windows win;
	le32 size_of_stack_reserve, size_of_stack_commit, size_of_heap_reserve, size_of_heap_commit;
	le32 loader_flags, number_of_rva_and_sizes;   /* then the data directories */
} ONDISK;
_Static_assert(sizeof(struct pe_optional_header32) == 96, "PE32 optional header");

/* PE32+: an 8-byte ImageBase; 8-byte stack and heap sizes. */
struct pe_optional_header64 {
	struct pe_opt_standard std;
	le64 image_base;
	struct pe_opt_windows win;
	le64 size_of_stack_reserve, size_of_stack_commit, size_of_heap_reserve, size_of_heap_commit;
	le32 loader_flags, number_of_rva_and_sizes;   /* then the data directories */
} ONDISK;
_Static_assert(sizeof(struct pe_optional_header64) == 112, "PE32+ optional header");
_Static_assert(__builtin_offsetof(struct pe_optional_header32, win) == 32 &&
	       __builtin_offsetof(struct pe_optional_header64, win) == 32, "PE Windows-specific fields at 32");

/* "Optional Header Data Directories (Image Only)" */
struct pe_data_directory {
	le32 virtual_address;           /* an RVA; the security directory: a file offset */
	le32 size;
} ONDISK;
_Static_assert(sizeof(struct pe_data_directory) == 8, "PE data directory");

/* "Section Table (Section Headers)" */
struct pe_section_header {
	uint8_t name[8];
	le32 virtual_size;
	le32 virtual_address;
	le32 size_of_raw_data;
	le32 pointer_to_raw_data;
	le32 pointer_to_relocations;
	le32 pointer_to_linenumbers;
	le16 number_of_relocations;
	le16 number_of_linenumbers;
	le32 characteristics;
} ONDISK;
_Static_assert(sizeof(struct pe_section_header) == 40, "PE section header");

/* "Export Directory Table" (.edata) */
struct pe_export_directory {
	le32 export_flags;
	le32 time_date_stamp;
	le16 major_version, minor_version;
	le32 name_rva;
	le32 ordinal_base;
	le32 address_table_entries;
	le32 number_of_name_pointers;
	le32 export_address_table_rva;
	le32 name_pointer_rva;
	le32 ordinal_table_rva;
} ONDISK;
_Static_assert(sizeof(struct pe_export_directory) == 40, "PE Export Directory Table");

/* "Import Directory Table" (.idata): ends with an all-zero entry. */
struct pe_import_descriptor {
	le32 import_lookup_table_rva;   /* OriginalFirstThunk; 0 in old images */
	le32 time_date_stamp;
	le32 forwarder_chain;
	le32 name_rva;
	le32 import_address_table_rva;  /* FirstThunk */
} ONDISK;
_Static_assert(sizeof(struct pe_import_descriptor) == 20, "PE Import Directory Table");

/* "The .pdata Section", x64: RUNTIME_FUNCTION. */
struct pe_runtime_function {
	le32 begin_address;
	le32 end_address;
	le32 unwind_data;               /* UNWIND_INFO RVA; bit 0 set: another RUNTIME_FUNCTION */
} ONDISK;
_Static_assert(sizeof(struct pe_runtime_function) == 12, "x64 RUNTIME_FUNCTION");

/* "The .rsrc Section": Resource Directory Table, its entries, data entry. */
struct pe_resource_directory {
	le32 characteristics;
	le32 time_date_stamp;
	le16 major_version, minor_version;
	le16 number_of_name_entries;
	le16 number_of_id_entries;
} ONDISK;
_Static_assert(sizeof(struct pe_resource_directory) == 16, "PE Resource Directory Table");

struct pe_resource_entry {
	le32 name_or_id;                /* bit 31: a name offset, else an integer id */
	le32 offset;                    /* bit 31: a subdirectory; from the resource root */
} ONDISK;
_Static_assert(sizeof(struct pe_resource_entry) == 8, "PE Resource Directory Entries");

struct pe_resource_data_entry {
	le32 data_rva;
	le32 size;
	le32 codepage;
	le32 reserved;
} ONDISK;
_Static_assert(sizeof(struct pe_resource_data_entry) == 16, "PE Resource Data Entry");

/* The header of every block of a version resource (VS_VERSIONINFO,
 * StringFileInfo, StringTable, String: learn.microsoft.com/windows/win32/
 * menurc/vs-versioninfo): wLength (the whole block), wValueLength (WORDs
 * for text, bytes otherwise), wType (1 text, 0 binary); szKey follows. */
struct pe_version_block {
	le16 length, value_length, type;
} ONDISK;
_Static_assert(sizeof(struct pe_version_block) == 6, "version resource block header");

/* VS_FIXEDFILEINFO (learn.microsoft.com/windows/win32/api/verrsrc),
 * the Value of the VS_VERSIONINFO resource. */
struct pe_fixed_file_info {
	le32 signature;                 /* 0xFEEF04BD */
	le32 struc_version;
	le32 file_version_ms, file_version_ls;
	le32 product_version_ms, product_version_ls;
	le32 file_flags_mask, file_flags;
	le32 file_os, file_type, file_subtype;
	le32 file_date_ms, file_date_ls;
} ONDISK;
_Static_assert(sizeof(struct pe_fixed_file_info) == 52, "VS_FIXEDFILEINFO");

#endif
