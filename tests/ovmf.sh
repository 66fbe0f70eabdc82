#!/bin/bash
# ovmf.sh - real firmware: a marker UEFI app (scripts/mkefi-marker) put at
# \EFI\Boot\bootx64.efi by fixtures/mkesp boots under OVMF (q35, TCG) from
# our GPT+FAT32 ESP, from the MBR 0xEF layout, and from a VHDX copy; a disk
# without bootx64.efi must not show the marker.
. "$(dirname "$0")/lib.sh"
need qemu-system-x86_64 qemu-img gcc ld objcopy
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || skip "ovmf not installed"
[ -r /usr/lib/crt0-efi-x86_64.o ] || skip "gnu-efi not installed"
MK="$top_builddir/fixtures/mkesp"
[ -x "$MK" ] || die "fixtures/mkesp not built"
BOOT="$top_srcdir/scripts/ovmf-boot"

check "mkefi-marker builds a PE32+ EFI app" "$top_srcdir/scripts/mkefi-marker" "$TMP/marker.efi"
assert_eq "PE signature, machine x86-64, subsystem EFI application" "PE 8664 10" \
	"$(python3 -c '
import struct,sys
b=open(sys.argv[1],"rb").read(); o=struct.unpack_from("<I",b,0x3c)[0]
print(b[o:o+2].decode(), "%x" % struct.unpack_from("<H",b,o+4)[0], struct.unpack_from("<H",b,o+24+68)[0])' "$TMP/marker.efi")"

# GPT + FAT32 ESP, virtio disk
check "mkesp GPT" "$MK" --size 64 --esp-size 40 "$TMP/gpt.img" EFI/Boot/bootx64.efi="$TMP/marker.efi"
SUM=$(sha "$TMP/gpt.img")
assert_exit "OVMF boots the GPT ESP" 0 "$BOOT" "$TMP/gpt.img" --timeout 60
assert_match "loaded from \\EFI\\BOOT\\BOOTX64.EFI" 'GEN2PREP-BOOT-OK path=\\EFI\\BOOT\\BOOTX64.EFI' "$OUT"
assert_eq "image not modified by the boot (snapshot=on)" "$SUM" "$(sha "$TMP/gpt.img")"

# MBR with an 0xEF primary, AHCI disk
check "mkesp MBR" "$MK" --table mbr --size 64 --esp-size 40 "$TMP/mbr.img" EFI/Boot/bootx64.efi="$TMP/marker.efi"
assert_exit "OVMF boots the MBR 0xEF ESP (AHCI)" 0 "$BOOT" "$TMP/mbr.img" --disk ahci --timeout 60

# the same GPT disk as a VHDX through qemu's driver
qemu-img convert -f raw -O vhdx "$TMP/gpt.img" "$TMP/gpt.vhdx"
assert_exit "OVMF boots the VHDX copy" 0 "$BOOT" "$TMP/gpt.vhdx" --format vhdx --timeout 60

# a custom marker is what is matched (not just any output)
check "mkefi-marker with another marker" "$top_srcdir/scripts/mkefi-marker" "$TMP/other.efi" "OTHER-MARKER-42"
check "mkesp with the other marker" "$MK" --size 64 --esp-size 40 "$TMP/other.img" EFI/Boot/bootx64.efi="$TMP/other.efi"
assert_exit "default marker not seen from the other app" 1 "$BOOT" "$TMP/other.img" --timeout 40

# no bootx64.efi (the app elsewhere on the ESP): the firmware must fall through
check "mkesp without bootx64.efi" "$MK" --size 64 --esp-size 40 "$TMP/noboot.img" EFI/Other/app.efi="$TMP/marker.efi"
assert_exit "no marker without \\EFI\\Boot\\bootx64.efi" 1 "$BOOT" "$TMP/noboot.img" --timeout 40 --log "$TMP/noboot.log"
assert_match "firmware did read our FAT32 ESP (shell mapped FS0 on GPT partition 1)" 'FS0: .*|HD\(1,GPT' "$(tr -d '\r' < "$TMP/noboot.log")"
