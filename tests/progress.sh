#!/bin/bash
# progress.sh - convert's progress (issues 4 and 13). On a terminal (a pty
# from script(1)): one line, redrawn with \r and cleared with ESC[K, never a
# newline (no stale 0% lines), the overall percentage rising, the stages,
# MiB done/total while writing, "flushing" after the last byte, the line
# cleared at the end; cut to a narrow terminal's width; an interruption
# clears it and prints on a line of its own. -q draws nothing. Off a
# terminal nothing by default; -p prints a line per tenth of the run, rising,
# ending "100% done". The output is the same bytes whatever the display.
. "$(dirname "$0")/lib.sh"
need script stty
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
in=$(fixture win7-sp1 vhdx)

# run_tty FILE COLS ARGS...: convert with stderr on a pty of COLS columns,
# stdout discarded; the pty's bytes end up in FILE.
run_tty() {
	local f=$1 cols=$2; shift 2
	local cmd; printf -v cmd '%q ' "$GEN2PREP" convert "$@"
	script -qec "stty cols $cols; $cmd >/dev/null" /dev/null >"$f"
}
# segments FILE: what each redraw shows, one per line (\r splits, ESC[K removed)
segments() { tr '\r' '\n' <"$1" | sed 's/\x1b\[K//g' | grep -v '^$'; }

run_tty "$TMP/tty.txt" 100 "$in" "$TMP/tty.vhdx"
S=$(segments "$TMP/tty.txt")
assert_eq "terminal: no newline at all (one line, no stale lines)" 0 "$(tr -cd '\n' <"$TMP/tty.txt" | wc -c)"
check "terminal: redrawn in place (carriage returns)" grep -q $'\r' "$TMP/tty.txt"
check "terminal: each redraw clears the rest of the line" grep -q $'\x1b\\[K' "$TMP/tty.txt"
assert_match "terminal: the stages" "reading input" "$S"
assert_match "terminal: writing output with MiB done/total" '^ *[0-9]+% writing output  [0-9]+/1025 MiB' "$S"
assert_match "terminal: flushing after the last byte" '^ *97% flushing$' "$S"
assert_eq "terminal: the percentage never goes back" "$(sed -n 's/^ *\([0-9]*\)%.*/\1/p' <<<"$S" | sort -n | tr '\n' ' ')" \
	"$(sed -n 's/^ *\([0-9]*\)%.*/\1/p' <<<"$S" | tr '\n' ' ')"
assert_eq "terminal: the line is cleared at the end" $'\r\x1b[K' "$(tail -c 4 "$TMP/tty.txt")"

run_tty "$TMP/narrow.txt" 24 "$in" "$TMP/narrow.vhdx"
longest=$(segments "$TMP/narrow.txt" | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }')
check "narrow terminal (24 columns): no redraw wider than 23 ($longest)" test "$longest" -le 23 -a "$longest" -gt 0
assert_eq "narrow terminal: still no newline" 0 "$(tr -cd '\n' <"$TMP/narrow.txt" | wc -c)"

run_tty "$TMP/ttyq.txt" 100 -q "$in" "$TMP/ttyq.vhdx"
assert_eq "terminal -q: nothing drawn" 0 "$(tr -d '\r\n' <"$TMP/ttyq.txt" | wc -c)"

# an interruption while the line is drawn: the message starts a line of its own
cmd=$(printf '%q ' "$GEN2PREP" convert "$in" "$TMP/int.vhdx")
script -qec "stty cols 100; $cmd >/dev/null & p=\$!; sleep 0.4; kill -INT \$p; wait \$p" /dev/null >"$TMP/int.txt"
if grep -q interrupted "$TMP/int.txt"; then
	check "interrupted: the message follows a cleared line or starts the output" \
		python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); i=b.index(b"gen2prep: interrupted"); sys.exit(not (i == 0 or b[:i].endswith(b"\r\x1b[K")))' "$TMP/int.txt"
	check "interrupted: no OUT" test ! -e "$TMP/int.vhdx"
else
	ok "interrupted: the run finished before the signal (nothing to check)"
fi

assert_exit "not a terminal: convert" 0 "$GEN2PREP" convert "$in" "$TMP/plain.vhdx"
assert_eq "not a terminal: no progress on stderr" "" "$ERR"

assert_exit "not a terminal -p: convert" 0 "$GEN2PREP" convert -p "$in" "$TMP/forced.vhdx"
assert_match "-p: lines of whole tenths" '^gen2prep: [0-9]*0% [a-z ]+' "$ERR"
assert_eq "-p: one line per tenth, rising, then 100% done" "0 10 20 30 40 50 60 70 80 90 100 " \
	"$(sed -n 's/^gen2prep: \([0-9]*\)%.*/\1/p' <<<"$ERR" | tr '\n' ' ')"
assert_eq "-p: the last line" "gen2prep: 100% done" "$(tail -1 <<<"$ERR")"
check "-p: no carriage returns off a terminal" bash -c "! grep -q $'\r' <<<\"\$1\"" _ "$ERR"

assert_exit "--progress (long form)" 0 "$GEN2PREP" convert --progress "$in" "$TMP/long.vhdx"
assert_match "--progress: progress lines" '100% done' "$ERR"

h=$(sha "$TMP/plain.vhdx")
for f in tty narrow ttyq forced long; do
	assert_eq "$f: same output bytes as without progress" "$h" "$(sha "$TMP/$f.vhdx")"
done
