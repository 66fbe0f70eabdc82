#!/bin/bash
# agree-edge.sh - edges where convert once disagreed with verify (fix2):
# --esp append on a disk that has an ESP (esp-exists), a VHD or raw output
# of a 4096-byte-sector disk (output-sector-size), --force-version unlike
# the kernel's own 6.0/6.1 version (force-version-mismatch): each is a
# blocker that the dry run and convert both report with the same exit
# code; --esp auto with --force on a converted disk picks its ESP and
# verify passes; a dry run's JSON says done false and would-apply.
. "$(dirname "$0")/lib.sh"
need qemu-img python3 sfdisk
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"


# both DESC CODE BLOCKER RE IN OUT ARGS...: dry run and convert exit CODE,
# the dry run names BLOCKER, convert's message matches RE, nothing written
both() {
	local d=$1 code=$2 b=$3 re=$4 in=$5 out=$6; shift 6
	assert_exit "$d: dry run" "$code" "$GEN2PREP" convert --dry-run --json "$@" "$in" "$out"
	printf '%s' "$OUT" >"$TMP/both.json"
	assert_match "$d: dry run names $b" "\"$b\"" "$(jget "$TMP/both.json" '[b["code"] for b in j["plan"]["blockers"]]')"
	assert_exit "$d: convert" "$code" "$GEN2PREP" convert -q "$@" "$in" "$out"
	assert_match "$d: convert gives the reason" "$re" "$ERR"
	check "$d: no output" test ! -e "$out"
}

W7=$(fixture win7-sp1 vhdx)

# ---- 4. a dry run writes nothing: done false, patches would-apply ----
assert_exit "dry run exits 0" 0 "$GEN2PREP" convert --dry-run --json "$W7" "$TMP/d.vhdx"
printf '%s' "$OUT" >"$TMP/dry.json"
assert_eq "dry run: done is false" false "$(jget "$TMP/dry.json" 'j["done"]')"
assert_eq "dry run: every patch status is would-apply" '["would-apply"]' \
	"$(jget "$TMP/dry.json" 'sorted(set(r["status"] for p in j["patch_results"] for r in p["results"] if r["status"] != "not-applicable"))')"
check "dry run: no output" test ! -e "$TMP/d.vhdx"

# ---- 1. a converted disk: --esp append refused, --esp auto --force reuses its ESP ----
assert_exit "convert win7 to raw" 0 "$GEN2PREP" convert -q "$W7" "$TMP/c.raw"
assert_exit "--force --esp append on a converted disk: dry run refused" 4 "$GEN2PREP" convert --dry-run --json --force --esp append "$TMP/c.raw" "$TMP/c2.raw"
printf '%s' "$OUT" >"$TMP/app.json"
assert_eq "esp-exists blocker" '["esp-exists"]' "$(jget "$TMP/app.json" '[b["code"] for b in j["plan"]["blockers"]]')"
assert_match "esp-exists names the partition and --esp existing" "partition [0-9]+ is an ESP.*--esp existing" \
	"$(jget "$TMP/app.json" 'j["plan"]["blockers"][0]["message"]')"
assert_exit "--force --esp append: convert refused" 4 "$GEN2PREP" convert -q --force --esp append "$TMP/c.raw" "$TMP/c2.raw"
assert_match "convert names esp-exists" "is an ESP already" "$ERR"
check "--esp append: no output" test ! -e "$TMP/c2.raw"
assert_exit "--force --esp auto on a converted disk: converted" 0 "$GEN2PREP" convert -q --json --force "$TMP/c.raw" "$TMP/c3.raw"
printf '%s' "$OUT" >"$TMP/auto.json"
assert_eq "--esp auto picks the existing ESP" existing "$(jget "$TMP/auto.json" 'j["plan"]["esp"]["placement"]')"
assert_exit "--esp auto --force output: verify passes" 0 "$GEN2PREP" verify "$TMP/c3.raw"
esps=$(sfdisk -J "$TMP/c3.raw" 2>/dev/null | python3 -c 'import json,sys; print(sum(p["type"].upper()=="C12A7328-F81F-11D2-BA4B-00A0C93EC93B" for p in json.load(sys.stdin)["partitiontable"]["partitions"]))')
assert_eq "sfdisk: one ESP on the reconverted disk" 1 "$esps"

# ---- 2. 4096-byte sectors: VHD and raw outputs refused (exit 7), VHDX fine ----
K4=$(variant win7-sp1 vhdx 4kn)
both "4kn to VHD" 7 output-sector-size "use -O vhdx" "$K4" "$TMP/k.vhd" -O vhd
both "4kn to raw" 7 output-sector-size "use -O vhdx" "$K4" "$TMP/k.raw" -O raw
assert_exit "4kn to VHDX: dry run passes" 0 "$GEN2PREP" convert --dry-run "$K4" "$TMP/k.vhdx"

# ---- 3. --force-version against a version read from the kernel ----
VI=$(fixture vista-sp2 vhdx)
both "--force-version 6.1 on Vista" 4 force-version-mismatch "6.1 on a 6.0 kernel" "$VI" "$TMP/v.vhdx" --force-version 6.1
both "--force-version 6.0 on Win7" 4 force-version-mismatch "6.0 on a 6.1 kernel" "$W7" "$TMP/w.vhdx" --force-version 6.0
assert_exit "--force-version 6.1 on Win7 (its own version): dry run passes" 0 "$GEN2PREP" convert --dry-run --force-version 6.1 "$W7" "$TMP/w.vhdx"
