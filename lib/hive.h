/* hive.h - Windows registry hives (SYSTEM, SOFTWARE, BCD) through hivex,
 * from and to memory: bytes read from NTFS go to a memfd that hivex opens
 * by /proc/self/fd path, so no temporary file is ever left behind.
 *
 * Paths are '\'-separated, relative to the root key, matched without case:
 * "ControlSet001\\Services\\Ntfs". Value names likewise ("" = default).
 */
#ifndef GEN2PREP_HIVE_H
#define GEN2PREP_HIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hive;

/* REG_* types (winnt.h) */
enum { REG_NONE_ = 0, REG_SZ_ = 1, REG_EXPAND_SZ_ = 2, REG_BINARY_ = 3, REG_DWORD_ = 4,
       REG_MULTI_SZ_ = 7, REG_QWORD_ = 11 };

/* Base block check (doc/formats.md, Registry hive): "regf", primary sequence number at 4 and
 * secondary at 8 differ when the hive was not written back cleanly. Returns
 * 1 dirty, 0 clean, -1 not a hive. */
int hive_is_dirty(const uint8_t *data, size_t len);

/* The base block's state (spec "Base block"): HIVE_TORN when the checksum
 * at 508 is wrong (a write of the base block was torn; Windows recovers it
 * from the transaction logs, .LOG1/.LOG2), else HIVE_DIRTY when the
 * sequence numbers differ, else HIVE_CLEAN. -1 (HIVE_NOT_A_HIVE) when data
 * is shorter than the 4096-byte base block or lacks "regf". No err set. */
enum hive_state { HIVE_CLEAN = 0, HIVE_DIRTY, HIVE_TORN, HIVE_NOT_A_HIVE };
struct hive_base {
	enum hive_state state;
	uint32_t seq1, seq2;          /* primary / secondary sequence numbers */
	uint32_t stored_checksum, checksum;   /* at 508 / computed */
};
int hive_base_state(const uint8_t *data, size_t len, struct hive_base *out);
/* XOR-32 of the first 508 bytes of a base block (data: 512 bytes or more). */
uint32_t hive_base_checksum(const uint8_t *data);

struct hive *hive_open(const uint8_t *data, size_t len, bool writable, const char *name);
/* A new hive holding only an empty root key named root_name, built from
 * bytes this module lays out (hivex cannot create a hive from nothing). */
struct hive *hive_new(const char *root_name);
void hive_close(struct hive *h);

/* Getters: 0 found, 1 key or value missing, -1 error (wrong type: E_FORMAT). */
int hive_get_dword(struct hive *h, const char *key, const char *value, uint32_t *out);
int hive_get_string(struct hive *h, const char *key, const char *value, char **out); /* REG_SZ/EXPAND_SZ, UTF-8 */
int hive_get_binary(struct hive *h, const char *key, const char *value, uint8_t **out, size_t *len, uint32_t *type);
int hive_get_multi_sz(struct hive *h, const char *key, const char *value, char ***out, size_t *count);
bool hive_key_exists(struct hive *h, const char *key);

/* Subkey names / value names of key (malloc'd array of malloc'd strings). */
int hive_subkeys(struct hive *h, const char *key, char ***names, size_t *count);
int hive_values(struct hive *h, const char *key, char ***names, size_t *count);
void hive_free_names(char **names, size_t count);

/* Setters create missing keys along the path. 0 or -1. */
int hive_add_key(struct hive *h, const char *key);
int hive_set_dword(struct hive *h, const char *key, const char *value, uint32_t v);
int hive_set_string(struct hive *h, const char *key, const char *value, const char *utf8);
int hive_set_binary(struct hive *h, const char *key, const char *value, uint32_t type, const void *data, size_t len);
int hive_set_multi_sz(struct hive *h, const char *key, const char *value, const char *const *items, size_t count);
int hive_delete_value(struct hive *h, const char *key, const char *value);

/* Commits to bytes (malloc'd). The hive stays open. */
int hive_serialize(struct hive *h, uint8_t **data, size_t *len);

#endif
