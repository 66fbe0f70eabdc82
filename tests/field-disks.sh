#!/bin/bash
# tests/field-disks.sh - disks from the field that must be refused with
# their real cause before anything is written (issue 9 items 2, 3, 4, 8):
# dynamic (LDM) disks, MBR and GPT; a system drive letter that names
# another disk; NTFS whose $LogFile says it was not shut down (and the
# fast-startup restart page 2.0); a SYSTEM hive with a torn base block and
# its SYSTEM.LOG1; and, as a warning only, a patched kernel that has a
# WinSxS hard link (convert then changes both names). Every fixture is
# checked with an independent tool first (sfdisk, sgdisk, ntfscat,
# ntfsinfo, python3-hivex).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
. "$(dirname "$0")/refusals-lib.sh"
need qemu-img sfdisk sgdisk mkntfs ntfscat ntfsinfo ntfsls python3
[ -x "$GEN2PREP" ] || skip "gen2prep not built"
"$PY" -c 'import hivex' 2>/dev/null || skip "python3-hivex not installed"

# ---- dynamic disk, MBR: partition type 0x42 and the LDM private header ----
img=$(bad_fixture dynamic)
assert_eq "dynamic: sfdisk sees type 42" 42 "$(part_field "$img" 2 type)"
assert_eq "dynamic: PRIVHEAD at sector 6" PRIVHEAD "$(dd if="$img" bs=512 skip=6 count=1 status=none | head -c 8)"
blocked_everywhere dynamic "$img" dynamic-disk "partition 2 is a Logical Disk Manager partition \\(MBR type 0x42\\), PRIVHEAD at sector 6"

# ---- dynamic disk, GPT: the LDM data and metadata partition types ----
gpt=$TMP/gpt.raw
cp --sparse=always "$(bad_fixture ntfs-larger)" "$gpt"   # partition 2 ends 1 MiB early: room for the backup GPT
check "GPT: sgdisk converts the table" sgdisk -g "$gpt"
cp --sparse=always "$gpt" "$TMP/ldm-data.raw"
check "GPT: sgdisk sets the LDM data type" sgdisk -t 2:AF9B60A0-1431-4F62-BC68-3311714A69AD "$TMP/ldm-data.raw"
assert_match "GPT: sgdisk names it" "Windows LDM data" "$(sgdisk -i 2 "$TMP/ldm-data.raw")"
blocked_everywhere ldm-data "$TMP/ldm-data.raw" dynamic-disk "partition 2 is a Logical Disk Manager partition \\(GPT LDM type\\)"
cp --sparse=always "$gpt" "$TMP/ldm-meta.raw"
check "GPT: sgdisk sets the LDM metadata type" sgdisk -t 1:5808C8AA-7E8F-42E0-85D2-E1E90434CFB3 "$TMP/ldm-meta.raw"
assert_match "GPT: sgdisk names it" "Windows LDM metadata" "$(sgdisk -i 1 "$TMP/ldm-meta.raw")"
assert_exit "GPT LDM metadata: inspect exit 4" 4 "$GEN2PREP" inspect "$TMP/ldm-meta.raw"
assert_match "GPT LDM metadata: dynamic-disk" "Blocker: dynamic-disk: .*partition 1 is a Logical Disk Manager" "$OUT"
# the basic GPT disk still names C: by its old MBR signature: that is the
# drive-letter blocker, and the only one
assert_exit "GPT basic: inspect exit 4" 4 "$GEN2PREP" inspect --json "$gpt"
printf '%s\n' "$OUT" >"$TMP/gpt.json"
assert_eq "GPT basic: only system-drive-elsewhere" system-drive-elsewhere "$(ids "$TMP/gpt.json" 'j["blockers"]')"

