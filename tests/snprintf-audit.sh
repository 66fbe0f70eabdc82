#!/bin/bash
# tests/snprintf-audit.sh - issue 11, "Sizes that cannot silently cut":
# no snprintf/vsnprintf in lib/ and src/ throws its result away, sums it
# (x += snprintf: past a cut the next size wraps), and no sprintf, strcpy,
# strcat, strncpy is there, unless a "fits:" comment on the statement says
# why the text cannot exceed its buffer (tests/snprintf-audit.py). The
# checker itself is shown to find each kind in a sample first, so a checker
# that finds nothing cannot pass.
. "$(dirname "$0")/lib.sh"
need python3
AUDIT=$top_srcdir/tests/snprintf-audit.py

mkdir -p "$TMP/sample"
cat >"$TMP/sample/s.c" <<'C'
void f(char *b, unsigned n, const char *name, int x)
{
	snprintf(b, n, "%s", name);
	if (x) (void)snprintf(b, n, "%d", x);
	unsigned used = 0;
	used += snprintf(b + used, n - used, "%s", name);
	strcpy(b, name);
	int k = snprintf(b, n, "%s", name);            /* checked by the caller */
	if (snprintf(b, n, "%s", name) >= (int)n) return;
	snprintf(b, n, "%d",
		 x);   /* fits: an int in 12 */
	/* snprintf(b, n, "%s", name); in a comment is no call */
	log("snprintf(b, n, name);");
}
C
"$AUDIT" "$TMP/sample" >"$TMP/sample.out" 2>&1
assert_eq "the checker fails on the sample" 1 "$?"
assert_eq "it finds exactly the four uncovered calls" \
	"$TMP/sample/s.c:3: snprintf result not checked
$TMP/sample/s.c:4: snprintf result not checked
$TMP/sample/s.c:6: snprintf result summed: past a cut the next size wraps
$TMP/sample/s.c:7: strcpy: no bound or a silent one" "$(grep -v 'may cut silently' "$TMP/sample.out")"

"$AUDIT" "$top_srcdir/lib" "$top_srcdir/src" >"$TMP/tree.out" 2>&1
rc=$?
assert_eq "lib/ and src/: no call that may cut silently" 0 "$rc"
[ "$rc" = 0 ] || sed 's/^/    /' "$TMP/tree.out"
assert_match "the tree was looked at" "^0 call\\(s\\) that may cut silently" "$(tail -1 "$TMP/tree.out")"
