/* hive.c - registry hives through hivex, from and to memory.
 *
 * hivex only opens files by name, so bytes go into an anonymous memfd that
 * hivex opens as /proc/self/fd/N: nothing touches the disk. hive_new lays
 * out a minimal hive itself (hivex cannot create one from nothing).
 *
 * Format facts used here (the regf base block, hive bin and cell layouts)
 * come from "Windows registry file format specification" (M. Suhanov,
 * github.com/msuhanov/regf), sections "Base block", "Hive bin", "Cell",
 * "Key node", "Key security", and were checked against hivex's reader
 * (lib/handle.c: hivex_open accepts a hive only when the file is at least
 * 0x2000 bytes, major version is 1, the XOR checksum matches, every hbin's
 * offset field matches its place, every cell is > 4 bytes and inside its
 * hbin, and the root cell is an allocated nk).
 */
#include "hive.h"
#include "regf_format.h"
#include "util.h"

#include <errno.h>
#include <hivex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* hivex reports failures in errno; ENOMEM is ours to name (exit 1), not a
 * malformed hive. */
#define HIVEX_ERR(code) (errno == ENOMEM ? E_NOMEM : (code))
/* hivex also goes on past some failed allocations and succeeds (a
 * different cell layout, a child list cut short): a call that succeeded
 * with ENOMEM left behind (errno cleared before it) is not trusted.
 * tests/test_allocfail.c found both (a written hive differing from the
 * one written with memory to spare). */
#define HIVEX_RECOVERED() (errno == ENOMEM)

struct hive {
	hive_h *h;
	bool writable;
	char *name;
};

#define REGF_BASE_SIZE   ((uint32_t)sizeof(struct regf_base_block))
#define HBIN_SIZE        4096
#define HBIN_HEADER      ((uint32_t)sizeof(struct regf_hbin_header))
#define REGF_NO_CELL     0xffffffffu   /* an offset field naming no cell */

int hive_is_dirty(const uint8_t *data, size_t len)
{
	struct regf_base_block bb;   /* only the first 12 bytes are read */
	if (!data || len < offsetof(struct regf_base_block, last_written_timestamp) ||
	    memcmp(data, REGF_SIGNATURE, 4))
		return -1;
	memcpy(&bb, data, offsetof(struct regf_base_block, last_written_timestamp));
	return le32_get(&bb.primary_sequence_number) != le32_get(&bb.secondary_sequence_number) ? 1 : 0;
}

/* Spec "Base block": Checksum at 508 is the XOR-32 of the previous 508
 * bytes (127 little-endian dwords); Windows stores 1 for a result of 0 and
 * 0xFFFFFFFE for 0xFFFFFFFF, so both the plain and the adjusted value are
 * accepted. A base block that fails it is invalid and Windows takes the
 * base block from the transaction log (spec "Transaction log files"). */
uint32_t hive_base_checksum(const uint8_t *data)
{
	uint32_t x = 0;
	for (size_t i = 0; i < offsetof(struct regf_base_block, checksum); i += 4)
		x ^= get_le32(data + i);
	return x;
}

int hive_base_state(const uint8_t *data, size_t len, struct hive_base *out)
{
	memset(out, 0, sizeof *out);
	if (!data || len < REGF_BASE_SIZE || memcmp(data, REGF_SIGNATURE, 4)) {
		out->state = HIVE_NOT_A_HIVE;
		return -1;
	}
	struct regf_base_block bb;
	memcpy(&bb, data, sizeof bb);
	out->seq1 = le32_get(&bb.primary_sequence_number);
	out->seq2 = le32_get(&bb.secondary_sequence_number);
	out->stored_checksum = le32_get(&bb.checksum);
	out->checksum = hive_base_checksum(data);
	uint32_t adj = out->checksum == 0 ? 1 : out->checksum == 0xFFFFFFFFu ? 0xFFFFFFFEu : out->checksum;
	if (out->stored_checksum != out->checksum && out->stored_checksum != adj)
		out->state = HIVE_TORN;
	else
		out->state = out->seq1 != out->seq2 ? HIVE_DIRTY : HIVE_CLEAN;
	return 0;
}

