#!/bin/bash
# verify.sh - gen2prep verify: ready on converted disks (GPT and MBR, 6.1
# and 6.3) and on a Windows 8+ UEFI-style disk gen2prep did not make (GPT,
# ESP, MSR, Windows partition, a BCD laid out like bcdboot's, built here
# with sgdisk, mkfs.fat, mtools, mkhive, python3-hivex, ntfscp); and for
# each check a single corruption that makes exactly that check fail.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
need qemu-img sgdisk sfdisk mkfs.fat mcopy mmd ntfscat ntfscp
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"

failing() { # IMAGE: ids of the failing checks, space separated
	"$GEN2PREP" verify --json "$1" >"$TMP/v.json" 2>/dev/null
	jget "$TMP/v.json" '" ".join(c["id"] for c in j["checks"] if not c["pass"])'
}
only_fails() { # DESCRIPTION IMAGE CHECK-ID
	assert_exit "$1: verify exits 6" 6 "$GEN2PREP" verify "$2"
	assert_eq "$1: exactly '$3' fails" "$3" "$(failing "$2")"
}

W7=$(fixture win7-sp1 vhdx)
W81=$(fixture win81 vhdx)

# ---- converted disks are ready ----
assert_exit "convert win7-sp1 (gpt)" 0 "$GEN2PREP" convert -q "$W7" "$TMP/w7.raw"
assert_exit "verify: converted win7-sp1 gpt ready" 0 "$GEN2PREP" verify "$TMP/w7.raw"
assert_exit "verify --json" 0 "$GEN2PREP" verify --json "$TMP/w7.raw"
printf '%s' "$OUT" >"$TMP/w7.json"
assert_eq "verify --json: ready" true "$(jget "$TMP/w7.json" 'j["ready"]')"
assert_eq "verify --json: 13 checks, all pass" "13 13" "$(jget "$TMP/w7.json" '"%d %d" % (len(j["checks"]), sum(c["pass"] for c in j["checks"]))')"
assert_eq "verify --json: kernel 6.1" 6.1 "$(jget "$TMP/w7.json" 'j["kernel_version"]')"
assert_exit "convert win7-sp1 (mbr)" 0 "$GEN2PREP" convert -q --layout mbr "$W7" "$TMP/w7m.vhdx"
assert_exit "verify: converted win7-sp1 mbr ready" 0 "$GEN2PREP" verify "$TMP/w7m.vhdx"
assert_exit "convert win81 (gpt)" 0 "$GEN2PREP" convert -q "$W81" "$TMP/w81.raw"
assert_exit "verify: converted win81 ready" 0 "$GEN2PREP" verify "$TMP/w81.raw"
assert_exit "verify: the unconverted Gen1 disk is not ready" 6 "$GEN2PREP" verify "$W7"
assert_match "verify: Gen1 disk has no ESP" "FAIL esp " "$OUT"
assert_exit "verify: not an image" 3 "$GEN2PREP" verify "$TMP/none.vhdx"
assert_exit "verify: usage" 2 "$GEN2PREP" verify

# ---- a Windows 8.1 UEFI-style disk that gen2prep did not write ----
to_raw "$W81" "$TMP/in81.raw"
extract_part "$TMP/in81.raw" 2 "$TMP/uefi-win.ntfs"
WSTART=$(part_start "$TMP/in81.raw" 2) WSIZE=$(part_size "$TMP/in81.raw" 2)
rm -f "$TMP/in81.raw"
U=$TMP/uefi.raw
truncate -s $(((WSTART + WSIZE) + (1 << 20))) "$U"
sgdisk -U 11111111-2222-4333-8444-555555555555 \
	-n 1:2048:+100M -t 1:EF00 -c 1:"EFI system partition" -u 1:aaaaaaaa-0000-4000-8000-000000000001 \
	-n 2:0:+16M -t 2:0C01 -c 2:"Microsoft reserved partition" -u 2:aaaaaaaa-0000-4000-8000-000000000002 \
	-n 3:$((WSTART / 512)):+$((WSIZE / 512 - 1)) -t 3:0700 -c 3:"Basic data partition" -u 3:aaaaaaaa-0000-4000-8000-000000000003 "$U" >/dev/null
