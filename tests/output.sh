#!/bin/bash
# output.sh - the output survives anything (issue 10): gen2prep convert
# writes into a file without a name (O_TMPFILE) and names it only when it is
# complete, so a SIGKILL in the middle of the stream leaves OUT's folder
# empty; two converts to one OUT: the second fails at once (exit 7) naming
# the first, and leaves no lock file; an input that shrinks or changes
# while it is read is an input error (exit 3 naming the input), and a
# failed run prints no "applied" line and says that nothing was written.
#
# To stop a run at a known point of the stream, it runs under strace, which
# sends it SIGSTOP as it enters its first sync_file_range: the writer calls
# it only while streaming, once 32 MiB or more of the output are written, to
# start their writeback (lib/writer_copy.c); the allocation table, metadata
# and headers come after the stream, the name after fsync. The run stays
# stopped there until the test sends SIGCONT (or SIGKILL), so nothing here
# depends on timing (a delay injected there, with a poll that had to see it
# in time, was missed under load in CI runs).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need qemu-img strace
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
IN=$(fixture win7-sp1 vhdx)
cd "$TMP" || die "no tmp"

# held CMD...: CMD stopped (SIGSTOP) as it enters its first sync_file_range
held() { exec strace -f -qq -o /dev/null -e trace=sync_file_range -e inject=sync_file_range:signal=STOP:when=1 "$@"; }
# child_of PID: the traced gen2prep under strace PID, by its name: strace
# first forks short-lived children of its own (its ptrace feature probes),
# and taking one of those left the real run stopped for good (a CI run)
child_of() { local c; for _ in $(seq 600); do c=$(pgrep -x -P "$1" gen2prep | head -1); [ -n "$c" ] && { echo "$c"; return; }; sleep 0.05; done; }
# nameless_fd PID DIR: the fd of PID open on a nameless file in DIR
nameless_fd() { ls -l "/proc/$1/fd" 2>/dev/null | sed -n "s|.* \([0-9]*\) -> $2/#[0-9]* (deleted)\$|\1|p" | head -1; }
# sync_file_range's number (/proc/PID/syscall), to know the run stands in it
case $(uname -m) in x86_64) NR_SFR=277 ;; aarch64) NR_SFR=84 ;; *) NR_SFR= ;; esac
# wait_nameless PID DIR: waits (up to 5 min: PID stays stopped once there)
# until PID is stopped in sync_file_range with its output open
wait_nameless() {
	local fd nr st
	for _ in $(seq 3000); do
		fd=$(nameless_fd "$1" "$2")
		nr=$(cut -d' ' -f1 "/proc/$1/syscall" 2>/dev/null)
		st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
		[ -n "$fd" ] && [ -z "$NR_SFR" -o "$nr" = "$NR_SFR" ] && [ "$st" = t -o "$st" = T ] && { echo "$fd"; return 0; }
		[ -d "/proc/$1" ] || return 1
		sleep 0.1
	done
	return 1
}

# --- SIGKILL in the middle of the stream: OUT's folder stays empty -------------
for fmt in vhdx raw; do
	mkdir "kill-$fmt"
	held "$GEN2PREP" convert -q "$IN" "kill-$fmt/out.$fmt" >/dev/null 2>"kill-$fmt.err" &
	spid=$!
	pid=$(child_of "$spid")
	fd=$(wait_nameless "$pid" "$PWD/kill-$fmt") || fail "$fmt: the output never opened"
	assert_eq "$fmt: nothing named in OUT's folder while the stream runs" "" "$(ls -A "kill-$fmt")"
	if [ "$fmt" = vhdx ]; then
		size=$(stat -L -c %s "/proc/$pid/fd/$fd")
		[ "${size:-0}" -gt $((4 << 20)) ] && ok "vhdx: part of the payload written when killed ($size bytes)" ||
			fail "vhdx: the output holds $size bytes when killed: not mid-stream"
	fi
	kill -KILL "$pid"; pkill -KILL -P "$spid"
	wait "$spid" 2>/dev/null
	sleep 0.2
	assert_eq "$fmt: SIGKILL mid-stream leaves OUT's folder empty" "" "$(ls -A "kill-$fmt")"
	check "$fmt: the same OUT converts afterwards (no lock left)" "$GEN2PREP" convert -q "$IN" "kill-$fmt/out.$fmt"
	assert_eq "$fmt: then the folder holds OUT only" "out.$fmt" "$(ls -A "kill-$fmt")"
