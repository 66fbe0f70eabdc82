#!/bin/bash
# tests/blockers.sh - one bad fixture per blocker: inspect exits 4 and names
# the stable code; the old-Integration-Services case is a warning (exit 0);
# unreadable input exits 3, usage errors 2.
. "$(dirname "$0")/lib.sh"
need qemu-img sfdisk mkntfs python3
[ -x "$GEN2PREP" ] || skip "gen2prep not built"

bad() { # VARIANT [OS]: builds (raw, fast) and prints the path
	local f=$TMP/bad-$1.raw
	"$top_srcdir/scripts/mkfixture" --os "${2:-win7-sp1}" --format raw --bad "$1" "$f" >"$TMP/mk-$1.log" 2>&1 ||
		{ cat "$TMP/mk-$1.log"; die "mkfixture --bad $1 failed"; }
	printf '%s\n' "$f"
}

blocked() { # VARIANT CODE
	local img; img=$(bad "$1")
	local before; before=$(sha "$img")
	assert_exit "--bad $1: exit 4" 4 "$GEN2PREP" inspect --json "$img"
	printf '%s\n' "$OUT" >"$TMP/$1.json"
	assert_match "--bad $1: blocker code $2" "(^| )$2( |$)" "$(jget "$TMP/$1.json" '" ".join(b["code"] for b in j["blockers"])')"
	assert_eq "--bad $1: not convertible" false "$(jget "$TMP/$1.json" 'j["convertible"]')"
	assert_eq "--bad $1: input unchanged" "$before" "$(sha "$img")"
	assert_exit "--bad $1: text mode exit 4" 4 "$GEN2PREP" inspect "$img"
	assert_match "--bad $1: text names the blocker" "Blocker: $2" "$OUT"
}

blocked 32bit 32bit
blocked xp64 kernel-5x
blocked hibernated hibernated
blocked dirty-ntfs ntfs-dirty
blocked bitlocker bitlocker
blocked dirty-hive hive-dirty
blocked no-is no-integration-services
blocked no-windows no-windows
blocked no-table no-partition-table

# Details the codes stand on.
assert_eq "32bit: architecture x86 reported" x86 "$(jget "$TMP/32bit.json" 'j["windows"]["architecture"]')"
assert_eq "hibernated: partition flag" true "$(jget "$TMP/hibernated.json" 'j["partitions"][1]["hibernated"]')"
assert_eq "dirty-ntfs: partition flag" true "$(jget "$TMP/dirty-ntfs.json" 'j["partitions"][1]["ntfs_dirty"]')"
assert_eq "bitlocker: file system reported" bitlocker "$(jget "$TMP/bitlocker.json" 'j["partitions"][1]["filesystem"]')"
assert_eq "dirty-hive: SYSTEM hive flagged" true "$(jget "$TMP/dirty-hive.json" 'j["windows"]["system_hive_dirty"]')"
assert_eq "no-windows: windows is null" null "$(jget "$TMP/no-windows.json" 'j["windows"]')"
assert_eq "no-table: table type none" none "$(jget "$TMP/no-table.json" 'j["partition_table"]["type"]')"

# Old Integration Services: a warning, still convertible.
img=$(bad old-is)
assert_exit "old-is: exit 0 (warning only)" 0 "$GEN2PREP" inspect --json "$img"
printf '%s\n' "$OUT" >"$TMP/old-is.json"
assert_eq "old-is: warning code" old-integration-services "$(jget "$TMP/old-is.json" '" ".join(w["code"] for w in j["warnings"])' | grep -o old-integration-services)"
assert_eq "old-is: IS version reported" 6.1.7601.17514 "$(jget "$TMP/old-is.json" 'j["windows"]["integration_services"]["version"]')"
assert_eq "old-is: no blockers" "[]" "$(jget "$TMP/old-is.json" 'j["blockers"]')"

# Unreadable input and usage errors.
printf 'not a disk' >"$TMP/junk.vhdx"
head -c 1024 /dev/zero | tr '\0' 'x' >"$TMP/junk.vhdx"
printf 'vhdxfile' | dd of="$TMP/junk2.vhdx" bs=1 conv=notrunc status=none; truncate -s 4096 "$TMP/junk2.vhdx"
assert_exit "missing file: exit 3" 3 "$GEN2PREP" inspect "$TMP/nope.vhdx"
assert_match "missing file: one line naming the file" '^gen2prep: .*nope\.vhdx' "$ERR"
assert_eq "missing file: exactly one line on stderr" 1 "$(printf '%s\n' "$ERR" | wc -l)"
assert_exit "truncated VHDX: exit 3" 3 "$GEN2PREP" inspect "$TMP/junk2.vhdx"
assert_match "truncated VHDX: names the file" 'junk2\.vhdx' "$ERR"
assert_exit "no argument: exit 2" 2 "$GEN2PREP" inspect
assert_exit "two arguments: exit 2" 2 "$GEN2PREP" inspect a b
assert_exit "unknown option: exit 2" 2 "$GEN2PREP" inspect --bogus x
assert_exit "--help: exit 0" 0 "$GEN2PREP" inspect --help
assert_match "--help lists --json" '--json' "$OUT"
