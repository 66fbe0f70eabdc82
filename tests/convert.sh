#!/bin/bash
# convert.sh - one conversion looked at closely with independent tools:
# win7-sp1 (VHDX in) -> GPT raw out. Partition table (sgdisk, sfdisk), ESP
# (fsck.fat, mtools), BCD (python3-hivex) against the table, SYSTEM hive
# (ntfscat + python3-hivex), patched files (python3-pefile, gen2prep patch),
# data outside the edits unchanged, input untouched, determinism.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
need sgdisk sfdisk fsck.fat mdir mcopy ntfscat ntfscluster qemu-img vhdiinfo
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
# LeakSanitizer on for every run here (Makefile.am turns it off for the
# suite): a convert, its dry run and verify leak nothing. The ASan build
# exits 23 on a leak, which fails the assert_exit of that run.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"

IN=$(fixture win7-sp1 vhdx)
SUM=$(sha "$IN")
DST=$TMP/out.raw

# ---- the plan ----
assert_exit "dry run succeeds" 0 "$GEN2PREP" convert --dry-run --json "$IN" "$DST"
printf '%s' "$OUT" >"$TMP/plan.json"
assert_eq "dry run: convertible" true "$(jget "$TMP/plan.json" 'j["plan"]["convertible"]')"
assert_eq "dry run: the System Reserved partition is reused" reuse "$(jget "$TMP/plan.json" 'j["plan"]["esp"]["placement"]')"
assert_eq "dry run: ESP is partition 1" 1 "$(jget "$TMP/plan.json" 'j["plan"]["esp"]["partition"]')"
assert_eq "dry run: the disk grows by 1 MiB for the GPT backup" $((1025 << 20)) "$(jget "$TMP/plan.json" 'j["plan"]["new_virtual_size"]')"
assert_eq "dry run: patched winload copy" '\Windows\System32\winload-gen2.efi' "$(jget "$TMP/plan.json" 'j["plan"]["bcd"]["loader_path"]')"
assert_match "dry run: ESP file list names bootx64.efi" 'EFI/Boot/bootx64.efi' "$(jget "$TMP/plan.json" '[f["path"] for f in j["esp_files"]]')"
check "dry run writes nothing" test ! -e "$DST"

# ---- the conversion ----
assert_exit "convert win7-sp1 to GPT raw" 0 "$GEN2PREP" convert "$IN" "$DST"
assert_match "next steps are printed" "^Next steps:" "$OUT"
assert_match "next steps for a raw image: qemu with OVMF" "qemu-system-x86_64 .*OVMF" "$OUT"
assert_match "next steps for a raw image: how to make a VHDX" "qemu-img convert -f raw -O vhdx" "$OUT"
assert_eq "input unchanged (sha256)" "$SUM" "$(sha "$IN")"
check "no temporary file left" no_temp_left "$TMP"
assert_eq "output size is the grown virtual size" $((1025 << 20)) "$(stat -c %s "$DST")"

# ---- partition table ----
check "sgdisk -v finds no problem" sh -c "sgdisk -v '$DST' | grep -q 'No problems found'"
assert_eq "ESP type (sgdisk)" "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" "$(part_field "$DST" 1 type)"
assert_eq "Windows partition is basic data" "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" "$(part_field "$DST" 2 type)"
assert_eq "partition 1 keeps its start" 1048576 "$(part_start "$DST" 1)"
assert_eq "partition 2 keeps its start" $((101 << 20)) "$(part_start "$DST" 2)"
assert_eq "partition 2 keeps its size" $((923 << 20)) "$(part_size "$DST" 2)"

# ---- ESP ----
extract_part "$DST" 1 "$TMP/esp.img"
check "fsck.fat -n: ESP clean" fsck.fat -n "$TMP/esp.img"
MDIR=$(mdir -i "$TMP/esp.img" -b -/ :: 2>&1)
for f in EFI/Boot/bootx64.efi EFI/Microsoft/Boot/bootmgfw.efi EFI/Microsoft/Boot/BCD EFI/Microsoft/Boot/memtest.efi \
	EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui EFI/Microsoft/Boot/Fonts/wgl4_boot.ttf; do
	assert_match "mdir: $f" "::/$f\$|::/$f$" "$(printf '%s\n' "$MDIR" | grep -ix "::/$f")"
done
mcopy -n -i "$TMP/esp.img" ::/EFI/Boot/bootx64.efi "$TMP/bootx64.efi"
mcopy -n -i "$TMP/esp.img" ::/EFI/Microsoft/Boot/BCD "$TMP/BCD"

