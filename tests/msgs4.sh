#!/bin/bash
# tests/msgs4.sh - a stranger's pass over messages, exits and --json keys
# (README and man page only): messages whole, every failing exit says why
# on stderr, convert --json has one key set, top-level --json usage errors,
# dry-run wording, the partial trailing sector, 4Kn advice, man page codes.
. "$(dirname "$0")/lib.sh"

need python3 sfdisk
W7=$(fixture win7-sp1 vhdx)
SSM="$TMP/ssm.vhdx"
"$top_srcdir/scripts/mkfixture" --os win7-sp1 --bad sector-size-mismatch --format vhdx "$SSM" >/dev/null 2>&1 ||
	die "mkfixture --bad sector-size-mismatch"
SSM_TAIL="the image's sector size metadata contradicts its partition table"

# ---- 1. messages whole: the partition-past-end blocker (326 bytes) in
# text, JSON and convert's error; an error about a long path keeps its cause
assert_exit "inspect ssm.vhdx" 4 "$GEN2PREP" inspect "$SSM"
assert_match "inspect's blocker line ends with the cause" "Blocker: partition-past-end: .*${SSM_TAIL}\$" "$OUT"
assert_exit "inspect --json ssm.vhdx" 4 "$GEN2PREP" inspect --json "$SSM"
printf '%s' "$OUT" >"$TMP/ssm.json"
assert_eq "JSON blocker message whole" "True" \
	"$(jget "$TMP/ssm.json" 'str(j["blockers"][0]["message"].endswith("contradicts its partition table"))')"
# verify's check detail too (a second stranger found it cut at 255 bytes)
assert_exit "verify ssm.vhdx" 6 "$GEN2PREP" verify --json "$SSM"
printf '%s' "$OUT" >"$TMP/ssmv.json"
assert_eq "verify --json: the partition-table detail whole" True \
	"$(jget "$TMP/ssmv.json" 'str([c["detail"] for c in j["checks"] if c["id"] == "partition-table"][0].endswith("contradicts its partition table"))')"
assert_exit "convert ssm.vhdx" 4 "$GEN2PREP" convert "$SSM" "$TMP/x.vhdx"
assert_match "convert's error ends with the cause" "${SSM_TAIL}\$" "$ERR"
assert_eq "nothing written" "no" "$([ -e "$TMP/x.vhdx" ] && echo yes || echo no)"
# a folder path of ~2000 bytes that does not exist: the message still ends
# with the cause (strerror), not "..."
long="$TMP"; for i in $(seq 1 40); do long="$long/dddddddddddddddddddddddddddddddddddddddddddddddd$i"; done
assert_exit "inspect a 2000-byte missing path" 3 "$GEN2PREP" inspect "$long/in.vhdx"
assert_match "the long path's error names the cause" "No such file or directory\$" "$ERR"
assert_match "the long path's error names the file whole" "d40/in.vhdx" "$ERR"
assert_exit "convert to a 2000-byte missing folder" 7 "$GEN2PREP" convert "$W7" "$long/out.vhdx"
assert_match "the output error names the cause" "No such file or directory" "$ERR"
assert_match "the output error names the folder whole" "d40'" "$ERR"

# ---- 2. every failing dry run says why on stderr, -q or not, one line
C="$TMP/c.vhdx"
"$GEN2PREP" convert -q "$W7" "$C" || die "convert of the fixture"
for q in "" -q; do
	assert_exit "dry run to a missing folder $q" 7 "$GEN2PREP" convert --dry-run $q "$W7" /nonexistdir/a.vhdx
	assert_match "dry run $q exit 7: the reason on stderr" "^gen2prep: convert: output-refused: cannot write in the output folder '/nonexistdir'" "$ERR"
	assert_eq "dry run $q exit 7: one stderr line" 1 "$(printf '%s\n' "$ERR" | grep -c .)"
	assert_exit "dry run of a converted disk $q" 4 "$GEN2PREP" convert --dry-run $q "$C" "$TMP/x.vhdx"
	assert_match "dry run $q exit 4: the reason on stderr" "^gen2prep: convert: not convertible: already-gen2: " "$ERR"
