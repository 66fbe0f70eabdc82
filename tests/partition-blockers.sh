#!/bin/bash
# tests/partition-blockers.sh - partition tables that do not describe the
# disk (issue 10): an entry past the end of the disk, entries overlapping,
# a logical partition outside its extended partition are blockers with
# their own ids in inspect, convert --dry-run and convert alike (nothing
# written, input unchanged) and verify fails on them; an NTFS volume larger
# than its partition is a warning. Each fixture is checked with sfdisk
# first. A VHDX whose 'vhdxfile' identifier is damaged, and a VHD without
# its footers, are refused as damaged images (exit 3), not read as raw.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
. "$(dirname "$0")/refusals-lib.sh"
need qemu-img sfdisk mkntfs python3
[ -x "$GEN2PREP" ] || skip "gen2prep not built"

# ---- past the end: entry 2 runs to the 2 TiB MBR limit on a 1 GiB disk ----
img=$(bad_fixture partition-past-end)
assert_match "past-end: sfdisk sees more sectors than the disk has" "greater than the maximum 2097152" "$(sfdisk -V "$img" 2>&1)"
assert_eq "past-end: sfdisk entry 2 size" 4294760447 "$(( $(part_size "$img" 2) / 512 ))"
blocked_everywhere past-end "$img" partition-past-end "partition 2 .*runs past the end of the disk \\(2097152 sectors"
assert_exit "past-end: verify fails" 6 "$GEN2PREP" verify "$img"
assert_match "past-end: verify names the partition" "FAIL partition-table +partition 2 .*past the end" "$OUT"

# a VHDX whose Logical Sector Size item says 4096 over a table written for
# 512-byte sectors (issue 9 item 5): the blocker says what contradicts what
img=$(bad_fixture sector-size-mismatch vhdx)
assert_match "sector-size-mismatch: vhdiinfo reads 4096-byte sectors" "4096" "$(vhdiinfo "$img" 2>&1 | grep -i 'bytes per sector')"
blocked_everywhere sector-size-mismatch "$img" partition-past-end "declares 4096-byte logical sectors but its partition table was written for 512-byte sectors"

# ---- overlap: System Reserved runs 1 MiB into the Windows partition ----
img=$(bad_fixture partition-overlap)
assert_match "overlap: sfdisk sees it" "Partition 1: overlaps partition 2" "$(sfdisk -V "$img" 2>&1)"
blocked_everywhere overlap "$img" partition-overlap "partitions 1 \\(bytes 1048576-106954751\\) and 2 \\(bytes 105906176-[0-9]+\\) overlap"
assert_exit "overlap: verify fails" 6 "$GEN2PREP" verify "$img"
assert_match "overlap: verify says so" "FAIL partition-table +partitions 1 .* overlap" "$OUT"

# ---- a logical partition (EBR chain) leaving its extended partition ----
img=$(bad_fixture logical-outside-extended)
assert_match "logical: sfdisk sees it" "Logical partition 5: not entirely in partition 3" "$(sfdisk -V "$img" 2>&1)"
blocked_everywhere logical "$img" partition-outside-extended "logical partition 5 .*not inside its extended partition 3"
assert_exit "logical: verify fails" 6 "$GEN2PREP" verify "$img"
assert_match "logical: verify says so" "FAIL partition-table +logical partition 5" "$OUT"