# ---- the system drive letter names another disk ----
img=$(bad_fixture drive-elsewhere)
extract_part "$img" 2 "$TMP/de.ntfs"
ntfscat "$TMP/de.ntfs" /Windows/System32/config/SYSTEM >"$TMP/de.SYSTEM"
cval=$(hive_val "$TMP/de.SYSTEM" MountedDevices '\DosDevices\C:')
sig=$(sfdisk -d "$img" | sed -n 's/^label-id: 0x//p')
sig_le=$(printf '%s' "$sig" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
assert_ne "drive-elsewhere: hivex: C: is not on this disk's signature $sig" "$sig_le" "${cval:0:8}"
blocked_everywhere drive-elsewhere "$img" system-drive-elsewhere \
	"DosDevices.{1,2}C: \\(the system drive\\) in MountedDevices points to another disk \\(MBR signature 0x514DC0DE; this disk: 0x0B17C0DE\\), not to the Windows partition 2"

# ---- MountedDevices longer than gen2prep's table (64 values) ----
# mounted-many: 70 other disks' volumes come before this disk's values; the
# values naming this disk must still be read and edited (hivexget counts them)
img=$(bad_fixture mounted-many)
extract_part "$img" 2 "$TMP/mm.ntfs"
ntfscat "$TMP/mm.ntfs" /Windows/System32/config/SYSTEM >"$TMP/mm.SYSTEM"
assert_eq "mounted-many: hivexget: 73 MountedDevices values" 73 "$(hivexget "$TMP/mm.SYSTEM" MountedDevices | grep -c '^"')"
assert_exit "mounted-many: inspect --json exit 0" 0 "$GEN2PREP" inspect --json "$img"
printf '%s\n' "$OUT" >"$TMP/mm.json"
assert_eq "mounted-many: the C: and this disk's volume values are edited" \
	'\??\Volume{1b2c3d4d-0000-11e0-a000-806e6f6e6963} \??\Volume{1b2c3d4e-0000-11e0-a000-806e6f6e6963} \DosDevices\C:' \
	"$(jget "$TMP/mm.json" '" ".join(sorted(e["value"] for e in j["plan"]["registry"] if e["key"] == "MountedDevices"))')"
# mounted-too-many: 73 values naming this disk or a letter: never planned with some left out
img=$(bad_fixture mounted-too-many)
blocked_everywhere mounted-too-many "$img" mounted-devices-too-many \
	"MountedDevices holds 9 more drive-letter or this-disk values than the 64 gen2prep reads"

# control-sets-many: nine ControlSetNNN keys (hivexget lists them), one more than read
img=$(bad_fixture control-sets-many)
extract_part "$img" 2 "$TMP/cs.ntfs"
ntfscat "$TMP/cs.ntfs" /Windows/System32/config/SYSTEM >"$TMP/cs.SYSTEM"
assert_eq "control-sets-many: hivexsh: nine control sets" 9 "$(printf 'ls\n' | hivexsh "$TMP/cs.SYSTEM" | grep -c '^ControlSet00')"
blocked_everywhere control-sets-many "$img" control-sets-too-many \
	"SYSTEM holds more than the 8 control sets gen2prep reads \(ControlSet009 is one more\)"

# ---- $LogFile: not shut down cleanly, no dirty bit ----
logfile_state() { # NTFS-IMAGE: "magic version in_use flags" of the first restart page (ntfscat)
	ntfscat "$1" '$LogFile' | head -c 4096 | "$PY" -c '
import struct, sys
b = sys.stdin.buffer.read()
ra = struct.unpack_from("<H", b, 24)[0]
mnr, maj = struct.unpack_from("<hh", b, 26)   # minor_ver at 26, major_ver at 28
print(b[:4].decode(), "%d.%d" % (maj, mnr), struct.unpack_from("<H", b, ra + 12)[0], struct.unpack_from("<H", b, ra + 14)[0])'
}
img=$(bad_fixture ntfs-unclean)
extract_part "$img" 2 "$TMP/u.ntfs"
assert_eq "ntfs-unclean: ntfscat: restart page 1.1, client 0 in use, clean flag clear" "RSTR 1.1 0 0" "$(logfile_state "$TMP/u.ntfs")"
assert_match "ntfs-unclean: ntfsinfo: no dirty bit (VOLUME_IS_DIRTY 0x0001 clear)" "Volume Flags: 0x0000" "$(ntfsinfo -m "$TMP/u.ntfs" 2>/dev/null)"
blocked_everywhere ntfs-unclean "$img" ntfs-unclean \
	"NTFS on partition 2 was not shut down cleanly: its .LogFile restart area has a client in use and no clean flag.*boot Windows and shut down fully"
assert_eq "ntfs-unclean: partition's logfile state in --json" unclean "$(jget "$TMP/ntfs-unclean.inspect.json" 'j["partitions"][1]["logfile"]')"
assert_eq "ntfs-unclean: not reported as dirty" false "$(jget "$TMP/ntfs-unclean.inspect.json" 'j["partitions"][1]["ntfs_dirty"]')"
img=$(bad_fixture ntfs-cached)
extract_part "$img" 2 "$TMP/c.ntfs"
assert_eq "ntfs-cached: ntfscat: restart page 2.0, clean flag set" "RSTR 2.0 0 2" "$(logfile_state "$TMP/c.ntfs")"
blocked_everywhere ntfs-cached "$img" ntfs-unclean "restart page version 2.0, Windows kept metadata cached"
# a clean volume: mkntfs's empty journal is clean
img=$(fixture win7-sp1 raw)
assert_exit "clean fixture: inspect exit 0" 0 "$GEN2PREP" inspect --json "$img"
printf '%s\n' "$OUT" >"$TMP/clean.json"
assert_eq "clean fixture: logfile clean" clean "$(jget "$TMP/clean.json" 'j["partitions"][1]["logfile"]')"
assert_eq "clean fixture: SYSTEM hive state clean" clean "$(jget "$TMP/clean.json" 'j["windows"]["system_hive_state"]')"

# ---- SYSTEM hive with a torn base block and SYSTEM.LOG1 beside it ----
img=$(bad_fixture torn-hive)
extract_part "$img" 2 "$TMP/t.ntfs"
ntfscat "$TMP/t.ntfs" /Windows/System32/config/SYSTEM >"$TMP/t.SYSTEM"
assert_eq "torn-hive: checksum wrong, sequence numbers equal (read by python)" "torn equal" "$("$PY" -c '
import struct, sys
b = open(sys.argv[1], "rb").read(4096); x = 0
for i in range(0, 508, 4): x ^= struct.unpack_from("<I", b, i)[0]
print("torn" if x != struct.unpack_from("<I", b, 508)[0] else "ok", "equal" if b[4:8] == b[8:12] else "differ")' "$TMP/t.SYSTEM")"
check_fails "torn-hive: python3-hivex refuses the hive" "$PY" -c 'import hivex, sys; hivex.Hivex(sys.argv[1])' "$TMP/t.SYSTEM"
check "torn-hive: SYSTEM.LOG1 is beside it (ntfsinfo)" ntfsinfo -F /Windows/System32/config/SYSTEM.LOG1 "$TMP/t.ntfs"
blocked_everywhere torn-hive "$img" hive-needs-recovery \
	"Windows.{1,2}System32.{1,2}config.{1,2}SYSTEM needs recovery from its transaction logs: base block checksum 0x[0-9a-f]+, computed 0x[0-9a-f]+ \\(sequence numbers 2/2; SYSTEM.LOG1 \\(8192 bytes\\)\\)"
assert_eq "torn-hive: no blocker derived from the unread hive" hive-needs-recovery "$(ids "$TMP/torn-hive.inspect.json" 'j["blockers"]')"
assert_eq "torn-hive: state in --json" torn "$(jget "$TMP/torn-hive.inspect.json" 'j["windows"]["system_hive_state"]')"
assert_exit "torn-hive: text" 4 "$GEN2PREP" inspect "$img"
assert_match "torn-hive: not reported clean" "SYSTEM hive:  NEEDS RECOVERY" "$OUT"

# ---- hard links: a warning; convert changes the WinSxS name too ----
img=$(bad_fixture hard-links)
extract_part "$img" 2 "$TMP/h.ntfs"
assert_match "hard-links: ntfsinfo counts 2 links" "Number of Hard Links:[[:space:]]+2 " "$(ntfsinfo -F /Windows/System32/ntoskrnl.exe "$TMP/h.ntfs")"
sxs=$(ntfsls -p /Windows/WinSxS "$TMP/h.ntfs" 2>/dev/null | grep '^amd64_' | head -1)
assert_exit "hard-links: inspect exit 0" 0 "$GEN2PREP" inspect --json "$img"
printf '%s\n' "$OUT" >"$TMP/hl.json"
assert_match "hard-links: warning id" patched-file-has-hard-links "$(ids "$TMP/hl.json" 'j["warnings"]')"
assert_match "hard-links: names the WinSxS path" "ntoskrnl.exe is also .*Windows.*WinSxS.*amd64_microsoft-windows-os-kernel.*ntoskrnl.exe; patching changes every name \\(sfc /scannow" \
	"$(jget "$TMP/hl.json" '[w["message"] for w in j["warnings"]]')"
assert_exit "hard-links: convert exit 0" 0 "$GEN2PREP" convert -q -O raw "$img" "$TMP/hl-out.raw"
extract_part "$TMP/hl-out.raw" 2 "$TMP/ho.ntfs"
k1=$(ntfscat "$TMP/ho.ntfs" /Windows/System32/ntoskrnl.exe | sha256sum)
k2=$(ntfscat "$TMP/ho.ntfs" "/Windows/WinSxS/$sxs/ntoskrnl.exe" | sha256sum)
k0=$(ntfscat "$TMP/h.ntfs" /Windows/System32/ntoskrnl.exe | sha256sum)
assert_ne "hard-links: the kernel was patched" "$k0" "$k1"
assert_eq "hard-links: the WinSxS name reads the patched bytes" "$k1" "$k2"

# ---- more bad input: each is refused with its own cause, nothing derived ----
# restart pages whose log page size (offset 20) is 3: inconsistent for
# ntfs-3g's ntfs_check_logfile, so the journal's state is unknown
cp --sparse=always "$TMP/u.ntfs" "$TMP/d.ntfs"
rstr=$("$PY" -c 'import mmap,sys; f=open(sys.argv[1],"rb"); m=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ); print(m.find(b"RSTR\x1e\x00\x09\x00"))' "$TMP/d.ntfs")
check "damaged \$LogFile: restart page found" test "$rstr" -gt 0
for o in 20 $((4096 + 20)); do printf '\003\000\000\000' | dd of="$TMP/d.ntfs" bs=1 seek=$((rstr + o)) conv=notrunc status=none; done
cp --sparse=always "$(bad_fixture ntfs-unclean)" "$TMP/lfd.raw"
put_part "$TMP/lfd.raw" 2 "$TMP/d.ntfs"
assert_exit "damaged \$LogFile: inspect exit 4" 4 "$GEN2PREP" inspect "$TMP/lfd.raw"
assert_match "damaged \$LogFile: ntfs-unclean, inconsistent" "Blocker: ntfs-unclean: .*restart pages are inconsistent" "$OUT"
# a SYSTEM that is not a hive, and one whose first hbin is damaged
base=$(fixture win7-sp1 raw)
extract_part "$base" 2 "$TMP/b.ntfs"
ntfscat "$TMP/b.ntfs" /Windows/System32/config/SYSTEM >"$TMP/S"
head -c 100 /dev/zero | tr '\0' 'x' >"$TMP/S.junk"
cp "$TMP/S" "$TMP/S.hbin"; printf 'XXXX' | dd of="$TMP/S.hbin" bs=1 seek=4096 conv=notrunc status=none
check_fails "damaged hbin: python3-hivex refuses it" "$PY" -c 'import hivex, sys; hivex.Hivex(sys.argv[1])' "$TMP/S.hbin"
for k in junk hbin; do
	cp --sparse=always "$TMP/b.ntfs" "$TMP/k.ntfs"
	check "$k: ntfsput replaces SYSTEM" "$top_builddir/fixtures/ntfsput" "$TMP/k.ntfs" put Windows/System32/config/SYSTEM "$TMP/S.$k"
	cp --sparse=always "$base" "$TMP/$k.raw"
	put_part "$TMP/$k.raw" 2 "$TMP/k.ntfs"
	assert_exit "$k SYSTEM: inspect exit 4" 4 "$GEN2PREP" inspect --json "$TMP/$k.raw"
	printf '%s\n' "$OUT" >"$TMP/$k.json"
	assert_eq "$k SYSTEM: system-hive-unreadable, nothing derived" system-hive-unreadable "$(ids "$TMP/$k.json" 'j["blockers"]')"
	assert_eq "$k SYSTEM: state" unreadable "$(jget "$TMP/$k.json" 'j["windows"]["system_hive_state"]')"
done
assert_match "junk SYSTEM: says it is no hive" 'is not a registry hive \(no \\"regf\\" base block' "$(jget "$TMP/junk.json" '[b["message"] for b in j["blockers"]]')"