/* ---- memfd plumbing ---------------------------------------------------- */

static int memfd_with(const char *name, const uint8_t *data, size_t len)
{
	int fd = memfd_create(name && *name ? name : "hive", MFD_CLOEXEC);
	if (fd < 0)
		return err_errno(E_IO, "memfd_create");
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err_errno(E_IO, "writing hive to memfd");
			close(fd);
			return -1;
		}
		done += (size_t)w;
	}
	return fd;
}

static int read_fd_all(int fd, uint8_t **data, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_errno(E_IO, "fstat memfd");
	size_t n = (size_t)st.st_size;
	uint8_t *buf = xmalloc(n ? n : 1);
	if (!buf) return err_prefix("committed hive");
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, buf + done, n - done, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			return err_errno(E_IO, "reading committed hive");
		}
		done += (size_t)r;
	}
	*data = buf;
	*len = n;
	return 0;
}

struct hive *hive_open(const uint8_t *data, size_t len, bool writable, const char *name)
{
	if (!data || len < 4 || memcmp(data, "regf", 4)) {
		err_set(E_FORMAT, "%s: not a registry hive (no \"regf\" signature)", name ? name : "hive");
		return NULL;
	}
	/* hivex refuses smaller files: a base block plus at least one hbin. */
	if (len < REGF_BASE_SIZE + HBIN_SIZE) {
		err_set(E_FORMAT, "%s: registry hive truncated (%zu bytes)", name ? name : "hive", len);
		return NULL;
	}
	int fd = memfd_with(name, data, len);
	if (fd < 0)
		return NULL;
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);   /* fits: 25 chars at most */
	errno = 0;
	hive_h *h = hivex_open(path, writable ? HIVEX_OPEN_WRITE : 0);
	int e = errno;
	close(fd); /* hivex keeps its own descriptor / mapping */
	if (!h || e == ENOMEM) {
		if (h) hivex_close(h);
		err_set(e == ENOMEM ? E_NOMEM : E_FORMAT, "%s: malformed registry hive (%s)", name ? name : "hive",
			strerror(e ? e : EINVAL));
		return NULL;
	}
	struct hive *hv = xcalloc(1, sizeof *hv);
	char *hname = hv ? xstrdup(name ? name : "hive") : NULL;
	if (!hname) {
		free(hv);
		hivex_close(h);
		err_prefix("%s: hive handle", name ? name : "hive");
		return NULL;
	}
	hv->h = h;
	hv->writable = writable;
	hv->name = hname;
	return hv;
}

void hive_close(struct hive *h)
{
	if (!h)
		return;
	hivex_close(h->h);
	free(h->name);
	free(h);
}

/* ---- hive_new: a minimal hive laid out by hand ------------------------- */

/* Windows FILETIME: 100 ns units since 1601-01-01 (used for every stamp). */
static uint64_t filetime_of_epoch(void)
{
	return (build_epoch() + 11644473600ULL) * 10000000ULL;
}

/* Self-relative security descriptor (MS-DTYP 2.4.6) as found on the root
 * key of BCD stores written by Windows 10 (the shared BCD samples): control
 * SE_SELF_RELATIVE|SE_DACL_PRESENT (0x8004); DACL (MS-DTYP 2.4.5, revision
 * 2) with two ACCESS_ALLOWED ACEs: BUILTIN\Administrators (S-1-5-32-544)
 * 0x00060019 (KEY_READ|WRITE_DAC) and SYSTEM (S-1-5-18) 0x000f003f
 * (KEY_ALL_ACCESS); owner Administrators, group SYSTEM. 100 bytes. */
static const uint8_t root_sd[] = {
	0x01, 0x00, 0x04, 0x80, 0x48, 0x00, 0x00, 0x00, 0x58, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
	/* DACL @0x14: revision 2, size 0x34, 2 ACEs */
	0x02, 0x00, 0x34, 0x00, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x18, 0x00, 0x19, 0x00, 0x06, 0x00,
	0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00,
	0x00, 0x00, 0x14, 0x00, 0x3f, 0x00, 0x0f, 0x00,
	0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00,
	/* owner @0x48: S-1-5-32-544 */
	0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00,
	/* group @0x58: S-1-5-18 */
	0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00,
};

