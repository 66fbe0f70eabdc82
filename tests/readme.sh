#!/bin/bash
# readme.sh - the README shows real output (issue 2: "README shows the quick
# start and an inspect example with real output"; issue 13: next steps):
# its `gen2prep inspect win7.vhdx` and `gen2prep convert win7.vhdx
# win7-gen2.vhdx` blocks equal what the program prints for the win7-sp1 fixture
# (the disk `make demo` builds); the README's exit-code table and the man
# page's EXIT STATUS list the codes src/cli.h defines.
. "$(dirname "$0")/lib.sh"
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
README=$top_srcdir/README

# The block: the lines after "    $ gen2prep inspect win7.vhdx" up to the
# first blank line, without their 4-space indent.
awk '/^    \$ gen2prep inspect win7\.vhdx$/ {on = 1; next} on && /^$/ {exit} on {sub(/^    /, ""); print}' \
	"$README" >"$TMP/readme.txt"
check "README has the inspect example" test -s "$TMP/readme.txt"
ln -s "$(fixture win7-sp1 vhdx)" "$TMP/win7.vhdx"
(cd "$TMP" && "$GEN2PREP" inspect win7.vhdx) >"$TMP/real.txt"
check "README's inspect example is the real output (diff README real)" diff -u "$TMP/readme.txt" "$TMP/real.txt"

# The convert example (issue 13: next steps are the program's real output):
# the lines after "    $ gen2prep convert win7.vhdx win7-gen2.vhdx".
awk '/^    \$ gen2prep convert win7\.vhdx win7-gen2\.vhdx$/ {on = 1; next} on && /^$/ {exit} on {sub(/^    /, ""); print}' \
	"$README" >"$TMP/readme-convert.txt"
check "README has the convert example" test -s "$TMP/readme-convert.txt"
(cd "$TMP" && "$GEN2PREP" convert win7.vhdx win7-gen2.vhdx) >"$TMP/real-convert.txt"
check "README's convert example is the real output (diff README real)" diff -u "$TMP/readme-convert.txt" "$TMP/real-convert.txt"

# Exit codes: every EXIT_* of src/cli.h appears in the README table and the
# man page's EXIT STATUS section with the same number.
codes=$(sed -n 's/.*EXIT_[A-Z_]* *= *\([0-9][0-9]*\).*/\1/p' "$top_srcdir/src/cli.h" | sort -n | tr '\n' ' ')
assert_eq "src/cli.h defines the exit codes" '0 1 2 3 4 5 6 7 130 ' "$codes"
table=$(awk '/Exit codes are stable/ {on = 1} on {print} on && /130 interrupted/ {exit}' "$README")
man=$(sed -n '/^\.SH EXIT STATUS/,/^\.SH [^E]/p' "$top_srcdir/man/gen2prep.1")
for c in $codes; do
	assert_match "README lists exit code $c" "(^| )$c [a-z]" "$table"
	check "man page EXIT STATUS lists $c" grep -qx -- ".B $c" <<<"$man"
done
