#!/bin/bash
# bcd-convert.sh - the BCD store convert writes, as `gen2prep bcd` prints it,
# compared with expected text (tests/expected/bcd-convert-*.txt) for win7-sp1
# (GPT and MBR layouts) and win81. The expected files were written by
# checking every value against the raw hive (python3-hivex) and the device
# values against the partition table (sgdisk/sfdisk); GUIDs are derived from
# the input, so the text is stable. Here, independently of our reader:
# the store is extracted from the ESP with mtools (mcopy -i img@@offset) and
# `bcd --json` is checked element by element against python3-hivex, every
# partition device against sgdisk (GPT disk/partition GUIDs) or sfdisk (MBR
# signature, byte offset); `bcd OUT` (the image) must print the same text
# with each device named OUT:N. Then --debug serial:1:115200 and --bootdebug
# must put the debugger elements on the right objects and nowhere else.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
need sgdisk sfdisk mcopy
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
"$PY" -c 'import hivex' 2>/dev/null || skip "python3-hivex not installed"

W7=$(fixture win7-sp1 vhdx)
W81=$(fixture win81 vhdx)
EXP=$top_srcdir/tests/expected

# esp_number IMG: the ESP's partition number (GPT type or MBR type 0xef).
esp_number() {
	sfdisk --json "$1" | "$PY" -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
for p in t["partitions"]:
    if p["type"].upper() in ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EF"):
        print(p["node"][len(sys.argv[1]):]); break
' "$1"
}

# store IMG OUTFILE: \EFI\Microsoft\Boot\BCD copied out of the ESP by mtools.
store() {
	local n off
	n=$(esp_number "$1") && off=$(part_start "$1" "$n") && [ -n "$off" ] || return 1
	mcopy -n -i "$1@@$off" ::/EFI/Microsoft/Boot/BCD "$2"
}

# devices_named IMG: sed script turning each device text of IMG's partitions
# into IMG:N, from sgdisk (GPT) or sfdisk (MBR), not from our reader.
devices_named() {
	local img=$1
	sfdisk --json "$img" | "$PY" -c '
import json, sys, subprocess, re
img = sys.argv[1]
t = json.load(sys.stdin)["partitiontable"]
ss = t.get("sectorsize", 512)
for p in t["partitions"]:
    n = int(p["node"][len(img):])
    if t["label"] == "gpt":
        disk = re.search(r"Disk identifier \(GUID\): (\S+)", subprocess.run(["sgdisk", "-p", img], capture_output=True, text=True).stdout).group(1).lower()
        part = re.search(r"Partition unique GUID: (\S+)", subprocess.run(["sgdisk", "-i", str(n), img], capture_output=True, text=True).stdout).group(1).lower()
        old = "partition=GPT disk {%s} partition {%s}" % (disk, part)
    else:
        old = "partition=MBR disk 0x%08x offset %d" % (int(t["id"], 16), p["start"] * ss)
    print("s|%s|partition=%s:%d|" % (old, img, n))   # BRE: braces are literal
' "$img"
}