check "UEFI fixture: sgdisk -v clean" bash -c "sgdisk -v '$U' | grep -q 'No problems found'"
# the Windows volume: SYSTEM edited as a Gen2 install has it
ntfscat "$TMP/uefi-win.ntfs" Windows/System32/config/SYSTEM >"$TMP/SYSTEM"
"$PY" - "$TMP/SYSTEM" <<'EOF'
import hivex, sys, uuid
h = hivex.Hivex(sys.argv[1], write=True)
def key(path):
    n = h.root()
    for p in path.split("\\"): n = h.node_get_child(n, p)
    return n
for cs in ("ControlSet001", "ControlSet002"):
    h.node_set_value(key(cs + "\\Control"), {"key": "FirmwareBootDevice", "t": 1,
        "value": "multi(0)disk(0)rdisk(0)partition(1)\0".encode("utf-16-le")})
dmio = b"DMIO:ID:" + uuid.UUID("aaaaaaaa-0000-4000-8000-000000000003").bytes_le
md = key("MountedDevices")
h.node_set_value(md, {"key": "\\DosDevices\\C:", "t": 3, "value": dmio})
h.commit(None)
EOF
ntfscp -f "$TMP/uefi-win.ntfs" "$TMP/SYSTEM" Windows/System32/config/SYSTEM >/dev/null 2>&1
ntfscat "$TMP/uefi-win.ntfs" Windows/Boot/EFI/bootmgfw.efi >"$TMP/bootmgfw.efi"
put_part "$U" 3 "$TMP/uefi-win.ntfs"
rm -f "$TMP/uefi-win.ntfs"
# the ESP: mkfs.fat + mtools, the files bcdboot copies
truncate -s 100M "$TMP/uefi-esp.img"
mkfs.fat -F 32 -S 512 -s 1 -n SYSTEM -i 12345678 "$TMP/uefi-esp.img" >/dev/null
mmd -i "$TMP/uefi-esp.img" ::/EFI ::/EFI/Boot ::/EFI/Microsoft ::/EFI/Microsoft/Boot
mcopy -i "$TMP/uefi-esp.img" "$TMP/bootmgfw.efi" ::/EFI/Boot/bootx64.efi
mcopy -i "$TMP/uefi-esp.img" "$TMP/bootmgfw.efi" ::/EFI/Microsoft/Boot/bootmgfw.efi
# the BCD as bcdboot lays it out (doc/formats.md, BCD), from .reg text through mkhive
MKHIVE=""
for d in "$top_builddir/fixtures" "$top_srcdir/build-check/fixtures" "$top_srcdir/build/fixtures"; do [ -x "$d/mkhive" ] && MKHIVE=$d/mkhive && break; done
[ -n "$MKHIVE" ] || die "fixtures/mkhive not built"
"$PY" - >"$TMP/bcd.reg" <<'EOF'
import uuid
disk = uuid.UUID("11111111-2222-4333-8444-555555555555").bytes_le
def dev(part):   # 88-byte qualified partition device, GPT form (doc/formats.md, BCD partition device)
    b = bytearray(88)
    b[16:20] = (6).to_bytes(4, "little"); b[24:28] = (0x48).to_bytes(4, "little")
    b[32:48] = uuid.UUID(part).bytes_le; b[52:56] = (0).to_bytes(4, "little"); b[56:72] = disk
    return ",".join("%02x" % x for x in b)
def sz(s): return '"Element"="%s"' % s.replace("\\", "\\\\")
esp, win = dev("aaaaaaaa-0000-4000-8000-000000000001"), dev("aaaaaaaa-0000-4000-8000-000000000003")
bm, ld = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}", "{c0ffee00-1111-4222-8333-444444444444}"
print("Windows Registry Editor Version 5.00")
print('[Description]\n"KeyName"="BCD00000000"\n"System"=dword:00000001\n"TreatAsSystem"=dword:00000001')
def obj(g, t, elems):
    print("[Objects\\%s\\Description]\n\"Type\"=dword:%08x" % (g, t))
    for e, v in elems: print("[Objects\\%s\\Elements\\%s]\n%s" % (g, e, v))
obj(bm, 0x10100002, [("11000001", '"Element"=hex:' + esp), ("12000002", sz("\\EFI\\Microsoft\\Boot\\bootmgfw.efi")),
    ("12000004", sz("Windows Boot Manager")), ("23000003", '"Element"="%s"' % ld),
    ("24000001", '"Element"=hex(7):' + ",".join("%02x" % x for x in (ld + "\0\0").encode("utf-16-le"))),
    ("25000004", '"Element"=hex:1e,00,00,00,00,00,00,00')])