done
RAW=$(fixture win7-sp1 raw)
assert_exit "differencing dry run of a raw IN" 7 "$GEN2PREP" convert --dry-run --differencing --layout mbr "$RAW" "$TMP/d.vhdx"
assert_match "differencing refusal on stderr" "^gen2prep: convert: output-differencing-parent: " "$ERR"
assert_eq "differencing refusal: stdout has no error line" 0 "$(printf '%s\n' "$OUT" | grep -c '^gen2prep:')"

# ---- 3. convert --json: one key set at every exit (0, dry run 0/4/7, 2, 3, 4, 7)
KEYS="done error esp_files exit_code memdiag next_steps output output_written patch_results plan schema windows"
keyset() {   # keyset NAME EXIT ARGS...: the sorted keys of the object are $KEYS
	local name=$1 want=$2; shift 2
	assert_exit "--json $name" "$want" "$GEN2PREP" convert --json "$@"
	printf '%s' "$OUT" >"$TMP/k.json"
	assert_eq "--json $name: the report keys" "$KEYS" "$(jget "$TMP/k.json" '" ".join(sorted(j))')"
	if python3 -c 'import jsonschema' 2>/dev/null; then
		python3 - "$top_srcdir/doc/schema.json" "$TMP/k.json" >"$TMP/why" 2>&1 <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))))
for e in errors[:3]: print(list(e.path), e.message[:300])
sys.exit(1 if errors else 0)
PY
		[ $? = 0 ] && ok "--json $name: valid" || fail "--json $name: not valid: $(head -c 600 "$TMP/why")"
	fi
}
rm -f "$TMP/ok.vhdx"
keyset "success" 0 -q "$W7" "$TMP/ok.vhdx"
assert_eq "success: error is null" null "$(jget "$TMP/k.json" 'j["error"]')"
assert_eq "success: output_written" true "$(jget "$TMP/k.json" 'j["output_written"]')"
assert_match "success: next_steps not empty" '^\[\{' "$(jget "$TMP/k.json" 'j["next_steps"]')"
keyset "dry run" 0 --dry-run "$W7" "$TMP/dr.vhdx"
assert_eq "dry run: output_written false" false "$(jget "$TMP/k.json" 'j["output_written"]')"
assert_eq "dry run: next_steps empty" "[]" "$(jget "$TMP/k.json" 'j["next_steps"]')"
keyset "refused dry run (exit 4)" 4 --dry-run "$C" "$TMP/x.vhdx"
assert_eq "refused dry run: output_written false" false "$(jget "$TMP/k.json" 'j["output_written"]')"
keyset "dry run to a missing folder (exit 7)" 7 --dry-run "$W7" /nonexistdir/a.vhdx
keyset "usage error (exit 2)" 2 --esp-size 8 "$W7" "$TMP/x.vhdx"
assert_eq "usage error: output is OUT" "$TMP/x.vhdx" "$(jget "$TMP/k.json" 'j["output"]')"
keyset "missing IN (exit 3)" 3 "$TMP/none.vhdx" "$TMP/x.vhdx"
keyset "blocked (exit 4)" 4 "$C" "$TMP/x.vhdx"
keyset "existing OUT (exit 7)" 7 "$W7" "$TMP/ok.vhdx"
assert_eq "exit 7: next_steps empty" "[]" "$(jget "$TMP/k.json" 'j["next_steps"]')"
keyset "missing folder (exit 7)" 7 "$W7" /nonexistdir/a.vhdx

# ---- 4. usage errors main finds honour --json (code usage, exit 2)
for args in "--json" "bogus --json" "help --json" "help inspect convert --json" "help nosuch --js"; do
	assert_exit "gen2prep $args" 2 "$GEN2PREP" $args
	printf '%s' "$OUT" >"$TMP/u.json"
	assert_eq "gen2prep $args: JSON error code usage" usage "$(jget "$TMP/u.json" 'j["error"]["code"]' 2>&1)"
	assert_eq "gen2prep $args: exit_code 2 in it" 2 "$(jget "$TMP/u.json" 'j["error"]["exit_code"]' 2>&1)"
	assert_match "gen2prep $args: the reason on stderr too" "^gen2prep: " "$ERR"
done
assert_exit "gen2prep bogus (no --json)" 2 "$GEN2PREP" bogus
assert_eq "no --json: stdout empty" "" "$OUT"
assert_match "unknown command named" "^gen2prep: unknown command 'bogus'" "$ERR"