# json_vs_hive STORE JSON IMG: every element of `bcd --json` equals the raw
# hive's value (python3-hivex); every partition device names a partition of
# IMG's table as sgdisk/sfdisk print it.
json_vs_hive() {
	"$PY" - "$@" <<'PY'
import sys, json, struct, uuid, subprocess, re, hivex
store, js, img = sys.argv[1:4]
h = hivex.Hivex(store); j = json.load(open(js))
objs = h.node_get_child(h.root(), "Objects")
byid = {o["id"].lower(): o for o in j["objects"]}
raw_ids = sorted(h.node_name(k).lower() for k in h.node_children(objs))
assert raw_ids == sorted(byid), (raw_ids, sorted(byid))
t = json.loads(subprocess.run(["sfdisk", "--json", img], capture_output=True, text=True).stdout)["partitiontable"]
ss = t.get("sectorsize", 512)
if t["label"] == "gpt":
    disk = re.search(r"Disk identifier \(GUID\): (\S+)", subprocess.run(["sgdisk", "-p", img], capture_output=True, text=True).stdout).group(1).lower()
    parts = {}
    for p in t["partitions"]:
        n = p["node"][len(img):]
        parts[re.search(r"Partition unique GUID: (\S+)", subprocess.run(["sgdisk", "-i", n, img], capture_output=True, text=True).stdout).group(1).lower()] = n
else:
    sig = int(t["id"], 16)
    parts = {p["start"] * ss: p["node"][len(img):] for p in t["partitions"]}
def ident(g): return byid[g]["identifier"] if g in byid else g
n = 0
for k in h.node_children(objs):
    o = byid[h.node_name(k).lower()]
    _, d = h.value_value(h.node_get_value(h.node_get_child(k, "Description"), "Type"))
    assert int(o["type"], 16) == struct.unpack("<I", d)[0], o["id"]
    els = {int(e["type"], 16): e for e in o["elements"]}
    kids = h.node_children(h.node_get_child(k, "Elements"))
    assert len(kids) == len(els), (o["id"], len(kids), len(els))
    for e in kids:
        et = int(h.node_name(e), 16); fmt = (et >> 24) & 0xf
        _, d = h.value_value(h.node_get_value(e, "Element")); v = els[et]["value"]
        if fmt == 5: assert len(d) == 8 and v == struct.unpack("<Q", d)[0], (et, v)
        elif fmt == 6: assert len(d) == 1 and v == (d[0] != 0), (et, v)
        elif fmt == 2: assert v == d.decode("utf-16le").split("\0")[0], (et, v)
        elif fmt == 3: assert v == ident(d.decode("utf-16le").split("\0")[0].lower()), (et, v)
        elif fmt == 4: assert v == [ident(x.lower()) for x in d.decode("utf-16le").split("\0") if x], (et, v)
        elif fmt == 1:
            assert len(d) == 88 and struct.unpack_from("<I", d, 16)[0] == 6, (et, d.hex())
            if t["label"] == "gpt":
                pg, dg = str(uuid.UUID(bytes_le=d[32:48])), str(uuid.UUID(bytes_le=d[56:72]))
                assert struct.unpack_from("<I", d, 52)[0] == 0 and dg == disk and pg in parts, (et, pg, dg)
                assert v["style"] == "gpt" and v["partition_guid"] == pg and v["disk_guid"] == dg, v
            else:
                off, s = struct.unpack_from("<Q", d, 32)[0], struct.unpack_from("<I", d, 56)[0]
                assert struct.unpack_from("<I", d, 52)[0] == 1 and s == sig and off in parts, (et, off, s)
                assert v["style"] == "mbr" and v["partition_offset"] == off and v["disk_signature"] == s, v
        else: raise AssertionError("unexpected element format %x" % et)
        n += 1
print("checked", n, "elements")
PY
}

# one NAME IN LAYOUT [convert options...]: convert, extract the store, compare.
one() {
	local name=$1 in=$2 layout=$3; shift 3
	local d=$TMP/$name
	mkdir -p "$d"
	assert_exit "$name: convert" 0 "$GEN2PREP" convert -q --layout "$layout" "$@" "$in" "$d/out.raw"
	check "$name: mcopy takes the BCD off the ESP" store "$d/out.raw" "$d/BCD"
	assert_exit "$name: bcd STORE" 0 "$GEN2PREP" bcd "$d/BCD"
	printf '%s\n' "$OUT" >"$d/store.txt"
	"$GEN2PREP" bcd --json "$d/BCD" >"$d/store.json"
	check "$name: --json matches python3-hivex and the partition table" json_vs_hive "$d/BCD" "$d/store.json" "$d/out.raw"
	# the image form: same text, devices named out.raw:N (relative name: stable text)
	(cd "$d" && devices_named out.raw) >"$d/names.sed"
	(cd "$d" && "$GEN2PREP" bcd out.raw) >"$d/image.txt"
	sed -f "$d/names.sed" "$d/store.txt" >"$d/store-named.txt"
	check "$name: bcd IMAGE = bcd STORE with devices named by sgdisk/sfdisk" diff -u "$d/store-named.txt" "$d/image.txt"
}

for spec in "win7-gpt $W7 gpt" "win7-mbr $W7 mbr" "win81 $W81 gpt"; do
	set -- $spec
	one "$1" "$2" "$3"
	check "$1: text matches tests/expected/bcd-convert-$1.txt" diff -u "$EXP/bcd-convert-$1.txt" "$TMP/$1/store.txt"
done

# ---- generation-dependent parts, read straight from the hive ----
OBJ='Objects\{7ff607e0-4395-11db-b0de-0800200c9a66}\Description'
assert_eq "win7: no {hypervisorsettings} (6.1)" "(no key)" "$(hive_val "$TMP/win7-gpt/BCD" "$OBJ" Type)"
assert_eq "win81: {hypervisorsettings} is boot loader settings" $((0x20200003)) "$(hive_val "$TMP/win81/BCD" "$OBJ" Type)"
BLS='Objects\{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}\Elements\14000006'
assert_eq "win81: {bootloadersettings} inherits {hypervisorsettings}" \
	"{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e} {7ff607e0-4395-11db-b0de-0800200c9a66}" "$(hive_val "$TMP/win81/BCD" "$BLS" Element)"
