#!/bin/bash
# convert-boot.sh - real UEFI firmware (OVMF under qemu, TCG) boots converted
# disks: the fixture's \Windows\Boot\EFI\bootmgfw.efi is a tiny EFI program
# (scripts/mkefi-marker) that prints a marker on COM1; seeing it means the
# firmware found the partition table, the FAT32 ESP and \EFI\Boot\bootx64.efi.
# A few combinations only (each boot takes seconds under TCG).
# qemu opens no differencing VHDX ("Operation not supported"), so OVMF
# cannot read a `convert --differencing` chain itself: the chain is read by
# libyal's libvhdi (tests/vhdi_chain.py) into a raw disk, which OVMF boots.
. "$(dirname "$0")/lib.sh"
need qemu-system-x86_64 qemu-img
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || skip "ovmf not installed"
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
BOOT=$top_srcdir/scripts/ovmf-boot

boot() { # DESCRIPTION IMAGE
	assert_exit "$1: OVMF prints the marker" 0 "$BOOT" "$2" --timeout 120
	assert_match "$1: started from \\EFI\\Boot\\bootx64.efi" 'path=\\EFI\\BOOT\\BOOTX64\.EFI' "$OUT"
}

W7=$(fixture win7-sp1 vhdx)
assert_exit "convert win7-sp1 gpt vhdx" 0 "$GEN2PREP" convert -q "$W7" "$TMP/w7.vhdx"
boot "win7-sp1 gpt vhdx" "$TMP/w7.vhdx"
assert_exit "convert win7-sp1 mbr raw" 0 "$GEN2PREP" convert -q --layout mbr "$W7" "$TMP/w7m.raw"
boot "win7-sp1 mbr raw" "$TMP/w7m.raw"
rm -f "$TMP/w7.vhdx" "$TMP/w7m.raw"
if /usr/bin/python3 -c 'import pyvhdi' 2>/dev/null; then
	cp "$W7" "$TMP/parent.vhdx"
	assert_exit "convert win7-sp1 --differencing --layout mbr" 0 "$GEN2PREP" convert -q --differencing --layout mbr "$TMP/parent.vhdx" "$TMP/child.vhdx"
	assert_exit "libvhdi reads parent + child" 0 /usr/bin/python3 "$top_srcdir/tests/vhdi_chain.py" "$TMP/child.vhdx" "$TMP/parent.vhdx" "$TMP/chain.raw"
	boot "win7-sp1 differencing chain (read by libvhdi)" "$TMP/chain.raw"
	rm -f "$TMP/parent.vhdx" "$TMP/child.vhdx" "$TMP/chain.raw"
else
	fail "python3-libvhdi missing (scripts/install-deps installs it)"
fi
W81=$(fixture win81 vhdx)
assert_exit "convert win81 gpt vhd (append)" 0 "$GEN2PREP" convert -q --esp append "$W81" "$TMP/w81.vhd"
boot "win81 gpt vhd, appended ESP" "$TMP/w81.vhd"
# the unconverted Gen1 disk has no ESP: the firmware finds nothing to boot
assert_exit "the Gen1 input does not boot under UEFI" 1 "$BOOT" "$W7" --timeout 60
