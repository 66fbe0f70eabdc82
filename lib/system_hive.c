/* system_hive.c - see system_hive.h */
#include "system_hive.h"
#include "hive.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int apply_one(struct hive *h, const struct plan_value_edit *e)
{
	switch (e->type) {
	case REG_DWORD_: return hive_set_dword(h, e->key, e->value, e->dword);
	case REG_SZ_: return hive_set_string(h, e->key, e->value, e->str);
	case REG_BINARY_: return hive_set_binary(h, e->key, e->value, REG_BINARY_, e->bin, e->bin_len);
	default: return err_set(E_INTERNAL, "registry edit of unsupported type %u", e->type);
	}
}

/* Reads the value back from the committed bytes: what Windows will see. */
static int check_one(struct hive *h, const struct plan_value_edit *e)
{
	int r;
	if (e->type == REG_DWORD_) {
		uint32_t v;
		r = hive_get_dword(h, e->key, e->value, &v);
		if (r == 0 && v == e->dword) return 0;
	} else if (e->type == REG_SZ_) {
		char *s = NULL;
		r = hive_get_string(h, e->key, e->value, &s);
		bool same = r == 0 && !strcmp(s, e->str);
		free(s);
		if (same) return 0;
	} else {
		uint8_t *b = NULL;
		size_t n = 0;
		uint32_t type;
		r = hive_get_binary(h, e->key, e->value, &b, &n, &type);
		bool same = r == 0 && n == e->bin_len && !memcmp(b, e->bin, n);
		free(b);
		if (same) return 0;
	}
	if (r < 0) return err_prefix("%s\\%s", e->key, e->value);
	return err_set(E_INTERNAL, "%s\\%s does not read back as written", e->key, e->value);
}

static int verify_result(const uint8_t *data, size_t len, const struct plan_value_edit *edits, size_t n)
{
	/* doc/formats.md, Registry hive: primary (offset 4) and secondary (offset 8)
	 * sequence numbers equal = written back cleanly; hivex_commit keeps them so */
	int dirty = hive_is_dirty(data, len);
	if (dirty != 0)
		return err_set(E_INTERNAL, dirty > 0 ? "the written hive has unequal sequence numbers" : "the written hive is not a hive");
	struct hive *h = hive_open(data, len, false, "SYSTEM (written)");
	if (!h) return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) rc = check_one(h, &edits[i]);
	hive_close(h);
	return rc;
}

int system_hive_apply(const uint8_t *in, size_t len, const struct plan_value_edit *edits, size_t n,
		      uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	int dirty = hive_is_dirty(in, len);
	if (dirty < 0) return err_set(E_FORMAT, "SYSTEM is not a registry hive");
	if (dirty > 0)
		return err_set(E_BLOCKED, "the SYSTEM hive was not written back cleanly (its newest data is in SYSTEM.LOG): boot the guest and shut it down cleanly first");
	struct hive *h = hive_open(in, len, true, "SYSTEM");
	if (!h) return -1;
	for (size_t i = 0; i < n; i++)
		if (apply_one(h, &edits[i]) < 0) {
			err_prefix("SYSTEM hive: setting %s\\%s", edits[i].key, edits[i].value);
			hive_close(h);
			return -1;
		}
	int rc = hive_serialize(h, out, out_len);
	hive_close(h);
	if (rc < 0) return -1;
	if (verify_result(*out, *out_len, edits, n) < 0) {
		free(*out);
		*out = NULL;
		return err_prefix("SYSTEM hive");
	}
	return 0;
}
