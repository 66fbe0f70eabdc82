#!/bin/bash
# json-schema.sh - one JSON schema for every command (issue 8): the --json
# output of inspect, convert (plan, result, refusals), verify, bcd and
# patch, and their errors, each validated against doc/schema.json with
# python3-jsonschema (an independent validator); blockers and warnings are
# {code, message} objects everywhere, "schema": 1 on top, an error is a
# JSON object on stdout with the exit status in it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
need python3 qemu-img
python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema not installed (scripts/install-deps)"
SCHEMA=$top_srcdir/doc/schema.json

# valid NAME WANT-EXIT COMMAND...: exit status, stdout one JSON object valid against the schema
valid() {
	local name=$1 want=$2; shift 2
	assert_exit "$name" "$want" "$@"
	printf '%s' "$OUT" >"$TMP/out.json"
	if python3 - "$SCHEMA" "$TMP/out.json" >"$TMP/why" 2>&1 <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
doc = json.load(open(sys.argv[2]))
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: e.path)
for e in errors[:5]:
    print(list(e.path), e.message[:300])
sys.exit(1 if errors else 0)
PY
	then ok "$name: valid against doc/schema.json"; else fail "$name: not valid: $(head -c 800 "$TMP/why")"; fi
}

IN=$(fixture win7-sp1 vhdx)
valid "inspect" 0 "$GEN2PREP" inspect --json "$IN"
assert_eq "inspect: schema 1 first" schema "$(jget "$TMP/out.json" 'list(j)[0]')"
assert_eq "inspect: JSON hex lower case" "0x0b17c0de" "$(jget "$TMP/out.json" 'j["partition_table"]["disk_signature"]')"
valid "convert --dry-run" 0 "$GEN2PREP" convert --dry-run --json "$IN" "$TMP/o.vhdx"
valid "convert" 0 "$GEN2PREP" convert -q --json "$IN" "$TMP/o.vhdx"
valid "verify" 0 "$GEN2PREP" verify --json "$TMP/o.vhdx"
valid "bcd on the converted image" 0 "$GEN2PREP" bcd --json "$TMP/o.vhdx"
valid "inspect of a converted disk (blocker)" 4 "$GEN2PREP" inspect --json "$TMP/o.vhdx"
assert_eq "blocker as {code, message}" already-gen2 "$(jget "$TMP/out.json" 'j["blockers"][0]["code"]')"
valid "convert refused by a blocker" 4 "$GEN2PREP" convert -q --json "$TMP/o.vhdx" "$TMP/o2.vhdx"
assert_eq "refusal: error code" blocked "$(jget "$TMP/out.json" 'j["error"]["code"]')"
assert_eq "refusal: exit_code in the error" 4 "$(jget "$TMP/out.json" 'j["error"]["exit_code"]')"
valid "convert to an existing OUT" 7 "$GEN2PREP" convert -q --json "$IN" "$TMP/o.vhdx"
valid "dry run to an existing OUT" 7 "$GEN2PREP" convert --dry-run --json "$IN" "$TMP/o.vhdx"
assert_eq "dry run: the output blocker as {code, message}" output-refused "$(jget "$TMP/out.json" 'j["plan"]["blockers"][-1]["code"]')"
for cmd in inspect verify bcd; do
	valid "$cmd of a missing file: error object" 3 "$GEN2PREP" $cmd --json "$TMP/missing.vhdx"
	assert_eq "$cmd of a missing file: exit_code 3 in the error" 3 "$(jget "$TMP/out.json" 'j["error"]["exit_code"]')"
	assert_match "$cmd of a missing file: message names the file" "missing.vhdx" "$(jget "$TMP/out.json" 'j["error"]["message"]')"
done
valid "convert of a missing file: error object" 3 "$GEN2PREP" convert -q --json "$TMP/missing.vhdx" "$TMP/o3.vhdx"
head -c 65536 /dev/urandom >"$TMP/junk.raw"
valid "inspect of junk (no partition table)" 4 "$GEN2PREP" inspect --json "$TMP/junk.raw"
valid "dry run of junk (a plan without an ESP)" 4 "$GEN2PREP" convert --dry-run --json "$TMP/junk.raw" "$TMP/j.raw"
assert_eq "a plan without an ESP: esp is null, not absent" None "$(python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["plan"]["esp"]))' "$TMP/out.json")"
: >"$TMP/empty.img"
for cmd in inspect verify; do
	valid "$cmd of an empty file: not a disk image, exit 3" 3 "$GEN2PREP" $cmd --json "$TMP/empty.img"
	assert_match "$cmd of an empty file: says so" "not a disk image" "$(jget "$TMP/out.json" 'j["error"]["message"]')"
