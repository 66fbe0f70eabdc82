# tests/refusals-lib.sh - shared by tests/partition-blockers.sh and
# tests/field-disks.sh, on top of tests/lib.sh and tests/convert-lib.sh:
# build a mkfixture --bad variant and assert one verdict in inspect,
# convert --dry-run and convert alike.

# bad_fixture VARIANT [FORMAT]: builds it into $TMP (raw is fast) and prints the path.
bad_fixture() {
	local f=$TMP/bad-$1.${2:-raw}
	"$top_srcdir/scripts/mkfixture" --os win7-sp1 --format "${2:-raw}" --bad "$1" "$f" >"$TMP/mk-$1.log" 2>&1 ||
		{ cat "$TMP/mk-$1.log"; die "mkfixture --bad $1 failed"; }
	printf '%s\n' "$f"
}

# ids FILE EXPR: the ids of a JSON list of {code|id: ...}, space-separated.
ids() { jget "$1" "\" \".join(b.get(\"code\", b.get(\"id\", \"\")) for b in $2)"; }

# blocked_everywhere NAME IMAGE ID MESSAGE-REGEX: inspect (--json and
# text), convert --dry-run (--json and text) and convert all exit 4 and
# name blocker ID with its message; convert leaves nothing in its output
# folder and the input is byte for byte the same afterwards.
blocked_everywhere() {
	local n=$1 img=$2 id=$3 re=$4 before out
	before=$(sha "$img")
	out=$TMP/out-$n
	mkdir -p "$out"
	assert_exit "$n: inspect --json exit 4" 4 "$GEN2PREP" inspect --json "$img"
	printf '%s\n' "$OUT" >"$TMP/$n.inspect.json"
	assert_match "$n: inspect --json blocker $id" "(^| )$id( |$)" "$(ids "$TMP/$n.inspect.json" 'j["blockers"]')"
	assert_match "$n: inspect --json message" "$re" "$(jget "$TMP/$n.inspect.json" '[b["message"] for b in j["blockers"]]')"
	assert_exit "$n: inspect exit 4" 4 "$GEN2PREP" inspect "$img"
	assert_match "$n: inspect text names $id and says why" "Blocker: $id: .*($re)" "$OUT"
	assert_exit "$n: convert --dry-run --json exit 4" 4 "$GEN2PREP" convert --dry-run --json "$img" "$out/o.vhdx"
	printf '%s\n' "$OUT" >"$TMP/$n.dry.json"
	assert_match "$n: dry run --json blocker $id" "(^| )$id( |$)" "$(ids "$TMP/$n.dry.json" 'j["plan"]["blockers"]')"
	assert_exit "$n: convert --dry-run exit 4" 4 "$GEN2PREP" convert --dry-run "$img" "$out/o.vhdx"
	assert_match "$n: dry run text names $id" "BLOCKED \\($id\\): .*($re)" "$OUT"
	assert_exit "$n: convert exit 4" 4 "$GEN2PREP" convert -q "$img" "$out/o.vhdx"
	assert_match "$n: convert says why" "$re" "$ERR"
	assert_eq "$n: convert wrote nothing" "" "$(ls -A "$out")"
	assert_eq "$n: input unchanged" "$before" "$(sha "$img")"
}
