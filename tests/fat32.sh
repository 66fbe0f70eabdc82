#!/bin/bash
# fat32.sh - ESPs built by fixtures/mkesp (our partition + fat32 code) read
# by independent tools: fsck.fat -n clean, mdir/mcopy/mtype (mtools) show
# the same tree and bytes; fat32_check and the reader agree; corruptions
# make fat32_check fail (and fsck.fat complain).
. "$(dirname "$0")/lib.sh"
need fsck.fat mdir mcopy mtype python3
MK="$top_builddir/fixtures/mkesp"
ET="$top_builddir/tests/esptool"
[ -x "$MK" ] && [ -x "$ET" ] || die "fixtures/mkesp or tests/esptool not built"
OFF=1048576

# --- input tree: nested dirs, long names, a large file, many files in one dir --
S="$TMP/src"
mkdir -p "$S/EFI/Boot" "$S/EFI/Microsoft/Boot/en-US" "$S/EFI/Microsoft/Boot/Fonts" "$S/a/b/c/d/e/f" "$S/many"
python3 - "$S" <<'PY'
import os, sys, random
r = random.Random(7)
s = sys.argv[1]
def put(p, data): open(os.path.join(s, p), "wb").write(data)
put("EFI/Boot/bootx64.efi", bytes(r.randrange(256) for _ in range(70000)))
put("EFI/Microsoft/Boot/bootmgfw.efi", bytes(r.randrange(256) for _ in range(70001)))
put("EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui", b"mui" * 1000)
put("EFI/Microsoft/Boot/BCD", bytes(r.randrange(256) for _ in range(3 * 1024 * 1024 + 7)))
put("EFI/Microsoft/Boot/Fonts/wgl4_boot.ttf", b"font" * 5000)
put("EFI/Microsoft/Boot/empty.log", b"")
put("a/b/c/d/e/f/deep file with spaces.txt", b"deep\n")
put("a/UPPER.TXT", b"upper\n")
put("a/Mixed Case Name.Longext", b"mixed\n")
for i in range(300):
    put("many/longfilename_%03d.txt" % i, ("file %d\n" % i).encode())
PY
args=()
while IFS= read -r f; do args+=("${f#$S/}=$f"); done < <(find "$S" -type f | sort)
D="$TMP/esp.img"
check "mkesp GPT with the tree" "$MK" --size 128 --esp-size 100 "$D" "${args[@]}"
[ -s "$D" ] || die "mkesp made no image"

