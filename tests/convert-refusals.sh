#!/bin/bash
# convert-refusals.sh - every refusal of convert: each inspect blocker
# (mkfixture --bad), an ESP that does not fit, a kernel without the patch
# sites, a truncated VHDX, OUT = IN, an existing OUT, an output folder that
# cannot be written, a full output file system, usage errors. Each exits
# with its documented code, names its reason, and leaves neither OUT nor a
# temporary file; the input is never modified.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
need qemu-img ntfscp
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"

fixture_bad() { # BAD: a cached win7-sp1 VHDX with that defect
	local f="$FIXTURES/win7-sp1-bad-$1.vhdx"
	mkdir -p "$FIXTURES"
	(
		flock 9
		{ [ -s "$f" ] && ! fixture_stale "$f"; } || { "$top_srcdir/scripts/mkfixture" --os win7-sp1 --bad "$1" "$f.part" >/dev/null 2>&1 && mv "$f.part" "$f"; } \
			|| { rm -f "$f.part"; exit 1; }
	) 9>"$FIXTURES/.lock-bad-$1" || die "cannot build fixture --bad $1"
	printf '%s\n' "$f"
}

refused() { # DESCRIPTION CODE REASON-REGEX OUT ARGS...: exit code, reason, nothing left
	local d=$1 code=$2 re=$3 out=$4; shift 4
	assert_exit "$d" "$code" "$GEN2PREP" convert -q "$@"
	assert_match "$d: reason given" "$re" "$ERR"
	check "$d: no output" test ! -e "$out"
	check "$d: no temporary file" no_temp_left "$(dirname "$out")"
}

# ---- inspect's blockers (exit 4) ----
while read -r bad re; do
	in=$(fixture_bad "$bad")
	sum=$(sha "$in")
	refused "blocker $bad" 4 "$re" "$TMP/out.vhdx" "$in" "$TMP/out.vhdx"
	assert_eq "blocker $bad: input unchanged" "$sum" "$(sha "$in")"
done <<'EOF'
32bit 32-bit|x86
xp64 5\.2|XP|2003
hibernated [Hh]ibernat
dirty-ntfs [Dd]irty
bitlocker BitLocker
dirty-hive hive|SYSTEM
no-is Integration|vmbus|storvsc
no-windows Windows
no-table partition table
EOF

IN=$(fixture win7-sp1 vhdx)
SUM=$(sha "$IN")
# outputs are written from the 8.1 fixture: no patch involved
IN81=$(fixture win81 vhdx)

# ---- old Integration Services: a warning, not a blocker ----
in=$(fixture_bad old-is)
assert_exit "old Integration Services: dry run convertible" 0 "$GEN2PREP" convert --dry-run --json "$in" "$TMP/w.raw"
printf '%s' "$OUT" >"$TMP/oldis.json"
assert_match "old Integration Services: warned" "Integration Services" "$(jget "$TMP/oldis.json" 'j["plan"]["warnings"]')"

# ---- layouts that cannot be made (exit 4) ----
refused "--esp existing without a FAT32 partition" 4 "no FAT32|existing" "$TMP/o1.raw" --esp existing "$IN" "$TMP/o1.raw"
refused "--esp-size below the FAT32 minimum: usage error (issue 9 item 5)" 2 "minimum of [0-9]+ MiB" "$TMP/o2.raw" --esp append --esp-size 8 "$IN" "$TMP/o2.raw"
assert_exit "dry run of a blocked plan exits 4" 4 "$GEN2PREP" convert --dry-run --json --esp existing "$IN" "$TMP/o3.raw"
printf '%s' "$OUT" >"$TMP/blocked.json"
assert_eq "dry run JSON: not convertible" false "$(jget "$TMP/blocked.json" 'j["plan"]["convertible"]')"
assert_eq "dry run JSON: blocker code" esp-no-room "$(jget "$TMP/blocked.json" 'j["plan"]["blockers"][0]["code"]')"