obj(ld, 0x10200003, [("11000001", '"Element"=hex:' + win), ("12000002", sz("\\Windows\\system32\\winload.efi")),
    ("12000004", sz("Windows 8.1")), ("21000001", '"Element"=hex:' + win), ("22000002", sz("\\Windows"))])
EOF
check "BCD fixture built by mkhive" "$MKHIVE" NewStoreRoot "$TMP/BCD" <"$TMP/bcd.reg"
mcopy -i "$TMP/uefi-esp.img" "$TMP/BCD" ::/EFI/Microsoft/Boot/BCD
check "UEFI fixture: ESP clean for fsck.fat" fsck.fat -n "$TMP/uefi-esp.img"
put_part "$U" 1 "$TMP/uefi-esp.img"
rm -f "$TMP/uefi-esp.img"
assert_exit "verify: a Windows 8.1 UEFI disk not made by gen2prep is ready" 0 "$GEN2PREP" verify -v "$U"
assert_exit "inspect: that UEFI install is not convertible (exit 4, as convert)" 4 "$GEN2PREP" inspect --json "$U"
printf '%s' "$OUT" >"$TMP/u.json"
assert_eq "inspect: that UEFI install is already-gen2 (the plan's blocker)" already-gen2 "$(jget "$TMP/u.json" '" ".join(w["code"] for w in j["blockers"] if w["code"] == "already-gen2")')"
assert_exit "convert refuses that UEFI install without --force" 4 "$GEN2PREP" convert -q "$U" "$TMP/u-again.raw"
rm -f "$U"

# ---- single corruptions, each failing exactly its check ----
# a flipped GPT header CRC (UEFI 5.3.2: HeaderCRC32 at offset 16 of LBA 1)
cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
printf '\xff' | dd of="$TMP/c.raw" bs=1 seek=$((512 + 16)) conv=notrunc status=none
only_fails "flipped GPT header CRC" "$TMP/c.raw" partition-table
assert_match "flipped GPT header CRC: sgdisk -v sees it too" "Main header: ERROR" "$(sgdisk -v "$TMP/c.raw" 2>&1)"

# a BCD whose loader names a partition that is not on the disk
cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
extract_part "$TMP/c.raw" 1 "$TMP/esp.img"
mcopy -n -i "$TMP/esp.img" ::/EFI/Microsoft/Boot/BCD "$TMP/BCD2"
"$PY" - "$TMP/BCD2" <<'EOF'
import hivex, sys
h = hivex.Hivex(sys.argv[1], write=True)
objs = h.node_get_child(h.root(), "Objects")
bm = h.node_get_child(objs, "{9dea862c-5cdd-4e70-acc1-f32b344d4795}")
el = h.node_get_child(bm, "Elements")
ld = h.value_value(h.node_get_value(h.node_get_child(el, "23000003"), "Element"))[1].decode("utf-16-le").rstrip("\0")
lel = h.node_get_child(h.node_get_child(objs, ld), "Elements")
for e in ("11000001", "21000001"):
    n = h.node_get_child(lel, e)
    v = bytearray(h.value_value(h.node_get_value(n, "Element"))[1])
    v[32:48] = bytes(range(0xA0, 0xB0))      # another partition GUID (doc/formats.md, BCD partition device: offset 0x20)
    h.node_set_value(n, {"key": "Element", "t": 3, "value": bytes(v)})
h.commit(None)
EOF
mcopy -o -i "$TMP/esp.img" "$TMP/BCD2" ::/EFI/Microsoft/Boot/BCD
put_part "$TMP/c.raw" 1 "$TMP/esp.img"
only_fails "BCD loader on a missing partition" "$TMP/c.raw" bcd-loader