# fsck.fat on the partition extracted (fsck.fat has no offset option)
dd if="$D" of="$TMP/p.img" bs=1M skip=1 count=100 conv=sparse status=none
check "fsck.fat -n clean" fsck.fat -n "$TMP/p.img"
assert_match "fsck.fat sees FAT32 with 1 sector/cluster" "512 bytes per cluster" "$(fsck.fat -n -v "$TMP/p.img" 2>&1)"
assert_match "fsck.fat: 32 reserved sectors" "First FAT starts at byte 16384 \(sector 32\)" "$(fsck.fat -n -v "$TMP/p.img" 2>&1)"
info=$(python3 - "$TMP/p.img" <<'PY'
import sys, struct
b = open(sys.argv[1], "rb").read(512)
tot = struct.unpack_from("<I", b, 32)[0]; fatsz = struct.unpack_from("<I", b, 36)[0]
print(b[21], b[13], struct.unpack_from("<H", b, 48)[0], struct.unpack_from("<H", b, 50)[0],
      struct.unpack_from("<I", b, 44)[0], (tot - 32 - 2 * fatsz) // b[13] >= 65525)
PY
)
assert_eq "media F8, 1 spc, FSInfo 1, backup 6, root 2, >=65525 clusters" "248 1 1 6 2 True" "$info"

# mtools: the whole tree back, byte for byte, names as given
rm -rf "$TMP/out"; mkdir "$TMP/out"
check "mcopy -s the tree" mcopy -s -n -i "$D@@$OFF" "::/EFI" "::/a" "::/many" "$TMP/out/"
check "tree equal to the input (diff -r)" diff -r "$S" "$TMP/out"
assert_eq "BCD sha256 via mtype" "$(sha "$S/EFI/Microsoft/Boot/BCD")" \
	"$(mtype -i "$D@@$OFF" ::/EFI/Microsoft/Boot/BCD | sha256sum | cut -d' ' -f1)"
listing=$(mdir -i "$D@@$OFF" ::/EFI/Microsoft/Boot/en-US)
assert_match "long name bootmgfw.efi.mui listed" "bootmgfw\.efi\.mui" "$listing"
assert_match "its alias BOOTMG~1.MUI" "BOOTMG~1 MUI" "$listing"
assert_match "Microsoft has alias MICROS~1" "MICROS~1 +<DIR> .* Microsoft" "$(mdir -i "$D@@$OFF" ::/EFI)"
assert_eq "300 files in one directory" 300 "$(mdir -b -i "$D@@$OFF" ::/many | grep -c longfilename_)"
aliases=$(mdir -i "$D@@$OFF" ::/many | awk '/longfilename_/ {print $1}' | sort -u | wc -l)
assert_eq "300 distinct 8.3 aliases" 300 "$aliases"
assert_match "alias ~10 form" "LONGF~10 TXT" "$(mdir -i "$D@@$OFF" ::/many)"
assert_match "alias ~100 form" "LONG~100 TXT" "$(mdir -i "$D@@$OFF" ::/many)"
assert_match "8.3 upper-case name has no alias" "UPPER +TXT" "$(mdir -i "$D@@$OFF" ::/a)"
assert_match "timestamps from SOURCE_DATE_EPOCH" "2009-10-22" "$(mdir -i "$D@@$OFF" ::/a)"

# our reader and check
check "fat32_check clean" "$ET" fatcheck "$D" 1
assert_eq "reader: BCD bytes" "$(sha "$S/EFI/Microsoft/Boot/BCD")" "$("$ET" fatcat "$D" 1 /EFI/Microsoft/Boot/BCD | sha256sum | cut -d' ' -f1)"
assert_eq "reader: case-insensitive lookup" "file 5" "$("$ET" fatstat "$D" 1 'a/b/c/d/e/f/DEEP FILE WITH SPACES.TXT')"
assert_eq "reader: lookup by 8.3 alias" "dir" "$("$ET" fatstat "$D" 1 /EFI/MICROS~1)"
assert_eq "reader: absent" "absent" "$("$ET" fatstat "$D" 1 /EFI/Boot/nothere.efi)"
assert_eq "reader: empty file" "file 0" "$("$ET" fatstat "$D" 1 /EFI/Microsoft/Boot/empty.log)"

# deterministic
check "second mkesp" "$MK" --size 128 --esp-size 100 "$TMP/esp2.img" "${args[@]}"
assert_eq "same bytes twice" "$(sha "$D")" "$(sha "$TMP/esp2.img")"

# MBR layout (0xEF) also clean
check "mkesp MBR" "$MK" --table mbr --size 128 "$TMP/mbr.img" EFI/Boot/bootx64.efi="$S/EFI/Boot/bootx64.efi"
assert_match "MBR type ef at 1 MiB" "start= +2048, size= +204800, type=ef" "$(sfdisk -d "$TMP/mbr.img")"
dd if="$TMP/mbr.img" of="$TMP/pm.img" bs=1M skip=1 count=100 conv=sparse status=none
check "fsck.fat -n clean (MBR)" fsck.fat -n "$TMP/pm.img"

# too small for FAT32
assert_exit "20 MiB ESP refused" 1 "$MK" --size 64 --esp-size 20 "$TMP/small.img" x=/dev/null
assert_match "reason: clusters" "FAT32 needs at least 65525" "$ERR"

# --- corruptions: fat32_check must fail (and fsck.fat must complain) -----------
corrupt() { # NAME PYTHON-BODY (p = bytearray of the partition image, helpers below)
	cp --sparse=always "$D" "$TMP/c.img"
	python3 - "$TMP/c.img" "$OFF" "$2" <<'PY'
import sys, struct
path, off, body = sys.argv[1], int(sys.argv[2]), sys.argv[3]
f = open(path, "r+b")
f.seek(off); bs = f.read(512)
fatsz = struct.unpack_from("<I", bs, 36)[0]
fat1, fat2 = off + 32 * 512, off + (32 + fatsz) * 512
def rd(o, n): f.seek(o); return f.read(n)
def wr(o, b): f.seek(o); f.write(b)
def fat(c, v, copies=(1, 2)):
    for base in (fat1 if 1 in copies else None, fat2 if 2 in copies else None):
        if base is not None: wr(base + 4 * c, struct.pack("<I", v))
exec(body)
PY
	assert_exit "corruption '$1': fat32_check fails" 1 "$ET" fatcheck "$TMP/c.img" 1
	assert_match "corruption '$1': reason" "$3" "$ERR"
}
corrupt "FAT copies differ" "fat(3, 0x0FFFFFF8, copies=(2,))" "FAT copy 2 differs"
corrupt "lost cluster" "fat(150000, 0x0FFFFFFF)" "lost"
corrupt "chain into free cluster" "fat(4, 0)" "free|clusters for"
corrupt "cross link" "
c = struct.unpack_from('<I', rd(fat1 + 4 * 3, 4))[0]
fat(3, 4)" "cross-linked|clusters for|lost"
corrupt "backup boot sector" "wr(off + 6 * 512 + 3, b'XXXX')" "backup boot sector"
corrupt "FSInfo signature" "wr(off + 512, b'\\0\\0\\0\\0')" "FSInfo"
corrupt "FSInfo free count" "wr(off + 512 + 488, struct.pack('<I', 5))" "free count"
corrupt "boot signature" "wr(off + 510, b'\\0\\0')" "signature"
corrupt "chain loop" "fat(5, 5)" "loops|clusters for|cross"
# fsck.fat agrees that a FAT mismatch is a problem
cp --sparse=always "$D" "$TMP/c.img"
python3 -c "
import struct,sys
f=open(sys.argv[1],'r+b'); f.seek($OFF); bs=f.read(512); fz=struct.unpack_from('<I',bs,36)[0]
f.seek($OFF+(32+fz)*512+4*150000); f.write(struct.pack('<I',0x0FFFFFFF))" "$TMP/c.img"
dd if="$TMP/c.img" of="$TMP/pc.img" bs=1M skip=1 count=100 conv=sparse status=none
check_fails "fsck.fat -n also rejects the FAT mismatch" fsck.fat -n "$TMP/pc.img"
