#!/bin/bash
# differencing.sh - convert --differencing (issue 12, section 2): OUT is a
# differencing VHDX whose parent is IN and holds only what the conversion
# wrote.
#
# qemu cannot open a differencing VHDX (block/vhdx.c: "Currently
# unsupported"; qemu-img says "Operation not supported"), and libvhdi finds
# a parent only by absolute_win32_path or volume_path (it looks for
# "relative_path" with a 12-character key), so the chain is read here by
# tests/vhdx_chain.py, written from MS-VHDX alone: the parent as qemu-img
# reads it, plus every sector the child holds (BAT states, sector bitmaps)
# = the full `gen2prep convert` output of the same input (qemu-img
# compare). Also: the child's own fields (vhdiinfo, vhdx_chain.py info:
# HasParent, parent_linkage = the parent's DataWriteGuid, relative_path,
# the parent's Virtual Disk ID and size), gen2prep reading the chain
# (verify, g2p-stream), the output small and made in well under a second,
# deterministic, the input unchanged, and every refusal: VHD and raw
# inputs, a disk that would grow, VHD/fixed outputs, a moved child, a
# parent written to after the child was made.
. "$(dirname "$0")/lib.sh"
need qemu-img python3 vhdiinfo
CHAIN="python3 $top_srcdir/tests/vhdx_chain.py"
STREAM=$top_builddir/fixtures/g2p-stream
# 1 s; under ASan/UBSan (make check: 0.3 s here) 10 s: there the run shares
# 2 cores with make check -j2 and its fsync can wait behind another test's
# writeback; a cost per GiB of the 24 GiB input would still take minutes
MAX_WALL_S=${DIFF_MAX_WALL_S:-1}
ldd "$GEN2PREP" 2>/dev/null | grep -q libasan && MAX_WALL_S=${DIFF_MAX_WALL_S:-10}

W7=$(fixture win7-sp1 vhdx)
mkdir -p "$TMP/a" "$TMP/a/sub"
cp "$W7" "$TMP/a/in.vhdx"
IN=$TMP/a/in.vhdx
in_sha=$(sha "$IN")

# ---- refusals: nothing written ----
# the fixture's partitions fill the disk: a GPT needs 1 MiB more for its backup
assert_exit "gpt layout: output-differencing-grows (exit 7)" 7 "$GEN2PREP" convert --differencing "$IN" "$TMP/a/c.vhdx"
assert_match "grows: says why and what to do" "keeps the parent's size.*GPT's backup.*1024 -> 1025 MiB.*--layout mbr" "$ERR"
assert_exit "an appended ESP: output-differencing-grows" 7 "$GEN2PREP" convert --differencing --layout mbr --esp append "$IN" "$TMP/a/c.vhdx"
assert_match "append: suggests --esp reuse (the one that fits: no FAT32 partition for existing)" "appended ESP grows the disk.*: use --esp reuse, or convert without" "$ERR"
assert_exit "dry run: the same verdict" 7 "$GEN2PREP" convert --dry-run --json --differencing "$IN" "$TMP/a/c.vhdx"
printf '%s' "$OUT" >"$TMP/dry.json"
assert_eq "dry run JSON: blocker output-differencing-grows" output-differencing-grows \
	"$(jget "$TMP/dry.json" '[b["code"] for b in j["plan"]["blockers"]][-1]')"
W7VHD=$(fixture win7-sp1 vhd)
assert_exit "VHD input: output-differencing-parent (exit 7)" 7 "$GEN2PREP" convert --differencing --layout mbr "$W7VHD" "$TMP/a/c.vhdx"
assert_match "VHD input: names it and says why" "needs a VHDX input \(the parent\).*is a VHD" "$ERR"
W7RAW=$(fixture win7-sp1 raw)
assert_exit "raw input: output-differencing-parent" 7 "$GEN2PREP" convert --differencing --layout mbr "$W7RAW" "$TMP/a/c.vhdx"
assert_match "raw input: says so" "is a raw image" "$ERR"
assert_exit "a VHD output: usage (exit 2)" 2 "$GEN2PREP" convert --differencing --layout mbr "$IN" "$TMP/a/c.vhd"
assert_match "VHD output: says .vhdx" "writes a VHDX child of IN: name OUT .vhdx" "$ERR"
assert_exit "-o subformat=fixed: usage (exit 2)" 2 "$GEN2PREP" convert --differencing --layout mbr -o subformat=fixed "$IN" "$TMP/a/c.vhdx"
assert_eq "refusals left nothing" "in.vhdx sub" "$(ls "$TMP/a" | tr '\n' ' ' | sed 's/ $//')"

