#!/bin/bash
# fuzz.sh - every libFuzzer harness (fuzz/fuzz_*.c: PE parser, patch matcher,
# BCD/hive reader, VHDX/VHD BAT reader, ...) runs for FUZZ_SECONDS (default
# 10) from its seed corpus (fuzz/corpus/NAME) without a crash, a sanitizer
# report or a leak. Long runs: scripts/fuzz 3600 or make fuzz FUZZ_SECONDS=N.
# Here libFuzzer's seed is fixed (FUZZ_SEED, default 1; scripts/fuzz alone
# uses 0, a random one) so that make check and CI try the same inputs in the
# same order: a finding then shows up in every run that gets that far, not
# in one run by chance. Long runs with random seeds are what explore.
. "$(dirname "$0")/lib.sh"
need clang
FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_BUILD_DIR="$top_builddir/../build-fuzz" "$top_srcdir/scripts/fuzz" "${FUZZ_SECONDS:-10}" >"$TMP/fuzz.out" 2>&1
rc=$?
cat "$TMP/fuzz.out"
[ $rc -eq 77 ] && skip "no fuzz harness built"
while read -r line; do
	case "$line" in
	"fuzz "*": ok"*) ok "$line" ;;
	"fuzz "*": FAILED"*) fail "$line" ;;
	esac
done <"$TMP/fuzz.out"
assert_eq "scripts/fuzz exit status" 0 "$rc"
