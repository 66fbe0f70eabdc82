#!/bin/bash
# tests/ntfs.sh - lib/ntfs.c over an overlay, checked with ntfs-3g's own
# tools (ntfsls, ntfscat, ntfsinfo, ntfsfix -n) on the bytes it wrote.
. "$(dirname "$0")/lib.sh"
need mkntfs ntfsls ntfscat ntfsinfo ntfsfix sfdisk
NTFSPUT=$top_builddir/fixtures/ntfsput
TOOL=$top_builddir/tests/ntfs_tool
[ -x "$NTFSPUT" ] && [ -x "$TOOL" ] || skip "ntfsput/ntfs_tool not built"

# A raw disk: MBR, one NTFS partition at 1 MiB (sector 2048), 48 MiB.
OFF=$((2048 * 512)); SIZE=$((48 << 20))
vol=$TMP/vol.img disk=$TMP/disk.img
truncate -s $SIZE "$vol"
mkntfs -q -F -Q -s 512 -p 2048 -L TestVol "$vol" >/dev/null 2>&1 || die "mkntfs failed"
printf 'hello kernel' >"$TMP/k"
head -c 300000 /dev/urandom >"$TMP/big"
"$NTFSPUT" "$vol" - <<EOF || die "ntfsput failed"
mkdir Windows
mkdir Windows/System32
mkdir Windows/System32/config
put Windows/System32/ntoskrnl.exe $TMP/k
put Windows/System32/config/SYSTEM $TMP/big
mkdir Windows/Boot
EOF
truncate -s $((64 << 20)) "$disk"
printf 'label: dos\nlabel-id: 0x12345678\nstart=2048, size=%d, type=7, bootable\n' $((SIZE / 512)) | sfdisk -q "$disk" >/dev/null || die "sfdisk failed"
dd if="$vol" of="$disk" bs=1M seek=1 conv=notrunc status=none
before=$(sha "$disk")
T() { "$TOOL" --offset $OFF --size $SIZE "$@"; }

# Probe: boot sector and $Volume.
assert_match "probe sees NTFS and the label" 'ntfs=1 bitlocker=0 dirty=0 hibernated=0 label=TestVol' "$(T "$disk" probe)"

# Case-insensitive lookup, stored case reported.
assert_eq "real path keeps the stored case" '\Windows\System32\ntoskrnl.exe' "$(T "$disk" real 'WINDOWS/system32\NTOSKRNL.EXE')"
assert_eq "read through any case" "hello kernel" "$(T "$disk" cat '\windows\SYSTEM32\Ntoskrnl.exe')"
assert_eq "stat of a directory" "dir 0" "$(T "$disk" stat /windows/system32/CONFIG)"
assert_eq "stat of a missing file" "absent" "$(T "$disk" stat /windows/system32/hal.dll)"
T "$disk" cat /Windows/System32/config/system >"$TMP/big.out"
check "300 KB non-resident file read back intact" cmp "$TMP/big" "$TMP/big.out"
assert_match "list shows stored names and sizes" 'ntoskrnl.exe 12' "$(T "$disk" ls /windows/system32)"

# Writes go to the overlay; dump the volume and check it with ntfs-3g tools.
head -c 70000 /dev/urandom >"$TMP/new"
T --rw --dump "$TMP/out.img" "$disk" - <<EOF
write /WINDOWS/SYSTEM32/NTOSKRNL.EXE replaced-kernel
mkdir /windows/boot/EFI
mkdir /WINDOWS/BOOT/efi/en-US
put /windows/boot/EFI/en-us/bootmgfw.efi.mui $TMP/new
write /Windows/System32/hal.dll new-hal
EOF
assert_eq "rw session exit status" 0 $?
assert_eq "input disk unchanged by a rw session" "$before" "$(sha "$disk")"
check "ntfsfix -n accepts the written volume" ntfsfix -n "$TMP/out.img"
assert_eq "ntfscat reads the rewritten file" "replaced-kernel" "$(ntfscat "$TMP/out.img" /Windows/System32/ntoskrnl.exe)"
ntfscat "$TMP/out.img" /Windows/Boot/EFI/en-US/bootmgfw.efi.mui >"$TMP/new.out"
check "ntfscat reads the new 70 KB file" cmp "$TMP/new" "$TMP/new.out"
assert_eq "new file created in the given case" "new-hal" "$(ntfscat "$TMP/out.img" /Windows/System32/hal.dll)"
ls32=$(ntfsls "$TMP/out.img" -p /Windows/System32)
assert_eq "no case-variant duplicate of ntoskrnl.exe" 1 "$(printf '%s\n' "$ls32" | grep -ci '^ntoskrnl.exe$')"
assert_eq "exactly one Boot folder" 1 "$(ntfsls "$TMP/out.img" -p /Windows | grep -ci '^boot$')"
assert_eq "EFI folder created with the case given" "EFI" "$(ntfsls "$TMP/out.img" -p /Windows/Boot | grep -ix efi)"
ns=$(ntfsinfo -F /Windows/Boot/EFI/en-US/bootmgfw.efi.mui "$TMP/out.img" | grep Namespace)
assert_match "long name stored in the Win32 namespace" 'Win32$' "$ns"
assert_match "with a DOS 8.3 alias" 'DOS$' "$ns"
assert_match "8.3-valid name stored as Win32 & DOS" 'Win32 & DOS' \
	"$(ntfsinfo -F /Windows/System32/hal.dll "$TMP/out.img" | grep Namespace)"
assert_match "timestamps are the build epoch, not the clock" 'Oct 22 00:00:00 2009' \
	"$(ntfsinfo -F /Windows/System32/hal.dll "$TMP/out.img" | grep 'File Altered Time' | head -1)"

# Refusals.
assert_exit "read-only mount refuses writes" 1 T "$disk" write /x.txt data
assert_exit "missing parent refused" 1 T --rw "$disk" write /nope/x.txt data
assert_match "error names the path" 'nope' "$ERR"

# Dirty and hibernated volumes: probe reports, rw mount refused (exit 4 = E_BLOCKED).
cp "$vol" "$TMP/dirty.img"; "$NTFSPUT" "$TMP/dirty.img" dirty
assert_match "probe reports dirty" 'dirty=1' "$("$TOOL" "$TMP/dirty.img" probe)"
assert_exit "rw mount of a dirty volume refused" 4 "$TOOL" --rw "$TMP/dirty.img" stat /
cp "$vol" "$TMP/hib.img"; printf 'hibr%01020d' 0 >"$TMP/hib"; "$NTFSPUT" "$TMP/hib.img" put hiberfil.sys "$TMP/hib"
assert_match "probe reports hibernation" 'hibernated=1' "$("$TOOL" "$TMP/hib.img" probe)"
assert_exit "rw mount of a hibernated volume refused" 4 "$TOOL" --rw "$TMP/hib.img" stat /
assert_exit "read-only mount of a hibernated volume allowed" 0 "$TOOL" "$TMP/hib.img" stat /Windows
cp "$vol" "$TMP/bl.img"; printf -- '-FVE-FS-' | dd of="$TMP/bl.img" bs=1 seek=3 conv=notrunc status=none
assert_match "probe reports BitLocker" 'ntfs=0 bitlocker=1' "$("$TOOL" "$TMP/bl.img" probe)"
assert_exit "BitLocker volume refused" 4 "$TOOL" "$TMP/bl.img" stat /
