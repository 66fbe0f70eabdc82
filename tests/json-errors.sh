#!/bin/bash
# json-errors.sh - every failing exit carries its error, in text and with
# --json (a user test of README + man page found --json printing code "ok",
# "unknown error"; nothing at all for refused outputs; "applied" patches of
# a failed run): each case's exit status, its one-line message on stderr,
# and its JSON (valid against doc/schema.json, python3-jsonschema) with the
# same code and message. Also: one message form ("gen2prep: CMD: ..."),
# the file named once, the blocker code in convert's message, options
# checked before IN is read, -q's rules, the interrupted run's JSON keys,
# inspect's loader status on a converted disk, the WOF man page sentence.
. "$(dirname "$0")/lib.sh"
need python3 strace
python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema not installed (scripts/install-deps)"
SCHEMA=$top_srcdir/doc/schema.json

# valid FILE: FILE is one JSON object valid against doc/schema.json
valid_json() {
	python3 - "$SCHEMA" "$1" >"$TMP/why" 2>&1 <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
for e in errors[:5]:
    print(list(e.path), e.message[:300])
sys.exit(1 if errors else 0)
PY
}

# both NAME EXIT CODE REGEX ARGS...: convert ARGS in text mode and with
# --json: the same exit status; the text message matches REGEX and never
# says "unknown error"; the JSON is valid, its error has CODE, the message
# matches REGEX, exit_code EXIT, and the text message's reason is the JSON's.
both() {
	local name=$1 want=$2 code=$3 re=$4; shift 4
	assert_exit "$name: text" "$want" "$GEN2PREP" convert "$@"
	local text=$ERR
	assert_match "$name: text message says why" "$re" "$text"
	check_fails "$name: text message not 'unknown error'" grep -q 'unknown error' <<<"$text"
	assert_exit "$name: --json" "$want" "$GEN2PREP" convert --json "$@"
	printf '%s' "$OUT" >"$TMP/$name.json"
	if valid_json "$TMP/$name.json"; then ok "$name: JSON valid"; else fail "$name: JSON not valid: $(head -c 600 "$TMP/why")"; return; fi
	assert_eq "$name: JSON error code" "$code" "$(jget "$TMP/$name.json" 'j["error"]["code"]')"
	assert_eq "$name: JSON error exit_code" "$want" "$(jget "$TMP/$name.json" 'j["error"]["exit_code"]')"
	local msg
	msg=$(jget "$TMP/$name.json" 'j["error"]["message"]')
	assert_match "$name: JSON message says why" "$re" "$msg"
	check_fails "$name: --json stderr not 'unknown error'" grep -q 'unknown error' <<<"$ERR"
	check "$name: the text message is the JSON's" grep -qF -- "$msg" <<<"$text"
}

cd "$TMP" || die "no TMP"
W7=$(fixture win7-sp1 vhdx)
W7VHD=$(fixture win7-sp1 vhd)
K4=$(variant win7-sp1 vhdx 4kn)

# ---- 1. output-side blockers: the real error, in both modes ----
both diff-vhd-parent 7 output "output-differencing-parent: --differencing needs a VHDX input" --differencing "$W7VHD" d.vhdx
both diff-grows 7 output "output-differencing-grows: --differencing keeps the parent's size" --differencing "$W7" d.vhdx
both 4kn-to-vhd 7 output "output-sector-size: the input has 4096-byte sectors" "$K4" k4.vhd
# OUT refused before IN is read (it exists; it is IN): the conversion gives
# the dry run's error, the blocker output-refused (a stranger found code
# "exists" there against "output" in the dry run)
touch exists.vhdx
cp "$W7" self.vhdx
both out-exists 7 output "output-refused: 'exists\\.vhdx' exists \\(use --overwrite" "$W7" exists.vhdx
both out-is-in 7 output "output-refused: 'self\\.vhdx' is the input" self.vhdx self.vhdx
for c in out-exists:exists.vhdx out-is-in:self.vhdx; do
	src=$W7; [ "${c#*:}" = self.vhdx ] && src=self.vhdx
	"$GEN2PREP" convert --json --dry-run "$src" "${c#*:}" >"$TMP/${c%%:*}-dry.json"
	assert_eq "${c%%:*}: the dry run's error object is the conversion's" \
		"$(jget "$TMP/${c%%:*}.json" 'j["error"]')" "$(jget "$TMP/${c%%:*}-dry.json" 'j["error"]')"
done
rm -f exists.vhdx self.vhdx
check "refusals leave no output" test ! -e d.vhdx -a ! -e k4.vhd
check_fails "a refusal by a blocker: no '; nothing was written' (nothing was begun)" grep -q 'nothing was written' <<<"$ERR"
# a dry run with a blocker: the same error object as the conversion
assert_exit "dry run, VHD parent: exit 7" 7 "$GEN2PREP" convert --dry-run --json --differencing "$W7VHD" d.vhdx
printf '%s' "$OUT" >dry.json
check "dry run JSON valid" valid_json dry.json
assert_eq "dry run and conversion: the same error object" \
	"$(jget diff-vhd-parent.json 'j["error"]')" "$(jget dry.json 'j["error"]')"