# ---- the child ----
start=$(date +%s%N)
assert_exit "convert --differencing --layout mbr" 0 "$GEN2PREP" convert --differencing --layout mbr "$IN" "$TMP/a/child.vhdx"
wall=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
assert_match "report: differencing, parent named" "differencing, parent .*in\.vhdx" "$OUT"
assert_match "next steps: the parent must stay unchanged" "its parent is .*in\.vhdx, which must stay unchanged.*Do not start the Generation 1 machine" "$(printf '%s' "$OUT" | tr '\n' ' ' | tr -s ' ')"
if awk -v w="$wall" -v m="$MAX_WALL_S" 'BEGIN { exit !(w < m) }'; then ok "whole convert ${wall}s < ${MAX_WALL_S}s"
else fail "convert --differencing took ${wall}s, bound ${MAX_WALL_S}s"; fi
du_child=$(du -k "$TMP/a/child.vhdx" | cut -f1)
if [ "$du_child" -lt 4096 ]; then ok "child allocates $du_child KiB (< 4 MiB)"; else fail "child allocates $du_child KiB"; fi

assert_exit "full convert of the same input" 0 "$GEN2PREP" convert -q --layout mbr "$IN" "$TMP/full.vhdx"
qemu-img convert -f vhdx -O raw "$IN" "$TMP/in.raw" || die "qemu-img convert of the parent"
assert_exit "vhdx_chain.py reads the chain (structure checks pass)" 0 $CHAIN merge "$TMP/a/child.vhdx" "$TMP/in.raw" "$TMP/merged.raw"
assert_match "the child has fully and partially present blocks" "full=[1-9][0-9]* partial=[1-9][0-9]* sectors=[1-9]" "$OUT"
check "parent + child (MS-VHDX reading) = full convert output (qemu-img compare)" \
	qemu-img compare -f raw -F vhdx "$TMP/merged.raw" "$TMP/full.vhdx"
rm -f "$TMP/merged.raw"
# gen2prep's own reader of chains (libvhdi with our locator parse)
check "g2p-stream reads the chain" "$STREAM" -O raw "$TMP/a/child.vhdx" "$TMP/chain.raw"
check "gen2prep's reading of the chain = full convert output" qemu-img compare -f raw -F vhdx "$TMP/chain.raw" "$TMP/full.vhdx"
rm -f "$TMP/chain.raw" "$TMP/in.raw"
# libyal's libvhdi (python3-libvhdi), parent attached by hand (set_parent)
assert_exit "libvhdi (pyvhdi) reads the chain" 0 /usr/bin/python3 "$top_srcdir/tests/vhdi_chain.py" "$TMP/a/child.vhdx" "$IN" "$TMP/vhdi.raw"
assert_match "libvhdi: a differencing disk (type 4)" "disk_type=4" "$OUT"
check "libvhdi's reading of parent + child = full convert output (qemu-img compare)" qemu-img compare -f raw -F vhdx "$TMP/vhdi.raw" "$TMP/full.vhdx"
rm -f "$TMP/vhdi.raw"

