#!/bin/bash
# chain4.sh - input and differencing-parent handling agree across inspect,
# bcd, convert --dry-run, convert and verify (a stranger's findings):
#  1. a FIFO as IN or as the parent: exit 3 at once, "'X' is not a regular
#     file or block device (a FIFO)" (was: every command blocked until
#     SIGINT, exit 130);
#  2. a parent chain that loops (a child copied to its own parent's name, or
#     two disks naming each other): exit 3, one message naming the file the
#     chain loops back to (was: exit 4 "parent disk: parent disk: ... deeper
#     than 16 disks", verify exit 3 "has changed");
#  3. parent resolution independent of the current folder and of PATH_MAX
#     (a relative locator under a 20-level folder of 200-character names),
#     and a directory, FIFO, dangling or /dev/null symlink in the parent's
#     place named for what it is (was: "nothing at");
#  4. a changed parent: verify gives the message inspect/bcd/convert give;
#  5. a parent found only by name beside the child: the plan warning
#     parent-by-name (inspect, convert --dry-run, convert; bcd on stderr),
#     verify exit 3.
# Every case: nothing written (OUT absent, the folder's listing unchanged).
. "$(dirname "$0")/lib.sh"

W7=$(fixture win7-sp1 vhdx)
W=$TMP/w
mkdir -p "$W"
cp "$W7" "$W/base.vhdx"
"$GEN2PREP" convert --differencing --layout mbr "$W/base.vhdx" "$W/c1.vhdx" >/dev/null 2>&1 || die "convert --differencing"

listing() { ls -A "$1" | tr '\n' ' ' | sed 's/ $//'; }
# every NAME CODE REGEX DIR IMAGE: inspect, bcd, verify, convert --dry-run
# and convert of IMAGE (run in DIR) exit CODE with stderr matching REGEX,
# at once (a hang is ended by SIGINT, exit 130), and write nothing in DIR
every() {
	local name=$1 code=$2 re=$3 dir=$4 img=$5 before c
	before=$(listing "$dir")
	for c in inspect bcd verify "convert --dry-run" convert; do
		local out=
		case $c in convert*) out=$dir/out.vhdx ;; esac
		# shellcheck disable=SC2086
		assert_exit "$name: $c exits $code at once" "$code" timeout -s INT 10 "$GEN2PREP" $c "$img" $out
		assert_match "$name: $c says why" "$re" "$ERR"
	done
	assert_eq "$name: nothing written" "$before" "$(listing "$dir")"
}

# ---- 1. a FIFO as IN or as the parent ----
mkdir -p "$TMP/f1"
mkfifo "$TMP/f1/in.vhdx"
every "FIFO as IN" 3 "'$TMP/f1/in.vhdx' is not a regular file or block device \(a FIFO\)" "$TMP/f1" "$TMP/f1/in.vhdx"
mkdir -p "$TMP/f2"
cp "$W/c1.vhdx" "$TMP/f2/c1.vhdx"
mkfifo "$TMP/f2/base.vhdx"
every "FIFO as parent" 3 "parent '$TMP/f2/base.vhdx' is not a regular file or block device \(a FIFO\)" "$TMP/f2" "$TMP/f2/c1.vhdx"

# ---- 2. a chain that loops ----
mkdir -p "$TMP/l1"
cp "$W/c1.vhdx" "$TMP/l1/base.vhdx"   # its locator .\base.vhdx: itself
every "child copied to its parent's name" 3 \
	"^gen2prep: [a-z]+: differencing chain loops back to '$TMP/l1/base.vhdx': the parent locator of '$TMP/l1/base.vhdx' leads to it again" \
	"$TMP/l1" "$TMP/l1/base.vhdx"
assert_eq "loop: one message, no repeated prefix" "" "$(printf '%s' "$ERR" | grep -F 'parent disk: parent disk')"
# two disks naming each other: l2/base.vhdx -> sub\base.vhdx -> ..\base.vhdx
mkdir -p "$TMP/l2/sub"
cp "$W/base.vhdx" "$TMP/l2/sub/base.vhdx"
cp "$W/base.vhdx" "$TMP/l2/base.vhdx"
"$GEN2PREP" convert --differencing --layout mbr "$TMP/l2/sub/base.vhdx" "$TMP/l2/top.vhdx" >/dev/null 2>&1 || fail "convert --differencing sub/base.vhdx top.vhdx"
"$GEN2PREP" convert --differencing --layout mbr "$TMP/l2/base.vhdx" "$TMP/l2/sub/c.vhdx" >/dev/null 2>&1 || fail "convert --differencing base.vhdx sub/c.vhdx"
mv "$TMP/l2/sub/c.vhdx" "$TMP/l2/sub/base.vhdx"
mv "$TMP/l2/top.vhdx" "$TMP/l2/base.vhdx"
every "two disks naming each other" 3 \
	"differencing chain loops back to '$TMP/l2/base.vhdx': the parent locator of '$TMP/l2/sub/base.vhdx' leads to it again" \
	"$TMP/l2" "$TMP/l2/base.vhdx"

# ---- 3. long relative parent paths; what is in the parent's place ----
top=$TMP/t
n200=$(printf 'd%.0s' $(seq 200)) n250=$(printf 'p%.0s' $(seq 246)).vhdx
deep=$top up=
for k in $(seq 20); do deep=$deep/$n200 up=$up../; done
mkdir -p "$deep"
cp "$W/base.vhdx" "$top/$n250"
assert_exit "long paths: convert --differencing from the deep folder" 0 \
	bash -c 'cd "$1" && "$2" convert -q --differencing --layout mbr "$3" c.vhdx' _ "$deep" "$GEN2PREP" "$up$n250"
