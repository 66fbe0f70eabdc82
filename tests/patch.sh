#!/bin/bash
# patch.sh - `gen2prep patch` on mkpe kernels: exit codes, --json fields,
# real loader identity (osloader.exe) and boot-manager refusal, the
# Windows-10-shaped loader forced to 6.1 (not found), i386/ARM refusals,
# --dry-run writes nothing, --only/--skip, refusal to overwrite FILE, the
# checksum verified by python3-pefile (independent), and `cmp -l` showing
# that only the reported byte ranges (and the checksum field) changed.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

MKPE=$top_builddir/fixtures/mkpe
[ -x "$MKPE" ] || skip "fixtures/mkpe not built"
PY=
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import pefile' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || skip "python3-pefile not installed (scripts/install-deps)"

mk() { "$MKPE" --kind "$1" --variant "$2" --file-version "$3" "$4" || die "mkpe $*"; }

# pefile: checksum valid? prints True/False
pe_checksum_ok() { "$PY" -c 'import pefile,sys; print(pefile.PE(sys.argv[1]).verify_checksum())' "$1"; }

# The set of changed file offsets (cmp -l, 1-based -> 0-based) must be a
# subset of the JSON's edit ranges plus the 4 CheckSum bytes (pefile's
# offset), and every edit's `after` bytes must be in OUT.
only_reported_changed() { # IN OUT JSON
	cmp -l "$1" "$2" | awk '{print $1 - 1}' >"$TMP/changed"
	"$PY" - "$2" "$3" "$TMP/changed" <<'EOF'
import json, sys, pefile
out, js, changed = sys.argv[1], json.load(open(sys.argv[2])), [int(x) for x in open(sys.argv[3])]
pe = pefile.PE(out)
cs = pe.OPTIONAL_HEADER.get_field_absolute_offset('CheckSum')
allowed = set(range(cs, cs + 4))
data = open(out, 'rb').read()
for p in js['patches']:
    for e in p['edits']:
        allowed |= set(range(e['file_offset'], e['file_offset'] + e['length']))
        if p['status'] == 'applied':
            assert data[e['file_offset']:e['file_offset'] + e['length']].hex() == e['after'], (p['id'], e)
bad = [o for o in changed if o not in allowed]
assert not bad, 'changed outside reported ranges: %s' % bad[:10]
assert changed, 'nothing changed'
print('ok')
EOF
}

# ---- the win7-sp1 kernel: every applicable patch applies ----
mk ntoskrnl win7-sp1 6.1.7601.17514 "$TMP/nt.exe"
sum_in=$(sha "$TMP/nt.exe")
assert_exit "patch ntoskrnl win7-sp1" 0 "$GEN2PREP" patch "$TMP/nt.exe" -o "$TMP/nt.out" --json
printf '%s' "$OUT" >"$TMP/nt.json"
assert_eq "input unchanged" "$sum_in" "$(sha "$TMP/nt.exe")"
assert_eq "length unchanged" "$(stat -c %s "$TMP/nt.exe")" "$(stat -c %s "$TMP/nt.out")"
assert_eq "json kind" ntoskrnl "$(jget "$TMP/nt.json" 'j["kind"]')"
assert_eq "json kernel_version" 6.1 "$(jget "$TMP/nt.json" 'j["kernel_version"]')"
assert_eq "json statuses" '["applied", "applied"]' "$(jget "$TMP/nt.json" '[p["status"] for p in j["patches"]]')"
assert_eq "json ids" '["crash-report", "dynamic-partitioning"]' "$(jget "$TMP/nt.json" '[p["id"] for p in j["patches"]]')"
assert_eq "json edit fields" true "$(jget "$TMP/nt.json" 'all(set(e) >= {"rva","file_offset","length","before","after","asm_before","asm_after"} for p in j["patches"] for e in p["edits"])')"
assert_eq "json function bounds" true "$(jget "$TMP/nt.json" 'all(p["function"]["begin"] < p["function"]["end"] for p in j["patches"])')"
assert_match "json disassembly after (crash MSR)" 'mov ecx, 0x40000100' "$(jget "$TMP/nt.json" 'j["patches"][0]["edits"][0]["asm_after"]')"
assert_eq "json checksum_updated" true "$(jget "$TMP/nt.json" 'j["checksum_updated"]')"
assert_eq "pefile verify_checksum (output)" True "$(pe_checksum_ok "$TMP/nt.out")"
check "cmp -l: only reported ranges changed" only_reported_changed "$TMP/nt.exe" "$TMP/nt.out" "$TMP/nt.json"