# the child's fields, by others' readings
$CHAIN info "$TMP/a/child.vhdx" >"$TMP/info" || fail "vhdx_chain.py info"
$CHAIN parent "$IN" >"$TMP/pinfo" || fail "vhdx_chain.py parent"
kv() { sed -n "s/^$1=//p" "$2"; }
assert_eq "parent_linkage = the parent's DataWriteGuid (2.6.2.6.3)" "{$(kv data_write "$TMP/pinfo")}" "$(kv parent_linkage "$TMP/info")"
assert_eq "relative_path: the parent beside the child" '.\in.vhdx' "$(kv relative_path "$TMP/info")"
assert_eq "Virtual Disk ID kept from the parent (2.6.1.2 IsVirtualDisk)" "$(kv page83 "$TMP/pinfo")" "$(kv page83 "$TMP/info")"
assert_eq "virtual size = the parent's" "$(kv size "$TMP/pinfo")" "$(kv size "$TMP/info")"
assert_eq "2 MiB blocks (Hyper-V's differencing default)" 2097152 "$(kv block_size "$TMP/info")"
assert_eq "parent locator item flags: IsRequired only (2.6.2)" 4 "$(kv locator_flags "$TMP/info")"
vi=$(vhdiinfo "$TMP/a/child.vhdx" 2>&1)
assert_match "vhdiinfo: a differential disk" "Disk type[[:space:]]*: Differential" "$vi"
assert_match "vhdiinfo: parent identifier = the parent's DataWriteGuid" \
	"Parent identifier[[:space:]]*: $(kv data_write "$TMP/pinfo")" "$vi"
if qemu-img info "$TMP/a/child.vhdx" >/dev/null 2>&1; then
	check "qemu-img check clean (this qemu opens differencing VHDX)" qemu-img check -q -f vhdx "$TMP/a/child.vhdx"
else
	echo "# qemu-img $(qemu-img --version | head -1 | cut -d' ' -f3) opens no differencing VHDX: structure checked by vhdx_chain.py"
fi

assert_exit "verify the child" 0 "$GEN2PREP" verify "$TMP/a/child.vhdx"
assert_match "verify: parent-linkage ok, names the parent" "ok +parent-linkage +parent '.*in\.vhdx' \(DataWriteGuid \{$(kv data_write "$TMP/pinfo")\}\)" "$OUT"
assert_exit "verify --json" 0 "$GEN2PREP" verify --json "$TMP/a/child.vhdx"
printf '%s' "$OUT" >"$TMP/v.json"
assert_eq "JSON: parent-linkage passes" true "$(jget "$TMP/v.json" '[c["pass"] for c in j["checks"] if c["id"] == "parent-linkage"][0]')"

# deterministic: same input and options, same bytes
assert_exit "convert again" 0 "$GEN2PREP" convert -q --differencing --layout mbr "$IN" "$TMP/a/child2.vhdx"
assert_eq "same bytes both times" "$(sha "$TMP/a/child.vhdx")" "$(sha "$TMP/a/child2.vhdx")"
rm -f "$TMP/a/child2.vhdx"

# a child in a subfolder: relative_path climbs
assert_exit "child in a subfolder" 0 "$GEN2PREP" convert -q --differencing --layout mbr "$IN" "$TMP/a/sub/c.vhdx"
assert_eq "relative_path from a subfolder" '..\in.vhdx' "$(kv relative_path <($CHAIN info "$TMP/a/sub/c.vhdx"))"
assert_exit "verify the child in the subfolder" 0 "$GEN2PREP" verify "$TMP/a/sub/c.vhdx"

# a parent in another branch of folders, named through a symbolic link:
# the path climbs and descends, and leads to the file itself
mkdir -p "$TMP/b/c/d"
ln -s "$IN" "$TMP/b/link.vhdx"
assert_exit "child elsewhere, parent by a symlink" 0 "$GEN2PREP" convert -q --differencing --layout mbr "$TMP/b/link.vhdx" "$TMP/b/c/d/e.vhdx"
assert_eq "relative_path: up and down to the real file" '..\..\..\a\in.vhdx' "$(kv relative_path <($CHAIN info "$TMP/b/c/d/e.vhdx"))"
assert_exit "verify it" 0 "$GEN2PREP" verify "$TMP/b/c/d/e.vhdx"
rm -rf "$TMP/b"