# disk full mid-write (ENOSPC on the stream's copy_file_range, strace)
full() { rm -f full.vhdx; strace -f -qq -o /dev/null -e trace=copy_file_range -e inject=copy_file_range:error=ENOSPC:when=3 "$GEN2PREP" convert "$@"; }
assert_exit "disk full: text" 7 full "$W7" full.vhdx
assert_match "disk full: says no space, names OUT" "no space left on the device for 'full.vhdx'" "$ERR"
assert_eq "disk full: OUT named once" 1 "$(grep -o 'full\.vhdx' <<<"$ERR" | wc -l)"
check_fails "disk full: not 'unknown error'" grep -q 'unknown error' <<<"$ERR"
assert_exit "disk full: --json" 7 full --json "$W7" full.vhdx
printf '%s' "$OUT" >full.json
check "disk full: JSON valid" valid_json full.json
assert_eq "disk full: code nospace" nospace "$(jget full.json 'j["error"]["code"]')"
assert_eq "disk full: output_written false" false "$(jget full.json 'j["output_written"]')"
# ---- 2. a failed run reports no patch as applied or written ----
assert_eq "disk full: no patch status applied" '[]' "$(jget full.json '[r["status"] for p in j["patch_results"] for r in p["results"] if r["status"] == "applied"]')"
assert_eq "disk full: no patch file written" '[]' "$(jget full.json '[p["path"] for p in j["patch_results"] if p["written"]]')"
assert_ne "disk full: the patches are listed (would-apply)" '[]' "$(jget full.json '[r["status"] for p in j["patch_results"] for r in p["results"] if r["status"] == "would-apply"]')"
check "disk full: nothing left behind" test ! -e full.vhdx

# the input changed mid-run: stopped (SIGSTOP from strace) as it enters the
# stream's first sync_file_range, IN is written to, then SIGCONT (exit 3).
# No timing: a 3 s delay there with a poll that had to see it was missed
# under load in a fresh-clone CI run (the convert finished, exit 0).
changed() {
	cp "$W7" chg.vhdx
	rm -f chg-out.vhdx
	strace -f -qq -o /dev/null -e trace=sync_file_range -e inject=sync_file_range:signal=STOP:when=1 \
		"$GEN2PREP" convert "$@" chg.vhdx chg-out.vhdx >chg.out 2>chg.err &
	local spid=$! pid= st= _
	# by name: strace's own short-lived probe children are no gen2prep
	for _ in $(seq 600); do pid=$(pgrep -x -P "$spid" gen2prep | head -1); [ -n "$pid" ] && break; sleep 0.05; done
	for _ in $(seq 3000); do   # it stays stopped once there: no race
		st=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
		[ "$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null)" = 277 ] && [ "$st" = t -o "$st" = T ] && break
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	printf x | dd of=chg.vhdx bs=1 seek=$((100 << 20)) conv=notrunc status=none
	kill -CONT "$pid" 2>/dev/null; pkill -CONT -P "$spid"
	wait "$spid"
	RC=$? OUT=$(cat chg.out) ERR=$(cat chg.err)
}
if [ "$(uname -m)" = x86_64 ]; then
	changed
	assert_eq "input changed: text exit 3" 3 "$RC"
	assert_match "input changed: text says so" "'chg\\.vhdx' changed while it was read" "$ERR"
	changed --json
	assert_eq "input changed: --json exit 3" 3 "$RC"
	printf '%s' "$OUT" >chg.json
	check "input changed: JSON valid" valid_json chg.json
	assert_match "input changed: JSON message says so" "changed while it was read" "$(jget chg.json 'j["error"]["message"]')"
	assert_eq "input changed: exit_code 3 in the error" 3 "$(jget chg.json 'j["error"]["exit_code"]')"
	assert_eq "input changed: no patch applied" '[]' "$(jget chg.json '[r["status"] for p in j["patch_results"] for r in p["results"] if r["status"] == "applied"]')"
	assert_eq "input changed: no patch file written" '[]' "$(jget chg.json '[p["path"] for p in j["patch_results"] if p["written"]]')"
else
	echo "SKIP: input changed mid-run needs x86_64 (syscall number of sync_file_range)"
fi