BM='Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements'
for n in win7-gpt win81; do
	R=$(hive_val "$TMP/$n/BCD" "$BM\\23000006" Element)
	L=$(hive_val "$TMP/$n/BCD" "$BM\\23000003" Element)
	assert_eq "$n: loader resumeobject = {bootmgr} resumeobject" "$R" "$(hive_val "$TMP/$n/BCD" "Objects\\$L\\Elements\\23000003" Element)"
	assert_eq "$n: resume object type 0x10200004" $((0x10200004)) "$(hive_val "$TMP/$n/BCD" "Objects\\$R\\Description" Type)"
	assert_eq "$n: resume filepath" '\hiberfil.sys' "$(hive_val "$TMP/$n/BCD" "Objects\\$R\\Elements\\22000002" Element)"
done
assert_eq "win7: no bootmenupolicy on the loader (6.1)" "(no key)" \
	"$(hive_val "$TMP/win7-gpt/BCD" "Objects\\$(hive_val "$TMP/win7-gpt/BCD" "$BM\\23000003" Element)\\Elements\\250000c2" Element)"

# ---- debugger variants: elements on the right objects only ----
# dbg VARIANT JSON: "object:element=value" lines for the debugger elements.
dbg() {
	"$PY" - "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
want = {"debug", "sos", "bootdebug", "debugtype", "debugport", "baudrate", "debugstart", "debugoptionenabled"}
for o in j["objects"]:
    for e in o["elements"]:
        if e["name"] in want:
            who = o["identifier"] if len(o["identifier"]) < 30 else o["type"]   # {alias} or the type
            print("%s:%s=%s" % (who, e["name"], json.dumps(e["value"])))
PY
}
one dbg "$W7" gpt --debug serial:1:115200
one bootdbg "$W7" gpt --debug serial:1:115200 --bootdebug
one dbg81 "$W81" gpt --debug serial:2:57600
assert_eq "no debug options: only {dbgsettings} defaults and resume debugoptionenabled No" \
	"0x10200004:debugoptionenabled=false {dbgsettings}:baudrate=115200 {dbgsettings}:debugport=1 {dbgsettings}:debugtype=0" \
	"$(dbg "$TMP/win7-gpt/store.json" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "--debug serial:1:115200: debug and sos on {default}, debugstart Active on {dbgsettings}" \
	"0x10200004:debugoptionenabled=false {dbgsettings}:baudrate=115200 {dbgsettings}:debugport=1 {dbgsettings}:debugstart=0 {dbgsettings}:debugtype=0 {default}:debug=true {default}:sos=true" \
	"$(dbg "$TMP/dbg/store.json" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "--bootdebug: bootdebug on {default} as well, nowhere else" \
	"0x10200004:debugoptionenabled=false {dbgsettings}:baudrate=115200 {dbgsettings}:debugport=1 {dbgsettings}:debugstart=0 {dbgsettings}:debugtype=0 {default}:bootdebug=true {default}:debug=true {default}:sos=true" \
	"$(dbg "$TMP/bootdbg/store.json" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "win81 --debug serial:2:57600: port and baud on {dbgsettings}" \
	"0x10200004:debugoptionenabled=false {dbgsettings}:baudrate=57600 {dbgsettings}:debugport=2 {dbgsettings}:debugstart=0 {dbgsettings}:debugtype=0 {default}:debug=true {default}:sos=true" \
	"$(dbg "$TMP/dbg81/store.json" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
DS='Objects\{4636856e-540f-4170-a130-a84776f4c654}\Elements'
assert_eq "hivex: --debug 57600 baud raw value" 00e1000000000000 "$(hive_val "$TMP/dbg81/BCD" "$DS\\15000014" Element)"
assert_eq "hivex: --bootdebug raw boolean on the loader" 01 \
	"$(hive_val "$TMP/bootdbg/BCD" "Objects\\$(hive_val "$TMP/bootdbg/BCD" "$BM\\23000003" Element)\\Elements\\16000010" Element)"
assert_eq "hivex: no bootdebug on {bootmgr}" "(no key)" "$(hive_val "$TMP/bootdbg/BCD" "$BM\\16000010" Element)"
