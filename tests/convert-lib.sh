# tests/convert-lib.sh - helpers shared by the convert/verify tests, on top of
# tests/lib.sh. Everything here reads images with independent tools:
# sfdisk/sgdisk, dd, ntfscat, mtools, python3-hivex, python3-pefile.

# Debian's python3 has the hivex and pefile modules (python3-hivex,
# python3-pefile); a python3 earlier in PATH may not.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# part_start IMG N / part_size IMG N: byte offset / size of partition N (sfdisk --json).
part_field() {
	sfdisk --json "$1" 2>/dev/null | "$PY" -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
ss = t.get("sectorsize", 512)
img, n, f = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for p in t["partitions"]:
    if p["node"].startswith(img) and p["node"][len(img):].isdigit() and int(p["node"][len(img):]) == n:
        print(p[f] * ss if f in ("start", "size") else p[f]); break
' "$1" "$2" "$3"
}
part_start() { part_field "$1" "$2" start; }
part_size() { part_field "$1" "$2" size; }

# extract_part IMG N OUT: copies partition N into OUT (sparse).
extract_part() {
	local s z
	s=$(part_start "$1" "$2") z=$(part_size "$1" "$2")
	[ -n "$s" ] && [ -n "$z" ] || return 1
	dd if="$1" of="$3" bs=1M iflag=skip_bytes,count_bytes skip="$s" count="$z" conv=sparse status=none
}

# put_part IMG N FILE: writes FILE back over partition N.
put_part() {
	local s
	s=$(part_start "$1" "$2")
	dd if="$3" of="$1" bs=1M oflag=seek_bytes seek="$s" conv=notrunc,sparse status=none
}

# hive_val HIVE KEY VALUE: a value printed by python3-hivex: dwords as
# decimal, strings as text, everything else as hex.
hive_val() {
	"$PY" - "$@" <<'EOF'
import hivex, sys
h = hivex.Hivex(sys.argv[1])
node = h.root()
for part in [p for p in sys.argv[2].split("\\") if p]:
    node = h.node_get_child(node, part)
    if node is None:
        print("(no key)"); sys.exit(0)
v = h.node_get_value(node, sys.argv[3])
if v is None:
    print("(no value)"); sys.exit(0)
t, data = h.value_value(v)
if t == 4: print(int.from_bytes(data[:4], "little"))
elif t in (1, 2): print(data.decode("utf-16-le").rstrip("\0"))
elif t == 7: print(" ".join(s for s in data.decode("utf-16-le").split("\0") if s))
else: print(data.hex())
EOF
}

# hive_set_dword HIVE KEY VALUE N: edits a hive in place with python3-hivex.
hive_set_dword() {
	"$PY" - "$@" <<'EOF'
import hivex, sys
h = hivex.Hivex(sys.argv[1], write=True)
node = h.root()
for part in [p for p in sys.argv[2].split("\\") if p]:
    node = h.node_get_child(node, part)
h.node_set_value(node, {"key": sys.argv[3], "t": 4, "value": int(sys.argv[4]).to_bytes(4, "little")})
h.commit(None)
EOF
}

# hive_set_binary HIVE KEY VALUE HEX
hive_set_binary() {
	"$PY" - "$@" <<'EOF'
import hivex, sys
h = hivex.Hivex(sys.argv[1], write=True)
node = h.root()
for part in [p for p in sys.argv[2].split("\\") if p]:
    node = h.node_get_child(node, part)
h.node_set_value(node, {"key": sys.argv[3], "t": 3, "value": bytes.fromhex(sys.argv[4])})
h.commit(None)
EOF
}

# guid_le TEXT: the 16 on-disk bytes (hex) of a GUID written as text (UEFI
# EFI_GUID: first three fields little endian).
guid_le() {
	"$PY" -c 'import uuid,sys; print(uuid.UUID(sys.argv[1]).bytes_le.hex())' "$1"
}

# pe_checksum_ok FILE: python3-pefile recomputes the PE checksum.
pe_checksum_ok() {
	"$PY" -c 'import pefile,sys; p=pefile.PE(sys.argv[1]); sys.exit(0 if p.OPTIONAL_HEADER.CheckSum == p.generate_checksum() else 1)' "$1"
}

# no_temp_left DIR: no "*.gen2prep-*" temporary output in DIR.
no_temp_left() { ! ls "$1" 2>/dev/null | grep -q 'gen2prep-'; }

# to_raw IMG OUT: any image to raw with qemu-img (independent reader).
to_raw() { qemu-img convert -q -O raw "$1" "$2"; }