# ---- kernel files without a patch site, or with two (exit 5) ----
MKPE=""
for d in "$top_builddir/fixtures" "$top_srcdir/build-check/fixtures" "$top_srcdir/build/fixtures"; do [ -x "$d/mkpe" ] && MKPE=$d/mkpe && break; done
[ -n "$MKPE" ] || die "fixtures/mkpe not built"
with_file() { # NAME NTFS-PATH MKPE-ARGS...: a raw copy of the fixture with that file replaced
	local img=$TMP/$1.raw path=$2
	shift 2
	to_raw "$IN" "$img"
	extract_part "$img" 2 "$TMP/win.ntfs"
	"$MKPE" "$@" "$TMP/file.bin" >/dev/null
	ntfscp -f "$TMP/win.ntfs" "$TMP/file.bin" "$path" >/dev/null 2>&1
	put_part "$img" 2 "$TMP/win.ntfs"
	rm -f "$TMP/win.ntfs" "$TMP/file.bin"
}
with_file nosite Windows/System32/ntoskrnl.exe --kind driver --file-version 6.1.7601.17514 --original-filename ntoskrnl.exe
refused "kernel without the patch sites" 5 "ntoskrnl" "$TMP/o4.raw" "$TMP/nosite.raw" "$TMP/o4.raw"
assert_match "the missing patch is named" "crash-report|dynamic-partitioning" "$ERR"
# one verdict (issue 8): inspect and the dry run say 5 too, with the blocker
assert_exit "kernel without the patch sites: inspect exit 5 too" 5 "$GEN2PREP" inspect --json "$TMP/nosite.raw"
assert_match "kernel without the patch sites: inspect's blocker patch-site" '"code": "patch-site"' "$OUT"
assert_exit "kernel without the patch sites: dry run exit 5 too" 5 "$GEN2PREP" convert --dry-run "$TMP/nosite.raw" "$TMP/o4.raw"
assert_match "kernel without the patch sites: dry run names it" "BLOCKED \(patch-site\).*ntoskrnl" "$OUT"
with_file twosites Windows/System32/hal.dll --kind hal --file-version 6.1.7601.17514 --variant ambiguous
refused "HAL with two candidate sites" 5 "hal.dll" "$TMP/o4b.raw" "$TMP/twosites.raw" "$TMP/o4b.raw"
assert_match "ambiguity is named" "ambiguous|candidates" "$ERR"
rm -f "$TMP/nosite.raw" "$TMP/twosites.raw"

# ---- bad input (exit 3) ----
head -c $((40 << 20)) "$IN" >"$TMP/trunc.vhdx"
refused "truncated VHDX" 3 "trunc|VHDX|vhdx|read" "$TMP/o5.raw" "$TMP/trunc.vhdx" "$TMP/o5.raw"
printf 'not a disk image' >"$TMP/junk.vhdx"
assert_exit "a missing input" 3 "$GEN2PREP" convert -q "$TMP/missing.vhdx" "$TMP/o6.raw"

# ---- a disk that is already Generation 2 ready: exit 4 unless --force ----
# (its ESP's BCD names a default loader on this disk that exists: convert
# would format that ESP anew, so it asks for --force)
# inspect's verdict is the plan's (issue 8): already-gen2 is a blocker there too
blockers_of() { "$GEN2PREP" inspect --json "$1" >"$TMP/i.json" 2>/dev/null; jget "$TMP/i.json" '" ".join(w["code"] for w in j["blockers"])'; }
assert_exit "already-gen2: convert win8.1 once (gpt)" 0 "$GEN2PREP" convert -q "$IN81" "$TMP/g2.raw"
assert_exit "already-gen2: convert win7 once (mbr)" 0 "$GEN2PREP" convert -q --layout mbr "$IN" "$TMP/g2m.raw"
warnings_of "$IN81" >/dev/null
check_fails "already-gen2: Gen1 disk has no such warning" grep -q already-gen2 "$TMP/i.json"
assert_match "already-gen2: inspect --json blocker (gpt)" "already-gen2" "$(blockers_of "$TMP/g2.raw")"
assert_match "already-gen2: inspect --json blocker (mbr)" "already-gen2" "$(blockers_of "$TMP/g2m.raw")"
assert_exit "already-gen2: inspect exits 4, as convert" 4 "$GEN2PREP" inspect "$TMP/g2.raw"
assert_match "already-gen2: inspect text" "Blocker: already-gen2: .*partition 1.*winload.efi.*partition 2" "$OUT"
G2SUM=$(sha "$TMP/g2.raw")
refused "already-gen2: convert refuses" 4 "already Generation 2 ready.*--force" "$TMP/again.raw" "$TMP/g2.raw" "$TMP/again.raw"
assert_eq "already-gen2: one line on stderr" 1 "$(printf '%s\n' "$ERR" | wc -l)"
assert_exit "already-gen2: dry run exits 4" 4 "$GEN2PREP" convert --dry-run --json "$TMP/g2.raw" "$TMP/again.raw"
printf '%s' "$OUT" >"$TMP/d.json"
assert_eq "already-gen2: dry-run blocker id" already-gen2 "$(jget "$TMP/d.json" '" ".join(b["code"] for b in j["plan"]["blockers"])')"
assert_eq "already-gen2: input unchanged" "$G2SUM" "$(sha "$TMP/g2.raw")"
assert_exit "already-gen2: --force converts it" 0 "$GEN2PREP" convert -q --force "$TMP/g2.raw" "$TMP/again.raw"
assert_exit "already-gen2: --force output verifies" 0 "$GEN2PREP" verify "$TMP/again.raw"
rm -f "$TMP/g2.raw" "$TMP/g2m.raw" "$TMP/again.raw"

