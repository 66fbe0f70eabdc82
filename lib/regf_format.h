/* regf_format.h - the registry hive records hive.c reads and writes
 * itself (hivex does the rest): "Windows registry file format
 * specification" (M. Suhanov, github.com/msuhanov/regf), section names
 * given. All fields little-endian. doc/formats.md, Registry hive.
 */
#ifndef GEN2PREP_REGF_FORMAT_H
#define GEN2PREP_REGF_FORMAT_H

#include <stdint.h>
#include "ondisk.h"

#define REGF_SIGNATURE "regf"
#define HBIN_SIGNATURE "hbin"

/* "Base block": the first 4096 bytes of a primary file. The two sequence
 * numbers differ while a write is under way (a dirty hive); Checksum is
 * the XOR-32 of the 127 dwords before it ("Notes" 2). */
struct regf_base_block {
	uint8_t signature[4];           /* "regf" */
	le32 primary_sequence_number;
	le32 secondary_sequence_number;
	le64 last_written_timestamp;    /* FILETIME */
	le32 major_version;             /* 1 */
	le32 minor_version;
	le32 file_type;                 /* 0: primary file */
	le32 file_format;               /* 1: direct memory load */
	le32 root_cell_offset;          /* from the start of the hive bins data */
	le32 hive_bins_data_size;
	le32 clustering_factor;         /* 1 */
	uint8_t file_name[64];          /* UTF-16LE, for debugging; not NUL-terminated when full */
	uint8_t reserved1[396];         /* RmId, LogId, Flags, TmId, "OfRg", ... (Windows 10) */
	le32 checksum;
	uint8_t reserved2[3576];
	le32 boot_type;
	le32 boot_recover;
} ONDISK;
_Static_assert(sizeof(struct regf_base_block) == 4096, "regf Base block");
_Static_assert(__builtin_offsetof(struct regf_base_block, checksum) == 508, "regf Checksum at 508");

/* "Hive bin": header of each 4 KiB-multiple bin. */
struct regf_hbin_header {
	uint8_t signature[4];           /* "hbin" */
	le32 offset;                    /* of this bin, from the start of the hive bins data */
	le32 size;
	uint8_t reserved[8];
	le64 timestamp;                 /* the first bin's: a copy of the base block's */
	le32 spare;
} ONDISK;
_Static_assert(sizeof(struct regf_hbin_header) == 32, "regf Hive bin header");

/* "Key node" (nk), after the cell's size; the key name follows. */
struct regf_key_node {
	uint8_t signature[2];           /* "nk" */
	le16 flags;                     /* 0x0004 KEY_HIVE_ENTRY, 0x0008 KEY_NO_DELETE, 0x0020 KEY_COMP_NAME */
	le64 last_written_timestamp;
	le32 access_bits;
	le32 parent;
	le32 number_of_subkeys;
	le32 number_of_volatile_subkeys;
	le32 subkeys_list_offset;       /* 0xFFFFFFFF: none */
	le32 volatile_subkeys_list_offset;
	le32 number_of_key_values;
	le32 key_values_list_offset;
	le32 key_security_offset;
	le32 class_name_offset;
	le32 largest_subkey_name_length;
	le32 largest_subkey_class_name_length;
	le32 largest_value_name_length;
	le32 largest_value_data_size;
	le32 workvar;
	le16 key_name_length;
	le16 class_name_length;
} ONDISK;
_Static_assert(sizeof(struct regf_key_node) == 76, "regf Key node");

/* "Key security" (sk), after the cell's size; the self-relative security
 * descriptor (MS-DTYP 2.4.6) follows. */
struct regf_key_security {
	uint8_t signature[2];           /* "sk" */
	le16 reserved;
	le32 flink, blink;              /* the ring of all sk cells */
	le32 reference_count;
	le32 security_descriptor_size;
} ONDISK;
_Static_assert(sizeof(struct regf_key_security) == 20, "regf Key security");

#endif
