#!/bin/bash
# tests/inspect.sh - gen2prep inspect on every fixture OS (vhdx, and raw/vhd
# for some) and on a differencing VHDX child: JSON fields against what
# mkfixture put there, cross-checked with independent readers (sfdisk,
# ntfscat + python3-pefile, qemu-img); the input's sha256 is unchanged.
. "$(dirname "$0")/lib.sh"
need qemu-img sfdisk ntfscat python3 mkntfs
[ -x "$GEN2PREP" ] || skip "gen2prep not built"

# os format version sp arch build product signature files-version is-version
expect() {
	case $1 in
	vista-sp2) echo "6.0.6002|Service Pack 2|Windows Vista (TM) Ultimate|0x0A15AB02|6.0.6002.18005|6.3.9600.18080|100" ;;
	win7-sp1) echo "6.1.7601|Service Pack 1|Windows 7 Professional|0x0B17C0DE|6.1.7601.17514|6.3.9600.18080|100" ;;
	win2008r2-sp1) echo "6.1.7601|Service Pack 1|Windows Server 2008 R2 Standard|0x2008F2F1|6.1.7601.17514|6.3.9600.18080|100" ;;
	win81) echo "6.3.9600||Windows 8.1 Pro|0x0C810A0B|6.3.9600.16384|6.3.9600.16384|350" ;;
	esac
}

inspect_checks() { # OS IMAGE FORMAT
	local os=$1 img=$2 fmt=$3 j=$TMP/$1.$3.json
	IFS='|' read -r ver sp prod sig fver isver srmib <<<"$(expect "$os")"
	sig=${sig,,}   # JSON hex is lower case in every command (issue 8)
	local before; before=$(sha "$img")
	assert_exit "$os $fmt: inspect --json exits 0 (convertible)" 0 "$GEN2PREP" inspect --json "$img"
	printf '%s\n' "$OUT" >"$j"
	assert_eq "$os $fmt: input sha256 unchanged" "$before" "$(sha "$img")"
	assert_eq "$os $fmt: image.format" "$fmt" "$(jget "$j" 'j["image"]["format"]')"
	assert_eq "$os $fmt: virtual size" 1073741824 "$(jget "$j" 'j["image"]["virtual_size"]')"
	assert_eq "$os $fmt: sector size" 512 "$(jget "$j" 'j["image"]["logical_sector_size"]')"
	assert_eq "$os $fmt: table" "mbr $sig" "$(jget "$j" 'j["partition_table"]["type"]+" "+j["partition_table"]["disk_signature"]')"
	assert_eq "$os $fmt: roles" "system-reserved windows" "$(jget "$j" '" ".join(p["role"] for p in j["partitions"])')"
	assert_eq "$os $fmt: System Reserved size and label" "$((srmib << 20)) System Reserved True" \
		"$(jget "$j" '"%d %s %s" % (j["partitions"][0]["size"], j["partitions"][0]["label"], j["partitions"][0]["active"])')"
	assert_eq "$os $fmt: System Reserved reusable as ESP" true "$(jget "$j" 'j["partitions"][0]["reusable_as_esp"]')"
	assert_eq "$os $fmt: windows partition" 2 "$(jget "$j" 'j["windows"]["partition"]')"
	assert_eq "$os $fmt: version" "$ver" "$(jget "$j" 'j["windows"]["version"]')"
	assert_eq "$os $fmt: service pack" "$sp" "$(jget "$j" 'j["windows"]["service_pack"]')"
	assert_eq "$os $fmt: product" "$prod" "$(jget "$j" 'j["windows"]["product_name"]')"
	assert_eq "$os $fmt: architecture" x64 "$(jget "$j" 'j["windows"]["architecture"]')"
	assert_eq "$os $fmt: locale" en-US "$(jget "$j" 'j["windows"]["locale"]')"
	assert_eq "$os $fmt: kernel file versions" "$fver $fver $fver" \
		"$(jget "$j" '" ".join(j["windows"]["files"][f]["file_version"] for f in ("ntoskrnl.exe","hal.dll","acpi.sys"))')"
	assert_eq "$os $fmt: ntoskrnl path as stored" '\Windows\System32\ntoskrnl.exe' "$(jget "$j" 'j["windows"]["files"]["ntoskrnl.exe"]["path"]')"
	assert_eq "$os $fmt: Integration Services version" "$isver" "$(jget "$j" 'j["windows"]["integration_services"]["version"]')"
	assert_eq "$os $fmt: control sets (name ntfs vmbus storvsc)" "ControlSet001 3 0 0,ControlSet002 3 0 0" \
		"$(jget "$j" '",".join("%s %s %s %s" % (c["name"], c["ntfs_start"], c["vmbus_start"], c["storvsc_start"]) for c in j["windows"]["control_sets"])')"
	assert_eq "$os $fmt: FirmwareBootDevice" 'multi(0)disk(0)rdisk(0)partition(1)' "$(jget "$j" 'j["windows"]["control_sets"][0]["firmware_boot_device"]')"
	assert_eq "$os $fmt: current control set" 1 "$(jget "$j" 'j["windows"]["current_control_set"]')"
	assert_eq "$os $fmt: C: decoded and matched" "mbr $sig $(jget "$j" 'j["partitions"][1]["start"]') 2" \
		"$(jget "$j" '[ "%s %s %s %s" % (m["kind"], m["signature"], m["offset"], m["partition"]) for m in j["windows"]["mounted_devices"] if m["name"] == "\\DosDevices\\C:"][0]' 2>/dev/null)"
	assert_eq "$os $fmt: no blockers" "[]" "$(jget "$j" 'j["blockers"]')"
	assert_eq "$os $fmt: convertible" true "$(jget "$j" 'j["convertible"]')"
	case $os in
	win81) assert_eq "$os $fmt: no kernel patches for 6.3" 0 "$(jget "$j" 'len(j["windows"]["patches"])')" ;;
	*) assert_match "$os $fmt: patch dry run covers ntoskrnl, hal, acpi, winload" 'acpi.sys.*hal.dll.*ntoskrnl.exe.*winload.efi' \
		"$(jget "$j" '" ".join(sorted(set(p["file"] for p in j["windows"]["patches"])))')" ;;
	esac
}

