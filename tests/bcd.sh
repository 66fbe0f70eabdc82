#!/bin/bash
# bcd.sh - `gen2prep bcd` on the real stores in ../shared/samples/bcd:
# text compared with tests/expected (each value checked by hand against the
# raw hive with python3-hivex when written), and --json compared value by
# value with what python3-hivex reads from the raw hive (independent decoding
# of integers, booleans, strings, object GUIDs, GPT partition devices). Also
# a BCD-shaped hive written by mkhive (not by lib/bcd), and malformed stores
# (truncated, garbage, wrong element value sizes/types) -> exit 3, no crash.
. "$(dirname "$0")/lib.sh"
MKHIVE=$top_builddir/fixtures/mkhive
PYH=
for p in /usr/bin/python3 python3; do "$p" -c 'import hivex' 2>/dev/null && { PYH=$p; break; }; done

SAMPLES=$top_srcdir/../shared/samples/bcd
if [ -d "$SAMPLES" ]; then
	for s in win10-uefi uefi-firmware-entries; do
		f=$SAMPLES/$s.BCD
		assert_exit "bcd $s" 0 "$GEN2PREP" bcd "$f"
		printf '%s\n' "$OUT" > "$TMP/$s.txt"
		check "bcd $s text matches expected" diff -u "$top_srcdir/tests/expected/bcd-$s.txt" "$TMP/$s.txt"
		"$GEN2PREP" bcd --json "$f" > "$TMP/$s.json"
		if [ -n "$PYH" ]; then
			check "bcd $s --json matches the raw hive (python3-hivex)" "$PYH" - "$f" "$TMP/$s.json" <<'PY'
import sys, json, struct, uuid, hivex
h = hivex.Hivex(sys.argv[1]); j = json.load(open(sys.argv[2]))
r = h.root(); objs = h.node_get_child(r, "Objects")
byid = {o["id"].lower(): o for o in j["objects"]}
def gtext(b): return str(uuid.UUID(bytes_le=bytes(b)))
raw_ids = [h.node_name(k).lower() for k in h.node_children(objs)]
assert sorted(raw_ids) == sorted(byid), (raw_ids, list(byid))
n = 0
for k in h.node_children(objs):
    o = byid[h.node_name(k).lower()]
    t, d = h.value_value(h.node_get_value(h.node_get_child(k, "Description"), "Type"))
    assert int(o["type"], 16) == struct.unpack("<I", d)[0]
    els = {int(e["type"], 16): e for e in o["elements"]}
    ek = h.node_get_child(k, "Elements")
    kids = h.node_children(ek) if ek else []
    assert len(kids) == len(els)
    for e in kids:
        et = int(h.node_name(e), 16); fmt = (et >> 24) & 0xf
        t, d = h.value_value(h.node_get_value(e, "Element")); v = els[et]["value"]
        if fmt == 5: assert v == struct.unpack("<Q", d)[0], (et, v)
        elif fmt == 6: assert v == (d[0] != 0)
        elif fmt == 2: assert v == d.decode("utf-16le").split("\0")[0], (et, v)
        elif fmt == 3:
            g = d.decode("utf-16le").split("\0")[0].lower()
            assert v == g or v.startswith("{") and (g in byid and byid[g]["identifier"] == v), (v, g)
        elif fmt == 4:
            gs = [x.lower() for x in d.decode("utf-16le").split("\0") if x]
            assert v == [byid[g]["identifier"] if g in byid else g for g in gs], (v, gs)
        elif fmt == 1 and len(d) == 88 and struct.unpack_from("<I", d, 16)[0] == 6:
            assert v["kind"] == "partition" and v["style"] == "gpt"
            assert v["partition_guid"] == gtext(d[32:48]) and v["disk_guid"] == gtext(d[56:72]), v
        n += 1
print("checked", n, "elements")
PY
		fi
	done
	# spot checks written from the raw hive by hand (hivexget / python3-hivex)
	W=$TMP/win10-uefi.txt
	assert_match "bootmgr timeout 0x1e" '^timeout +30$' "$(grep '^timeout' "$W" | tail -1)"
	assert_match "hypervisorbaudrate 0x1c200" 'hypervisorbaudrate +115200' "$(cat "$W")"
	assert_match "WinRE ramdisk device" 'ramdisk=\[GPT disk \{d148fb7c-be81-4d12-8dcf-62260299abde\} partition \{fb3fd5c6-af83-4c23-9d60-772453d0623d\}\]\\Recovery\\WindowsRE\\Winre.wim,\{347518e3-f3cc-11ea-911e-c7eaa7d84b6c\}' "$(cat "$W")"
	if command -v hivexget >/dev/null; then
		d=$(hivexget "$SAMPLES/win10-uefi.BCD" '\Objects\{347518e1-f3cc-11ea-911e-c7eaa7d84b6c}\Elements\12000004' Element)
		check "description equals hivexget's ($d)" grep -qx "description *$d" "$W"
	fi
	# corrupted copies of a real store
	head -c 6000 "$SAMPLES/win10-uefi.BCD" > "$TMP/trunc.BCD"
	assert_exit "truncated store -> 3" 3 "$GEN2PREP" bcd "$TMP/trunc.BCD"
	cp "$SAMPLES/win10-uefi.BCD" "$TMP/flip.BCD"; chmod u+w "$TMP/flip.BCD"
	printf 'XX' | dd of="$TMP/flip.BCD" bs=1 seek=100 conv=notrunc 2>/dev/null
	assert_exit "bad header checksum -> 3" 3 "$GEN2PREP" bcd "$TMP/flip.BCD"
