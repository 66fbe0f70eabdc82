#!/bin/bash
# garbage-image.sh - a file named as a disk container that holds none
# (issue 10, a stranger's finding): random bytes or a text file named
# .vhdx/.vhd was read as a raw disk and refused as "no partition table"
# (exit 4, a blocker of a real disk). It is not a disk image: exit 3,
# naming the file, in inspect, convert --dry-run and convert; nothing
# written, the file unchanged. A raw disk named .vhdx (it has a table) is
# still read as raw by content (inspect-fields.sh), and garbage under a raw
# name (.img) stays what it was (a raw disk without a table, exit 4).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need qemu-img

head -c $((4 << 20)) /dev/urandom >"$TMP/random.vhdx"
# random bytes that happen to end in 0x55 0xAA at 510 would be a "disk": not these
printf '\0\0' | dd of="$TMP/random.vhdx" bs=1 seek=510 conv=notrunc status=none
yes 'This is a text file, not a virtual disk.' | head -c $((1 << 20)) >"$TMP/notes.vhdx"
truncate -s 64M "$TMP/zeros.vhdx"
cp "$TMP/random.vhdx" "$TMP/random.vhd"
cp "$TMP/random.vhdx" "$TMP/random.AVHDX"

for f in random.vhdx notes.vhdx zeros.vhdx random.vhd random.AVHDX; do
	# independent: qemu-img finds no VHDX/VPC in it either
	check "$f: qemu-img probes it as raw" sh -c "qemu-img info --output=json '$TMP/$f' | grep -q '\"format\": \"raw\"'"
	before=$(sha "$TMP/$f")
	for cmd in "inspect" "convert --dry-run" "convert"; do
		assert_exit "$f: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/$f" $([ "$cmd" = inspect ] || echo "$TMP/o.vhdx")
		assert_match "$f: $cmd says it is not a disk image, naming it" \
			"'$TMP/$f' is not a disk image: named \\.vhdx?, but it has no .* and, read as a raw disk, no partition table" "$ERR"
	done
	assert_exit "$f: inspect --json exit 3" 3 "$GEN2PREP" inspect --json "$TMP/$f"
	printf '%s\n' "$OUT" >"$TMP/e.json"
	assert_eq "$f: JSON error code format" format "$(jget "$TMP/e.json" 'j["error"]["code"]')"
	check "$f: no output" test ! -e "$TMP/o.vhdx"
	assert_eq "$f: unchanged" "$before" "$(sha "$TMP/$f")"
done
assert_match ".vhd names the VHD parts it lacks" "no 'conectix' footer or dynamic disk header" \
	"$("$GEN2PREP" inspect "$TMP/random.vhd" 2>&1)"

# the same garbage under a raw name: a raw disk without a table (unchanged)
cp "$TMP/random.vhdx" "$TMP/random.img"
assert_exit "random.img: a raw disk without a table, exit 4" 4 "$GEN2PREP" inspect "$TMP/random.img"
assert_match "random.img: no-partition-table" "no-partition-table" "$OUT"

# a raw disk with an MBR under a .vhdx name is still a disk (boot signature)
truncate -s 64M "$TMP/mbr.vhdx"
printf 'label: dos\nstart=2048, size=16384, type=7\n' | sfdisk -q "$TMP/mbr.vhdx" >/dev/null 2>&1 ||
	printf '\x55\xaa' | dd of="$TMP/mbr.vhdx" bs=1 seek=510 conv=notrunc status=none
"$GEN2PREP" inspect "$TMP/mbr.vhdx" >"$TMP/mbr.out" 2>&1; rc=$?
check "raw disk with an MBR named .vhdx: not refused as 'not a disk image' (exit $rc)" test "$rc" != 3
assert_match "raw disk with an MBR named .vhdx: read as raw" "raw" "$(cat "$TMP/mbr.out")"