done

# --- two converts to one OUT ------------------------------------------------------
mkdir two
ln -s two alias
held "$GEN2PREP" convert -q "$IN" two/out.vhdx >first.out 2>first.err &
spid=$!
pid=$(child_of "$spid")
wait_nameless "$pid" "$PWD/two" >/dev/null || fail "first convert never opened its output"
t0=$(date +%s%N)
assert_exit "second convert to the same OUT refused" 7 "$GEN2PREP" convert -q "$IN" two/out.vhdx
t1=$(date +%s%N)
assert_match "second: says another gen2prep (the first's pid) writes it" \
	"output 'two/out.vhdx' is being written by another gen2prep \\(process $pid\\)" "$ERR"
[ $(((t1 - t0) / 1000000)) -lt 2000 ] && ok "second refused at once ($(((t1 - t0) / 1000000)) ms), not after doing the work" ||
	fail "second took $(((t1 - t0) / 1000000)) ms"
assert_exit "second with --overwrite refused too" 7 "$GEN2PREP" convert -q --overwrite "$IN" two/out.vhdx
assert_match "--overwrite: same reason" "being written by another gen2prep" "$ERR"
assert_exit "second through another path to the folder refused" 7 "$GEN2PREP" convert -q "$IN" alias/out.vhdx
assert_match "other path: same reason" "being written by another gen2prep" "$ERR"
assert_exit "a JSON run says it too" 7 "$GEN2PREP" convert --json "$IN" two/out.vhdx
assert_eq "JSON: output_written false" false "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(str(json.load(sys.stdin)["output_written"]).lower())')"
check "another OUT in the same folder is not blocked" "$GEN2PREP" convert -q "$IN" two/other.vhdx
kill -CONT "$pid"; pkill -CONT -P "$spid"
wait "$spid"
assert_eq "the first convert completes" 0 "$?"
check "first output is a sound VHDX (qemu-img check)" qemu-img check -q -f vhdx two/out.vhdx
check "first output verifies" "$GEN2PREP" verify two/out.vhdx
assert_eq "no lock file, no temporary left" "other.vhdx out.vhdx" "$(ls -A two | tr '\n' ' ' | sed 's/ $//')"

# two --overwrite runs of an existing OUT: the second refused, OUT replaced once
held "$GEN2PREP" convert -q --overwrite "$IN" two/out.vhdx >/dev/null 2>&1 &
spid=$!
pid=$(child_of "$spid")
wait_nameless "$pid" "$PWD/two" >/dev/null || fail "overwrite run never opened its output"
assert_exit "two --overwrite runs: the second refused" 7 "$GEN2PREP" convert -q --overwrite "$IN" two/out.vhdx
kill -CONT "$pid"; pkill -CONT -P "$spid"
wait "$spid"
assert_eq "the first --overwrite run completes" 0 "$?"
assert_eq "after --overwrite: OUT and the other only" "other.vhdx out.vhdx" "$(ls -A two | tr '\n' ' ' | sed 's/ $//')"

# --- an input that changes while it is read: exit 3 naming the input -------------
# changed IMG FMT ACTION: converts IMG, runs ACTION on it while the stream waits
changed() {
	local img=$1 fmt=$2 action=$3 d
	d=chg-$(basename "$img")-$fmt
	mkdir "$d"
	held "$GEN2PREP" convert "$img" "$d/out.$fmt" >"$d.out" 2>"$d.err" &
	spid=$!
	pid=$(child_of "$spid")
	wait_nameless "$pid" "$PWD/$d" >/dev/null || fail "$d: output never opened"
	eval "$action"
	kill -CONT "$pid"; pkill -CONT -P "$spid"
	wait "$spid"
	RC=$? ERR=$(cat "$d.err") DIR=$d
}
cp "$IN" shrink.vhdx
changed shrink.vhdx vhdx 'truncate -s $(($(stat -c %s shrink.vhdx) / 2)) shrink.vhdx'
assert_eq "VHDX input truncated while converting: exit 3" 3 "$RC"
assert_match "truncated: names the input and says it changed" "'shrink\\.vhdx' changed while it was read \\(size [0-9]+ -> [0-9]+ bytes\\)" "$ERR"
assert_eq "truncated: OUT's folder empty" "" "$(ls -A "$DIR")"
assert_match "truncated: says nothing was written" "changed while it was read.*; nothing was written$" "$ERR"
if printf '%s' "$ERR" | grep -qw applied; then fail "a failed run prints 'applied' lines: $ERR"; else ok "failed run: no 'applied' line"; fi