# the second FAT differing from the first (a FAT write cut short)
cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
extract_part "$TMP/c.raw" 1 "$TMP/esp.img"
"$PY" - "$TMP/esp.img" <<'EOF'
import struct, sys
f = open(sys.argv[1], "r+b"); b = f.read(512)
bps, spc, rsvd = struct.unpack_from("<H", b, 11)[0], b[13], struct.unpack_from("<H", b, 14)[0]
total, fatsz = struct.unpack_from("<I", b, 32)[0], struct.unpack_from("<I", b, 36)[0]
clusters = (total - rsvd - 2 * fatsz) // spc
f.seek((rsvd + fatsz) * bps + 4 * (clusters + 1)); f.write(struct.pack("<I", 0x0FFFFFF7))
EOF
check_fails "fsck.fat -n also sees the FAT damage" fsck.fat -n "$TMP/esp.img"
put_part "$TMP/c.raw" 1 "$TMP/esp.img"
only_fails "second FAT differs" "$TMP/c.raw" esp-filesystem

# Windows 7: Ntfs Start back to 3, an unpatched hal.dll, a wrong checksum
w7_edit() { # WHAT: a copy of w7.raw with one NTFS file replaced
	cp --sparse=always "$TMP/w7.raw" "$TMP/c.raw"
	extract_part "$TMP/c.raw" 2 "$TMP/win.ntfs"
	"$@"
	put_part "$TMP/c.raw" 2 "$TMP/win.ntfs"
	rm -f "$TMP/win.ntfs"
}
ntfs_start_3() {
	ntfscat "$TMP/win.ntfs" Windows/System32/config/SYSTEM >"$TMP/S"
	hive_set_dword "$TMP/S" 'ControlSet001\Services\Ntfs' Start 3
	ntfscp -f "$TMP/win.ntfs" "$TMP/S" Windows/System32/config/SYSTEM >/dev/null 2>&1
}
w7_edit ntfs_start_3
only_fails "Ntfs Start 3" "$TMP/c.raw" boot-start

to_raw "$W7" "$TMP/in7.raw"
extract_part "$TMP/in7.raw" 2 "$TMP/in7.ntfs"
ntfscat "$TMP/in7.ntfs" Windows/System32/hal.dll >"$TMP/hal-orig.dll"
rm -f "$TMP/in7.raw" "$TMP/in7.ntfs"
unpatched_hal() { ntfscp -f "$TMP/win.ntfs" "$TMP/hal-orig.dll" Windows/System32/hal.dll >/dev/null 2>&1; }
w7_edit unpatched_hal
only_fails "unpatched hal.dll" "$TMP/c.raw" patches

bad_checksum() {
	ntfscat "$TMP/win.ntfs" Windows/System32/hal.dll >"$TMP/hal.dll"
	"$PY" - "$TMP/hal.dll" <<'EOF'
import pefile, struct, sys
p = pefile.PE(sys.argv[1]); off = p.OPTIONAL_HEADER.get_file_offset() + 64   # CheckSum (PE/COFF 3.4.2)
p.close()
b = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into("<I", b, off, struct.unpack_from("<I", b, off)[0] ^ 0x5A5A)
open(sys.argv[1], "wb").write(b)
EOF
	ntfscp -f "$TMP/win.ntfs" "$TMP/hal.dll" Windows/System32/hal.dll >/dev/null 2>&1
}
w7_edit bad_checksum
only_fails "wrong hal.dll checksum" "$TMP/c.raw" checksums

# ---- the other checks, one corruption each ----
# two ESPs: a second EF00 partition in the free space at the end
cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
sgdisk -n 3:0:0 -t 3:EF00 "$TMP/c.raw" >/dev/null
check "second ESP created (sgdisk)" test "$(part_field "$TMP/c.raw" 3 type)" = C12A7328-F81F-11D2-BA4B-00A0C93EC93B
only_fails "a second ESP" "$TMP/c.raw" esp

# bootx64.efi that is not an EFI application
cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
extract_part "$TMP/c.raw" 1 "$TMP/esp.img"
printf 'MZ but not really a PE file' >"$TMP/notpe.efi"
mcopy -o -i "$TMP/esp.img" "$TMP/notpe.efi" ::/EFI/Boot/bootx64.efi
put_part "$TMP/c.raw" 1 "$TMP/esp.img"
only_fails "bootx64.efi not an EFI application" "$TMP/c.raw" boot-files

