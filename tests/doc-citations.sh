#!/bin/bash
# doc-citations.sh - every comment or document in the tree that cites
# formats.md or patches.md names doc/formats.md or doc/patches.md and a
# section, and that section is a heading of the file (tests/doc-citations.py
# does the matching). First the checker is shown to catch what it should, on
# a small made-up tree; then the real tree.
. "$(dirname "$0")/lib.sh"
need python3
CHECK="$top_srcdir/tests/doc-citations.py"

# -- the checker itself, on a tree with known good and bad citations --
mkdir -p "$TMP/t/doc" "$TMP/t/lib"
cat >"$TMP/t/doc/formats.md" <<'EOF'
# Formats
## VHDX
### VHDX BAT
## BCD partition device
EOF
cat >"$TMP/t/lib/good.c" <<'EOF'
/* doc/formats.md, VHDX BAT: state in bits 0-2 */
/* split over two lines: (doc/formats.md,
 * BCD partition device) */
/* doc/formats.md "VHDX" quoted */
EOF
out=$(python3 "$CHECK" "$TMP/t" 2>&1); rc=$?
assert_eq "good citations pass" 0 "$rc"
assert_match "longest heading wins" 'good.c:1 doc/formats.md -> VHDX BAT' "$out"
assert_match "citation continued on the next comment line" 'good.c:2 doc/formats.md -> BCD partition device' "$out"
assert_match "quoted section" 'good.c:4 doc/formats.md -> VHDX$' "$out"

cat >"$TMP/t/lib/bad.c" <<'EOF'
/* doc/formats.md, VHDXBAT is no heading */
/* bare (formats.md) */
/* (doc/formats.md) without a section */
/* doc/patches.md, loader-integrity */
EOF
out=$(python3 "$CHECK" "$TMP/t" 2>&1); rc=$?
assert_eq "bad citations fail" 1 "$rc"
assert_match "unknown section named" "bad.c:1: doc/formats.md has no heading that 'VHDXBAT" "$out"
assert_match "bare formats.md refused" "bad.c:2: cites 'formats.md'" "$out"
assert_match "citation without a section refused" "bad.c:3: doc/formats.md cited without a section" "$out"
assert_match "missing doc/patches.md said clearly" 'doc/patches.md does not exist but is cited 1 times \(lib/bad.c:4\)' "$out"
printf '# Patches\n## loader-integrity — ImgpValidateImageHash (winload.efi)\n' >"$TMP/t/doc/patches.md"
out=$(python3 "$CHECK" "$TMP/t" 2>&1)
assert_match "entry id finds 'id — title' heading" 'bad.c:4 doc/patches.md -> loader-integrity — ImgpValidateImageHash' "$out"
printf '## VHDX\n' >>"$TMP/t/doc/formats.md"
out=$(python3 "$CHECK" "$TMP/t" 2>&1)
assert_match "a heading twice is refused" "heading 'VHDX' appears twice" "$out"

# -- the real tree --
out=$(python3 "$CHECK" "$top_srcdir" 2>&1); rc=$?
printf '%s\n' "$out" | grep -v '^ok ' | sed 's/^/    /'
n=$(printf '%s\n' "$out" | grep -c '^ok ')
assert_ne "the tree has citations" 0 "$n"
assert_eq "every citation resolves ($n ok)" 0 "$rc"
