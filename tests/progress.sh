#!/bin/bash
# progress.sh - convert's progress display (issue 4: "progress bar on a TTY
# (-p forces, -q silences)"): on a terminal (a pty from script(1)) the bar is
# drawn with carriage returns; -q draws nothing there; off a terminal nothing
# by default, and -p forces one progress line per step; the output is the
# same bytes whatever the display.
. "$(dirname "$0")/lib.sh"
need script
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
in=$(fixture win7-sp1 vhdx)

# run_tty FILE ARGS...: convert with stderr on a pty, stdout discarded; the
# pty's bytes (stderr) end up in FILE.
run_tty() {
	local f=$1; shift
	local cmd; printf -v cmd '%q ' "$GEN2PREP" convert "$@"
	script -qec "$cmd >/dev/null" /dev/null >"$f"
}

run_tty "$TMP/tty.txt" "$in" "$TMP/tty.vhdx"
assert_match "terminal: a bar with percentages" '\[[#.]+\] +100%' "$(tr '\r' '\n' <"$TMP/tty.txt")"
check "terminal: redrawn in place (carriage returns)" grep -q $'\r' "$TMP/tty.txt"

run_tty "$TMP/ttyq.txt" -q "$in" "$TMP/ttyq.vhdx"
assert_eq "terminal -q: nothing drawn" 0 "$(tr -d '\r\n' <"$TMP/ttyq.txt" | wc -c)"

assert_exit "not a terminal: convert" 0 "$GEN2PREP" convert "$in" "$TMP/plain.vhdx"
assert_eq "not a terminal: no progress on stderr" "" "$ERR"

assert_exit "not a terminal -p: convert" 0 "$GEN2PREP" convert -p "$in" "$TMP/forced.vhdx"
assert_match "-p: progress lines on stderr" '^gen2prep: [a-z ]+: [0-9]+%' "$ERR"
assert_match "-p: reaches 100%" '100%' "$ERR"
check "-p: no carriage returns off a terminal" bash -c "! grep -q $'\r' <<<\"\$1\"" _ "$ERR"

assert_exit "--progress (long form)" 0 "$GEN2PREP" convert --progress "$in" "$TMP/long.vhdx"
assert_match "--progress: progress lines" '100%' "$ERR"

h=$(sha "$TMP/plain.vhdx")
for f in tty ttyq forced long; do
	assert_eq "$f: same output bytes as without progress" "$h" "$(sha "$TMP/$f.vhdx")"
done
