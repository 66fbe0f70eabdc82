#!/bin/bash
# convert-matrix.sh - every fixture OS x layout (gpt, mbr) x output format
# (vhdx, vhd, raw): qemu-img check and vhdiinfo read the image, the table
# is valid for sgdisk -v (gpt) / sfdisk --verify (mbr), the ESP is clean for
# fsck.fat and holds the boot files (mtools), the partitions keep their
# starts, the input is untouched, and gen2prep verify says ready.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
need qemu-img vhdiinfo sgdisk sfdisk fsck.fat mdir mkfs.fat
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"

convert_one() { # OS LAYOUT FORMAT IN
	local os=$1 layout=$2 fmt=$3 in=$4 out=$TMP/$1-$2.$3 raw=$TMP/$1-$2.raw-view
	assert_exit "$os $layout $fmt: convert" 0 "$GEN2PREP" convert -q --layout "$layout" "$in" "$out"
	[ -s "$out" ] || return
	if [ "$fmt" = vhdx ]; then
		check "$os $layout $fmt: qemu-img check clean" qemu-img check -q "$out"
	fi
	if [ "$fmt" != raw ]; then
		check "$os $layout $fmt: vhdiinfo reads it" vhdiinfo "$out"
		to_raw "$out" "$raw"
	else
		cp --sparse=always "$out" "$raw"
	fi
	if [ "$layout" = gpt ]; then
		check "$os $layout $fmt: sgdisk -v clean" bash -c "sgdisk -v '$raw' | grep -q 'No problems found'"
		assert_eq "$os $layout $fmt: ESP type" C12A7328-F81F-11D2-BA4B-00A0C93EC93B "$(part_field "$raw" 1 type)"
	else
		check "$os $layout $fmt: sfdisk --verify clean" sfdisk --verify "$raw"
		assert_eq "$os $layout $fmt: ESP MBR type 0xEF" ef "$(part_field "$raw" 1 type)"
		assert_eq "$os $layout $fmt: disk signature kept" "$SIG" "$(sfdisk --json "$raw" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["id"])')"
	fi
	assert_eq "$os $layout $fmt: Windows partition keeps its start" "$WIN_START" "$(part_start "$raw" 2)"
	extract_part "$raw" 1 "$TMP/esp.img"
	check "$os $layout $fmt: fsck.fat -n clean" fsck.fat -n "$TMP/esp.img"
	check "$os $layout $fmt: mtools finds bootx64.efi" mdir -i "$TMP/esp.img" ::/EFI/Boot/bootx64.efi
	check "$os $layout $fmt: mtools finds the BCD" mdir -i "$TMP/esp.img" ::/EFI/Microsoft/Boot/BCD
	assert_exit "$os $layout $fmt: gen2prep verify says ready" 0 "$GEN2PREP" verify "$out"
	rm -f "$out" "$raw" "$TMP/esp.img"
}

for os in vista-sp2 win7-sp1 win2008r2-sp1 win81; do
	in=$(fixture "$os" vhdx)
	sum=$(sha "$in")
	to_raw "$in" "$TMP/in.raw"
	SIG=$(sfdisk --json "$TMP/in.raw" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["id"])')
	WIN_START=$(part_start "$TMP/in.raw" 2)
	rm -f "$TMP/in.raw"
	for layout in gpt mbr; do
		for fmt in vhdx vhd raw; do
			convert_one "$os" "$layout" "$fmt" "$in"
		done
	done
	assert_eq "$os: input unchanged (sha256)" "$sum" "$(sha "$in")"
done

