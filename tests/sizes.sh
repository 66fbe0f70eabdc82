#!/bin/bash
# tests/sizes.sh - issue 11, "Sizes that cannot silently cut": names in
# the image longer than gen2prep keeps are a clear finding, never cut and
# never dropped without a word (mkfixture variants; each checked with
# python3-hivex / hivexget first, independent of gen2prep).
#   mounted-name-long: a MountedDevices value of 200 characters whose data
#     names this disk's Windows volume (convert must rewrite it; before,
#     it was left out silently and the edit never planned): the blocker
#     name-too-long everywhere, nothing written, input unchanged.
#   product-name-long: a 300-character ProductName (only shown, and the
#     BCD description): the warning registry-value-too-long naming it and
#     its length; the plan names the boot entry "Windows", never a cut name.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
. "$(dirname "$0")/refusals-lib.sh"
need qemu-img sfdisk mkntfs ntfscat python3 hivexget
[ -x "$GEN2PREP" ] || skip "gen2prep not built"

# ---- MountedDevices value name of 200 characters naming this disk ----
img=$(bad_fixture mounted-name-long)
extract_part "$img" 2 "$TMP/mn.ntfs"
ntfscat "$TMP/mn.ntfs" /Windows/System32/config/SYSTEM >"$TMP/mn.SYSTEM"
long=$("$PY" -c 'import hivex,sys
h = hivex.Hivex(sys.argv[1]); k = h.node_get_child(h.root(), "MountedDevices")
print(max((h.value_key(v) for v in h.node_values(k)), key=len))' "$TMP/mn.SYSTEM")
assert_eq "mounted-name-long: python3-hivex: a 200-character value name" 200 "${#long}"
sig=$(sfdisk -d "$img" | sed -n 's/^label-id: 0x//p')
sig_le=$(printf '%s' "$sig" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
assert_eq "mounted-name-long: hivex: its data names this disk ($sig)" "$sig_le" "$(hive_val "$TMP/mn.SYSTEM" MountedDevices "$long" | head -c 8)"
blocked_everywhere mounted-name-long "$img" name-too-long \
	"MountedDevices value name '.+SCSI#Disk&Ven_Msft&Prod_Virtual_Disk\\.\\.\\.' is 200 bytes, longer than the 127 this field holds, and it names a drive letter or a volume of this disk: convert would have to rewrite it"

# ---- ProductName of 300 characters ----
img=$(bad_fixture product-name-long)
extract_part "$img" 2 "$TMP/pn.ntfs"
ntfscat "$TMP/pn.ntfs" /Windows/System32/config/SOFTWARE >"$TMP/pn.SOFTWARE"
pn=$(hivexget "$TMP/pn.SOFTWARE" 'Microsoft\Windows NT\CurrentVersion' ProductName)
assert_eq "product-name-long: hivexget: ProductName of 300 characters" 300 "${#pn}"
before=$(sha "$img")
assert_exit "product-name-long: inspect --json exit 0" 0 "$GEN2PREP" inspect --json "$img"
printf '%s\n' "$OUT" >"$TMP/pn.json"
assert_eq "product-name-long: the warning registry-value-too-long" registry-value-too-long "$(ids "$TMP/pn.json" 'j["warnings"]')"
assert_eq "product-name-long: its message names the value, its length and what follows" \
	'SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProductName is 300 bytes, longer than the 127 gen2prep keeps: left out, the boot entry is named "Windows"' \
	"$(jget "$TMP/pn.json" '[w["message"] for w in j["warnings"]][0]')"
assert_eq "product-name-long: product_name left out, not cut" "" "$(jget "$TMP/pn.json" 'j["windows"]["product_name"]')"
mkdir -p "$TMP/pn-out"
assert_exit "product-name-long: convert --dry-run --json exit 0" 0 "$GEN2PREP" convert --dry-run --json "$img" "$TMP/pn-out/o.vhdx"
printf '%s\n' "$OUT" >"$TMP/pn.dry.json"
assert_eq "product-name-long: the boot entry is named Windows" Windows "$(jget "$TMP/pn.dry.json" 'j["plan"]["bcd"]["description"]')"
assert_eq "product-name-long: the dry run wrote nothing" "" "$(ls -A "$TMP/pn-out")"
assert_eq "product-name-long: input unchanged" "$before" "$(sha "$img")"
