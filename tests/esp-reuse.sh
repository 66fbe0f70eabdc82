#!/bin/bash
# esp-reuse.sh - System Reserved is reused as the ESP only when it holds
# nothing but boot files (issue 4, --esp reuse): a file of the user's there
# makes inspect report it not reusable, naming the file
# (partitions[].not_reusable_why), `convert --esp reuse` refuse with that
# reason and write nothing, and `--esp auto` fall back to appending an ESP
# (the user's file survives: ntfscat reads it from the output).
. "$(dirname "$0")/lib.sh"
need ntfscat sfdisk qemu-img

img=$TMP/gen1.raw
cp "$(fixture win7-sp1 raw)" "$img"
sr_start=$(sfdisk --json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"])')
dd if="$img" of="$TMP/sr.ntfs" bs=512 skip="$sr_start" count=$((100 * 2048)) status=none
echo "keep me" >"$TMP/notes.txt"
check "ntfsput adds a user file to System Reserved" "$top_builddir/fixtures/ntfsput" "$TMP/sr.ntfs" put /notes.txt "$TMP/notes.txt"
dd if="$TMP/sr.ntfs" of="$img" bs=512 seek="$sr_start" conv=notrunc status=none

assert_exit "inspect --json" 0 "$GEN2PREP" inspect --json "$img"
printf '%s' "$OUT" >"$TMP/ins.json"
assert_eq "partition 1 no longer reusable as ESP" "false" "$(jget "$TMP/ins.json" 'j["partitions"][0].get("reusable_as_esp")')"
assert_match "not_reusable_why names the file" "notes.txt" "$(jget "$TMP/ins.json" 'j["partitions"][0].get("not_reusable_why")')"

sum=$(sha "$img")
assert_exit "convert --esp reuse refuses (blocker)" 4 "$GEN2PREP" convert -q --esp reuse "$img" "$TMP/out.raw"
assert_match "the refusal gives the reason" "notes.txt" "$ERR"
check_fails "no output left" test -e "$TMP/out.raw"

assert_exit "convert --esp auto appends an ESP instead" 0 "$GEN2PREP" convert -q --esp auto --json "$img" "$TMP/auto.raw"
printf '%s' "$OUT" >"$TMP/conv.json"
assert_eq "the plan chose append" "append" "$(jget "$TMP/conv.json" 'j["plan"]["esp"]["placement"]')"
check "the output verifies" "$GEN2PREP" verify "$TMP/auto.raw"
p1=$(sfdisk --json "$TMP/auto.raw" | python3 -c 'import json,sys; p=[x for x in json.load(sys.stdin)["partitiontable"]["partitions"] if x["start"]=='"$sr_start"']; print(p[0]["start"])')
dd if="$TMP/auto.raw" of="$TMP/sr2.ntfs" bs=512 skip="$p1" count=$((100 * 2048)) status=none
assert_eq "the user's file is still in System Reserved" "keep me" "$(ntfscat "$TMP/sr2.ntfs" /notes.txt 2>/dev/null)"
assert_eq "input unchanged" "$sum" "$(sha "$img")"