# ---- BCD ----
BM='Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements'
assert_eq "BCD: {bootmgr} path" '\EFI\Microsoft\Boot\bootmgfw.efi' "$(hive_val "$TMP/BCD" "$BM\\12000002" Element)"
assert_eq "BCD: timeout 30" 1e00000000000000 "$(hive_val "$TMP/BCD" "$BM\\25000004" Element)"
LOADER=$(hive_val "$TMP/BCD" "$BM\\23000003" Element)
assert_match "BCD: default is a GUID" '^\{[0-9a-f-]{36}\}$' "$LOADER"
LE="Objects\\$LOADER\\Elements"
assert_eq "BCD: loader type" 270532611 "$(hive_val "$TMP/BCD" "Objects\\$LOADER\\Description" Type)"
assert_eq "BCD: loader path is the patched copy" '\Windows\System32\winload-gen2.efi' "$(hive_val "$TMP/BCD" "$LE\\12000002" Element)"
assert_eq "BCD: nointegritychecks" 01 "$(hive_val "$TMP/BCD" "$LE\\16000048" Element)"
assert_eq "BCD: systemroot" '\Windows' "$(hive_val "$TMP/BCD" "$LE\\22000002" Element)"
assert_eq "BCD: no kernel debugger by default" "(no key)" "$(hive_val "$TMP/BCD" "$LE\\260000a0" Element)"
DISK_GUID=$(sgdisk -p "$DST" | sed -n 's/^Disk identifier (GUID): //p')
P1=$(part_field "$DST" 1 uuid) P2=$(part_field "$DST" 2 uuid)
# doc/formats.md, BCD partition device: 0x20 partition GUID, 0x34 style 0 (GPT), 0x38 disk GUID
DEV_BM=$(hive_val "$TMP/BCD" "$BM\\11000001" Element)
DEV_OS=$(hive_val "$TMP/BCD" "$LE\\21000001" Element)
assert_eq "BCD: {bootmgr} device = ESP partition GUID" "$(guid_le "$P1")" "${DEV_BM:64:32}"
assert_eq "BCD: {bootmgr} device = disk GUID" "$(guid_le "$DISK_GUID")" "${DEV_BM:112:32}"
assert_eq "BCD: osdevice = Windows partition GUID" "$(guid_le "$P2")" "${DEV_OS:64:32}"
assert_eq "BCD: osdevice partition style GPT" 00000000 "${DEV_OS:104:8}"
assert_eq "BCD: osdevice is 88 bytes" 176 "${#DEV_OS}"

# ---- SYSTEM hive and patched files through ntfscat ----
extract_part "$DST" 2 "$TMP/win.ntfs"
ntfscat "$TMP/win.ntfs" Windows/System32/config/SYSTEM >"$TMP/SYSTEM"
for cs in ControlSet001 ControlSet002; do
	assert_eq "$cs Ntfs Start 0" 0 "$(hive_val "$TMP/SYSTEM" "$cs\\Services\\Ntfs" Start)"
	assert_eq "$cs vmbus Start 0" 0 "$(hive_val "$TMP/SYSTEM" "$cs\\Services\\vmbus" Start)"
	assert_eq "$cs storvsc Start 0" 0 "$(hive_val "$TMP/SYSTEM" "$cs\\Services\\storvsc" Start)"
	assert_eq "$cs FirmwareBootDevice = the ESP" "multi(0)disk(0)rdisk(0)partition(1)" "$(hive_val "$TMP/SYSTEM" "$cs\\Control" FirmwareBootDevice)"
done
assert_eq "MountedDevices C: = DMIO:ID: + Windows partition GUID" "444d494f3a49443a$(guid_le "$P2")" \
	"$(hive_val "$TMP/SYSTEM" MountedDevices '\DosDevices\C:')"
check "SYSTEM sequence numbers equal" "$PY" -c 'import struct,sys; b=open(sys.argv[1],"rb").read(12); sys.exit(0 if b[:4]==b"regf" and struct.unpack("<II",b[4:12])[0]==struct.unpack("<II",b[4:12])[1] else 1)' "$TMP/SYSTEM"
for f in System32/ntoskrnl.exe System32/hal.dll System32/drivers/acpi.sys System32/winload-gen2.efi; do
	ntfscat "$TMP/win.ntfs" "Windows/$f" >"$TMP/pe.bin"
	check "pefile: $f checksum valid" pe_checksum_ok "$TMP/pe.bin"
	assert_exit "gen2prep patch --dry-run on $f" 0 "$GEN2PREP" patch --dry-run --json "$TMP/pe.bin"
	assert_match "$f: the catalog's edits are there (already-applied)" 'already-applied' "$OUT"
	check_fails "$f: nothing left to apply" sh -c "printf '%s' \"\$1\" | grep -q '\"would-apply\"'" _ "$OUT"
