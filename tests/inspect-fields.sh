#!/bin/bash
# inspect-fields.sh - inspect --json fields that issue 2 lists and
# tests/inspect.sh does not compare, each against an independent reader of
# the image: every control set's Start of Ntfs/vmbus/storvsc/hyperkbd and
# FirmwareBootDevice/SystemBootDevice against hivexget on the SYSTEM hive
# pulled out with ntfscat, Select\Current, the SOFTWARE product name,
# edition and build against hivexget; and the image format detected from the
# content, not from the file name (a VHDX named .raw, a raw image named
# .vhdx, a VHD named .img).
. "$(dirname "$0")/lib.sh"
need hivexget ntfscat sfdisk qemu-img
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"

raw=$(fixture win7-sp1 raw)
assert_exit "inspect --json" 0 "$GEN2PREP" inspect --json "$raw"
printf '%s\n' "$OUT" >"$TMP/i.json"
j=$TMP/i.json

start=$(sfdisk -d "$raw" | sed -n 's/.*2 : start= *\([0-9]*\),.*/\1/p')
dd if="$raw" of="$TMP/win.ntfs" bs=512 skip="$start" status=none
ntfscat "$TMP/win.ntfs" /Windows/System32/config/SYSTEM >"$TMP/SYSTEM" || die "ntfscat SYSTEM"
ntfscat "$TMP/win.ntfs" /Windows/System32/config/SOFTWARE >"$TMP/SOFTWARE" || die "ntfscat SOFTWARE"

# hivexget prints a REG_DWORD as a decimal number and an SZ as text;
# inspect reports a missing value as null.
hget() { hivexget "$TMP/SYSTEM" "$1" "$2" 2>/dev/null || echo null; }

assert_eq "current_control_set = Select\\Current" "$(hget '\Select' Current)" "$(jget "$j" 'j["windows"]["current_control_set"]')"
n=$(jget "$j" 'len(j["windows"]["control_sets"])')
assert_eq "two control sets (fixture)" 2 "$n"
for i in $(seq 0 $((n - 1))); do
	name=$(jget "$j" "j['windows']['control_sets'][$i]['name']")
	for svc in Ntfs vmbus storvsc hyperkbd; do
		key=$(tr 'A-Z' 'a-z' <<<"$svc")_start
		assert_eq "$name: ${key} = hivexget Services\\$svc Start" "$(hget "\\$name\\Services\\$svc" Start)" \
			"$(jget "$j" "j['windows']['control_sets'][$i]['$key']")"
	done
	assert_eq "$name: firmware_boot_device = hivexget" "$(hget "\\$name\\Control" FirmwareBootDevice)" \
		"$(jget "$j" "j['windows']['control_sets'][$i]['firmware_boot_device']")"
	assert_eq "$name: system_boot_device = hivexget" "$(hget "\\$name\\Control" SystemBootDevice)" \
		"$(jget "$j" "j['windows']['control_sets'][$i]['system_boot_device']")"
done

cv='\Microsoft\Windows NT\CurrentVersion'
assert_eq "product_name = hivexget ProductName" "$(hivexget "$TMP/SOFTWARE" "$cv" ProductName)" "$(jget "$j" 'j["windows"]["product_name"]')"
assert_eq "edition = hivexget EditionID" "$(hivexget "$TMP/SOFTWARE" "$cv" EditionID)" "$(jget "$j" 'j["windows"]["edition"]')"
assert_eq "build = hivexget CurrentBuildNumber" "$(hivexget "$TMP/SOFTWARE" "$cv" CurrentBuildNumber)" "$(jget "$j" 'j["windows"]["build"]')"
assert_eq "service_pack = hivexget CSDVersion" "$(hivexget "$TMP/SOFTWARE" "$cv" CSDVersion)" "$(jget "$j" 'j["windows"]["service_pack"]')"

# Format from content (issue 2: "format detected from content, not extension").
sniff() { # FILE EXPECTED_FORMAT
	assert_exit "$(basename "$1"): inspect" 0 "$GEN2PREP" inspect --json "$1"
	printf '%s\n' "$OUT" >"$TMP/s.json"
	assert_eq "$(basename "$1"): format from content" "$2" "$(jget "$TMP/s.json" 'j["image"]["format"]')"
	assert_eq "$(basename "$1"): same Windows found" 6.1.7601 "$(jget "$TMP/s.json" 'j["windows"]["version"]')"
}
ln -s "$(fixture win7-sp1 vhdx)" "$TMP/vhdx-named.raw"
ln -s "$raw" "$TMP/raw-named.vhdx"
ln -s "$(fixture win7-sp1 vhd)" "$TMP/vhd-named.img"
sniff "$TMP/vhdx-named.raw" vhdx
sniff "$TMP/raw-named.vhdx" raw
sniff "$TMP/vhd-named.img" vhd
