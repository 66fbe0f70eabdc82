#!/bin/bash
# partition.sh - partition_read against sfdisk/sgdisk on disks they made;
# MBR->GPT conversion and 0xEF addition checked with sgdisk -v / sfdisk --json;
# layout refusals (no room for GPT entries, no free MBR slot).
. "$(dirname "$0")/lib.sh"
need sfdisk sgdisk python3
ET="$top_builddir/tests/esptool"
[ -x "$ET" ] || die "tests/esptool not built"

sfj() { sfdisk --json "$1" > "$TMP/sf.json" && jget "$TMP/sf.json" "$2"; }

# --- MBR: primaries, extended + logicals, active flag, signature --------------
M="$TMP/mbr.img"
truncate -s 64M "$M"
printf 'label: dos\nlabel-id: 0x1234abcd\nstart=63,size=2000,type=7,bootable\nstart=4096,size=40000,type=5\nstart=4160,size=10000,type=83\nstart=16384,size=8000,type=7\nstart=50000,size=10000,type=27\n' | sfdisk -q "$M" || die "sfdisk failed"
SUM_M=$(sha "$M")
check "ptread MBR" "$ET" ptread "$M"
"$ET" ptread "$M" > "$TMP/mbr.txt"
assert_match "MBR signature" "signature 0x1234abcd" "$(head -1 "$TMP/mbr.txt")"
# every partition sfdisk lists (including the extended container) with the same start/size/type
n=$(sfj "$M" 'len(j["partitiontable"]["partitions"])')
assert_eq "MBR partition count as sfdisk" "$n" "$(grep -c '^part ' "$TMP/mbr.txt")"
for i in $(seq 0 $((n - 1))); do
	num=$(sfj "$M" "j['partitiontable']['partitions'][$i]['node'][len('$M'):]")
	st=$(sfj "$M" "j['partitiontable']['partitions'][$i]['start']")
	sz=$(sfj "$M" "j['partitiontable']['partitions'][$i]['size']")
	ty=$(sfj "$M" "'%02x' % int(j['partitiontable']['partitions'][$i]['type'], 16)")
	assert_match "MBR part $num as sfdisk" "^part $num start $st size $sz type $ty" "$(grep "^part $num " "$TMP/mbr.txt")"
done
assert_match "active flag on 1" "^part 1 .* active" "$(grep '^part 1 ' "$TMP/mbr.txt")"
assert_match "5 is logical" "^part 5 .* logical" "$(grep '^part 5 ' "$TMP/mbr.txt")"
assert_match "6 is logical" "^part 6 .* logical" "$(grep '^part 6 ' "$TMP/mbr.txt")"
if grep -q '^part 3 .* active' "$TMP/mbr.txt"; then fail "3 is not active"; else ok "3 is not active"; fi

# --- GPT made by sgdisk ------------------------------------------------------------
G="$TMP/gpt.img"
truncate -s 256M "$G"
sgdisk -o -U 9dea862c-5cdd-4e70-acc1-f32b344d4795 \
	-n 1:2048:+100M -t 1:EF00 -c 1:"EFI system" -u 1:11111111-2222-3333-4444-555555555555 \
	-n 2:0:+16M -t 2:0C01 -c 2:"Microsoft reserved" \
	-n 4:0:+50M -t 4:0700 -c 4:"Basic data" \
	-n 7:0:+20M -t 7:2700 -c 7:"Recovery" -A 7:set:0 -A 7:set:63 "$G" >/dev/null || die "sgdisk failed"
