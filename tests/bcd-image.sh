#!/bin/bash
# bcd-image.sh - `gen2prep bcd IMAGE:PARTITION` (issue 5): on a converted
# disk, naming the ESP's partition number prints the same store as the
# automatic lookup; a partition without a BCD store and a partition number
# the table does not have exit 3 with one stderr line
# naming the image and nothing on stdout.
. "$(dirname "$0")/lib.sh"
need sgdisk
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
in=$(fixture win7-sp1 vhdx)
out=$TMP/w7.raw
assert_exit "convert" 0 "$GEN2PREP" convert -q "$in" "$out"
esp=$(sgdisk -p "$out" | awk '$6 == "EF00" {print $1}')
assert_eq "sgdisk: one EF00 partition" 1 "$(wc -w <<<"$esp")"
assert_exit "bcd IMAGE" 0 "$GEN2PREP" bcd "$out"
auto=$OUT
assert_match "bcd IMAGE names partitions by number" "partition=$out:$esp" "$auto"
assert_exit "bcd IMAGE:$esp (the ESP by number)" 0 "$GEN2PREP" bcd "$out:$esp"
assert_eq "IMAGE:$esp prints the same store as IMAGE" "$auto" "$OUT"
win=$(sgdisk -p "$out" | awk '$6 == "0700" {print $1}' | tail -1)
assert_exit "bcd IMAGE:$win (Windows partition, no store) -> 3" 3 "$GEN2PREP" bcd "$out:$win"
assert_eq "no store: nothing on stdout" "" "$OUT"
assert_eq "no store: one stderr line" 1 "$(printf '%s\n' "$ERR" | wc -l)"
assert_match "no store: message names the image" "$out" "$ERR"
assert_exit "bcd IMAGE:9 (no such partition) -> 3" 3 "$GEN2PREP" bcd "$out:9"
assert_match "no such partition: says so" 'no partition 9' "$ERR"