# ---- 5. dry-run wording: --force, what is known of Windows, a partial sector
assert_exit "--force dry run of a converted disk" 0 "$GEN2PREP" convert --force --dry-run "$C" "$TMP/x.vhdx"
assert_eq "--force: no 'refuses it unless --force'" 0 "$(printf '%s\n' "$OUT$ERR" | grep -c 'unless --force')"
assert_match "--force: the warning says it is converted again" "already Generation 2 ready: .*--force: converted again" "$ERR"
assert_exit "dry run of a converted disk, no --force" 4 "$GEN2PREP" convert --dry-run "$C" "$TMP/x.vhdx"
assert_match "no --force: 'refuses it unless --force'" "convert refuses it unless --force" "$OUT"
assert_exit "dry run of ssm.vhdx" 4 "$GEN2PREP" convert --dry-run "$SSM" "$TMP/x.vhdx"
assert_match "Windows not found, not '?'" "^Windows: not found$" "$(printf '%s\n' "$OUT" | head -1)"
assert_eq "no '?' in the dry run" 0 "$(printf '%s\n' "$OUT" | grep -c '(?)\|: ?')"
PART="$TMP/partial.img"
cp --sparse=always "$RAW" "$PART" && head -c 1000 /dev/zero | tr '\0' 'x' >>"$PART"
PWARN="partial-sector: the image is $(stat -c %s "$PART") bytes, 488 bytes past its last whole 512-byte sector: the trailing partial sector is ignored"
assert_exit "inspect of a raw image 1000 bytes longer" 0 "$GEN2PREP" inspect "$PART"
assert_match "inspect: warning partial-sector" "^Warning: $PWARN" "$OUT"
assert_exit "inspect --json of it" 0 "$GEN2PREP" inspect --json "$PART"
printf '%s' "$OUT" >"$TMP/p.json"
assert_eq "inspect --json: warning code partial-sector" partial-sector "$(jget "$TMP/p.json" '[w["code"] for w in j["warnings"]][0]')"
assert_exit "dry run of it" 0 "$GEN2PREP" convert --dry-run "$PART" "$TMP/p.vhdx"
assert_match "dry run: the warning" "warning: ${PWARN#partial-sector: }" "$ERR"
assert_exit "convert --layout mbr -O vhdx of it (was exit 7)" 0 "$GEN2PREP" convert --layout mbr "$PART" "$TMP/p.vhdx"
assert_match "convert: the warning" "warning: ${PWARN#partial-sector: }" "$ERR"
if command -v qemu-img >/dev/null; then
	assert_eq "qemu-img: the output is the whole sectors (1 GiB + 512)" 1073742336 \
		"$(qemu-img info --output=json "$TMP/p.vhdx" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')"
fi
assert_exit "convert --layout mbr -O raw of it" 0 "$GEN2PREP" convert -q --layout mbr -O raw "$PART" "$TMP/p.img"
assert_eq "raw output: whole sectors only" 1073742336 "$(stat -c %s "$TMP/p.img")"
rm -f "$TMP/p.img" "$TMP/p.vhdx"

# ---- 7a. every warning code the code can emit is named in the man page
# (.B CODE): the inspection's warning_id[] (lib/windows.c) and every
# plan_add_warning / add_warning literal in lib/
MAN="$top_srcdir/man/gen2prep.1"
codes=$( { sed -n '/warning_id\[\] = {/,/};/p' "$top_srcdir/lib/windows.c" | grep -o '"[a-z0-9-]*"'
	grep -rhoE '(plan_)?add_warning\([a-z&>-]+, "[a-z0-9-]+"' "$top_srcdir/lib" | grep -o '"[a-z0-9-]*"'; } | tr -d '"' | sort -u)
assert_ne "warning codes found in the source" "" "$codes"
for c in $codes; do
	assert_eq "man page names warning $c" 1 "$(grep -c "^\.B $c\$" "$MAN" | awk '{print ($1 > 0)}')"
done

