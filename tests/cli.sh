#!/bin/bash
# cli.sh - the command frame: help, version, unknown commands, exit codes.
. "$(dirname "$0")/lib.sh"

assert_exit "no arguments is a usage error" 2 "$GEN2PREP"
assert_match "usage lists the commands" "inspect.*convert|convert" "$ERR"
assert_exit "--help succeeds" 0 "$GEN2PREP" --help
for c in inspect convert verify patch bcd; do
	assert_match "--help names $c" "$c" "$OUT"
done
assert_exit "--version succeeds" 0 "$GEN2PREP" --version
assert_match "--version prints the version" "^gen2prep [0-9]+\.[0-9]+" "$OUT"
assert_exit "an unknown command is a usage error" 2 "$GEN2PREP" frobnicate
assert_match "unknown command is named" "frobnicate" "$ERR"