# not enough free space (a 2 MiB tmpfs; root)
if [ "$(id -u)" = 0 ] && mkdir -p small ro && mount -t tmpfs -o size=2m tmpfs small 2>/dev/null; then
	both no-space 7 output "output-refused: .*small/o\\.vhdx" "$W7" small/o.vhdx
	assert_eq "no space: OUT named once" 1 "$(grep -o 'small/o\.vhdx' <<<"$ERR" | wc -l)"
	umount small
	mount -t tmpfs -o ro,size=1m tmpfs ro
	both nanabox-ro-folder 7 output "ro/x\\.7b" --nanabox ro/x.7b "$W7" nb.vhdx
	umount ro
else
	echo "SKIP: no-space and read-only folder cases need root (tmpfs mounts)"
fi

# ---- 3. refused before the run: {schema, error} on stdout ----
mkdir adir.vhdx
touch o1.vhdx exists.vhdx
ln -s exists.vhdx link.vhdx
refused_json() {
	local name=$1; shift
	assert_exit "$name" 7 "$GEN2PREP" convert --json "$@"
	printf '%s' "$OUT" >"$TMP/r.json"
	if valid_json "$TMP/r.json"; then ok "$name: JSON valid"; else fail "$name: no valid JSON: '$(head -c 300 <<<"$OUT")' $(head -c 300 "$TMP/why")"; return; fi
	assert_eq "$name: exit_code 7 in the error" 7 "$(jget "$TMP/r.json" 'j["error"]["exit_code"]')"
	assert_match "$name: stderr says why" "gen2prep: convert: " "$ERR"
}
refused_json "OUT a directory" "$W7" adir.vhdx
refused_json "OUT a directory, dry run" --dry-run "$W7" adir.vhdx
refused_json "OUT /dev/null" "$W7" /dev/null
refused_json "OUT a symlink with --overwrite" --overwrite "$W7" link.vhdx
refused_json "--nanabox FILE exists" --nanabox o1.vhdx "$W7" n2.vhdx
refused_json "--hyperv-script a directory" --hyperv-script adir.vhdx "$W7" h2.vhdx

# ---- 9. one message form; the file named once; blocker codes ----
head -c 100000 /dev/urandom >garb.vhdx
for cmd in inspect verify bcd; do
	assert_exit "$cmd of garbage" 3 "$GEN2PREP" $cmd garb.vhdx
	assert_match "$cmd: 'gen2prep: $cmd: ' form" "^gen2prep: $cmd: 'garb\\.vhdx' is not a disk image" "$ERR"
	assert_eq "$cmd: the file named once" 1 "$(grep -o 'garb\.vhdx' <<<"$ERR" | wc -l)"
done
B32=$(variant win7-sp1 raw 32bit)
assert_exit "32-bit: refused" 4 "$GEN2PREP" convert "$B32" b32.vhdx
assert_match "32-bit: the blocker code in convert's message" "^gen2prep: convert: not convertible: 32bit: " "$ERR"

# ---- 10. options checked before IN is opened ----
assert_exit "--bootdebug without --debug, dry run" 2 "$GEN2PREP" convert --dry-run --bootdebug "$W7" q.vhdx
assert_eq "--bootdebug: nothing of IN printed" "" "$OUT"
assert_exit "unknown output format, dry run" 2 "$GEN2PREP" convert --dry-run "$W7" out.qcow2
assert_eq "unknown format: nothing of IN printed" "" "$OUT"
assert_match "unknown format: says so" "cannot tell the output format from 'out\\.qcow2'" "$ERR"
assert_exit "-o subformat=fixed with raw" 2 "$GEN2PREP" convert -o subformat=fixed "$W7" q.raw
assert_exit "--bootdebug --json" 2 "$GEN2PREP" convert --bootdebug --json "$W7" q.vhdx
assert_eq "--bootdebug --json: the message once" 1 "$(grep -c 'bootdebug needs --debug' <<<"$ERR")"
printf '%s' "$OUT" >bd.json
check "--bootdebug --json: JSON valid" valid_json bd.json
assert_eq "--bootdebug --json: code usage" usage "$(jget bd.json 'j["error"]["code"]')"
check "a path the missing IN never was: IN not needed" sh -c '! "$1" convert --dry-run --bootdebug missing.vhdx q.vhdx 2>&1 | grep -q missing' _ "$GEN2PREP"

# ---- 11. dry run and conversion alike; the interrupted run's keys ----
cp "$W7" conv.vhdx
"$GEN2PREP" convert -q conv.vhdx c.vhdx || die "cannot convert the fixture"
assert_exit "dry run of a converted disk (already-gen2)" 4 "$GEN2PREP" convert --dry-run --json c.vhdx c2.vhdx
printf '%s' "$OUT" >d.json
assert_exit "convert of a converted disk" 4 "$GEN2PREP" convert --json c.vhdx c2.vhdx
printf '%s' "$OUT" >r.json
assert_eq "dry run has the conversion's error object" "$(jget r.json 'j["error"]')" "$(jget d.json 'j["error"]')"
assert_eq "dry run: code blocked" blocked "$(jget d.json 'j["error"]["code"]')"
assert_match "blocked: the code already-gen2 in the message" "already-gen2: " "$(jget d.json 'j["error"]["message"]')"
rm -f int.vhdx
sigint_mid_stream convert --json "$W7" int.vhdx >int.json 2>int.err
assert_eq "interrupted: exit 130" 130 "$?"
check "interrupted: JSON valid" valid_json int.json
assert_eq "interrupted: the report keys (null where not known)" \
	'["done", "error", "esp_files", "exit_code", "memdiag", "next_steps", "output", "output_written", "patch_results", "plan", "schema", "windows"]' \
	"$(jget int.json 'sorted(j)')"