qemu-img convert -q -f vhdx -O raw "$IN" shrink.raw
changed shrink.raw raw 'truncate -s 300M shrink.raw'
assert_eq "raw input truncated while converting: exit 3" 3 "$RC"
assert_match "raw truncated: names the input" "'shrink\\.raw' changed while it was read" "$ERR"
assert_eq "raw truncated: OUT's folder empty" "" "$(ls -A "$DIR")"

cp "$IN" touched.vhdx
changed touched.vhdx vhdx 'printf x | dd of=touched.vhdx bs=1 seek=$((100 << 20)) conv=notrunc status=none'
assert_eq "input written to (same size) while converting: exit 3" 3 "$RC"
assert_match "written to: says modified" "'touched\\.vhdx' changed while it was read \\(modified meanwhile\\)" "$ERR"
assert_eq "written to: OUT's folder empty" "" "$(ls -A "$DIR")"

# an output error stays exit 7, and also prints no applied line
mkdir ro
chmod 555 ro
if [ "$(id -u)" != 0 ]; then
	assert_exit "unwritable folder: exit 7" 7 "$GEN2PREP" convert "$IN" ro/out.vhdx
	if printf '%s' "$ERR" | grep -qw applied; then fail "output error prints 'applied' lines"; else ok "output error: no 'applied' line"; fi
fi
chmod 755 ro

# --- the other paths give the same bytes ---------------------------------------
# reference: the normal run (nameless output, copy_file_range on one file system)
"$GEN2PREP" convert -q "$IN" ref.vhdx >/dev/null 2>&1 || fail "reference convert failed"
# a folder whose file system "has no O_TMPFILE" (EOPNOTSUPP injected for the
# folder's path): the named temporary file, renamed; same bytes, nothing left
mkdir fb
strace -f -qq -o /dev/null -P fb -e trace=openat -e inject=openat:error=EOPNOTSUPP \
	"$GEN2PREP" convert -q "$IN" fb/out.vhdx >/dev/null 2>fb.err
assert_eq "no O_TMPFILE: convert succeeds (named temporary file)" 0 "$?"
check "no O_TMPFILE: same bytes as the nameless path" cmp ref.vhdx fb/out.vhdx
assert_eq "no O_TMPFILE: only OUT in the folder" "out.vhdx" "$(ls -A fb)"
# another file system (tmpfs): copy_file_range refuses (EXDEV), pread + pwrite
if mkdir mnt && mount -t tmpfs -o size=1g tmpfs mnt 2>/dev/null; then
	check "to tmpfs (no in-kernel copy across file systems)" "$GEN2PREP" convert -q "$IN" mnt/out.vhdx
	check "to tmpfs: same bytes" cmp ref.vhdx mnt/out.vhdx
	umount mnt
else
	echo "note: cannot mount a tmpfs here: the pread + pwrite fallback of the copy not run"
fi

# a name longer than the folder allows fails before the work, not after it
mkdir long
longname=$(printf 'a%.0s' $(seq 300)).vhdx
assert_exit "a 300-byte OUT name: exit 7" 7 "$GEN2PREP" convert -q "$IN" "long/$longname"
assert_match "long name: says why, before the work (no 'nothing was written')" "output name 'a+\\.vhdx' is longer than the [0-9]+ bytes its folder allows$" "$ERR"
assert_eq "long name: folder empty" "" "$(ls -A long)"