done
head -c 1000 "$IN" >"$TMP/trunc.vhdx"
valid "inspect of a truncated VHDX" 3 "$GEN2PREP" inspect --json "$TMP/trunc.vhdx"
MKPE=""
for d in "$top_builddir/fixtures" "$top_srcdir/build/fixtures"; do [ -x "$d/mkpe" ] && MKPE=$d/mkpe && break; done
if [ -n "$MKPE" ]; then
	"$MKPE" --kind hal --file-version 6.1.7601.17514 --variant win7-sp1 "$TMP/hal.dll" >/dev/null
	valid "patch --dry-run" 0 "$GEN2PREP" patch --dry-run --json "$TMP/hal.dll"
fi

# ---- errors that used to leave stdout empty ----
# a usage error with --json: the error object too (stderr keeps its lines)
valid "usage error with --json: error object" 2 "$GEN2PREP" convert --json --bogus a b
assert_eq "usage error: code usage" usage "$(jget "$TMP/out.json" 'j["error"]["code"]')"
assert_eq "usage error: exit_code 2" 2 "$(jget "$TMP/out.json" 'j["error"]["exit_code"]')"
assert_match "usage error: stderr keeps the Try line" "Try 'gen2prep convert --help'" "$ERR"
assert_exit "usage error without --json: stdout empty" 2 "$GEN2PREP" convert --bogus a b
assert_eq "usage error without --json: nothing on stdout" "" "$OUT"
# a missing input is "notfound" (ENOENT), not a format error
valid "inspect of a missing file: notfound" 3 "$GEN2PREP" inspect --json "$TMP/missing.vhdx"
assert_eq "missing file: code notfound" notfound "$(jget "$TMP/out.json" 'j["error"]["code"]')"
# patch of a file that is not a PE
head -c 5000 /dev/urandom >"$TMP/junk.dll"
valid "patch of junk --dry-run --json: error object" 3 "$GEN2PREP" patch "$TMP/junk.dll" --dry-run --json
assert_eq "patch of junk: code format" format "$(jget "$TMP/out.json" 'j["error"]["code"]')"
assert_match "patch of junk: message names the file" "junk.dll" "$(jget "$TMP/out.json" 'j["error"]["message"]')"
# verify: schema first; on a disk that is not Windows, absent values null
valid "verify of the converted disk" 0 "$GEN2PREP" verify --json "$TMP/o.vhdx"
assert_eq "verify: schema 1 first" schema "$(jget "$TMP/out.json" 'list(j)[0]')"
valid "verify of junk: checks fail" 6 "$GEN2PREP" verify --json "$TMP/junk.raw"
assert_eq "verify of junk: schema first" schema "$(jget "$TMP/out.json" 'list(j)[0]')"
assert_eq "verify of junk: kernel_version null" None "$(python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["kernel_version"]))' "$TMP/out.json")"
assert_eq "verify of junk: esp_partition null" None "$(python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["esp_partition"]))' "$TMP/out.json")"
# an interrupted convert --json (SIGINT during the output stream, as
# convert-refusals.sh does): the error object "interrupted", exit 130
to_raw "$IN" "$TMP/big.raw"
head -c 1G /dev/zero | tr '\0' x >>"$TMP/big.raw"
mkdir -p "$TMP/int"
valid "SIGINT during convert --json: error object" 130 sigint_mid_stream convert -q --json "$TMP/big.raw" "$TMP/int/out.vhdx"
assert_eq "SIGINT: code interrupted" interrupted "$(jget "$TMP/out.json" 'j["error"]["code"]')"
assert_eq "SIGINT: exit_code 130" 130 "$(jget "$TMP/out.json" 'j["error"]["exit_code"]')"
assert_eq "SIGINT: no output left" "" "$(ls -A "$TMP/int")"
rm -f "$TMP/big.raw"