assert_eq "input unchanged (sha256)" "$in_sha" "$(sha "$IN")"

# ---- a 24 GiB disk: the same in time, changes in several 4 GiB chunks ----
# (chunks of 2^23 sectors, MS-VHDX 2.4: each with its own sector bitmap
# block and BAT slot). Raw copies are sparse and compared raw to raw, which
# qemu-img does by their holes.
"$top_srcdir/scripts/mkfixture" --os win7-sp1 --size 24G --format vhdx "$TMP/big.vhdx" >"$TMP/big.log" 2>&1 ||
	{ cat "$TMP/big.log"; die "mkfixture --size 24G"; }
start=$(date +%s%N)
assert_exit "24 GiB: convert --differencing" 0 "$GEN2PREP" convert -q --differencing --layout mbr "$TMP/big.vhdx" "$TMP/bigc.vhdx"
wall=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
if awk -v w="$wall" -v m="$MAX_WALL_S" 'BEGIN { exit !(w < m) }'; then ok "24 GiB: whole convert ${wall}s < ${MAX_WALL_S}s"
else fail "24 GiB: convert --differencing took ${wall}s, bound ${MAX_WALL_S}s"; fi
assert_exit "24 GiB: full convert" 0 "$GEN2PREP" convert -q --layout mbr "$TMP/big.vhdx" "$TMP/bigf.vhdx"
qemu-img convert -f vhdx -O raw "$TMP/big.vhdx" "$TMP/bigm.raw" && qemu-img convert -f vhdx -O raw "$TMP/bigf.vhdx" "$TMP/bigf.raw" ||
	die "qemu-img convert of the 24 GiB disks"
rm -f "$TMP/bigf.vhdx"
assert_exit "24 GiB: vhdx_chain.py applies the child" 0 $CHAIN merge "$TMP/bigc.vhdx" - "$TMP/bigm.raw"
assert_match "24 GiB: changes in more than one chunk" "chunks=([2-9]|[1-9][0-9])" "$OUT"
check "24 GiB: parent + child = full convert output (qemu-img compare)" qemu-img compare -q -f raw -F raw "$TMP/bigm.raw" "$TMP/bigf.raw"
rm -f "$TMP"/big*

# ---- 4096-byte sectors: one bit per 4 KiB sector, 32 GiB chunks ----
# (qemu opens no 4096-byte-sector VHDX: the parent and the full output are
# made raw by gen2prep's reader, g2p-stream; the child is applied by
# vhdx_chain.py alone)
K4=$(variant win81 vhdx 4kn)
assert_exit "4kn: convert --differencing" 0 "$GEN2PREP" convert -q --differencing --layout mbr --esp reuse "$K4" "$TMP/k4c.vhdx"
assert_eq "4kn: logical sector size kept (2.6.2.4)" 4096 "$(kv lss <($CHAIN info "$TMP/k4c.vhdx"))"
assert_exit "4kn: full convert" 0 "$GEN2PREP" convert -q --layout mbr --esp reuse "$K4" "$TMP/k4f.vhdx"
"$STREAM" -O raw "$K4" "$TMP/k4m.raw" && "$STREAM" -O raw "$TMP/k4f.vhdx" "$TMP/k4f.raw" || die "g2p-stream of the 4kn disks"
assert_exit "4kn: vhdx_chain.py applies the child" 0 $CHAIN merge "$TMP/k4c.vhdx" - "$TMP/k4m.raw"
check "4kn: parent + child = full convert output (qemu-img compare)" qemu-img compare -q -f raw -F raw "$TMP/k4m.raw" "$TMP/k4f.raw"
assert_exit "4kn: verify the child" 0 "$GEN2PREP" verify "$TMP/k4c.vhdx"
rm -f "$TMP"/k4*

