#!/bin/bash
# bcd-gen1.sh - `gen2prep bcd IMAGE` on a Generation 1 disk reads \Boot\BCD
# from the active MBR partition (System Reserved, NTFS) and names the MBR
# devices by partition number. The store is written by scripts/mkfixture
# from .reg text (not by lib/bcd); every value shown is checked against
# python3-hivex's reading of the store pulled out with ntfscat, and the
# device offsets/signature against sfdisk.
. "$(dirname "$0")/lib.sh"
need ntfscat sfdisk
PY=/usr/bin/python3
$PY -c 'import hivex' 2>/dev/null || skip "python3-hivex not installed"

img=$(fixture win7-sp1 raw)
cp "$img" "$TMP/gen1.raw"; img=$TMP/gen1.raw
assert_exit "bcd on a Gen1 image reads the active partition's store" 0 "$GEN2PREP" bcd "$img"
text=$OUT
assert_exit "bcd IMAGE:1 prints the same" 0 "$GEN2PREP" bcd "$img:1"
assert_eq "IMAGE:1 = automatic lookup" "$text" "$OUT"

# the partition table, read by sfdisk
sig=$(sfdisk --json "$img" | $PY -c 'import json,sys; print(int(json.load(sys.stdin)["partitiontable"]["id"],16))')
read -r p1 p2 < <(sfdisk --json "$img" | $PY -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"]; print(p[0]["start"]*512, p[1]["start"]*512)')
dd if="$img" of="$TMP/sr.ntfs" bs=512 skip=$((p1 / 512)) count=$((100 * 2048)) status=none
check "ntfscat extracts \\Boot\\BCD" sh -c "ntfscat '$TMP/sr.ntfs' /Boot/BCD > '$TMP/BCD'"

# what the raw hive says, by python3-hivex
$PY - "$TMP/BCD" "$sig" "$p1" "$p2" >"$TMP/hive.txt" <<'PY'
import hivex, struct, sys
h = hivex.Hivex(sys.argv[1]); sig, p1, p2 = map(int, sys.argv[2:5])
objs = h.node_get_child(h.root(), "Objects")
for o in h.node_children(objs):
    name = h.node_name(o)
    typ = struct.unpack("<I", h.value_value(h.node_get_value(h.node_get_child(o, "Description"), "Type"))[1])[0]
    for e in h.node_children(h.node_get_child(o, "Elements")):
        et = int(h.node_name(e), 16)
        t, v = h.value_value(h.node_get_value(e, "Element"))
        if et >> 24 & 0xF == 1:
            off, = struct.unpack_from("<Q", v, 0x20); s, = struct.unpack_from("<I", v, 0x38)
            part = {p1: 1, p2: 2}.get(off, 0) if s == sig else 0
            print("%s %08x %08x device partition %d" % (name, typ, et, part))
        elif et >> 24 & 0xF == 2:
            print("%s %08x %08x string %s" % (name, typ, et, v.decode("utf-16-le").rstrip("\0")))
PY
bm=$(grep -i '^{9dea862c' "$TMP/hive.txt")
ld=$(grep -v -i '^{9dea862c' "$TMP/hive.txt")
assert_match "hive: {bootmgr} device is partition 1 (offset and signature match sfdisk)" "11000001 device partition 1" "$bm"
assert_match "hive: loader osdevice is partition 2" "21000001 device partition 2" "$ld"
assert_match "text: {bootmgr} device partition=IMAGE:1" "device +partition=$img:1" "$(sed -n '/Windows Boot Manager/,/^$/p' <<<"$text")"
loader=$(sed -n '/Windows Boot Loader/,/^$/p' <<<"$text")
assert_match "text: loader device partition=IMAGE:2" "device +partition=$img:2" "$loader"
assert_match "text: loader osdevice partition=IMAGE:2" "osdevice +partition=$img:2" "$loader"
path=$(grep ' 12000002 string ' <<<"$ld" | sed 's/.* string //')
assert_eq "text: loader path = the hive's 12000002" "$path" "$(sed -n 's/^path  *//p' <<<"$loader")"
desc=$(grep ' 12000004 string ' <<<"$ld" | sed 's/.* string //')
assert_eq "text: loader description = the hive's 12000004" "$desc" "$(sed -n 's/^description  *//p' <<<"$loader")"
assert_match "text: the boot manager's default is the loader ({default})" "default +\{default\}" "$text"

# JSON: every device element names a partition the table has
assert_exit "bcd --json" 0 "$GEN2PREP" bcd --json "$img"
printf '%s' "$OUT" >"$TMP/bcd.json"
n=$($PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(sum(1 for o in j["objects"] for e in o["elements"] if e["format"]=="device"))' "$TMP/bcd.json" 2>/dev/null || echo x)
assert_eq "JSON: three device elements (bootmgr device, loader device and osdevice)" 3 "$n"
