#!/bin/bash
# difffix2.sh - convert --differencing and convert's usage handling agree
# (issue 8 "one truth", issue 12 section 2): what the dry run, its --json
# plan and the conversion say is the same verdict and exit status, and a
# refusal writes nothing and, for a usage error, reads nothing of IN.
#  1. a parent path Windows cannot open: usage error (exit 2) before IN is
#     read, in the dry run, --json and convert alike (was: dry run 0,
#     convert 2 from the writer);
#  2. OUT's own name Windows cannot open: the plan warning output-name
#     (nothing records it); recorded in a --nanabox/--hyperv-script file:
#     refused (exit 2);
#  3. a parent not found: the message names where the recorded path leads,
#     the same-named file beside the child, and the DataWriteGuid it needs
#     (vhdx_chain.py reads it independently);
#  4. an empty or truncated parent (or input): named, with the cause, exit 3
#     from every command, verify included (was: verify "not found");
#  5. --esp-size below 33 MiB and every other usage error before IN is
#     opened (strace: no open of IN; a missing IN is not reported);
#  6. every convert --json failure has the report keys (doc/schema.json).
. "$(dirname "$0")/lib.sh"
need python3 strace
CHAIN="python3 $top_srcdir/tests/vhdx_chain.py"
SCHEMA=$top_srcdir/doc/schema.json
python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema not installed (scripts/install-deps)"

W7=$(fixture win7-sp1 vhdx)
mkdir -p "$TMP/w"
cp "$W7" "$TMP/w/in.vhdx"
IN=$TMP/w/in.vhdx
in_sha=$(sha "$IN")
KEYS='["done", "error", "esp_files", "exit_code", "memdiag", "next_steps", "output", "output_written", "patch_results", "plan", "schema", "windows"]'

# listing DIR: the names in DIR (what a refusal must leave unchanged)
listing() { ls -A "$1" | tr '\n' ' ' | sed 's/ $//'; }
# opens_in FILE CMD...: CMD under strace; prints the open calls of FILE
opens_in() {
	local f=$1; shift
	strace -f -qq -e trace=open,openat,openat2 -o "$TMP/strace" "$@" >/dev/null 2>&1
	grep -F -- "$f" "$TMP/strace" || true
}
# valid FILE: one JSON object valid against doc/schema.json
valid_json() {
	python3 - "$SCHEMA" "$1" >"$TMP/why" 2>&1 <<'PY'
import json, sys, jsonschema
errors = list(jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).iter_errors(json.load(open(sys.argv[2]))))
for e in errors[:5]:
    print(list(e.path), e.message[:300])
sys.exit(1 if errors else 0)
PY
}
# json_failure NAME EXIT CODE: $OUT is convert's --json failure with the
# report keys, valid, error code CODE and exit_code EXIT in both places
json_failure() {
	printf '%s' "$OUT" >"$TMP/$1.json"
	if valid_json "$TMP/$1.json"; then ok "$1: JSON valid"; else fail "$1: JSON not valid: $(head -c 400 "$TMP/why") $(head -c 200 "$TMP/$1.json")"; return; fi
	assert_eq "$1: the report keys, as every convert failure" "$KEYS" "$(jget "$TMP/$1.json" 'sorted(j)')"
	assert_eq "$1: error code $3" "$3" "$(jget "$TMP/$1.json" 'j["error"]["code"]')"
	assert_eq "$1: exit_code $2 (error and top level)" "$2 $2" "$(jget "$TMP/$1.json" '"%d %d" % (j["error"]["exit_code"], j["exit_code"])')"
	assert_eq "$1: output_written false" false "$(jget "$TMP/$1.json" 'j["output_written"]')"
}

# ---- 1. parent names Windows cannot open: one verdict, before IN is read ----
names=('a?b.vhdx' 'CON.vhdx' 'com1.x.vhdx' 'dot.' 'pi|pe.vhdx' "$(printf 'caf\351.vhdx')")
whys=("character '\\?'" 'reserved device name CON' 'reserved device name com1' 'trailing period' "character '\\|'"
	'byte 0xe9 that is not UTF-8')