static uint32_t align8(uint32_t n)
{
	return (n + 7u) & ~7u;
}

static void lay_base_block(uint8_t *b, uint32_t root_off, const char *root_name)
{
	struct regf_base_block bb = {0};
	memcpy(bb.signature, REGF_SIGNATURE, 4);
	le32_set(&bb.primary_sequence_number, 1);     /* equal: written back cleanly */
	le32_set(&bb.secondary_sequence_number, 1);
	le64_set(&bb.last_written_timestamp, filetime_of_epoch());
	le32_set(&bb.major_version, 1);
	le32_set(&bb.minor_version, 3);     /* what Windows 7..11 BCD stores carry */
	le32_set(&bb.file_type, 0);         /* primary file */
	le32_set(&bb.file_format, 1);       /* direct memory load */
	le32_set(&bb.root_cell_offset, root_off);
	le32_set(&bb.hive_bins_data_size, HBIN_SIZE);
	le32_set(&bb.clustering_factor, 1);
	/* File name (for debugging only, 64 bytes by the format): the root
	 * name, its first 31 units, NUL-terminated. */
	for (size_t i = 0; i < 31 && root_name[i]; i++)
		put_le16(bb.file_name + 2 * i, (uint8_t)root_name[i]);
	memcpy(b, &bb, sizeof bb);
	le32_set(&bb.checksum, hive_base_checksum(b));
	memcpy(b, &bb, sizeof bb);
}

/* Key node (spec "Key node"): flags KEY_HIVE_ENTRY|KEY_NO_DELETE|
 * KEY_COMP_NAME (0x2c, as on the sample stores' roots); no subkeys, no
 * values, no class: list offsets 0xffffffff ("no cell"). The root's parent
 * field has no meaning; we store 0xffffffff. */
static uint32_t lay_root_nk(uint8_t *cell, uint32_t sk_off, const char *name)
{
	size_t nlen = strlen(name);
	struct regf_key_node nk = {0};
	uint32_t size = align8(4 + (uint32_t)sizeof nk + (uint32_t)nlen);
	put_le32(cell, (uint32_t)-(int32_t)size);  /* "Cell": negative size, allocated */
	memcpy(nk.signature, "nk", 2);
	le16_set(&nk.flags, 0x0004 | 0x0008 | 0x0020);
	le64_set(&nk.last_written_timestamp, filetime_of_epoch());
	le32_set(&nk.parent, REGF_NO_CELL);
	le32_set(&nk.subkeys_list_offset, REGF_NO_CELL);
	le32_set(&nk.volatile_subkeys_list_offset, REGF_NO_CELL);
	le32_set(&nk.key_values_list_offset, REGF_NO_CELL);
	le32_set(&nk.key_security_offset, sk_off);
	le32_set(&nk.class_name_offset, REGF_NO_CELL);
	le16_set(&nk.key_name_length, (uint16_t)nlen);
	memcpy(cell + 4, &nk, sizeof nk);
	memcpy(cell + 4 + sizeof nk, name, nlen);
	return size;
}

/* Key security (spec "Key security"; the u32 security descriptor size at
 * 16 before the descriptor is documented in libregf's REGF format notes
 * and seen in the samples): the only sk cell, so flink and blink point at
 * itself; referenced once (the root). */
static uint32_t lay_root_sk(uint8_t *cell, uint32_t self_off)
{
	struct regf_key_security sk = {0};
	uint32_t size = align8(4 + (uint32_t)sizeof sk + (uint32_t)sizeof root_sd);
	put_le32(cell, (uint32_t)-(int32_t)size);
	memcpy(sk.signature, "sk", 2);
	le32_set(&sk.flink, self_off);
	le32_set(&sk.blink, self_off);
	le32_set(&sk.reference_count, 1);
	le32_set(&sk.security_descriptor_size, (uint32_t)sizeof root_sd);
	memcpy(cell + 4, &sk, sizeof sk);
	memcpy(cell + 4 + sizeof sk, root_sd, sizeof root_sd);
	return size;
}

