#!/bin/bash
# demo.sh - the README's main-job command works: scripts/demo (what `make
# demo` runs) on this build succeeds end to end, prints each step, leaves a
# converted disk that verifies, and the firmware boot printed the marker.
. "$(dirname "$0")/lib.sh"
need qemu-system-x86_64
DEMO_BUILD="$top_builddir" "$top_srcdir/scripts/demo" >"$TMP/demo.out" 2>&1
rc=$?
sed 's/^/    /' "$TMP/demo.out" | tail -40
assert_eq "scripts/demo exit status" 0 "$rc"
out=$(cat "$TMP/demo.out")
for s in "1. A Windows 7" "2. gen2prep inspect" "3. gen2prep convert" "4. gen2prep verify" "5. Boot under UEFI"; do
	assert_match "demo prints step '$s'" "$s" "$out"
done
assert_match "the input was shown unchanged" "input unchanged: sha256 [0-9a-f]{64}" "$out"
assert_match "verify said ready" "Generation 2 ready" "$out"
assert_match "the firmware printed the marker" "GEN2PREP-BOOT-OK" "$out"
check "the demo's output disk exists and verifies" "$GEN2PREP" verify "$top_builddir/demo/win7-gen2.vhdx"
check "qemu-img check on the demo's output" qemu-img check -q "$top_builddir/demo/win7-gen2.vhdx"