for k in "${!names[@]}"; do
	name=${names[$k]} why=${whys[$k]} P=$TMP/w/${names[$k]}
	cp "$IN" "$P"
	before=$(listing "$TMP/w")
	re="the name .* has a $why, which Windows does not allow in a file or folder name: Hyper-V could not open the parent"
	assert_exit "parent '$name': dry run refuses (exit 2; was 0)" 2 "$GEN2PREP" convert --dry-run --differencing --layout mbr "$P" "$TMP/w/c.vhdx"
	assert_match "parent '$name': dry run names the name and the $why" "$re" "$ERR"
	assert_eq "parent '$name': dry run prints no plan" "" "$OUT"
	if [ $k -lt 5 ]; then   # (jansson refuses a non-UTF-8 message: text only)
		assert_exit "parent '$name': dry run --json (exit 2)" 2 "$GEN2PREP" convert --dry-run --json --differencing --layout mbr "$P" "$TMP/w/c.vhdx"
		json_failure "parent-$k-dry" 2 usage
		assert_match "parent '$name': the JSON message says why" "$re" "$(jget "$TMP/parent-$k-dry.json" 'j["error"]["message"]')"
		assert_eq "parent '$name': JSON plan null (no plan made)" null "$(jget "$TMP/parent-$k-dry.json" 'j["plan"]')"
	fi
	assert_exit "parent '$name': convert refuses the same (exit 2)" 2 "$GEN2PREP" convert --differencing --layout mbr "$P" "$TMP/w/c.vhdx"
	assert_match "parent '$name': convert's message is the dry run's" "^gen2prep: convert: '.*': $re" "$ERR"
	assert_eq "parent '$name': IN not opened (strace)" "" "$(opens_in "$P" "$GEN2PREP" convert --differencing --layout mbr "$P" "$TMP/w/c.vhdx")"
	assert_eq "parent '$name': nothing written" "$before" "$(listing "$TMP/w")"
	rm -f "$P"
done
# a folder on the way from OUT's folder to IN
mkdir -p "$TMP/w/bad:dir"
cp "$IN" "$TMP/w/bad:dir/p.vhdx"
assert_exit "a folder with ':' on the way: dry run exit 2" 2 "$GEN2PREP" convert --dry-run --differencing --layout mbr "$TMP/w/bad:dir/p.vhdx" "$TMP/w/c.vhdx"
assert_match "names the folder" "the name 'bad:dir' has a character ':'" "$ERR"
assert_exit "a folder with ':' on the way: convert exit 2" 2 "$GEN2PREP" convert --differencing --layout mbr "$TMP/w/bad:dir/p.vhdx" "$TMP/w/c.vhdx"
# the same folder above both: not on the relative path, so allowed
assert_exit "the bad folder above both IN and OUT: no refusal (dry run 0)" 0 "$GEN2PREP" convert --dry-run --differencing --layout mbr "$TMP/w/bad:dir/p.vhdx" "$TMP/w/bad:dir/c.vhdx"
rm -rf "$TMP/w/bad:dir"
assert_eq "refusals left nothing" "in.vhdx" "$(listing "$TMP/w")"

# ---- 2. OUT's own name: warned (nothing records it); recorded: refused ----
for out in CON.vhdx 'a?.vhdx' lpt9.vhdx; do
	assert_exit "OUT '$out': dry run convertible (exit 0)" 0 "$GEN2PREP" convert --dry-run --json --differencing --layout mbr "$IN" "$TMP/w/$out"
	printf '%s' "$OUT" >"$TMP/o.json"
	assert_eq "OUT '$out': the plan warning output-name" '["output-name"]' "$(jget "$TMP/o.json" '[w["code"] for w in j["plan"]["warnings"] if w["code"] == "output-name"]')"
	assert_match "OUT '$out': the dry run warns on stderr" "^gen2prep: warning: '.*': the name has a .*Hyper-V cannot open it by this name; rename it" "$ERR"
	assert_exit "OUT '$out': convert writes it (exit 0)" 0 "$GEN2PREP" convert --differencing --layout mbr "$IN" "$TMP/w/$out"
	assert_match "OUT '$out': convert gives the same warning" "^gen2prep: warning: '.*': the name has a " "$ERR"
	assert_exit "OUT '$out': the child verifies" 0 "$GEN2PREP" verify "$TMP/w/$out"
	rm -f "$TMP/w/$out"