bcd_edit() { # IMAGE PYTHON-BODY: runs the body with h (hivex, writable) and bm, lel (loader Elements)
	extract_part "$1" 1 "$TMP/esp.img"
	mcopy -n -i "$TMP/esp.img" ::/EFI/Microsoft/Boot/BCD "$TMP/BCD3"
	"$PY" - "$TMP/BCD3" "$2" <<'PYEOF'
import hivex, sys
h = hivex.Hivex(sys.argv[1], write=True)
objs = h.node_get_child(h.root(), "Objects")
bm = h.node_get_child(h.node_get_child(objs, "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"), "Elements")
ld = h.value_value(h.node_get_value(h.node_get_child(bm, "23000003"), "Element"))[1].decode("utf-16-le").rstrip("\0")
lel = h.node_get_child(h.node_get_child(objs, ld), "Elements")
def get(el, e): return bytearray(h.value_value(h.node_get_value(h.node_get_child(el, e), "Element"))[1])
def put(el, e, v): h.node_set_value(h.node_get_child(el, e), {"key": "Element", "t": 3, "value": bytes(v)})
exec(sys.argv[2])
h.commit(None)
PYEOF
	mcopy -o -i "$TMP/esp.img" "$TMP/BCD3" ::/EFI/Microsoft/Boot/BCD
	put_part "$1" 1 "$TMP/esp.img"
}
# {bootmgr} device naming the Windows partition instead of the ESP
cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
bcd_edit "$TMP/c.raw" 'put(bm, "11000001", get(lel, "21000001"))'
only_fails "{bootmgr} device not the ESP" "$TMP/c.raw" bcd

sys_edit() { # IMAGE PYTHON-BODY on the SYSTEM hive (h, key())
	extract_part "$1" 2 "$TMP/win.ntfs"
	ntfscat "$TMP/win.ntfs" Windows/System32/config/SYSTEM >"$TMP/S"
	"$PY" - "$TMP/S" "$2" <<'PYEOF'
import hivex, sys
h = hivex.Hivex(sys.argv[1], write=True)
def key(path):
    n = h.root()
    for p in path.split("\\"): n = h.node_get_child(n, p)
    return n
exec(sys.argv[2])
h.commit(None)
PYEOF
	ntfscp -f "$TMP/win.ntfs" "$TMP/S" Windows/System32/config/SYSTEM >/dev/null 2>&1
	put_part "$1" 2 "$TMP/win.ntfs"
	rm -f "$TMP/win.ntfs"
}
cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
sys_edit "$TMP/c.raw" 'h.node_set_value(key("ControlSet002\\Control"), {"key": "FirmwareBootDevice", "t": 1, "value": "multi(0)disk(0)rdisk(0)partition(2)\0".encode("utf-16-le")})'
only_fails "FirmwareBootDevice naming partition 2" "$TMP/c.raw" firmware-boot-device

cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
sys_edit "$TMP/c.raw" '
names = [h.value_key(v) for v in h.node_values(key("MountedDevices"))]
for n in names:
    if n.lower().startswith("\\dosdevices\\"):
        h.node_set_value(key("MountedDevices"), {"key": n, "t": 3, "value": bytes.fromhex("0b0a810c00000000f0ef1500")})'
only_fails "MountedDevices still in MBR form" "$TMP/c.raw" mounted-devices

# a SYSTEM hive not written back cleanly (primary sequence number ahead)
cp --sparse=always "$TMP/w81.raw" "$TMP/c.raw"
extract_part "$TMP/c.raw" 2 "$TMP/win.ntfs"
ntfscat "$TMP/win.ntfs" Windows/System32/config/SYSTEM >"$TMP/S"
"$PY" -c '
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into("<I", b, 4, struct.unpack_from("<I", b, 4)[0] + 1)
x = 0
for i in range(0, 508, 4): x ^= struct.unpack_from("<I", b, i)[0]
struct.pack_into("<I", b, 508, x)
open(sys.argv[1], "wb").write(b)' "$TMP/S"
ntfscp -f "$TMP/win.ntfs" "$TMP/S" Windows/System32/config/SYSTEM >/dev/null 2>&1
put_part "$TMP/c.raw" 2 "$TMP/win.ntfs"
rm -f "$TMP/win.ntfs"
only_fails "dirty SYSTEM hive" "$TMP/c.raw" system-hive

# Windows 7: the loader entry without nointegritychecks
cp --sparse=always "$TMP/w7.raw" "$TMP/c.raw"
bcd_edit "$TMP/c.raw" 'h.node_delete_child(h.node_get_child(lel, "16000048"))'
only_fails "loader without nointegritychecks" "$TMP/c.raw" loader-integrity
