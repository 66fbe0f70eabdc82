/* vhdx_locator.c - see vhdx_format.h, vhdx_locator_parse; the layout and
 * the keys in doc/formats.md, VHDX parent locator. */
#include "vhdx_format.h"
#include "util.h"

#include <stdlib.h>


/* Does the UTF-16LE string at p (n bytes) spell the ASCII key? */
static bool key_is(const uint8_t *p, size_t n, const char *key)
{
	size_t k = strlen(key);
	if (n != 2 * k) return false;
	for (size_t i = 0; i < k; i++)
		if (p[2 * i] != (uint8_t)key[i] || p[2 * i + 1]) return false;
	return true;
}

/* Which path key wins: 2.6.2.6.3 "evaluate the paths in a specific order
 * ... relative_path, volume_path and then absolute_path". */
static int path_rank(const uint8_t *k, size_t n)
{
	if (key_is(k, n, "relative_path")) return 3;
	if (key_is(k, n, "volume_path")) return 2;
	if (key_is(k, n, "absolute_win32_path")) return 1;
	return 0;
}

static int take_value(struct vhdx_locator *out, const uint8_t *k, uint16_t kn, const uint8_t *v, uint16_t vn, int *best)
{
	int rank = path_rank(k, kn);
	if (key_is(k, kn, "parent_linkage")) {
		char *s = utf16le_to_utf8(v, vn / 2);
		if (!s) return err_prefix("VHDX parent locator");
		int r = guid_from_str(s, &out->linkage);
		free(s);
		if (r < 0) return err_set(E_FORMAT, "VHDX parent locator: parent_linkage is not a GUID");
		out->has_linkage = true;
	} else if (rank > *best) {
		free(out->path);
		out->path = utf16le_to_utf8(v, vn / 2);
		if (!out->path) return err_prefix("VHDX parent locator");
		*best = rank;
	}
	return 0;
}

/* The header and every key-value entry of the item into out; on -1 out->path
 * may hold an earlier entry's path (vhdx_locator_parse frees it). */
static int parse_entries(const uint8_t *item, size_t len, struct vhdx_locator *out)
{
	struct vhdx_locator_header h;
	if (len < sizeof h) return err_set(E_FORMAT, "VHDX parent locator shorter than its 20-byte header");
	memcpy(&h, item, sizeof h);
	if (!guid_eq(&h.locator_type, &VHDX_LOCATOR_TYPE))
		return err_set(E_UNSUPPORTED, "VHDX parent locator of an unknown type (2.6.2.6.1: not a VHDX parent)");
	uint16_t count = le16_get(&h.key_value_count);
	int best = 0;
	for (size_t i = 0; i < count; i++) {
		struct vhdx_locator_entry e;
		if (!range_ok(sizeof h + sizeof e * i, sizeof e, len))
			return err_set(E_FORMAT, "VHDX parent locator entries past its end");
		memcpy(&e, item + sizeof h + sizeof e * i, sizeof e);
		uint32_t ko = le32_get(&e.key_offset), vo = le32_get(&e.value_offset);
		uint16_t kn = le16_get(&e.key_length), vn = le16_get(&e.value_length);
		/* 2.6.2.6.2: offsets and lengths > 0, inside the item */
		if (!ko || !vo || !kn || !vn || !range_ok(ko, kn, len) || !range_ok(vo, vn, len))
			return err_set(E_FORMAT, "VHDX parent locator entry %zu outside the item", i);
		if (take_value(out, item + ko, kn, item + vo, vn, &best) < 0) return -1;
	}
	if (!out->has_linkage || !out->path)
		return err_set(E_FORMAT, "VHDX parent locator without %s", out->has_linkage ? "a path" : "parent_linkage");
	return 0;
}

int vhdx_locator_parse(const uint8_t *item, size_t len, struct vhdx_locator *out)
{
	memset(out, 0, sizeof *out);
	if (parse_entries(item, len, out) == 0) return 0;
	/* a failure after a path was taken (an entry past the end, a bad
	 * parent_linkage) leaves nothing for the caller to free (fuzz_locator) */
	free(out->path);
	out->path = NULL;
	return -1;
}