/* Builds the bytes of a hive holding only the root key. */
static int hive_new_bytes(const char *root_name, uint8_t **out, size_t *len)
{
	size_t nlen = strlen(root_name);
	if (nlen == 0 || nlen > 255)
		return err_set(E_USAGE, "hive root name must be 1..255 characters");
	for (size_t i = 0; i < nlen; i++)
		if ((uint8_t)root_name[i] < 0x20 || (uint8_t)root_name[i] > 0x7e || root_name[i] == '\\')
			return err_set(E_USAGE, "hive root name must be printable ASCII without '\\'");

	uint8_t *b = xcalloc(1, REGF_BASE_SIZE + HBIN_SIZE);
	if (!b) return err_prefix("new hive");
	uint8_t *bin = b + REGF_BASE_SIZE;
	/* Hive bin header (spec "Hive bin"): offset 0, size 4096, timestamp
	 * at 20 (a backup of the base block's). */
	struct regf_hbin_header hb = {0};
	memcpy(hb.signature, HBIN_SIGNATURE, 4);
	le32_set(&hb.offset, 0);
	le32_set(&hb.size, HBIN_SIZE);
	le64_set(&hb.timestamp, filetime_of_epoch());
	memcpy(bin, &hb, sizeof hb);

	uint32_t nk_off = HBIN_HEADER;   /* offsets relative to hive bins data */
	uint32_t nk_size = align8(4 + (uint32_t)sizeof(struct regf_key_node) + (uint32_t)nlen);
	uint32_t sk_off = nk_off + nk_size;
	lay_root_nk(bin + nk_off, sk_off, root_name);
	uint32_t sk_size = lay_root_sk(bin + sk_off, sk_off);
	/* The rest of the bin is one free cell (positive size). */
	uint32_t free_off = sk_off + sk_size;
	put_le32(bin + free_off, HBIN_SIZE - free_off);

	lay_base_block(b, nk_off, root_name);
	*out = b;
	*len = REGF_BASE_SIZE + HBIN_SIZE;
	return 0;
}

struct hive *hive_new(const char *root_name)
{
	uint8_t *bytes = NULL;
	size_t len = 0;
	if (!root_name || hive_new_bytes(root_name, &bytes, &len) < 0) {
		if (!root_name)
			err_set(E_USAGE, "hive_new: no root name");
		return NULL;
	}
	struct hive *h = hive_open(bytes, len, true, root_name);
	free(bytes);
	if (!h)
		err_prefix("new hive");
	return h;
}

/* ---- navigation -------------------------------------------------------- */

/* Finds the node of a '\'-separated path (case-insensitive, hivex compares
 * names with strcasecmp). Returns 1 and *node on success, 0 when missing,
 * -1 on error. With create, missing keys are added. */
static int walk(struct hive *hv, const char *path, bool create, hive_node_h *node)
{
	hive_node_h n = hivex_root(hv->h);
	if (!n)
		return err_set(E_FORMAT, "%s: no root key", hv->name);
	if (!path)   /* a caller's key string it could not allocate (E_NOMEM set) */
		return err_code() == E_NOMEM ? err_prefix("%s", hv->name) : err_set(E_INTERNAL, "%s: no key path", hv->name);
	char *copy = xstrdup(path);
	if (!copy) return err_prefix("%s: key path", hv->name);
	char *save = NULL;
	for (char *part = strtok_r(copy, "\\", &save); part; part = strtok_r(NULL, "\\", &save)) {
		errno = 0;
		hive_node_h c = hivex_node_get_child(hv->h, n, part);
		if ((!c && errno) || HIVEX_RECOVERED()) {
			err_set(HIVEX_ERR(E_FORMAT), "%s: reading key '%s': %s", hv->name, part, strerror(errno));
			free(copy);
			return -1;
		}
		if (!c && create) {
			if (!hv->writable) {
				free(copy);
				return err_set(E_INTERNAL, "%s: opened read-only", hv->name);
			}
			errno = 0;
			c = hivex_node_add_child(hv->h, n, part);
			if (!c || HIVEX_RECOVERED()) {
				err_set(HIVEX_ERR(E_FORMAT), "%s: adding key '%s': %s", hv->name, part, strerror(errno));
				free(copy);
				return -1;
			}
		}
		if (!c) {
			free(copy);
			return 0;
		}
		n = c;
	}
	free(copy);
	*node = n;
	return 1;
}