done
ntfscat "$TMP/win.ntfs" Windows/System32/winload.efi >"$TMP/winload.efi"
qemu-img convert -q -O raw "$IN" "$TMP/in.raw"
extract_part "$TMP/in.raw" 2 "$TMP/win-in.ntfs"
ntfscat "$TMP/win-in.ntfs" Windows/System32/winload.efi >"$TMP/winload-in.efi"
check "original winload.efi left as it was" cmp "$TMP/winload.efi" "$TMP/winload-in.efi"
check "no case variant created (one System32)" sh -c "ntfsls '$TMP/win.ntfs' -p /Windows | grep -ic '^system32\$' | grep -qx 1"
for f in Windows/System32/config/SOFTWARE Windows/System32/kdcom.dll Windows/Boot/EFI/bootmgfw.efi; do
	check "unchanged: $f" bash -c "cmp <(ntfscat '$TMP/win.ntfs' $f) <(ntfscat '$TMP/win-in.ntfs' $f)"
done
# outside the NTFS files we changed, the Windows partition is the input's:
# every differing 4 KiB cluster belongs (ntfscluster, ntfs-3g) to the NTFS
# metadata a write touches or to a file the plan names
"$PY" - "$TMP/win.ntfs" "$TMP/win-in.ntfs" >"$TMP/runs" <<'EOF'
import sys
a, b, i, runs = open(sys.argv[1], "rb"), open(sys.argv[2], "rb"), 0, []
while True:
    x, y = a.read(4096), b.read(4096)
    if not x and not y: break
    if x != y:
        if runs and runs[-1][1] == i - 1: runs[-1][1] = i
        else: runs.append([i, i])
    i += 1
for r in runs: print("%d-%d" % tuple(r))
EOF
check "the Windows partition differs somewhere (the edits)" test -s "$TMP/runs"
ALLOWED='^Inode [0-9]+ (/\$MFT/|/\$MFTMirr/|/\$Bitmap/|/\$LogFile/|/Windows/System32/\$INDEX_ALLOCATION|/Windows/System32/config/SYSTEM/\$DATA|/Windows/System32/ntoskrnl\.exe/|/Windows/System32/hal\.dll/|/Windows/System32/drivers/acpi\.sys/|/Windows/System32/winload-gen2\.efi/)'
BAD=""
while read -r r; do
	owners=$(ntfscluster -c "$r" "$TMP/win.ntfs" 2>/dev/null | grep '^Inode')
	[ -n "$owners" ] || BAD="$BAD clusters $r: used by no file;"
	while read -r o; do
		[ -z "$o" ] || printf '%s\n' "$o" | grep -Eq "$ALLOWED" || BAD="$BAD clusters $r: $o;"
	done <<<"$owners"
done <"$TMP/runs"
assert_eq "every changed NTFS cluster belongs to an edited file or NTFS metadata (ntfscluster)" "" "$BAD"
check "the sectors between the GPT and partition 1 are the input's" bash -c \
	"cmp <(dd if='$DST' bs=512 skip=34 count=2014 status=none) <(dd if='$TMP/in.raw' bs=512 skip=34 count=2014 status=none)"
check "the new area past the old end reads as zeros (up to the backup GPT)" bash -c "cmp -n $(((1 << 20) - 33 * 512)) <(dd if='$DST' bs=1M skip=1024 count=1 status=none) /dev/zero"

# ---- formats and determinism ----
assert_exit "convert again to raw" 0 "$GEN2PREP" convert -q "$IN" "$TMP/again.raw"
check "same input and options: same bytes" cmp "$DST" "$TMP/again.raw"
assert_exit "convert to VHDX" 0 "$GEN2PREP" convert -q "$IN" "$TMP/out.vhdx"
assert_exit "convert to VHDX again" 0 "$GEN2PREP" convert -q "$IN" "$TMP/again.vhdx"
check "VHDX deterministic" cmp "$TMP/out.vhdx" "$TMP/again.vhdx"
check "qemu-img check: VHDX clean" qemu-img check -q "$TMP/out.vhdx"
check "vhdiinfo reads the VHDX" vhdiinfo "$TMP/out.vhdx"
to_raw "$TMP/out.vhdx" "$TMP/vhdx.raw"
check "VHDX holds the same disk as the raw output" cmp "$DST" "$TMP/vhdx.raw"
assert_exit "--random-ids" 0 "$GEN2PREP" convert -q --random-ids "$IN" "$TMP/random.raw"
assert_ne "--random-ids: another disk GUID" "$DISK_GUID" "$(sgdisk -p "$TMP/random.raw" | sed -n 's/^Disk identifier (GUID): //p')"
assert_eq "input still unchanged" "$SUM" "$(sha "$IN")"