# the input readers: a VHD, a VHDX and the same disk as raw (made by
# qemu-img) give the same output
in_vhdx=$(fixture win7-sp1 vhdx) in_vhd=$(fixture win7-sp1 vhd)
to_raw "$in_vhdx" "$TMP/in-x.raw"
to_raw "$in_vhd" "$TMP/in-v.raw"
assert_exit "from VHDX" 0 "$GEN2PREP" convert -q "$in_vhdx" "$TMP/a.raw"
assert_exit "from VHDX as raw" 0 "$GEN2PREP" convert -q "$TMP/in-x.raw" "$TMP/c.raw"
check "raw input: same disk as from the VHDX" cmp "$TMP/a.raw" "$TMP/c.raw"
assert_exit "from VHD" 0 "$GEN2PREP" convert -q "$in_vhd" "$TMP/b.raw"
assert_exit "from VHD as raw" 0 "$GEN2PREP" convert -q "$TMP/in-v.raw" "$TMP/d.raw"
check "VHD input: same disk as from its raw copy" cmp "$TMP/b.raw" "$TMP/d.raw"
rm -f "$TMP/in-x.raw" "$TMP/in-v.raw" "$TMP/b.raw" "$TMP/c.raw" "$TMP/d.raw"
assert_exit "fixed VHDX output" 0 "$GEN2PREP" convert -q -o subformat=fixed "$in_vhdx" "$TMP/f.vhdx"
check "fixed VHDX: qemu-img check clean" qemu-img check -q "$TMP/f.vhdx"
assert_match "fixed VHDX: vhdiinfo says fixed" "[Ff]ixed" "$(vhdiinfo "$TMP/f.vhdx" 2>&1)"
assert_exit "fixed VHD output (-O vhd)" 0 "$GEN2PREP" convert -q -O vhd -o subformat=fixed "$in_vhdx" "$TMP/f.img"
assert_match "fixed VHD: vhdiinfo says fixed" "[Ff]ixed" "$(vhdiinfo "$TMP/f.img" 2>&1)"
to_raw_vpc() { qemu-img convert -q -f vpc -O raw "$1" "$2"; }
to_raw_vpc "$TMP/f.img" "$TMP/f2.raw"
check "fixed VHD holds the same disk" cmp "$TMP/a.raw" "$TMP/f2.raw"
to_raw "$TMP/f.vhdx" "$TMP/f1.raw"
check "fixed VHDX holds the same disk" cmp "$TMP/a.raw" "$TMP/f1.raw"
assert_exit "--esp append" 0 "$GEN2PREP" convert -q --esp append "$in_vhdx" "$TMP/app.raw"
assert_eq "--esp append: ESP is partition 3" C12A7328-F81F-11D2-BA4B-00A0C93EC93B "$(part_field "$TMP/app.raw" 3 type)"
assert_eq "--esp append: System Reserved kept as basic data" EBD0A0A2-B9E5-4433-87C0-68B6B72699C7 "$(part_field "$TMP/app.raw" 1 type)"
assert_eq "--esp append: disk grown by ESP + 1 MiB" $(((1024 + 100 + 1) << 20)) "$(stat -c %s "$TMP/app.raw")"
assert_exit "--esp append: verify ready" 0 "$GEN2PREP" verify "$TMP/app.raw"
assert_exit "--esp append --layout mbr --esp-size 64" 0 "$GEN2PREP" convert -q --esp append --layout mbr --esp-size 64 "$in_vhdx" "$TMP/appm.raw"
assert_eq "mbr append: ESP of 64 MiB" $((64 << 20)) "$(part_size "$TMP/appm.raw" 3)"
assert_exit "mbr append: verify ready" 0 "$GEN2PREP" verify "$TMP/appm.raw"

# --esp existing: a FAT32 partition already on the disk (the article's
# prerequisite) becomes the ESP; here the System Reserved area reformatted
# with mkfs.fat and typed 0x0C with sfdisk
to_raw "$in_vhdx" "$TMP/fat.raw"
extract_part "$TMP/fat.raw" 1 "$TMP/fat-part.img"
mkfs.fat -F 32 -S 512 -s 1 -n DATA "$TMP/fat-part.img" >/dev/null
put_part "$TMP/fat.raw" 1 "$TMP/fat-part.img"
sfdisk -q --part-type "$TMP/fat.raw" 1 c
assert_exit "--esp existing: dry run" 0 "$GEN2PREP" convert --dry-run --json --esp existing "$TMP/fat.raw" "$TMP/ex.raw"
printf '%s' "$OUT" >"$TMP/ex.json"
assert_eq "--esp existing: the FAT32 partition 1 is used" "existing 1" "$(jget "$TMP/ex.json" '"%s %d" % (j["plan"]["esp"]["placement"], j["plan"]["esp"]["partition"])')"
assert_match "--esp existing: warns that its files are replaced" "reformatted" "$(jget "$TMP/ex.json" 'j["plan"]["warnings"]')"
assert_exit "--esp existing" 0 "$GEN2PREP" convert -q --esp existing --layout mbr "$TMP/fat.raw" "$TMP/ex.raw"
assert_eq "--esp existing: MBR type now 0xEF" ef "$(part_field "$TMP/ex.raw" 1 type)"
assert_exit "--esp existing: verify ready" 0 "$GEN2PREP" verify "$TMP/ex.raw"
rm -f "$TMP/fat.raw" "$TMP/fat-part.img" "$TMP/ex.raw"