/* Looks up a value: 0 found (*val), 1 key or value missing, -1 error. */
static int find_value(struct hive *hv, const char *key, const char *value, hive_value_h *val)
{
	hive_node_h n;
	int r = walk(hv, key, false, &n);
	if (r <= 0)
		return r < 0 ? -1 : 1;
	errno = 0;
	hive_value_h v = hivex_node_get_value(hv->h, n, value ? value : "");
	if ((!v && errno) || HIVEX_RECOVERED())
		return err_set(HIVEX_ERR(E_FORMAT), "%s: reading values of '%s': %s", hv->name, key, strerror(errno));
	if (!v)
		return 1;
	*val = v;
	return 0;
}

bool hive_key_exists(struct hive *h, const char *key)
{
	hive_node_h n;
	return walk(h, key, false, &n) == 1;
}

/* ---- getters ----------------------------------------------------------- */

int hive_get_binary(struct hive *h, const char *key, const char *value, uint8_t **out, size_t *len,
		    uint32_t *type)
{
	hive_value_h v = 0;
	int r = find_value(h, key, value, &v);
	if (r)
		return r;
	hive_type t;
	size_t n;
	errno = 0;
	char *data = hivex_value_value(h->h, v, &t, &n);
	if (data && HIVEX_RECOVERED()) {
		free(data);
		data = NULL;
	}
	if (!data)
		return err_set(HIVEX_ERR(E_FORMAT), "%s: %s\\%s: unreadable value data (%s)", h->name, key, value,
			       strerror(errno));
	*out = (uint8_t *)data;
	*len = n;
	if (type)
		*type = (uint32_t)t;
	return 0;
}

/* hive_get_binary of a value whose type is t1 or t2 (what names them in
 * the error) and that holds at least min bytes; *d is NULL on failure. */
static int get_typed(struct hive *h, const char *key, const char *value, uint32_t t1, uint32_t t2,
		     size_t min, const char *what, uint8_t **d, size_t *n)
{
	uint32_t t;
	*d = NULL;
	int r = hive_get_binary(h, key, value, d, n, &t);
	if (r)
		return r;
	if ((t != t1 && t != t2) || *n < min) {
		free(*d);
		*d = NULL;
		return err_set(E_FORMAT, "%s: %s\\%s is not a %s (type %u, %zu bytes)", h->name, key, value,
			       what, t, *n);
	}
	return 0;
}

int hive_get_dword(struct hive *h, const char *key, const char *value, uint32_t *out)
{
	uint8_t *d;
	size_t n;
	int r = get_typed(h, key, value, REG_DWORD_, REG_DWORD_, 4, "REG_DWORD", &d, &n);
	if (r == 0)
		*out = get_le32(d);
	free(d);
	return r;
}

int hive_get_string(struct hive *h, const char *key, const char *value, char **out)
{
	uint8_t *d;
	size_t n;
	int r = get_typed(h, key, value, REG_SZ_, REG_EXPAND_SZ_, 0, "string", &d, &n);
	if (r == 0) /* UTF-16LE, maybe NUL-terminated, maybe of odd length */
		*out = utf16le_to_utf8(d, n / 2);
	free(d);
	return r == 0 && !*out ? err_prefix("%s: %s\\%s", h->name, key, value) : r;
}