# ---- verify agrees ----
assert_exit "gen2prep verify: ready" 0 "$GEN2PREP" verify "$DST"

# ---- debugger options and --no-crash-report ----
assert_exit "convert --debug serial:2:57600 --bootdebug --no-crash-report" 0 \
	"$GEN2PREP" convert --debug serial:2:57600 --bootdebug --no-crash-report "$IN" "$TMP/dbg.raw"
assert_match "--bootdebug warns (stderr) that the boot waits for a debugger" "waits" "$ERR"
assert_match "next steps: the debugger's COM2 and baud rate" "COM2 at 57600 baud" "$OUT"
extract_part "$TMP/dbg.raw" 1 "$TMP/esp2.img"
mcopy -n -i "$TMP/esp2.img" ::/EFI/Microsoft/Boot/BCD "$TMP/BCD-dbg"
LOADER=$(hive_val "$TMP/BCD-dbg" "$BM\\23000003" Element)
LE="Objects\\$LOADER\\Elements"
DBG='Objects\{4636856e-540f-4170-a130-a84776f4c654}\Elements'
assert_eq "--debug: loader debug on" 01 "$(hive_val "$TMP/BCD-dbg" "$LE\\260000a0" Element)"
assert_eq "--debug: loader sos on" 01 "$(hive_val "$TMP/BCD-dbg" "$LE\\26000091" Element)"
assert_eq "--bootdebug: loader bootdebug on" 01 "$(hive_val "$TMP/BCD-dbg" "$LE\\16000010" Element)"
assert_eq "--debug: dbgsettings serial" 0000000000000000 "$(hive_val "$TMP/BCD-dbg" "$DBG\\15000011" Element)"
assert_eq "--debug: dbgsettings port 2" 0200000000000000 "$(hive_val "$TMP/BCD-dbg" "$DBG\\15000013" Element)"
assert_eq "--debug: dbgsettings baud 57600" 00e1000000000000 "$(hive_val "$TMP/BCD-dbg" "$DBG\\15000014" Element)"
extract_part "$TMP/dbg.raw" 2 "$TMP/win-dbg.ntfs"
ntfscat "$TMP/win-dbg.ntfs" Windows/System32/ntoskrnl.exe >"$TMP/nt-dbg.exe"
assert_exit "--no-crash-report: patch --dry-run on ntoskrnl" 0 "$GEN2PREP" patch --dry-run --json "$TMP/nt-dbg.exe"
printf '%s' "$OUT" >"$TMP/nt-dbg.json"
assert_eq "--no-crash-report: crash-report left unapplied" would-apply "$(jget "$TMP/nt-dbg.json" '[p["status"] for p in j["patches"] if p["id"] == "crash-report"][0]')"
assert_eq "--no-crash-report: dynamic-partitioning applied" already-applied "$(jget "$TMP/nt-dbg.json" '[p["status"] for p in j["patches"] if p["id"] == "dynamic-partitioning"][0]')"
check "--no-crash-report: pefile checksum valid" pe_checksum_ok "$TMP/nt-dbg.exe"
assert_exit "--debug disk: verify ready" 0 "$GEN2PREP" verify "$TMP/dbg.raw"

# ---- the JSON report of a conversion ----
assert_exit "convert --json" 0 "$GEN2PREP" convert --json "$IN" "$TMP/j.raw"
printf '%s' "$OUT" >"$TMP/report.json"
assert_eq "report: done" true "$(jget "$TMP/report.json" 'j["done"]')"
assert_eq "report: exit code 0" 0 "$(jget "$TMP/report.json" 'j["exit_code"]')"
assert_eq "report: every applicable patch applied" "acpi-mode crash-report dynamic-partitioning loader-integrity pcat-compat timer-scale" \
	"$(jget "$TMP/report.json" '" ".join(sorted(r["id"] for p in j["patch_results"] for r in p["results"] if r["status"] == "applied"))')"
assert_eq "report: winload copy written" true "$(jget "$TMP/report.json" '[p["written"] for p in j["patch_results"] if p["binary"] == "winload"][0]')"
assert_match "report: next steps (a list of {text, command})" "qemu-system-x86_64" "$(jget "$TMP/report.json" '[s["command"] for s in j["next_steps"]]')"
check "the --json output is the same disk" cmp "$DST" "$TMP/j.raw"
