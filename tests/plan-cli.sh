#!/bin/bash
# plan-cli.sh - command-line decisions of issue 8 (owner: plan):
#  * --json is taken as getopt_long takes it: a unique abbreviation (--js)
#    makes usage errors print the JSON error object, "--json=x", an
#    ambiguous/other option or an argument after "--" do not;
#  * patch --only X --skip X is a usage error (exit 2), nothing read;
#  * an unwritable --nanabox folder is an output-side blocker of the dry
#    run (exit 7, "output-refused" naming the file) and refuses the
#    conversion before any work (no OUT, exit 7).
. "$(dirname "$0")/lib.sh"
need python3

is_error_json() { # NAME CODE: stdout of the last assert_exit is {"error": {"code": CODE, ...}}
	printf '%s' "$OUT" >"$TMP/e.json"
	assert_eq "$1: JSON error code" "$2" "$(jget "$TMP/e.json" 'j["error"]["code"]' 2>/dev/null)"
}

assert_exit "inspect --bogus --js" 2 "$GEN2PREP" inspect --bogus --js "$TMP/none"
is_error_json "inspect --bogus --js" usage
assert_exit "inspect --js (missing file)" 3 "$GEN2PREP" inspect --js "$TMP/none"
is_error_json "inspect --js" notfound
assert_exit "bcd --jso --bogus" 2 "$GEN2PREP" bcd --jso --bogus "$TMP/none"
is_error_json "bcd --jso --bogus" usage
assert_exit "inspect --bogus --json=1" 2 "$GEN2PREP" inspect --bogus --json=1 "$TMP/none"
assert_eq "--json=1 is not --json: no JSON on stdout" "" "$OUT"
assert_exit "inspect x -- --json" 2 "$GEN2PREP" inspect "$TMP/none" -- --json
assert_eq "--json after -- is an operand: no JSON on stdout" "" "$OUT"
assert_exit "convert --bogus --jso" 2 "$GEN2PREP" convert --bogus --jso "$TMP/none" "$TMP/o.vhdx"
is_error_json "convert --jso" usage

# patch --only X --skip X
printf 'MZ' >"$TMP/k.exe"
assert_exit "patch --only X --skip X" 2 "$GEN2PREP" patch --dry-run --only cmd-line --skip a,cmd-line "$TMP/k.exe"
assert_match "patch --only/--skip clash names the id" "patch id 'cmd-line' is in both --only and --skip" "$ERR"
assert_exit "patch --only X --skip X --json" 2 "$GEN2PREP" patch --dry-run --json --only x,y --skip y "$TMP/k.exe"
is_error_json "patch clash --json" usage
assert_exit "patch --only x --skip xy: no clash, the file is read (and is not a PE)" 3 "$GEN2PREP" patch --dry-run --only x --skip xy "$TMP/k.exe"
assert_match "no clash reported for x/xy" "not a PE file" "$ERR"

# --nanabox in a folder that cannot be written
if [ "$(id -u)" = 0 ] && ! command -v setpriv >/dev/null; then skip "root without setpriv: folder permissions do not apply"; fi
. "$(dirname "$0")/convert-lib.sh"
IN=$(fixture win7-sp1 vhdx)
mkdir -p "$TMP/ro" "$TMP/w"
chmod 0555 "$TMP/ro"
chmod 0777 "$TMP/w" "$TMP"
as_user() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi; }
chmod o+r "$IN"; chmod o+x "$(dirname "$IN")" 2>/dev/null
assert_exit "dry run: --nanabox in an unwritable folder" 7 as_user "$GEN2PREP" convert --dry-run --json --nanabox "$TMP/ro/m.7b" "$IN" "$TMP/w/o.vhdx"
printf '%s' "$OUT" >"$TMP/d.json"
assert_eq "dry run: output-refused blocker" '"output-refused"' "$(jget "$TMP/d.json" 'json.dumps([b["code"] for b in j["plan"]["blockers"]][-1])')"
assert_match "dry run: the blocker names the file" "m.7b" "$(jget "$TMP/d.json" 'j["plan"]["blockers"][-1]["message"]')"
assert_exit "convert: --nanabox in an unwritable folder refused before any work" 7 as_user "$GEN2PREP" convert -q --nanabox "$TMP/ro/m.7b" "$IN" "$TMP/w/o.vhdx"
assert_match "convert: the refusal names the folder" "ro.*not writable" "$ERR"
assert_eq "convert: no OUT written" "" "$(ls "$TMP/w")"