else
	echo "note: $SAMPLES absent: real-store checks skipped"
fi

assert_exit "garbage file -> 3" 3 "$GEN2PREP" bcd "$top_srcdir/tests/lib.sh"
head -c 8192 /dev/zero | sed 's/^/regf/' > "$TMP/zero.BCD" 2>/dev/null || true
printf 'regf' > "$TMP/short.BCD"
assert_exit "4-byte regf -> 3" 3 "$GEN2PREP" bcd "$TMP/short.BCD"
assert_exit "usage: no argument -> 2" 2 "$GEN2PREP" bcd
assert_exit "--help" 0 "$GEN2PREP" bcd --help
assert_match "--help explains partition naming" 'partition=IMAGE:N' "$OUT"

# A BCD-shaped hive written by mkhive (the device value laid out per
# doc/formats.md, BCD partition device, by this script, not by lib/bcd).
[ -x "$MKHIVE" ] || { echo "mkhive not built"; exit 0; }
dev=$(python3 -c '
import struct, uuid
part = uuid.UUID("236538dd-1103-424b-80ef-c54841d0a445").bytes_le
disk = uuid.UUID("d148fb7c-be81-4d12-8dcf-62260299abde").bytes_le
v = bytes(16) + struct.pack("<IIII", 6, 0, 0x48, 0) + part + struct.pack("<II", 0, 0) + disk + bytes(16)
assert len(v) == 88
print(",".join("%02x" % b for b in v))')
mbr=$(python3 -c '
import struct
v = bytes(16) + struct.pack("<IIII", 6, 0, 0x48, 0) + struct.pack("<Q", 0x24400000) + bytes(8) + struct.pack("<II", 0, 1) + struct.pack("<I", 0xdeadbeef) + bytes(12) + bytes(16)
print(",".join("%02x" % b for b in v))')
cat > "$TMP/store.reg" <<REG
[Description]
"KeyName"="BCD00000000"
"System"=dword:00000001
[Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Description]
"Type"=dword:10100002
[Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Elements\\11000001]
"Element"=hex:$dev
[Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Elements\\25000004]
"Element"=hex:05,00,00,00,00,00,00,00
[Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Elements\\23000003]
"Element"="{aaaaaaaa-0000-0000-0000-000000000001}"
[Objects\\{aaaaaaaa-0000-0000-0000-000000000001}\\Description]
"Type"=dword:10200003
[Objects\\{aaaaaaaa-0000-0000-0000-000000000001}\\Elements\\21000001]
"Element"=hex:$mbr
[Objects\\{aaaaaaaa-0000-0000-0000-000000000001}\\Elements\\16000048]
"Element"=hex:01
[Objects\\{aaaaaaaa-0000-0000-0000-000000000001}\\Elements\\2500abcd]
"Element"=hex:07,00,00,00,00,00,00,00
REG
check "mkhive writes a BCD-shaped hive" "$MKHIVE" NewStoreRoot "$TMP/store.BCD" < "$TMP/store.reg"
assert_exit "bcd reads it" 0 "$GEN2PREP" bcd "$TMP/store.BCD"
assert_match "GPT device decoded" 'device +partition=GPT disk \{d148fb7c-be81-4d12-8dcf-62260299abde\} partition \{236538dd-1103-424b-80ef-c54841d0a445\}' "$OUT"
assert_match "MBR device decoded" 'osdevice +partition=MBR disk 0xdeadbeef offset 608174080' "$OUT"
assert_match "timeout" 'timeout +5' "$OUT"
assert_match "default alias" 'identifier +\{default\}' "$OUT"
assert_match "boolean" 'nointegritychecks +Yes' "$OUT"
assert_match "unknown element as custom:" 'custom:2500abcd +7' "$OUT"

bad() { # NAME ELEMENT-TYPE VALUE-SPEC
	sed "s/^\"Element\"=hex:01\$/\"Element\"=$3/" "$TMP/store.reg" | sed "s/16000048/$2/" > "$TMP/$1.reg"
	"$MKHIVE" NewStoreRoot "$TMP/$1.BCD" < "$TMP/$1.reg" || die "mkhive $1"
	assert_exit "malformed: $1 -> 3" 3 "$GEN2PREP" bcd "$TMP/$1.BCD"
	assert_eq "malformed: $1: nothing on stdout" "" "$OUT"
	assert_exit "malformed: $1 --json -> 3" 3 "$GEN2PREP" bcd --json "$TMP/$1.BCD"
}
bad bool-4-bytes 16000048 'hex:01,00,00,00'
bad bool-as-dword 16000048 'dword:00000001'
bad int-4-bytes 25000020 'hex:01,00,00,00'
bad object-not-guid 23000003 '"nope"'
bad string-as-binary 12000004 'hex:41,00'
bad device-short 11000001 'hex:00,01'