# ---- output refused (exit 7) ----
to_raw "$IN" "$TMP/in.raw"
RSUM=$(sha "$TMP/in.raw")
assert_exit "OUT = IN" 7 "$GEN2PREP" convert -q "$TMP/in.raw" "$TMP/in.raw"
assert_match "OUT = IN: reason" "input" "$ERR"
ln "$TMP/in.raw" "$TMP/hardlink.raw"
assert_exit "OUT = IN through a hard link" 7 "$GEN2PREP" convert -q "$TMP/in.raw" "$TMP/hardlink.raw"
assert_eq "OUT = IN: input unchanged" "$RSUM" "$(sha "$TMP/in.raw")"
rm -f "$TMP/hardlink.raw" "$TMP/in.raw"
printf 'precious' >"$TMP/exists.raw"
assert_exit "existing OUT without --overwrite" 7 "$GEN2PREP" convert -q "$IN" "$TMP/exists.raw"
assert_match "existing OUT: reason names --overwrite" "overwrite" "$ERR"
assert_eq "existing OUT left as it was" precious "$(cat "$TMP/exists.raw")"
assert_exit "existing OUT with --overwrite" 0 "$GEN2PREP" convert -q --overwrite "$IN81" "$TMP/exists.raw"
check "--overwrite replaced it" test "$(stat -c %s "$TMP/exists.raw")" -gt 1000000
check "no temporary file after --overwrite" no_temp_left "$TMP"
if [ "$(id -u)" = 0 ] && mkdir -p "$TMP/ro" "$TMP/small" && mount -t tmpfs -o ro,size=1m tmpfs "$TMP/ro" 2>/dev/null; then
	refused "read-only output folder" 7 "output folder|Read-only|read-only" "$TMP/ro/out.raw" "$IN" "$TMP/ro/out.raw"
	umount "$TMP/ro"
	mount -t tmpfs -o size=2m tmpfs "$TMP/small"
	refused "full output file system" 7 "space|No space" "$TMP/small/out.vhdx" "$IN81" "$TMP/small/out.vhdx"
	assert_eq "full file system: nothing left in it" "" "$(ls -A "$TMP/small")"
	umount "$TMP/small"
elif [ "$(id -u)" != 0 ]; then
	mkdir -p "$TMP/ro" && chmod 555 "$TMP/ro"
	refused "unwritable output folder" 7 "output folder" "$TMP/ro/out.raw" "$IN" "$TMP/ro/out.raw"
	echo "SKIP: full output file system needs root (tmpfs mount)"
else
	echo "SKIP: cannot mount a tmpfs here: read-only folder and full file system not tried"
fi