done
assert_exit "OUT 'CON.img' (raw): no warning" 0 "$GEN2PREP" convert --dry-run --layout mbr "$IN" "$TMP/w/CON.img"
assert_eq "raw OUT: no output-name warning" "" "$(printf '%s' "$ERR" | grep output-name)"
check_fails "raw OUT: no Windows-name warning on stderr" grep -q "Windows does not allow" <<<"$ERR"
assert_exit "a plain OUT name: no warning" 0 "$GEN2PREP" convert --dry-run --differencing --layout mbr "$IN" "$TMP/w/ok.vhdx"
check_fails "plain name: no Windows-name warning" grep -q "Windows does not allow" <<<"$ERR"
for f in nanabox:x.7b hyperv-script:x.ps1; do
	assert_exit "OUT CON.vhdx recorded by --${f%%:*}: usage error (exit 2)" 2 \
		"$GEN2PREP" convert --${f%%:*} "$TMP/w/${f#*:}" --differencing --layout mbr "$IN" "$TMP/w/CON.vhdx"
	assert_match "--${f%%:*}: names the name and why" "the disk path 'CON\.vhdx' has the name 'CON\.vhdx' with a reserved device name CON" "$ERR"
	assert_eq "--${f%%:*}: IN not opened (strace)" "" "$(opens_in "$IN" "$GEN2PREP" convert --${f%%:*} "$TMP/w/${f#*:}" --layout mbr "$IN" "$TMP/w/CON.vhdx")"
done
assert_eq "refused machine files: nothing written" "in.vhdx" "$(listing "$TMP/w")"

# ---- 3. the parent not found: where Hyper-V looks, the fallback, the GUID ----
assert_exit "a child beside IN" 0 "$GEN2PREP" convert -q --differencing --layout mbr "$IN" "$TMP/w/child.vhdx"
dwg=$($CHAIN parent "$IN" | sed -n 's/^data_write=//p')
[ -n "$dwg" ] || die "vhdx_chain.py parent: no DataWriteGuid"
mkdir -p "$TMP/moved"
cp "$TMP/w/child.vhdx" "$TMP/moved/"
for cmd in inspect verify bcd "convert --dry-run"; do
	assert_exit "child moved alone: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/moved/child.vhdx" $( [ "$cmd" = "convert --dry-run" ] && echo "$TMP/moved/o.vhdx")
	assert_match "$cmd: where the recorded path leads (the child's folder)" \
		"parent disk '\.\\\\in\.vhdx' not found: nothing at '$TMP/moved/in\.vhdx', where the recorded path leads \(beside this disk\)" "$ERR"
	assert_match "$cmd: the DataWriteGuid it needs (parent_linkage)" "it needs the disk whose DataWriteGuid is \{$dwg\} \(parent_linkage\)" "$ERR"
done
assert_eq "convert of the moved child wrote nothing" "child.vhdx" "$(listing "$TMP/moved")"
# a path that climbs: where it leads and the fallback are two places
mkdir -p "$TMP/vms/gen1" "$TMP/vms/new/disks"
cp "$IN" "$TMP/vms/gen1/p.vhdx"
assert_exit "child in vms/new/disks of vms/gen1/p.vhdx" 0 \
	bash -c 'cd "$1/vms/new" && "$2" convert -q --differencing --layout mbr ../gen1/p.vhdx disks/c.vhdx' _ "$TMP" "$GEN2PREP"
rm "$TMP/vms/gen1/p.vhdx"
for cmd in inspect verify; do
	assert_exit "parent gone: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/vms/new/disks/c.vhdx"
	assert_match "$cmd: names both places, each once" "parent disk '\.\.\\\\\.\.\\\\gen1\\\\p\.vhdx' not found: nothing at '$TMP/vms/gen1/p\.vhdx', where the recorded path leads, nor at '$TMP/vms/new/disks/p\.vhdx', a file of that name beside this disk; it needs the disk whose DataWriteGuid is \{$dwg\}" "$ERR"
done
assert_exit "verify --json: exit 3" 3 "$GEN2PREP" verify --json "$TMP/vms/new/disks/c.vhdx"
printf '%s' "$OUT" >"$TMP/v.json"
assert_eq "verify --json: code notfound" notfound "$(jget "$TMP/v.json" 'j["error"]["code"]')"
assert_match "verify --json: the same message" "where the recorded path leads, nor at" "$(jget "$TMP/v.json" 'j["error"]["message"]')"
rm -rf "$TMP/vms"

# ---- 4. an empty or truncated parent, or input: the file and the cause ----
for cut in 0:"'$TMP/moved/in\\.vhdx' is empty \\(0 bytes\\): not a disk image" \
	3000000:"parent '$TMP/moved/in\\.vhdx': VHDX metadata region lies past the end of the file \\(3000000 bytes\\): the image is truncated" \
	200000:"parent '$TMP/moved/in\\.vhdx': VHDX region table at offset 196608 is past the end of the file \\(200000 bytes\\): the image is truncated"; do
	n=${cut%%:*} re=${cut#*:}
	head -c "$n" "$IN" >"$TMP/moved/in.vhdx"
	for cmd in inspect verify bcd "convert --dry-run" convert; do
		assert_exit "parent of $n bytes: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/moved/child.vhdx" $(case $cmd in convert*) echo "$TMP/moved/o.vhdx";; esac)
		assert_match "parent of $n bytes: $cmd names it and the cause" "$re" "$ERR"
		check_fails "parent of $n bytes: $cmd does not say 'not found'" grep -q "not found" <<<"$ERR"
		assert_eq "parent of $n bytes: $cmd names the parent once" 1 "$(grep -o "moved/in\.vhdx" <<<"$ERR" | wc -l)"
	done
	assert_exit "parent of $n bytes: verify --json exit 3, code format" 3 "$GEN2PREP" verify --json "$TMP/moved/child.vhdx"
	printf '%s' "$OUT" >"$TMP/v.json"
	assert_eq "parent of $n bytes: verify --json code format" format "$(jget "$TMP/v.json" 'j["error"]["code"]')"
done
assert_eq "failed converts wrote nothing" "child.vhdx in.vhdx" "$(listing "$TMP/moved")"
: >"$TMP/moved/empty.vhdx"
for cmd in inspect verify bcd; do
	assert_exit "an empty IN: $cmd exit 3" 3 "$GEN2PREP" $cmd "$TMP/moved/empty.vhdx"
	assert_match "an empty IN: $cmd says it is empty" "'.*empty\.vhdx' is empty \(0 bytes\): not a disk image" "$ERR"
done

# ---- 5. usage errors before IN is opened (a missing IN is not the error) ----
# ARGS|regex of the message: each with a missing IN exits 2, not 3
while IFS='|' read -r args re; do
	# shellcheck disable=SC2086
	assert_exit "$args, IN missing: usage (exit 2)" 2 "$GEN2PREP" convert $args "$TMP/none.vhdx" "$TMP/o.vhdx"
	assert_match "$args: says why, not about IN" "$re" "$ERR"
	check_fails "$args: IN not mentioned" grep -q "none\.vhdx" <<<"$ERR"
done <<'EOF'
--esp-size 8|--esp-size 8 MiB is below the minimum of 33 MiB for a disk with 512-byte sectors \(260 MiB with 4096-byte sectors\)
--esp-size 32|below the minimum of 33 MiB
--bootdebug|--bootdebug needs --debug
--debug serial:3:115200|COM1 and COM2 only
-O vhd|-O vhd, but .* is named as a vhdx image
--vm-cpus 4|need --nanabox or --hyperv-script
-q -v|-q and -v contradict
--layout zz|unknown layout 'zz'
--force-version x|--force-version takes MAJOR.MINOR
--nanabox x.7b --hyperv-script x.7b|name the same file
EOF
assert_exit "--esp-size 8, existing IN: usage (exit 2)" 2 "$GEN2PREP" convert --dry-run --esp append --esp-size 8 "$IN" "$TMP/o.vhdx"
assert_eq "--esp-size 8: nothing of IN printed" "" "$OUT"
assert_eq "--esp-size 8: IN not opened (strace)" "" "$(opens_in "$IN" "$GEN2PREP" convert --esp append --esp-size 8 "$IN" "$TMP/o.vhdx")"
assert_exit "--esp-size 33 is the least: accepted (dry run 0)" 0 "$GEN2PREP" convert --dry-run --esp append --layout mbr --esp-size 33 "$IN" "$TMP/o.vhdx"
check "nothing written by the usage errors" test ! -e "$TMP/o.vhdx"

# ---- 6. convert --json: every failure with the report keys ----
assert_exit "--json --esp-size 8" 2 "$GEN2PREP" convert --json --esp-size 8 "$IN" "$TMP/o.vhdx"
json_failure esp-size 2 usage
assert_eq "--json --esp-size 8: the message once on stderr" 1 "$(grep -c 'below the minimum' <<<"$ERR")"
assert_exit "--json with an unknown option" 2 "$GEN2PREP" convert --json --bogus "$IN" "$TMP/o.vhdx"
json_failure unknown 2 usage
assert_exit "--json before an option that needs an argument" 2 "$GEN2PREP" convert --json "$IN" "$TMP/o.vhdx" --layout
json_failure noarg 2 usage
assert_exit "--json -q -v" 2 "$GEN2PREP" convert --json -q -v "$IN" "$TMP/o.vhdx"
json_failure qv 2 usage
mkdir -p "$TMP/adir.vhdx"
assert_exit "--json, OUT a directory (refused before the run, exit 7)" 7 "$GEN2PREP" convert --json "$IN" "$TMP/adir.vhdx"
json_failure outdir 7 exists
K4=$(variant win7-sp1 vhdx 4kn)
assert_exit "--json, 4kn --esp-size 200 (usage once the sector size is read)" 2 "$GEN2PREP" convert --json --esp-size 200 "$K4" "$TMP/o.vhdx"
json_failure k4 2 usage
assert_match "4kn: states the 4096-byte minimum" "minimum of 260 MiB" "$(jget "$TMP/k4.json" 'j["error"]["message"]')"
# the other commands' usage errors keep {schema, error}
assert_exit "inspect --json --bogus: exit 2" 2 "$GEN2PREP" inspect --json --bogus "$IN"
printf '%s' "$OUT" >"$TMP/i.json"
assert_eq "inspect's usage error: {schema, error}" '["error", "schema"]' "$(jget "$TMP/i.json" 'sorted(j)')"

assert_eq "input unchanged (sha256)" "$in_sha" "$(sha "$IN")"