for os in vista-sp2 win7-sp1 win2008r2-sp1 win81; do
	inspect_checks $os "$(fixture $os vhdx)" vhdx
done
inspect_checks win7-sp1 "$(fixture win7-sp1 vhd)" vhd
inspect_checks vista-sp2 "$(fixture vista-sp2 vhd)" vhd
raw=$(fixture win7-sp1 raw)
inspect_checks win7-sp1 "$raw" raw
inspect_checks win81 "$(fixture win81 raw)" raw

# Independent readers on the raw image agree with inspect.
j=$TMP/win7-sp1.raw.json
assert_eq "sfdisk: disk signature" "label-id: 0x0b17c0de" "$(sfdisk -d "$raw" | grep label-id)"
assert_eq "sfdisk: windows partition start" "$(jget "$j" 'j["partitions"][1]["start"] // 512')" \
	"$(sfdisk -d "$raw" | sed -n 's/.*2 : start= *\([0-9]*\),.*/\1/p')"
dd if="$raw" of="$TMP/win.ntfs" bs=1M skip=101 status=none
ntfscat "$TMP/win.ntfs" /Windows/System32/ntoskrnl.exe >"$TMP/nt.exe"
if python3 -c 'import pefile' 2>/dev/null; then
	pv=$(python3 -c '
import pefile, sys
pe = pefile.PE(sys.argv[1])
ms, ls = pe.VS_FIXEDFILEINFO[0].FileVersionMS, pe.VS_FIXEDFILEINFO[0].FileVersionLS
print("%d.%d.%d.%d %s" % (ms >> 16, ms & 0xffff, ls >> 16, ls & 0xffff, hex(pe.FILE_HEADER.Machine)))' "$TMP/nt.exe")
	assert_eq "python3-pefile: ntoskrnl version and machine" "6.1.7601.17514 0x8664" "$pv"
fi

# Differencing VHDX child next to its parent: same Windows, parent reported.
mkdir -p "$TMP/chain"
cp "$(fixture win7-sp1 vhdx)" "$TMP/chain/base.vhdx"
# qemu-img cannot create VHDX children: fixtures/mkdiff.py (the I/O tests'
# independent writer) does; it changes sectors 2-3 (MBR gap) and one block.
qemu-img convert -f vhdx -O raw "$TMP/chain/base.vhdx" "$TMP/chain/base.raw"
(cd "$TMP/chain" && PARENT_RAW=base.raw python3 "$top_srcdir/fixtures/mkdiff.py" vhdx base.vhdx child.vhdx \
	expected.raw '.\base.vhdx' >/dev/null) || die "mkdiff.py failed"
rm -f "$TMP/chain/base.raw" "$TMP/chain/expected.raw"
bsum=$(sha "$TMP/chain/base.vhdx") csum=$(sha "$TMP/chain/child.vhdx")
assert_exit "differencing child: exit 0" 0 "$GEN2PREP" inspect --json "$TMP/chain/child.vhdx"
printf '%s\n' "$OUT" >"$TMP/child.json"
assert_eq "differencing child: subformat" differencing "$(jget "$TMP/child.json" 'j["image"]["subformat"]')"
assert_match "differencing child: parent named" 'base\.vhdx$' "$(jget "$TMP/child.json" 'j["image"]["parent"]')"
assert_eq "differencing child: version read through the chain" 6.1.7601 "$(jget "$TMP/child.json" 'j["windows"]["version"]')"
assert_eq "differencing child: parent unchanged" "$bsum" "$(sha "$TMP/chain/base.vhdx")"
assert_eq "differencing child: child unchanged" "$csum" "$(sha "$TMP/chain/child.vhdx")"
mv "$TMP/chain/base.vhdx" "$TMP/chain/moved.vhdx"
assert_exit "missing parent: exit 3" 3 "$GEN2PREP" inspect "$TMP/chain/child.vhdx"
assert_match "missing parent: error names the parent" 'base\.vhdx' "$ERR"

# Human summary and determinism.
assert_exit "text summary exits 0" 0 "$GEN2PREP" inspect "$raw"
assert_match "text summary names Windows and the verdict" 'Windows 7 Professional.*6\.1\.7601' "$OUT"
assert_match "text summary verdict" 'Convertible: +yes' "$OUT"
a=$("$GEN2PREP" inspect --json "$raw" | sha256sum) b=$("$GEN2PREP" inspect --json "$raw" | sha256sum)
assert_eq "same input, same JSON" "$a" "$b"