# ---- every command that writes: an unwritable output is exit 7, one line ----
# (E_OUTPUT: a read-only file system, a file system without a free inode)
MKPE=$top_builddir/fixtures/mkpe
if [ "$(id -u)" = 0 ] && [ -x "$MKPE" ] && mkdir -p "$TMP/rofs" "$TMP/noino" \
	&& mount -t tmpfs -o size=4m tmpfs "$TMP/rofs" 2>/dev/null; then
	"$MKPE" --kind hal --variant win7-sp1 --file-version 6.1.7601.17514 "$TMP/rofs/hal.dll" >/dev/null || die "mkpe"
	HSUM=$(sha "$TMP/rofs/hal.dll")
	mount -o remount,ro "$TMP/rofs"
	mount -t tmpfs -o size=4m,nr_inodes=2 tmpfs "$TMP/noino"
	: >"$TMP/noino/only"          # the last free inode: no temporary file can be made
	for dir in rofs noino; do
		for cmd in "convert -q $IN81 $TMP/$dir/out.raw" "patch $TMP/rofs/hal.dll -o $TMP/$dir/hal2.dll" \
			   "patch --in-place $TMP/$dir/hal.dll"; do
			[ "$dir" = noino ] && [ "${cmd#*in-place}" != "$cmd" ] && continue
			# shellcheck disable=SC2086
			assert_exit "$dir: gen2prep ${cmd%% *} exits 7" 7 "$GEN2PREP" $cmd
			assert_eq "$dir: gen2prep ${cmd%% *}: one line on stderr" 1 "$(printf '%s\n' "$ERR" | grep -c .)"
			assert_match "$dir: gen2prep ${cmd%% *}: says why" "Read-only file system|No space left" "$ERR"
		done
	done
	assert_eq "read-only: hal.dll unchanged" "$HSUM" "$(sha "$TMP/rofs/hal.dll")"
	assert_eq "no inode: nothing left" only "$(ls -A "$TMP/noino")"
	umount "$TMP/rofs" "$TMP/noino"
else
	echo "SKIP: read-only / inode-less output file systems need root, tmpfs mounts and fixtures/mkpe"
fi

# ---- Ctrl-C while the output is written (exit 130) ----
# the 8.1 disk with 2 GiB of data after its partitions: seconds of
# streaming, interrupted mid-stream (sigint_mid_stream); the partial output must go
to_raw "$IN81" "$TMP/big.raw"
head -c 2G /dev/zero | tr '\0' x >>"$TMP/big.raw"
mkdir -p "$TMP/int"
assert_exit "SIGINT during a conversion" 130 sigint_mid_stream convert -q "$TMP/big.raw" "$TMP/int/out.vhdx"
assert_match "SIGINT: says nothing was written" "interrupted" "$ERR"
assert_eq "SIGINT: no output and no temporary file" "" "$(ls -A "$TMP/int")"
rm -rf "$TMP/big.raw" "$TMP/int"

# ---- usage (exit 2) ----
assert_exit "unknown layout" 2 "$GEN2PREP" convert --layout xyz "$IN" "$TMP/u.raw"
assert_exit "unknown ESP placement" 2 "$GEN2PREP" convert --esp elsewhere "$IN" "$TMP/u.raw"
assert_exit "OUT missing" 2 "$GEN2PREP" convert "$IN"
assert_exit "unknown output extension without -O" 2 "$GEN2PREP" convert "$IN" "$TMP/u.qcow2"
assert_exit "--bootdebug without --debug" 2 "$GEN2PREP" convert --bootdebug "$IN" "$TMP/u.raw"
assert_exit "--debug with a bad port" 2 "$GEN2PREP" convert --debug serial:9:115200 "$IN" "$TMP/u.raw"
assert_exit "-o subformat=fixed with raw" 2 "$GEN2PREP" convert -o subformat=fixed "$IN" "$TMP/u.raw"
assert_exit "--help" 0 "$GEN2PREP" convert --help
for o in --layout --esp --esp-size -O -o --no-crash-report --debug --bootdebug --random-ids --force-version --dry-run --json --overwrite; do
	assert_match "--help lists $o" "$o" "$OUT"
done
check "no output from usage errors" test ! -e "$TMP/u.raw"
assert_eq "input unchanged at the end" "$SUM" "$(sha "$IN")"