# ---- NTFS larger than its partition: a warning, still convertible ----
img=$(bad_fixture ntfs-larger)
ntfs_sectors=$(dd if="$img" bs=1 skip=$(( $(part_start "$img" 2) + 0x28 )) count=8 status=none | od -An -t u8 | tr -d ' ')
part_sectors=$(( $(part_size "$img" 2) / 512 ))
check "ntfs-larger: the boot sector's total sectors ($ntfs_sectors) exceed the partition's ($part_sectors)" test "$ntfs_sectors" -gt "$part_sectors"
assert_exit "ntfs-larger: inspect exit 0 (warning)" 0 "$GEN2PREP" inspect --json "$img"
printf '%s\n' "$OUT" >"$TMP/larger.json"
assert_match "ntfs-larger: warning id" "ntfs-larger-than-partition" "$(ids "$TMP/larger.json" 'j["warnings"]')"
assert_eq "ntfs-larger: no blockers" "[]" "$(jget "$TMP/larger.json" 'j["blockers"]')"
assert_exit "ntfs-larger: dry run exit 0" 0 "$GEN2PREP" convert --dry-run --json "$img" "$TMP/l.vhdx"
printf '%s\n' "$OUT" >"$TMP/larger.dry.json"
assert_match "ntfs-larger: dry run warns" "NTFS on partition 2 says it is $((ntfs_sectors * 512)) bytes" "$(jget "$TMP/larger.dry.json" 'j["plan"]["warnings"]')"

# ---- a sound table stays sound (the checks can pass) ----
img=$(fixture win7-sp1 raw)
assert_exit "sound table: inspect exit 0" 0 "$GEN2PREP" inspect --json "$img"
printf '%s\n' "$OUT" >"$TMP/sound.json"
assert_eq "sound table: no blockers" "[]" "$(jget "$TMP/sound.json" 'j["blockers"]')"

# ---- damaged containers: exit 3, saying what was found ----
vhdx=$(fixture win7-sp1 vhdx)
cp --sparse=always "$vhdx" "$TMP/dmg.vhdx"
printf 'vhdxfilX' | dd of="$TMP/dmg.vhdx" bs=1 conv=notrunc status=none
check "damaged VHDX: qemu-img no longer sees a VHDX" sh -c "qemu-img info --output=json '$TMP/dmg.vhdx' | grep -q '\"format\": \"raw\"'"
before=$(sha "$TMP/dmg.vhdx")
for cmd in "inspect" "convert --dry-run" "convert"; do
	assert_exit "damaged VHDX: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/dmg.vhdx" $([ "$cmd" = inspect ] || echo "$TMP/o.vhdx")
	assert_match "damaged VHDX: $cmd names the file and what is left" \
		"dmg\\.vhdx.*damaged VHDX.*no 'vhdxfile' identifier.*region table 'regi' at 192 KiB \\(CRC-32C valid\\)" "$ERR"
done
check "damaged VHDX: no output" test ! -e "$TMP/o.vhdx"
assert_eq "damaged VHDX: input unchanged" "$before" "$(sha "$TMP/dmg.vhdx")"

vhd=$(fixture win7-sp1 vhd)
cp --sparse=always "$vhd" "$TMP/end.vhd"
size=$(stat -c %s "$TMP/end.vhd")
printf 'conectiX' | dd of="$TMP/end.vhd" bs=1 seek=$((size - 512)) conv=notrunc status=none
assert_exit "VHD, footer at the end damaged: exit 3" 3 "$GEN2PREP" inspect "$TMP/end.vhd"
assert_match "VHD, footer at the end damaged: says so" "end\\.vhd.*damaged VHD: its footer copy at offset 0 is intact, but the footer at the end" "$ERR"
cp --sparse=always "$TMP/end.vhd" "$TMP/both.vhd"
printf 'conectiX' | dd of="$TMP/both.vhd" bs=1 conv=notrunc status=none
assert_eq "VHD without footers: the dynamic header is still there" cxsparse "$(dd if="$TMP/both.vhd" bs=1 skip=512 count=8 status=none)"
assert_exit "VHD without footers: exit 3" 3 "$GEN2PREP" convert --dry-run "$TMP/both.vhd" "$TMP/o.vhdx"
assert_match "VHD without footers: names what was found" "both\\.vhd.*damaged VHD, not a raw disk: VHD dynamic disk header 'cxsparse' at offset 512 \\(checksum valid\\)" "$ERR"