assert_exit "long paths: verify \$deep/c.vhdx from the top (path > PATH_MAX joined)" 0 "$GEN2PREP" verify "$deep/c.vhdx"
assert_match "long paths: the parent found" "ok +parent-linkage" "$OUT"
assert_exit "long paths: cd \$deep && verify c.vhdx agrees" 0 bash -c 'cd "$1" && "$2" verify c.vhdx' _ "$deep" "$GEN2PREP"
for c in inspect:4 bcd:0; do
	assert_exit "long paths: ${c%:*} from the top reads the chain" "${c#*:}" "$GEN2PREP" ${c%:*} "$deep/c.vhdx"
	assert_eq "long paths: ${c%:*}: no not-found" "" "$(printf '%s' "$ERR" | grep 'not found')"
done
P=$TMP/p3
mkdir -p "$P"
cp "$W/c1.vhdx" "$P/c1.vhdx"
mkdir "$P/base.vhdx"
every "a directory in the parent's place" 3 "parent '$P/base.vhdx' is not a regular file or block device \(a directory\)" "$P" "$P/c1.vhdx"
rmdir "$P/base.vhdx"; ln -s /nonexistent/x.vhdx "$P/base.vhdx"
every "a dangling symlink in the parent's place" 3 "parent '$P/base.vhdx' is a symbolic link to '/nonexistent/x.vhdx', which leads nowhere" "$P" "$P/c1.vhdx"
rm "$P/base.vhdx"; ln -s /dev/null "$P/base.vhdx"
every "a /dev/null symlink in the parent's place" 3 "parent '$P/base.vhdx' is not a regular file or block device \(a character device\)" "$P" "$P/c1.vhdx"

# ---- 4. a changed parent: one message from every command ----
C=$TMP/p4
mkdir -p "$C"
cp "$W/c1.vhdx" "$W/base.vhdx" "$C/"
python3 - "$C/base.vhdx" "$top_srcdir/tests" <<'PY' || fail "rewriting the copy's DataWriteGuid"
import struct, sys
sys.path.insert(0, sys.argv[2])
from vhdx_chain import crc32c
with open(sys.argv[1], 'r+b') as f:
    for off in (64 * 1024, 128 * 1024):
        f.seek(off); h = bytearray(f.read(4096))
        h[32] ^= 0xFF                      # DataWriteGuid (MS-VHDX 2.2.2)
        h[4:8] = b'\0\0\0\0'; h[4:8] = struct.pack('<I', crc32c(bytes(h)))
        f.seek(off); f.write(h)
PY
every "a changed parent" 3 \
	"$C/c1.vhdx: parent '$C/base.vhdx' is not the disk this differencing disk was made from: the child names \{.*\} \(parent_linkage\), the parent's DataWriteGuid is \{" \
	"$C" "$C/c1.vhdx"

# ---- 5. a parent found only by its name beside the child ----
B=$TMP/p5
mkdir -p "$B/sub" "$B/moved"
cp "$W/base.vhdx" "$B/base.vhdx"
"$GEN2PREP" convert --differencing --layout mbr "$B/base.vhdx" "$B/sub/c.vhdx" >/dev/null 2>&1 || fail "convert --differencing into sub/"
mv "$B/sub/c.vhdx" "$B/moved/c.vhdx"; mv "$B/base.vhdx" "$B/moved/base.vhdx"   # ..\base.vhdx leads nowhere now
before=$(listing "$B/moved")
wre="'$B/moved/c.vhdx' records its parent as '\.\.\\\\base\.vhdx' and nothing is there: the file of that name beside it, '$B/moved/base\.vhdx', was read, but Hyper-V follows the recorded path"
assert_exit "by name: inspect reads it (exit 4: blocker already-gen2)" 4 "$GEN2PREP" inspect "$B/moved/c.vhdx"
assert_match "by name: inspect warns" "$wre" "$OUT"
assert_exit "by name: inspect --json" 4 "$GEN2PREP" inspect --json "$B/moved/c.vhdx"
printf '%s' "$OUT" >"$TMP/i.json"
assert_match "by name: inspect --json has the warning code" '"parent-by-name"' "$(jget "$TMP/i.json" '[w["code"] for w in j["plan"]["warnings"]]')"
assert_exit "by name: convert --dry-run (exit 4, as inspect)" 4 "$GEN2PREP" convert --dry-run "$B/moved/c.vhdx" "$B/moved/out.vhdx"
assert_match "by name: convert --dry-run warns" "$wre" "$OUT$ERR"
assert_exit "by name: convert --dry-run --json" 4 "$GEN2PREP" convert --dry-run --json "$B/moved/c.vhdx" "$B/moved/out.vhdx"
printf '%s' "$OUT" >"$TMP/d.json"
assert_match "by name: convert --dry-run --json has the warning code" '"parent-by-name"' "$(jget "$TMP/d.json" '[w["code"] for w in j["plan"]["warnings"]]')"
assert_exit "by name: convert (exit 4, as inspect)" 4 "$GEN2PREP" convert "$B/moved/c.vhdx" "$B/moved/out.vhdx"
assert_match "by name: convert warns" "$wre" "$OUT$ERR"
assert_exit "by name: bcd reads it (exit 0)" 0 "$GEN2PREP" bcd "$B/moved/c.vhdx"
assert_match "by name: bcd warns on stderr" "^gen2prep: warning: '$B/moved/c.vhdx' records its parent" "$ERR"
assert_exit "by name: verify exit 3" 3 "$GEN2PREP" verify "$B/moved/c.vhdx"
assert_match "by name: verify says Hyper-V follows the recorded path" "records its parent as '\.\.\\\\base\.vhdx' and nothing is there.*Hyper-V follows the recorded path" "$ERR"
assert_eq "by name: nothing written" "$before" "$(listing "$B/moved")"