"$ET" ptread "$G" > "$TMP/gpt.txt" || fail "ptread GPT"
assert_match "GPT disk GUID" "guid 9dea862c-5cdd-4e70-acc1-f32b344d4795 first 34 last 524254" "$(head -1 "$TMP/gpt.txt")"
assert_eq "GPT partition count" 4 "$(grep -c '^part ' "$TMP/gpt.txt")"
for num in 1 2 4 7; do
	info=$(sgdisk -i "$num" "$G")
	st=$(printf '%s\n' "$info" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
	en=$(printf '%s\n' "$info" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
	ty=$(printf '%s\n' "$info" | sed -n 's/^Partition GUID code: \([0-9A-F-]*\).*/\1/p' | tr A-F a-f)
	uu=$(printf '%s\n' "$info" | sed -n 's/^Partition unique GUID: \([0-9A-F-]*\).*/\1/p' | tr A-F a-f)
	nm=$(printf '%s\n' "$info" | sed -n "s/^Partition name: '\(.*\)'/\1/p")
	at=$(printf '%s\n' "$info" | sed -n 's/^Attribute flags: \([0-9a-f]*\).*/\1/p')
	assert_eq "GPT part $num as sgdisk -i" \
		"part $num start $st size $((en - st + 1)) type $ty uuid $uu attrs 0x$at name '$nm'" \
		"$(grep "^part $num " "$TMP/gpt.txt")"
done

# --- partition_verify: the GPT CRCs, checked against sgdisk -v ------------------------
# (UEFI 2.10 5.3.2: HeaderCRC32 at offset 16 of the header; the entry array
# of the primary header at LBA 2, entry 1's name at byte 56 of it)
# sgdisk -v says "No problems found" even after loading the backup; its
# "Main header: ERROR" / "CRCs don't match" lines tell the damage
sgdisk_clean() { local o; o=$(sgdisk -v "$1" 2>&1); grep -q 'No problems found' <<<"$o" && ! grep -qE "ERROR|CRCs don't match" <<<"$o"; }
assert_eq "ptverify: sgdisk's GPT is valid" valid "$("$ET" ptverify "$G" 2>&1)"
check "sgdisk -v agrees it is clean" sgdisk_clean "$G"
assert_eq "ptverify: MBR is valid" valid "$("$ET" ptverify "$M" 2>&1)"
flip() { # IMAGE OFFSET: a copy with one byte inverted
	cp --sparse=always "$1" "$TMP/flip.img"
	python3 - "$TMP/flip.img" "$2" <<'PY'
import sys
f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1); f.seek(o); f.write(bytes([b[0] ^ 0xFF]))
PY
}
last=$(($(stat -c %s "$G") / 512 - 1))
for c in "primary header CRC:$((512 + 16)):header CRC32 mismatch" \
	 "primary entry array:$((1024 + 56)):entry array of the header at LBA 1: CRC32 mismatch" \
	 "backup header CRC:$((last * 512 + 16)):LBA $last: header CRC32 mismatch"; do
	what=${c%%:*} rest=${c#*:}; off=${rest%%:*} why=${rest#*:}
	flip "$G" "$off"
	assert_exit "ptverify: flipped $what fails" 1 "$ET" ptverify "$TMP/flip.img"
	assert_match "ptverify: flipped $what: reason" "$why" "$ERR"
	check_fails "sgdisk -v also finds the flipped $what" sgdisk_clean "$TMP/flip.img"
done
blank="$TMP/blank.img"; truncate -s 1M "$blank"
assert_exit "ptverify: a blank disk has no table" 1 "$ET" ptverify "$blank"
assert_match "ptverify: blank: reason" "no partition table" "$ERR"
rm -f "$TMP/flip.img" "$blank"

# --- MBR -> GPT conversion ------------------------------------------------------------
C="$TMP/conv.img"
check "MBR->GPT write" "$ET" ptgpt "$M" "$C" 5b8d6f0a-1c2e-4f3a-9b7c-0d1e2f3a4b5c
assert_eq "input untouched" "$SUM_M" "$(sha "$M")"
check "sgdisk -v clean" bash -c "sgdisk -v '$C' | grep -q 'No problems found'"
sfdisk --json "$C" > "$TMP/c.json"
assert_eq "label gpt" gpt "$(jget "$TMP/c.json" 'j["partitiontable"]["label"]')"
assert_eq "disk GUID" 5B8D6F0A-1C2E-4F3A-9B7C-0D1E2F3A4B5C "$(jget "$TMP/c.json" 'j["partitiontable"]["id"]')"
assert_eq "first-lba 34" 34 "$(jget "$TMP/c.json" 'j["partitiontable"]["firstlba"]')"
conv=$(jget "$TMP/c.json" '" ".join("%s:%d:%d:%s" % (p["node"][-1], p["start"], p["size"], p["type"]) for p in j["partitiontable"]["partitions"])')
assert_eq "numbers, starts, sizes, types kept" \
	"1:63:2000:EBD0A0A2-B9E5-4433-87C0-68B6B72699C7 3:50000:10000:DE94BBA4-06D1-4D40-A16A-BFD50179D6AC 5:4160:10000:EBD0A0A2-B9E5-4433-87C0-68B6B72699C7 6:16384:8000:EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" "$conv"
assert_match "recovery attributes" "RequiredPartition.*GUID:63" "$(jget "$TMP/c.json" '[p.get("attrs","") for p in j["partitiontable"]["partitions"] if p["node"].endswith("3")][0]')"
assert_match "names" "part 5" "$(sgdisk -i 5 "$C")"
# only the table areas changed: LBA 0-33 and the last 33 sectors
changed=$(cmp -l "$M" "$C" | awk '{s=int(($1-1)/512); if (s>33 && s<131039) print s}' | head -1)
assert_eq "only table sectors changed" "" "$changed"
# deterministic
C2="$TMP/conv2.img"
"$ET" ptgpt "$M" "$C2" 5b8d6f0a-1c2e-4f3a-9b7c-0d1e2f3a4b5c >/dev/null 2>&1
assert_eq "deterministic output" "$(sha "$C")" "$(sha "$C2")"
# our reader reads our output as sgdisk does
"$ET" ptread "$C" > "$TMP/c.txt"
assert_match "read back part 3 attrs" "^part 3 start 50000 size 10000 type de94bba4-06d1-4d40-a16a-bfd50179d6ac .* attrs 0x8000000000000001" "$(grep '^part 3 ' "$TMP/c.txt")"

# --- MBR + 0xEF -------------------------------------------------------------------------
M2="$TMP/mbr2.img"
truncate -s 64M "$M2"
printf 'label: dos\nlabel-id: 0xcafe0001\nstart=2048,size=40000,type=7,bootable\n' | sfdisk -q "$M2"
E="$TMP/esp.img"
check "add 0xEF primary" "$ET" ptaddesp "$M2" "$E" 2 100000 20000
sfdisk --json "$E" > "$TMP/e.json"
assert_eq "signature kept" 0xcafe0001 "$(jget "$TMP/e.json" 'j["partitiontable"]["id"]')"
assert_eq "partitions after adding ESP" "1:2048:40000:7:True 2:100000:20000:ef:False" \
	"$(jget "$TMP/e.json" '" ".join("%s:%d:%d:%s:%s" % (p["node"][-1], p["start"], p["size"], p["type"], p.get("bootable", False)) for p in j["partitiontable"]["partitions"])')"
changed=$(cmp -l "$M2" "$E" | awk '{print int(($1-1)/512)}' | sort -u | tr '\n' ' ')
assert_eq "only sector 0 changed" "0 " "$changed"

# --- refusals -------------------------------------------------------------------------------
R="$TMP/r.img"
truncate -s 64M "$R"
# partition at LBA 63 and another at LBA 1..33: no room for GPT entries
printf 'label: dos\nstart=63,size=2000,type=7\nstart=10,size=20,type=7\n' | sfdisk -q --no-tell-kernel "$R" 2>/dev/null
if "$ET" ptread "$R" | grep -q '^part 2 start 10'; then
	assert_exit "no room for GPT entries refused (E_NOSPACE)" 4 "$ET" ptgpt "$R" "$TMP/r2.img" 5b8d6f0a-1c2e-4f3a-9b7c-0d1e2f3a4b5c
	assert_match "reason names LBA 34" "before LBA 34: no room for the GPT entries" "$ERR"
	[ -e "$TMP/r2.img" ] && fail "no output on refusal" || ok "no output on refusal"
else
	fail "sfdisk did not make the LBA 10 partition"
fi
# last partition in the backup GPT area
truncate -s 64M "$TMP/r3.img"
printf 'label: dos\nstart=2048,size=129000,type=7\n' | sfdisk -q "$TMP/r3.img"
assert_exit "partition over the backup GPT refused" 4 "$ET" ptgpt "$TMP/r3.img" "$TMP/r4.img" 5b8d6f0a-1c2e-4f3a-9b7c-0d1e2f3a4b5c
assert_match "reason names the backup area" "inside the backup GPT area" "$ERR"
# 4 primaries full: no free slot for the ESP
truncate -s 64M "$TMP/full.img"
printf 'label: dos\nstart=2048,size=2048,type=7\nstart=4096,size=2048,type=7\nstart=8192,size=2048,type=7\nstart=16384,size=2048,type=7\n' | sfdisk -q "$TMP/full.img"
assert_exit "no free MBR slot refused" 4 "$ET" ptaddesp "$TMP/full.img" "$TMP/f2.img" 5 100000 20000
assert_match "reason: no free MBR slot" "no free MBR slot" "$ERR"
# overlapping ESP refused
assert_exit "overlap refused" 4 "$ET" ptaddesp "$M2" "$TMP/o.img" 2 30000 20000
assert_match "reason: overlap" "overlap" "$ERR"

# --- no table ---------------------------------------------------------------------------------
truncate -s 8M "$TMP/blank.img"
assert_match "blank disk reads as none" "^table none" "$("$ET" ptread "$TMP/blank.img")"
