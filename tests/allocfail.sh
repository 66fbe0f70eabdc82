#!/bin/bash
# allocfail.sh - allocation-failure injection over the whole inspect and
# convert path (issue 10): tests/test_allocfail's inspect-image and convert
# operations on the mkfixture win7-sp1 VHDX. For N spread over the M
# allocations of a whole run, the Nth fails: the run returns an error
# (E_NOMEM) or succeeds with the very result of the run where nothing
# failed; nothing crashes or aborts, LeakSanitizer finds no leak (nor in
# the first, whole run without a failure: a convert leaks nothing); OUT's
# folder is empty
# after a failed run (no OUT, no temporary file), the image unchanged.
# ALLOCFAIL_POINTS (default 12 for convert, 20 for inspect-image) and
# ALLOCFAIL_SECONDS (default 25 each) bound the time in `make check`; the
# long sweep is opt-in: ALLOCFAIL_STRIDE=1 ALLOCFAIL_SECONDS=100000.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
prog="$top_builddir/tests/test_allocfail"
[ -x "$prog" ] || skip "tests/test_allocfail not built"
export ALLOCFAIL_IMAGE ALLOCFAIL_OUTDIR="$TMP/out"
ALLOCFAIL_IMAGE=$(fixture win7-sp1 vhdx)
mkdir -p "$ALLOCFAIL_OUTDIR"
for op in inspect-image convert; do
	pts=${ALLOCFAIL_POINTS:-$([ $op = convert ] && echo 12 || echo 20)}
	ALLOCFAIL_POINTS=$pts ALLOCFAIL_SECONDS=${ALLOCFAIL_SECONDS:-25} "$prog" $op >"$TMP/$op.log" 2>"$TMP/$op.err"; rc=$?
	line=$(grep -E "^(not )?ok - $op:" "$TMP/$op.log")
	echo "$line"
	assert_eq "$op: test_allocfail exit status" 0 "$rc"
	assert_match "$op: every failure point ended well" "^ok - $op: [0-9]+ failure points .* 0 bad; 0 errors not E_NOMEM" "$line"
	n=$(printf '%s' "$line" | sed -E 's/^ok - [a-z-]+: ([0-9]+) failure points.*/\1/')
	check "$op: at least 5 failure points run ($n)" test "${n:-0}" -ge 5
	[ "$rc" = 0 ] || tail -40 "$TMP/$op.err"
	check "$op: OUT's folder empty" test -z "$(ls -A "$ALLOCFAIL_OUTDIR")"
done