# ---- malformed parent locators (untrusted input): refused, saying why ----
# locator MODE CHILD: damages the Parent Locator item of CHILD in place
locator() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
mode, path = sys.argv[1], sys.argv[2]
f = open(path, 'r+b')
f.seek(2 << 20)
m = f.read(1 << 20)
for i in range(struct.unpack('<H', m[10:12])[0]):
    e = m[32 + 32 * i:64 + 32 * i]
    if e[:16].hex() == '2d5fd3a80bb34d45abf7d3d84834ab0c':
        off, ln = struct.unpack('<II', e[16:24])
item = (2 << 20) + off
if mode == 'offset':      # entry 0's KeyOffset far past the item
    f.seek(item + 20); f.write(struct.pack('<I', 0xFFFF))
elif mode == 'type':      # not the VHDX locator type
    f.seek(item); f.write(b'\xff')
elif mode == 'count':     # more entries than the item holds
    f.seek(item + 18); f.write(struct.pack('<H', 0xFFFF))
elif mode == 'linkage':   # no key named parent_linkage
    ko, vo, kl, vl = struct.unpack('<IIHH', m[off + 20:off + 32])
    f.seek(item + ko); f.write('Parent_linkage'.encode('utf-16le'))
EOF
}
# (an unknown locator type is E_UNSUPPORTED like any VHDX feature we do not
# read: exit 4, as for a log to replay)
for mode in offset:3:"parent locator entry 0 outside the item" type:4:"unknown type" \
	count:3:"parent locator entr(y|ies) .*(outside|past)" linkage:3:"without parent_linkage"; do
	cp "$TMP/a/child.vhdx" "$TMP/a/bad.vhdx"
	locator "${mode%%:*}" "$TMP/a/bad.vhdx" || fail "damaging the locator (${mode%%:*})"
	want=${mode#*:}; want=${want%%:*}; mode=${mode%%:*}:${mode#*:*:}
	assert_exit "locator ${mode%%:*}: inspect refuses (exit $want)" "$want" "$GEN2PREP" inspect "$TMP/a/bad.vhdx"
	assert_match "locator ${mode%%:*}: says why" "bad\.vhdx.*${mode#*:}" "$ERR"
done
rm -f "$TMP/a/bad.vhdx"

# ---- a broken link ----
mkdir -p "$TMP/moved"
cp "$TMP/a/child.vhdx" "$TMP/moved/"
# a missing or changed parent is exit 3 from every command, verify
# included, at any depth of the chain (man page EXIT STATUS)
assert_exit "child moved without its parent: verify exit 3 (unreadable input)" 3 "$GEN2PREP" verify "$TMP/moved/child.vhdx"
assert_match "says which parent it needs, where it looked" "child\.vhdx: parent disk '\.\\\\in\.vhdx' not found: nothing at '.*/moved/in\.vhdx'" "$ERR"
assert_exit "verify --json: exit 3 too" 3 "$GEN2PREP" verify --json "$TMP/moved/child.vhdx"
for cmd in inspect bcd; do
	assert_exit "child moved without its parent: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/moved/child.vhdx"
done
# a copy of the parent written to after the child was made: its
# DataWriteGuid changes (MS-VHDX 2.2.2); done here on a COPY, CRC kept valid
cp "$IN" "$TMP/moved/in.vhdx"
python3 - "$TMP/moved/in.vhdx" "$top_srcdir/tests" <<'EOF' || fail "rewriting the copy's DataWriteGuid"
import struct, sys
sys.path.insert(0, sys.argv[2])
from vhdx_chain import crc32c
with open(sys.argv[1], 'r+b') as f:
    for off in (64 * 1024, 128 * 1024):
        f.seek(off)
        h = bytearray(f.read(4096))
        h[32] ^= 0xFF                      # DataWriteGuid
        h[4:8] = b'\0\0\0\0'
        h[4:8] = struct.pack('<I', crc32c(bytes(h)))
        f.seek(off)
        f.write(h)
EOF
assert_exit "parent changed: verify exit 3" 3 "$GEN2PREP" verify "$TMP/moved/child.vhdx"
assert_match "says the parent changed, with both GUIDs (inspect's message)" "parent '.*in\.vhdx' is not the disk this differencing disk was made from: the child names \{$(kv data_write "$TMP/pinfo")\} \(parent_linkage\), the parent's DataWriteGuid is \{" "$ERR"
assert_exit "parent changed: inspect refuses the chain (exit 3)" 3 "$GEN2PREP" inspect "$TMP/moved/child.vhdx"
assert_match "inspect: names the parent and parent_linkage" "is not the disk this differencing disk was made from.*parent_linkage" "$ERR"
assert_eq "input unchanged at the end (sha256)" "$in_sha" "$(sha "$IN")"

# ---- the parent from any current folder (".." above the current folder) ----
# in_dir DIR CMD...: CMD run with DIR as the current folder
in_dir() { local d=$1; shift; (cd "$d" && "$@"); }
mkdir -p "$TMP/vms/gen1" "$TMP/vms/new/disks" "$TMP/elsewhere"
cp "$IN" "$TMP/vms/gen1/p.vhdx"
assert_exit "cd vms/new; convert --differencing ../gen1/p.vhdx disks/c.vhdx" 0 \
	in_dir "$TMP/vms/new" "$GEN2PREP" convert -q --differencing --layout mbr ../gen1/p.vhdx disks/c.vhdx
assert_eq "relative_path climbs from disks/ to gen1/" '..\..\gen1\p.vhdx' "$(kv relative_path <($CHAIN info "$TMP/vms/new/disks/c.vhdx"))"
assert_exit "verify disks/c.vhdx from vms/new" 0 in_dir "$TMP/vms/new" "$GEN2PREP" verify disks/c.vhdx
assert_match "verify: the parent named by its absolute path" "ok +parent-linkage +parent '$TMP/vms/gen1/p\.vhdx'" "$OUT"
# (inspect: exit 4, blocker already-gen2 - it read the whole chain)
for cmd in inspect:4 bcd:0; do
	assert_exit "${cmd%:*} disks/c.vhdx from vms/new: the chain opens" "${cmd#*:}" in_dir "$TMP/vms/new" "$GEN2PREP" ${cmd%:*} disks/c.vhdx
	assert_eq "${cmd%:*}: no libvhdi filename error" "" "$(printf '%s' "$ERR" | grep -i 'filename')"
done
assert_exit "inspect of the chain from vms/new (exit 4: already Generation 2)" 4 in_dir "$TMP/vms/new" "$GEN2PREP" inspect disks/c.vhdx
assert_match "inspect read the converted chain" "already-gen2" "$OUT$ERR"
assert_exit "verify from the child's own folder" 0 in_dir "$TMP/vms/new/disks" "$GEN2PREP" verify c.vhdx
assert_exit "verify from an unrelated folder (relative path)" 0 in_dir "$TMP/elsewhere" "$GEN2PREP" verify ../vms/new/disks/c.vhdx
check "g2p-stream reads the chain from vms/new" in_dir "$TMP/vms/new" "$STREAM" -O raw disks/c.vhdx "$TMP/vmc.raw"
# the parent moved away and a copy of it put beside the child: gen2prep
# could read the chain, Hyper-V (relative_path, MS-VHDX 2.6.2.6) cannot
mv "$TMP/vms/gen1/p.vhdx" "$TMP/vms/gen1/p.hold"
cp "$TMP/vms/gen1/p.hold" "$TMP/vms/new/disks/p.vhdx"
assert_exit "parent only beside the child: verify exit 3" 3 "$GEN2PREP" verify "$TMP/vms/new/disks/c.vhdx"
assert_match "verify says the recorded path leads nowhere" "records its parent as '\.\.\\\\\.\.\\\\gen1\\\\p\.vhdx' and nothing is there .*Hyper-V follows the recorded path" "$ERR"
assert_exit "verify --json: exit 3, code notfound" 3 "$GEN2PREP" verify --json "$TMP/vms/new/disks/c.vhdx"
assert_eq "verify --json error code" notfound "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["error"]["code"])')"
rm -rf "$TMP/vms" "$TMP/elsewhere" "$TMP/vmc.raw"

# ---- parent names Windows cannot open: refused (exit 2), nothing written ----
mkdir -p "$TMP/w"
names=('col:on.vhdx' 'a?b.vhdx' 'st*r.vhdx' 'pi|pe.vhdx' 'lt<.vhdx' 'q".vhdx' "$(printf 'c\001.vhdx')" 'NUL.vhdx' 'com1.vhdx' 'dot.' 'sp ')
whys=("character ':'" "character '\?'" "character '\*'" "character '\|'" "character '<'" "character '\"'" 'control character 0x01'
	'reserved device name NUL' 'reserved device name com1' 'trailing period' 'trailing space')
for k in "${!names[@]}"; do
	name=${names[$k]} why=${whys[$k]}
	cp "$IN" "$TMP/w/$name"
	assert_exit "parent '$name': usage (exit 2)" 2 "$GEN2PREP" convert -q --differencing --layout mbr "$TMP/w/$name" "$TMP/w/c.vhdx"
	assert_match "parent '$name': names the name and the $why" "the name .* has a $why, which Windows does not allow" "$ERR"
	rm -f "$TMP/w/$name"
done
mkdir -p "$TMP/w/bad:dir"
cp "$IN" "$TMP/w/bad:dir/p.vhdx"
assert_exit "a folder on the way with ':': exit 2" 2 "$GEN2PREP" convert -q --differencing --layout mbr "$TMP/w/bad:dir/p.vhdx" "$TMP/w/c.vhdx"
assert_match "names the folder" "the name 'bad:dir' has a character ':'" "$ERR"
assert_eq "refused names left nothing" "bad:dir" "$(ls -A "$TMP/w" | tr '\n' ' ' | sed 's/ $//')"
rm -rf "$TMP/w"

# ---- DataWriteGuid/FileWriteGuid follow the output's content (MS-VHDX 2.2.2) ----
dwg() { kv data_write <($CHAIN parent "$1"); }
fwg() { python3 - "$1" <<'PY'
import struct, sys, uuid
f = open(sys.argv[1], 'rb'); f.seek(64 * 1024); h = f.read(4096)
print(uuid.UUID(bytes_le=h[16:32]))
PY
}
mkdir -p "$TMP/g"
assert_exit "output A: --layout mbr" 0 "$GEN2PREP" convert -q --layout mbr "$IN" "$TMP/g/A.vhdx"
assert_exit "output B: gpt (other options)" 0 "$GEN2PREP" convert -q "$IN" "$TMP/g/B.vhdx"
assert_exit "output A again, same options" 0 "$GEN2PREP" convert -q --layout mbr "$IN" "$TMP/g/A2.vhdx"
assert_ne "other options: other DataWriteGuid" "$(dwg "$TMP/g/A.vhdx")" "$(dwg "$TMP/g/B.vhdx")"
assert_ne "other options: other FileWriteGuid" "$(fwg "$TMP/g/A.vhdx")" "$(fwg "$TMP/g/B.vhdx")"
assert_ne "the child's DataWriteGuid is not the full output's" "$(dwg "$TMP/a/child.vhdx")" "$(dwg "$TMP/g/A.vhdx")"
assert_eq "same input and options: same DataWriteGuid" "$(dwg "$TMP/g/A.vhdx")" "$(dwg "$TMP/g/A2.vhdx")"
assert_eq "same input and options: same bytes" "$(sha "$TMP/g/A.vhdx")" "$(sha "$TMP/g/A2.vhdx")"
assert_exit "--debug serial:1:115200: yet another DataWriteGuid" 0 "$GEN2PREP" convert -q --layout mbr --debug serial:1:115200 "$IN" "$TMP/g/E.vhdx"
assert_ne "with --debug vs without" "$(dwg "$TMP/g/A.vhdx")" "$(dwg "$TMP/g/E.vhdx")"
rm -f "$TMP/g/A2.vhdx" "$TMP/g/E.vhdx"
# a child of output A; A re-converted with other options: the child must fail
assert_exit "a child over output A (--force: A is Generation 2 already)" 0 \
	"$GEN2PREP" convert -q --force --differencing --layout mbr "$TMP/g/A.vhdx" "$TMP/g/C.vhdx"
assert_exit "the child of A verifies" 0 "$GEN2PREP" verify "$TMP/g/C.vhdx"
# (same size and layout, so only the DataWriteGuid can tell)
assert_exit "A re-converted with other options (--debug)" 0 "$GEN2PREP" convert -q --overwrite --layout mbr --debug serial:1:115200 "$IN" "$TMP/g/A.vhdx"
assert_exit "the child of A now fails verify (exit 3)" 3 "$GEN2PREP" verify "$TMP/g/C.vhdx"
assert_match "verify: A has changed (inspect's message)" "parent '.*A\\.vhdx' is not the disk this differencing disk was made from" "$ERR"

# ---- a missing or changed grandparent: exit 3 everywhere, as a parent ----
mv "$TMP/g/A.vhdx" "$TMP/g/A.old"
assert_exit "a child of the child in a/ (grandparent in.vhdx)" 0 \
	"$GEN2PREP" convert -q --force --differencing --layout mbr "$TMP/a/child.vhdx" "$TMP/a/gc.vhdx"
assert_exit "grandchild verifies" 0 "$GEN2PREP" verify "$TMP/a/gc.vhdx"
mv "$IN" "$TMP/a/in.away"
for cmd in verify inspect bcd; do
	assert_exit "grandparent missing: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/a/gc.vhdx"
	assert_match "grandparent missing: $cmd names it" "parent disk '\.\\\\in\.vhdx' not found" "$ERR"
done
assert_exit "grandparent missing: verify --json exit 3" 3 "$GEN2PREP" verify --json "$TMP/a/gc.vhdx"
mv "$TMP/a/in.away" "$IN"
cp "$TMP/moved/in.vhdx" "$TMP/a/in.changed"   # the copy with another DataWriteGuid
mv "$IN" "$TMP/a/in.away" && mv "$TMP/a/in.changed" "$IN"
for cmd in verify inspect bcd; do
	assert_exit "grandparent changed: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/a/gc.vhdx"
	assert_match "grandparent changed: $cmd says so" "is not the disk this differencing disk was made from" "$ERR"
done
mv "$TMP/a/in.away" "$IN"
assert_eq "input unchanged after the chain tests (sha256)" "$in_sha" "$(sha "$IN")"

# ---- space: the child's allocation and the free-space estimate ----
# the child is sparse: its present 2 MiB blocks' zeroed and unwritten
# parts are holes, so its apparent size (~119 MiB here) is far above what
# it allocates (~0.9 MiB); the estimate counts what is allocated
ls -ls "$TMP/a/child.vhdx" | sed 's/^/# ls -ls: /'
if [ "$(id -u)" = 0 ] && mkdir -p "$TMP/small" && mount -t tmpfs -o size=8m tmpfs "$TMP/small" 2>/dev/null; then
	assert_exit "an 8 MiB file system holds the child (the estimate was 67 MiB)" 0 \
		"$GEN2PREP" convert -q --differencing --layout mbr "$IN" "$TMP/small/c.vhdx"
	used=$(du -k "$TMP/small/c.vhdx" | cut -f1)
	if [ "$used" -lt 2048 ]; then ok "child on tmpfs allocates $used KiB"; else fail "child on tmpfs allocates $used KiB"; fi
	umount "$TMP/small"
	mount -t tmpfs -o size=1m tmpfs "$TMP/small"
	assert_exit "a 1 MiB file system: refused before any work (exit 7)" 7 \
		"$GEN2PREP" convert -q --differencing --layout mbr "$IN" "$TMP/small/c.vhdx"
	assert_match "says how much it needs" "not enough free space, [0-9]+ MiB free.*needs about [2-9] MiB" "$ERR"
	umount "$TMP/small"
else
	echo "# SKIP: free-space estimate needs root (tmpfs mount)"
fi