# second run on the output: already applied, nothing written
assert_exit "second run" 0 "$GEN2PREP" patch "$TMP/nt.out" -o "$TMP/nt.out2" --json
printf '%s' "$OUT" >"$TMP/nt2.json"
assert_eq "second run: already-applied" '["already-applied", "already-applied"]' "$(jget "$TMP/nt2.json" '[p["status"] for p in j["patches"]]')"
check "second run: identical bytes" cmp "$TMP/nt.out" "$TMP/nt.out2"

# ---- every kind, vista-sp2 (6.0: timer-source too) and win7-sp1 ----
for kind in hal acpi winload; do
	for v in vista-sp2:6.0.6002.18005 win7-sp1:6.1.7601.17514; do
		var=${v%%:*} ver=${v#*:}
		mk "$kind" "$var" "$ver" "$TMP/$kind-$var.in"
		assert_exit "patch $kind $var" 0 "$GEN2PREP" patch "$TMP/$kind-$var.in" -o "$TMP/$kind-$var.out" --json
		printf '%s' "$OUT" >"$TMP/$kind-$var.json"
		assert_eq "$kind $var: nothing missing" true "$(jget "$TMP/$kind-$var.json" 'all(p["status"] in ("applied","not-applicable") for p in j["patches"])')"
		assert_eq "$kind $var: pefile checksum" True "$(pe_checksum_ok "$TMP/$kind-$var.out")"
		check "$kind $var: only reported ranges changed" only_reported_changed "$TMP/$kind-$var.in" "$TMP/$kind-$var.out" "$TMP/$kind-$var.json"
	done
done
assert_eq "hal vista: timer-source applied" applied "$(jget "$TMP/hal-vista-sp2.json" '[p["status"] for p in j["patches"] if p["id"]=="timer-source"][0]')"
assert_eq "hal win7: timer-source not-applicable" not-applicable "$(jget "$TMP/hal-win7-sp1.json" '[p["status"] for p in j["patches"] if p["id"]=="timer-source"][0]')"

# ---- --dry-run writes nothing ----
assert_exit "dry run" 0 "$GEN2PREP" patch "$TMP/nt.exe" --dry-run -o "$TMP/dry.out" --json
printf '%s' "$OUT" >"$TMP/dry.json"
check_fails "dry run: no output file" test -e "$TMP/dry.out"
assert_eq "dry run: would-apply" '["would-apply", "would-apply"]' "$(jget "$TMP/dry.json" '[p["status"] for p in j["patches"]]')"
assert_eq "dry run: input unchanged" "$sum_in" "$(sha "$TMP/nt.exe")"

# ---- --only / --skip ----
assert_exit "--only dynamic-partitioning" 0 "$GEN2PREP" patch "$TMP/nt.exe" -o "$TMP/only.out" --only dynamic-partitioning --json
printf '%s' "$OUT" >"$TMP/only.json"
assert_eq "--only statuses" '["not-applicable", "applied"]' "$(jget "$TMP/only.json" '[p["status"] for p in j["patches"]]')"
assert_exit "--skip crash-report" 0 "$GEN2PREP" patch "$TMP/nt.exe" -o "$TMP/skip.out" --skip crash-report
check "--skip gives the same bytes as --only" cmp "$TMP/only.out" "$TMP/skip.out"
assert_exit "--only unknown id: usage" 2 "$GEN2PREP" patch "$TMP/nt.exe" -o "$TMP/x.out" --only no-such-patch

# ---- refusing to overwrite ----
assert_exit "no -o, no --in-place: a usage error (issue 13)" 2 "$GEN2PREP" patch "$TMP/nt.exe"
assert_exit "-o FILE itself: refused" 7 "$GEN2PREP" patch "$TMP/nt.exe" -o "$TMP/nt.exe"
assert_exit "-o existing file: refused" 7 "$GEN2PREP" patch "$TMP/nt.exe" -o "$TMP/nt.out"
assert_eq "refusals left FILE alone" "$sum_in" "$(sha "$TMP/nt.exe")"
cp "$TMP/nt.exe" "$TMP/inplace.exe"
assert_exit "--in-place" 0 "$GEN2PREP" patch "$TMP/inplace.exe" --in-place
check "--in-place = -o result" cmp "$TMP/inplace.exe" "$TMP/nt.out"
# a symbolic link is refused (exit 7, one line naming the target), the link
# and its target left as they were; -o onto a (dangling) link likewise
cp "$TMP/nt.exe" "$TMP/tgt.exe"; ln -s tgt.exe "$TMP/link.exe"; ln -s nowhere.exe "$TMP/dang.exe"
h=$(sha "$TMP/tgt.exe")
"$GEN2PREP" patch "$TMP/link.exe" --in-place >"$TMP/ln.out" 2>"$TMP/ln.err"
assert_eq "--in-place on a symlink: exit 7" 7 "$?"
assert_eq "--in-place on a symlink: one line naming the target" \
	"gen2prep: patch: $TMP/link.exe is a symbolic link to tgt.exe; not writing it in place (patch the target itself)" \
	"$(cat "$TMP/ln.err")"
check "--in-place on a symlink: still a symlink" test -L "$TMP/link.exe"
assert_eq "--in-place on a symlink: target unchanged" "$h" "$(sha "$TMP/tgt.exe")"
assert_exit "-o onto a symlink: exit 7" 7 "$GEN2PREP" patch "$TMP/nt.exe" -o "$TMP/dang.exe"
check "-o onto a symlink: nothing created through it" test ! -e "$TMP/nowhere.exe"
# -o into a missing folder: exit 7, and no report on stdout for a write that failed
"$GEN2PREP" patch "$TMP/nt.exe" -o "$TMP/nodir/h.dll" >"$TMP/nd.out" 2>"$TMP/nd.err"
assert_eq "-o nodir/h.dll: exit 7" 7 "$?"
assert_eq "-o nodir/h.dll: nothing on stdout" "" "$(cat "$TMP/nd.out")"
assert_match "-o nodir/h.dll: the error names the folder" "nodir'?: No such file" "$(cat "$TMP/nd.err")"
check_fails "no temporary file left" bash -c "ls -A '$TMP' | grep -q gen2prep-"

# ---- exit codes ----
mk hal ambiguous 6.1.7601.17514 "$TMP/amb.dll"
assert_exit "ambiguous: exit 5" 5 "$GEN2PREP" patch "$TMP/amb.dll" -o "$TMP/amb.out"
assert_match "ambiguous: both candidates named" 'ambiguous: 2 candidates at 0x[0-9a-f]+, 0x[0-9a-f]+' "$ERR"
check_fails "ambiguous: nothing written" test -e "$TMP/amb.out"
head -c 4096 /dev/urandom >"$TMP/junk.bin"
assert_exit "not a PE: exit 3" 3 "$GEN2PREP" patch "$TMP/junk.bin" -o "$TMP/junk.out"
"$MKPE" --kind hal --machine i386 --file-version 6.1.7601.17514 "$TMP/hal32.dll" || die "mkpe i386"
assert_exit "i386 HAL: exit 3" 3 "$GEN2PREP" patch "$TMP/hal32.dll" -o "$TMP/hal32.out"
mk hal vista-sp2 5.2.3790.3959 "$TMP/hal52.dll"
assert_exit "kernel 5.2: refused, exit 4" 4 "$GEN2PREP" patch "$TMP/hal52.dll" -o "$TMP/hal52.out"
assert_match "kernel 5.2: reason" 'out of reach' "$ERR"
assert_match "kernel 5.2: which Windows, in words" 'kernel 5.2 is Windows XP Professional x64 Edition or Windows Server 2003 / 2003 R2 x64' "$ERR"
mk ntoskrnl win7-sp1 6.3.9600.16384 "$TMP/nt63.exe"
assert_exit "kernel 6.3: nothing applies, exit 0" 0 "$GEN2PREP" patch "$TMP/nt63.exe" --dry-run --json
printf '%s' "$OUT" >"$TMP/nt63.json"
assert_eq "kernel 6.3: not-applicable" '["not-applicable", "not-applicable"]' "$(jget "$TMP/nt63.json" '[p["status"] for p in j["patches"]]')"
assert_exit "--force-version 6.1 on 6.3" 0 "$GEN2PREP" patch "$TMP/nt63.exe" --dry-run --force-version 6.1 --json
printf '%s' "$OUT" >"$TMP/f.json"
assert_eq "--force-version: would-apply" '["would-apply", "would-apply"]' "$(jget "$TMP/f.json" '[p["status"] for p in j["patches"]]')"
assert_exit "--kind acpi on a kernel: site not found, exit 5" 5 "$GEN2PREP" patch "$TMP/nt.exe" --kind acpi --dry-run
assert_exit "--help" 0 "$GEN2PREP" patch --help
assert_match "--help lists the catalog" 'loader-integrity' "$OUT"
assert_exit "bad --force-version: usage" 2 "$GEN2PREP" patch "$TMP/nt.exe" --dry-run --force-version x

# ---- issue 9 items 9-11: real loaders, boot managers, tighter anchors, machines ----
# pefile's view: machine, PE32/PE32+, OriginalFilename
pe_fields() {
	"$PY" -c '
import sys, pefile
pe = pefile.PE(sys.argv[1])
vs = {}
for fi in getattr(pe, "FileInfo", None) or []:
    for e in fi:
        for st in getattr(e, "StringTable", []):
            vs.update({k.decode(): v.decode() for k, v in st.entries.items()})
print("%#06x %s %s" % (pe.FILE_HEADER.Machine, "PE32+" if pe.OPTIONAL_HEADER.Magic == 0x20b else "PE32",
                       vs.get("OriginalFilename")))' "$1"
}
# the edit ranges and bytes of a --json report: "rva:len:after ..."
edits_of() { jget "$1" '" ".join("%d:%d:%s" % (e["rva"], e["length"], e["after"]) for p in j["patches"] for e in p["edits"])'; }

# a loader as the real ones are: OriginalFilename osloader.exe, found without --kind
mk winload win7-sp1 6.1.7601.17514 "$TMP/osl.efi"
assert_eq "loader: pefile sees osloader.exe" "0x8664 PE32+ osloader.exe" "$(pe_fields "$TMP/osl.efi")"
assert_exit "loader (osloader.exe): detected and patched" 0 "$GEN2PREP" patch "$TMP/osl.efi" -o "$TMP/osl.out" --json
printf '%s' "$OUT" >"$TMP/osl.json"
assert_eq "loader: kind winload" winload "$(jget "$TMP/osl.json" 'j["kind"]')"
assert_eq "loader: loader-integrity applied" applied "$(jget "$TMP/osl.json" 'j["patches"][0]["status"]')"
assert_eq "loader: pefile checksum" True "$(pe_checksum_ok "$TMP/osl.out")"
check "loader: only reported ranges changed" only_reported_changed "$TMP/osl.efi" "$TMP/osl.out" "$TMP/osl.json"
# second run: the already-applied edit is the range and bytes the first run wrote
assert_exit "loader: second run" 0 "$GEN2PREP" patch "$TMP/osl.out" --dry-run --json
printf '%s' "$OUT" >"$TMP/osl2.json"
assert_eq "loader: second run already-applied" already-applied "$(jget "$TMP/osl2.json" 'j["patches"][0]["status"]')"
assert_eq "loader: already-applied edit = applied edit" "$(edits_of "$TMP/osl.json")" "$(edits_of "$TMP/osl2.json")"
assert_eq "ntoskrnl: already-applied edits = applied edits" "$(edits_of "$TMP/nt.json")" "$(edits_of "$TMP/nt2.json")"

# a boot manager is never patched, even as --kind winload (same code, OriginalFilename bootmgr.exe)
"$MKPE" --kind winload --variant win7-sp1 --file-version 6.1.7601.17514 --original-filename bootmgr.exe "$TMP/bm.efi" ||
	die "mkpe bootmgr"
assert_eq "bootmgr: pefile sees bootmgr.exe" "0x8664 PE32+ bootmgr.exe" "$(pe_fields "$TMP/bm.efi")"
sum_bm=$(sha "$TMP/bm.efi")
for k in "" "--kind winload" "--kind hal"; do
	# shellcheck disable=SC2086
	assert_exit "bootmgr ${k:-detected}: refused, exit 3" 3 "$GEN2PREP" patch "$TMP/bm.efi" -o "$TMP/bm.out" $k
	assert_match "bootmgr ${k:-detected}: says it is the boot manager" \
		'this is the Windows Boot Manager \(OriginalFilename bootmgr.exe\), not the OS loader' "$ERR"
	check_fails "bootmgr ${k:-detected}: nothing written" test -e "$TMP/bm.out"
done
assert_exit "bootmgr --kind winload --dry-run: exit 3" 3 "$GEN2PREP" patch "$TMP/bm.efi" --kind winload --dry-run
assert_match "bootmgr --kind winload: names the option" 'even with --kind winload' "$ERR"
assert_eq "bootmgr --kind winload: no report claiming a winload on stdout" "" "$OUT"
"$MKPE" --kind bootmgfw --file-version 10.0.17763.1613 "$TMP/bootmgfw.efi" || die "mkpe bootmgfw"
assert_eq "bootmgfw: pefile sees bootmgr.exe (as the real one)" "0x8664 PE32+ bootmgr.exe" "$(pe_fields "$TMP/bootmgfw.efi")"
assert_exit "bootmgfw --kind winload: refused, exit 3" 3 "$GEN2PREP" patch "$TMP/bootmgfw.efi" --kind winload --dry-run
assert_eq "bootmgr: input unchanged" "$sum_bm" "$(sha "$TMP/bm.efi")"

# a Windows-10-shaped loader: the mov rax,rsp function with the mask but no
# returned 0C0000428h after a hash check is not a site, even forced to 6.1
mk winload win10 10.0.19041.1 "$TMP/w10.efi"
assert_eq "win10 loader: pefile" "0x8664 PE32+ osloader.exe" "$(pe_fields "$TMP/w10.efi")"
check "win10 loader: has the mov rax,rsp + and r8d,0FFFFFFD7h decoy (pefile)" "$PY" -c '
import sys, pefile
t = pefile.PE(sys.argv[1]).sections[0].get_data()
i = t.find(bytes.fromhex("488bc4")); assert i >= 0 and bytes.fromhex("4183e0d7") in t[i:i + 40]' "$TMP/w10.efi"
assert_exit "win10 loader forced 6.1: site not found, exit 5" 5 \
	"$GEN2PREP" patch "$TMP/w10.efi" --kind winload --force-version 6.1 -o "$TMP/w10.out" --json
printf '%s' "$OUT" >"$TMP/w10.json"
assert_eq "win10 loader forced 6.1: not-found" not-found "$(jget "$TMP/w10.json" 'j["patches"][0]["status"]')"
assert_match "win10 loader forced 6.1: names the anchors" 'loader-integrity: site not found .*0C0000428h' "$ERR"
assert_eq "win10 loader forced 6.1: no function reported" null "$(jget "$TMP/w10.json" 'j["patches"][0]["function"]')"
check_fails "win10 loader forced 6.1: nothing written" test -e "$TMP/w10.out"
assert_exit "win10 loader unforced: nothing applies" 0 "$GEN2PREP" patch "$TMP/w10.efi" --dry-run --json
assert_match "win10 loader unforced: not-applicable" '"not-applicable"' "$OUT"
mk winload decoy 6.1.7601.17514 "$TMP/wdec.efi"
assert_exit "decoy loader: one site among the look-alikes" 0 "$GEN2PREP" patch "$TMP/wdec.efi" --dry-run --json
printf '%s' "$OUT" >"$TMP/wdec.json"
assert_eq "decoy loader: would-apply" would-apply "$(jget "$TMP/wdec.json" 'j["patches"][0]["status"]')"
assert_eq "decoy loader: the site is the win7/vista loader's function, not a look-alike" \
	"$(jget "$TMP/osl.json" 'j["patches"][0]["edits"][0]["before"]')" \
	"$(jget "$TMP/wdec.json" 'j["patches"][0]["edits"][0]["before"]')"

# i386, ARMNT and ARM64 files: refused as not AMD64 whatever the kind
for m in i386:0x014c:PE32 armnt:0x01c4:PE32 arm64:0xaa64:PE32+; do
	name=${m%%:*} rest=${m#*:}
	mach=${rest%%:*} magic=${rest#*:}
	for kind in winload ntoskrnl; do
		"$MKPE" --kind "$kind" --machine "$name" --file-version 6.1.7601.17514 "$TMP/$kind-$name" || die "mkpe $kind $name"
		want_ofn=osloader.exe
		[ "$kind" = ntoskrnl ] && want_ofn=ntoskrnl.exe
		assert_eq "$kind $name: pefile machine/magic" "$mach $magic $want_ofn" "$(pe_fields "$TMP/$kind-$name")"
		for k in "" "--kind winload" "--kind ntoskrnl" "--kind acpi"; do
			# shellcheck disable=SC2086
			assert_exit "$kind $name ${k:-detected}: exit 3" 3 "$GEN2PREP" patch "$TMP/$kind-$name" --dry-run $k
			assert_match "$kind $name ${k:-detected}: not AMD64, machine named" \
				"not an AMD64 PE32\+ image \(machine $mach, " "$ERR"
		done
	done
done

# seed corpus for fuzz/fuzz_patch (scripts/fuzz reads build-fuzz/corpus/patch)
seed="$top_builddir/../build-fuzz/corpus/patch"
if mkdir -p "$seed" 2>/dev/null; then
	for f in nt.exe hal-vista-sp2.in hal-win7-sp1.in acpi-vista-sp2.in acpi-win7-sp1.in winload-win7-sp1.in amb.dll \
		w10.efi wdec.efi bm.efi winload-arm64; do
		cp "$TMP/$f" "$seed/mkpe-$f"
	done
fi