assert_eq "interrupted: code interrupted" interrupted "$(jget int.json 'j["error"]["code"]')"

# ---- 12. -q ----
assert_exit "-q -v: usage error" 2 "$GEN2PREP" convert -q -v "$W7" qv.vhdx
assert_match "-q -v: says why" "-q and -v" "$ERR"
assert_exit "-q --dry-run" 0 "$GEN2PREP" convert -q --dry-run "$W7" qd.vhdx
assert_eq "-q --dry-run: the verdict line only" "Dry run: nothing written." "$OUT"
assert_exit "-q --dry-run, blocked" 4 "$GEN2PREP" convert -q --dry-run c.vhdx qd.vhdx
assert_eq "-q --dry-run blocked: the verdict line only" "Dry run: not convertible." "$OUT"
assert_match "-q --dry-run blocked: the reason on stderr" "^gen2prep: convert: not convertible: already-gen2: " "$ERR"

# ---- 14. inspect of a converted disk: the loader as verify sees it ----
"$GEN2PREP" inspect --json c.vhdx >ic.json
assert_eq "inspect: loader-integrity already applied on a converted disk" '["already-applied"]' \
	"$(jget ic.json '[p["status"] for p in j["windows"]["patches"] if p["id"] == "loader-integrity"]')"
assert_match "verify agrees: the loader is patched" "loader-integrity +.*patched" "$("$GEN2PREP" verify c.vhdx)"
"$GEN2PREP" inspect --json "$W7" >iw.json
assert_eq "inspect: an unconverted disk's loader would-apply" '["would-apply"]' \
	"$(jget iw.json '[p["status"] for p in j["windows"]["patches"] if p["id"] == "loader-integrity"]')"

# ---- 8. a corrupt WOF stream: what the man page says is what happens ----
WOF=$(variant win7-sp1 raw wof-corrupt)
assert_exit "wof-corrupt: inspect exit 4" 4 "$GEN2PREP" inspect --json "$WOF"
assert_match "wof-corrupt: blocker boot-file-unreadable" '"boot-file-unreadable"' "$OUT"
MAN=$(sed 's/\\-/-/g' "$top_srcdir/man/gen2prep.1" | tr '\n' ' ')
check_fails "man page no longer says a corrupt WOF stream is exit 3 in general" grep -q 'A WOF stream that is corrupt is exit status 3' <<<"$MAN"
assert_match "man page: boot-file-unreadable (exit status 4) for a corrupt WOF .efi" "corrupt in an .efi file to be copied to the ESP is the blocker boot-file-unreadable \\(exit status 4\\)" "$MAN"

# ---- 15. names that are not UTF-8: the JSON still says what went wrong ----
# jansson refuses such text (json_string returns NULL) and the message, or
# the whole report, was lost: lib/json_text.c puts U+FFFD for each bad byte
BAD=$(printf 'a\377.vhdx') BADOUT=$(printf 'o\376.vhdx')
cp "$W7" "$BAD"
for args in "inspect --json $(printf 'x\377.vhdx')" "verify --json $(printf 'x\377.vhdx')" \
	"convert --json --dry-run --differencing --layout mbr $BAD d.vhdx" "convert --json $BAD $BADOUT"; do
	# shellcheck disable=SC2086
	"$GEN2PREP" $args >nu.json 2>nu.err
	rc=$?
	check "not UTF-8 ($args): valid JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' nu.json
	assert_eq "not UTF-8 ($args): exit_code in the JSON = the exit status" "$rc" \
		"$(jget nu.json 'j.get("exit_code", (j.get("error") or {}).get("exit_code"))')"
	if [ "$rc" -ne 0 ]; then
		assert_match "not UTF-8 ($args): the message names the file, U+FFFD for the byte" \
			"$(printf '\357\277\275')" "$(jget nu.json 'j["error"]["message"]')"
	else
		assert_match "not UTF-8 ($args): next steps name OUT, U+FFFD for the byte" \
			"$(printf 'o\357\277\275')" "$(jget nu.json 'json.dumps(j["next_steps"], ensure_ascii=False)')"
	fi
done
rm -f "$BAD" "$BADOUT"