int hive_get_multi_sz(struct hive *h, const char *key, const char *value, char ***out, size_t *count)
{
	uint8_t *d;
	size_t n;
	int r = get_typed(h, key, value, REG_MULTI_SZ_, REG_MULTI_SZ_, 0, "REG_MULTI_SZ", &d, &n);
	if (r)
		return r;
	/* Strings separated by one NUL unit; an empty string (or the end of
	 * the data) ends the list. */
	size_t units = n / 2, cap = 4, k = 0;
	char **list = xmalloc(cap * sizeof *list);
	if (!list) {
		free(d);
		return err_prefix("%s: %s\\%s", h->name, key, value);
	}
	size_t i = 0;
	while (i < units) {
		size_t j = i;
		while (j < units && get_le16(d + 2 * j))
			j++;
		if (j == i)
			break;
		char **grown = k == cap ? xrealloc(list, 2 * cap * sizeof *list) : list;
		char *item = grown ? utf16le_to_utf8(d + 2 * i, j - i) : NULL;
		if (!item) {
			hive_free_names(grown ? grown : list, k);
			free(d);
			return err_prefix("%s: %s\\%s", h->name, key, value);
		}
		if (grown != list) cap *= 2;
		list = grown;
		list[k++] = item;
		i = j + 1;
	}
	free(d);
	*out = list;
	*count = k;
	return 0;
}

static int names_of(struct hive *h, const char *key, bool subkeys, char ***names, size_t *count)
{
	hive_node_h n;
	int r = walk(h, key, false, &n);
	if (r < 0)
		return -1;
	if (r == 0)
		return err_set(E_NOTFOUND, "%s: no key '%s'", h->name, key);
	errno = 0;
	size_t *items = subkeys ? (size_t *)hivex_node_children(h->h, n) : (size_t *)hivex_node_values(h->h, n);
	if (items && HIVEX_RECOVERED()) {   /* a list cut short */
		free(items);
		items = NULL;
	}
	if (!items)
		return err_set(HIVEX_ERR(E_FORMAT), "%s: %s: unreadable %s list (%s)", h->name, key,
			       subkeys ? "subkey" : "value", strerror(errno));
	size_t k = 0;
	while (items[k])
		k++;
	char **out = xcalloc(k ? k : 1, sizeof *out);
	if (!out) {
		free(items);
		return err_prefix("%s: %s: name list", h->name, key);
	}
	for (size_t i = 0; i < k; i++) {
		out[i] = subkeys ? hivex_node_name(h->h, items[i]) : hivex_value_key(h->h, items[i]);
		if (!out[i]) {
			hive_free_names(out, i);
			free(items);
			return err_set(HIVEX_ERR(E_FORMAT), "%s: %s: unreadable name", h->name, key);
		}
	}
	free(items);
	*names = out;
	*count = k;
	return 0;
}

int hive_subkeys(struct hive *h, const char *key, char ***names, size_t *count)
{
	return names_of(h, key, true, names, count);
}

int hive_values(struct hive *h, const char *key, char ***names, size_t *count)
{
	return names_of(h, key, false, names, count);
}