# ---- 6. --differencing advice names only options the plan can take; inspect
# agrees with the plan on "(reusable as ESP)" for a 4096-byte-sector disk
K4=$(variant win7-sp1 vhdx 4kn)
assert_exit "4Kn: convert --differencing --layout mbr" 7 "$GEN2PREP" convert --differencing --layout mbr "$K4" "$TMP/d.vhdx"
assert_eq "4Kn: the advice does not offer --esp reuse/existing" 0 "$(printf '%s\n' "$ERR" | grep -c 'use --esp')"
assert_match "4Kn: says no partition can be the ESP, and why" "no partition of this disk can be the ESP without growing it .*--esp reuse: the System Reserved partition 1 is too small.*, or convert without --differencing" "$ERR"
assert_exit "4Kn: --esp reuse refused by the plan" 4 "$GEN2PREP" convert --dry-run --differencing --layout mbr --esp reuse "$K4" "$TMP/d.vhdx"
assert_match "4Kn: --esp reuse: esp-no-room" "esp-no-room" "$OUT"
assert_exit "4Kn: inspect" 0 "$GEN2PREP" inspect "$K4"
assert_match "4Kn inspect: System Reserved not reusable (too small), as the plan says" "system-reserved \(not reusable as ESP: too small: .*260 MiB\)" "$OUT"
assert_exit "4Kn: inspect --json" 0 "$GEN2PREP" inspect --json "$K4"
printf '%s' "$OUT" >"$TMP/k4.json"
assert_eq "4Kn JSON: reusable_as_esp false" false "$(jget "$TMP/k4.json" 'j["partitions"][0]["reusable_as_esp"]')"
assert_match "4Kn JSON: not_reusable_why says too small" "^too small" "$(jget "$TMP/k4.json" 'j["partitions"][0]["not_reusable_why"]')"
assert_exit "512: inspect" 0 "$GEN2PREP" inspect "$W7"
assert_match "512 inspect: reusable as ESP" "system-reserved \(reusable as ESP\)" "$OUT"
assert_exit "512 GPT: convert --differencing" 7 "$GEN2PREP" convert --differencing "$W7" "$TMP/d.vhdx"
assert_match "512 GPT: advice --esp reuse --layout mbr" "GPT's backup.*: use --esp reuse --layout mbr, or convert without" "$ERR"
assert_exit "512: the advice works (dry run exit 0)" 0 "$GEN2PREP" convert --dry-run --differencing --esp reuse --layout mbr "$W7" "$TMP/d.vhdx"
assert_exit "512 mbr append: convert --differencing" 7 "$GEN2PREP" convert --dry-run --differencing --layout mbr --esp append "$W7" "$TMP/d.vhdx"
assert_match "512 mbr append: advice --esp reuse only (no FAT32 partition)" "appended ESP.*: use --esp reuse, or convert" "$ERR"

# ---- 7b. man page and README say what the code does
assert_exit "an unknown option" 2 "$GEN2PREP" inspect -v "$W7"
assert_match "the real form" "^gen2prep: inspect: unknown option '-v'" "$ERR"
assert_match "the man page gives the same form" "gen2prep: inspect: unknown option '\\\\-v'" "$(cat "$MAN")"
assert_eq "the man page no longer shows 'gen2prep COMMAND: unknown'" 0 "$(grep -c 'lq gen2prep " COMMAND" ": unknown option' "$MAN")"
for bad in "--vm-memory 33" "--vm-cpus 0" "--vm-name a|b"; do
	assert_exit "--nanabox with $bad: usage error" 2 "$GEN2PREP" convert --nanabox "$TMP/vm.7b" $bad "$W7" "$TMP/n.vhdx"
done
assert_exit "--nanabox with a raw OUT: usage error" 2 "$GEN2PREP" convert --nanabox "$TMP/vm.7b" -O raw "$W7" "$TMP/n.img"
touch "$TMP/vm.7b"
assert_exit "--nanabox FILE exists: exit 7" 7 "$GEN2PREP" convert --nanabox "$TMP/vm.7b" "$W7" "$TMP/n.vhdx"
assert_match "man page: a bad name, --vm-cpus, --vm-memory ... are a usage error (exit status 2" \
	"vm.?.?cpus, .*vm.?.?memory, debug port or$" "$(grep -B1 'output format (VHDX or VHD; raw is refused) is a usage error (exit status 2' "$MAN" | head -1)"
assert_match "README: --differencing needs --layout mbr when partitions fill the disk" \
	"partitions fill it .* needs .--layout mbr." "$(tr '\n' ' ' <"$top_srcdir/README")"