void hive_free_names(char **names, size_t count)
{
	if (!names)
		return;
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* ---- setters ----------------------------------------------------------- */

int hive_add_key(struct hive *h, const char *key)
{
	hive_node_h n;
	return walk(h, key, true, &n) == 1 ? 0 : -1;
}

int hive_set_binary(struct hive *h, const char *key, const char *value, uint32_t type, const void *data,
		    size_t len)
{
	if (!h->writable)
		return err_set(E_INTERNAL, "%s: opened read-only", h->name);
	if (len > 0x7fffffff)
		return err_set(E_UNSUPPORTED, "%s: value too large", h->name);
	hive_node_h n;
	if (walk(h, key, true, &n) != 1)
		return -1;
	hive_set_value sv = {
		.key = (char *)(value ? value : ""),
		.t = (hive_type)type,
		.len = len,
		.value = (char *)data,
	};
	errno = 0;
	if (hivex_node_set_value(h->h, n, &sv, 0) < 0 || HIVEX_RECOVERED())
		return err_set(HIVEX_ERR(E_FORMAT), "%s: setting %s\\%s: %s", h->name, key, sv.key, strerror(errno));
	return 0;
}

int hive_set_dword(struct hive *h, const char *key, const char *value, uint32_t v)
{
	uint8_t b[4];
	put_le32(b, v);
	return hive_set_binary(h, key, value, REG_DWORD_, b, 4);
}

int hive_set_string(struct hive *h, const char *key, const char *value, const char *utf8)
{
	size_t units;
	uint8_t *w = utf8_to_utf16le(utf8, &units);
	if (!w) return err_prefix("%s: %s\\%s", h->name, key, value);
	int r = hive_set_binary(h, key, value, REG_SZ_, w, 2 * (units + 1)); /* with the NUL */
	free(w);
	return r;
}

int hive_set_multi_sz(struct hive *h, const char *key, const char *value, const char *const *items,
		      size_t count)
{
	/* Each string NUL-terminated, then one more NUL ending the list. */
	size_t cap = 64, len = 0;
	uint8_t *buf = xmalloc(cap);
	for (size_t i = 0; buf && i < count; i++) {
		size_t units;
		uint8_t *w = utf8_to_utf16le(items[i], &units);
		size_t need = w ? 2 * (units + 1) : 0;
		while (w && len + need + 2 > cap) {
			uint8_t *b = xrealloc(buf, cap *= 2);
			if (!b) free(buf);
			buf = b;
			if (!b) break;
		}
		if (buf && w) memcpy(buf + len, w, need);
		else { free(buf); buf = NULL; }
		len += need;
		free(w);
	}
	if (buf && len + 2 > cap) {
		uint8_t *b = xrealloc(buf, cap = len + 2);
		if (!b) free(buf);
		buf = b;
	}
	if (!buf) return err_prefix("%s: %s\\%s", h->name, key, value);
	buf[len++] = 0;
	buf[len++] = 0;
	int r = hive_set_binary(h, key, value, REG_MULTI_SZ_, buf, len);
	free(buf);
	return r;
}

int hive_delete_value(struct hive *h, const char *key, const char *value)
{
	if (!h->writable)
		return err_set(E_INTERNAL, "%s: opened read-only", h->name);
	hive_node_h n;
	int r = walk(h, key, false, &n);
	if (r <= 0)
		return r < 0 ? -1 : 0; /* nothing to delete */
	hive_value_h *vals = hivex_node_values(h->h, n);
	if (!vals)
		return err_set(HIVEX_ERR(E_FORMAT), "%s: %s: unreadable value list", h->name, key);
	size_t k = 0;
	while (vals[k])
		k++;
	hive_set_value *keep = xcalloc(k ? k : 1, sizeof *keep);
	if (!keep) {
		free(vals);
		return err_prefix("%s: %s: value list", h->name, key);
	}
	size_t m = 0;
	int rc = 0;
	for (size_t i = 0; i < k; i++) {
		char *name = hivex_value_key(h->h, vals[i]);
		if (!name) {
			rc = err_set(HIVEX_ERR(E_FORMAT), "%s: %s: unreadable value name", h->name, key);
			break;
		}
		if (!ascii_casecmp(name, value ? value : "")) {
			free(name);
			continue;
		}
		hive_type t;
		size_t len;
		char *data = hivex_value_value(h->h, vals[i], &t, &len);
		if (!data) {
			rc = err_set(HIVEX_ERR(E_FORMAT), "%s: %s\\%s: unreadable value", h->name, key, name);
			free(name);
			break;
		}
		keep[m++] = (hive_set_value){ .key = name, .t = t, .len = len, .value = data };
	}
	if (rc == 0 && m < k && hivex_node_set_values(h->h, n, m, keep, 0) < 0)
		rc = err_set(HIVEX_ERR(E_FORMAT), "%s: deleting %s\\%s: %s", h->name, key, value, strerror(errno));
	for (size_t i = 0; i < m; i++) {
		free(keep[i].key);
		free(keep[i].value);
	}
	free(keep);
	free(vals);
	return rc;
}

int hive_serialize(struct hive *h, uint8_t **data, size_t *len)
{
	if (!h->writable)
		return err_set(E_INTERNAL, "%s: opened read-only, cannot serialize", h->name);
	int fd = memfd_create(h->name, MFD_CLOEXEC);
	if (fd < 0)
		return err_errno(E_IO, "memfd_create");
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);   /* fits: 25 chars at most */
	errno = 0;
	if (hivex_commit(h->h, path, 0) < 0 || HIVEX_RECOVERED()) {
		err_errno(HIVEX_ERR(E_IO), "%s: committing hive", h->name);
		close(fd);
		return -1;
	}
	int r = read_fd_all(fd, data, len);
	close(fd);
	return r;
}
