# tests/lib.sh - sourced by every integration test (tests/*.sh).
#
# A test runs its checks with the helpers below; each failed check prints
# why and makes the test fail at the end (exit 1); exit 77 means skipped
# (automake), with the reason printed. Environment from Makefile.am:
# $GEN2PREP (the program under test), $top_srcdir, $top_builddir, $FIXTURES.

set -u
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
: "${GEN2PREP:=$top_builddir/src/gen2prep}"
: "${FIXTURES:=$top_builddir/tests/fixtures.d}"
export LC_ALL=C SOURCE_DATE_EPOCH=1256169600

T_FAILED=0
T_CHECKS=0
T_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/g2p-$T_NAME.XXXXXX")
trap 't_cleanup' EXIT

t_cleanup() {
	local rc=$?
	rm -rf "$TMP"
	if [ "$rc" = 77 ]; then exit 77; fi
	if [ "$T_FAILED" -ne 0 ]; then
		echo "FAILED: $T_FAILED of $T_CHECKS checks in $T_NAME"
		exit 1
	fi
	if [ "$rc" -ne 0 ]; then
		echo "test script aborted with status $rc after $T_CHECKS checks"
		exit "$rc"
	fi
	echo "ok: $T_CHECKS checks in $T_NAME"
	exit 0
}

ok()   { T_CHECKS=$((T_CHECKS + 1)); echo "ok - $*"; }
fail() { T_CHECKS=$((T_CHECKS + 1)); T_FAILED=$((T_FAILED + 1)); echo "not ok - $*"; }
skip() { echo "SKIP: $*"; exit 77; }
die()  { echo "FATAL: $*"; T_FAILED=$((T_FAILED + 1)); exit 1; }

# check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
check() { local d=$1; shift; if "$@" >"$TMP/.out" 2>&1; then ok "$d"; else fail "$d (command: $*)"; sed 's/^/    /' "$TMP/.out" | tail -20; fi; }
# check_fails DESCRIPTION COMMAND...: passes when COMMAND exits non-zero.
check_fails() { local d=$1; shift; if "$@" >"$TMP/.out" 2>&1; then fail "$d (unexpectedly succeeded: $*)"; else ok "$d"; fi; }
# assert_eq DESCRIPTION EXPECTED ACTUAL
assert_eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: expected '$2', got '$3'"; fi; }
assert_ne() { if [ "$2" != "$3" ]; then ok "$1"; else fail "$1: did not expect '$2'"; fi; }
# assert_match DESCRIPTION REGEX TEXT
assert_match() { if printf '%s' "$3" | grep -Eq -- "$2"; then ok "$1"; else fail "$1: '$2' not in: $(printf '%s' "$3" | head -c 400)"; fi; }
# assert_exit DESCRIPTION EXPECTED_STATUS COMMAND...: status and output in $OUT / $ERR
assert_exit() {
	local d=$1 want=$2; shift 2
	"$@" >"$TMP/.stdout" 2>"$TMP/.stderr"; local got=$?
	OUT=$(cat "$TMP/.stdout"); ERR=$(cat "$TMP/.stderr")
	if [ "$got" = "$want" ]; then ok "$d (exit $got)"; else fail "$d: exit $got, expected $want; stderr: $(head -c 600 "$TMP/.stderr")"; fi
}
# jq-free JSON field access through python3 (always on Debian): jget FILE EXPR
# EXPR is a python expression over `j`, e.g. 'j["windows"]["version"]'.
jget() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"; }

need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c not installed (scripts/install-deps installs it)"; done; }

# fixture OS FORMAT: prints the path of a cached fixture disk, building it
# once (under a lock, tests run in parallel). A cached fixture older than
# the script or any tool that makes it is built again, so a changed
# generator never leaves a stale disk behind.
fixture_stale() {
	local f=$1 g
	for g in "$top_srcdir/scripts/mkfixture" "$top_srcdir/scripts/mkefi-marker" \
		"$top_builddir"/fixtures/mkpe "$top_builddir"/fixtures/mkhive "$top_builddir"/fixtures/ntfsput; do
		[ -e "$g" ] && [ "$g" -nt "$f" ] && return 0
	done
	return 1
}
fixture() {
	local os=$1 fmt=${2:-vhdx} f
	mkdir -p "$FIXTURES"
	f="$FIXTURES/$os.$fmt"
	(
		flock 9
		if [ ! -s "$f" ] || fixture_stale "$f"; then
			"$top_srcdir/scripts/mkfixture" --os "$os" --format "$fmt" "$f.part" >"$FIXTURES/$os.$fmt.log" 2>&1 \
				&& mv "$f.part" "$f" || { rm -f "$f.part"; cat "$FIXTURES/$os.$fmt.log" >&2; exit 1; }
		fi
	) 9>"$FIXTURES/.lock-$os-$fmt" || die "cannot build fixture $os $fmt"
	printf '%s\n' "$f"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# sigint_mid_stream ARGS...: runs "$GEN2PREP" ARGS and has strace deliver
# SIGINT to it as it enters its first sync_file_range (strace's
# inject=...:signal=INT), which it calls only while streaming the output:
# the signal lands mid-stream whatever the machine's speed or load. (It was
# a 20 s delay injected there and a poll of /proc/PID/syscall before the
# kill; a fresh-clone CI run saw the poll miss it and the convert finish.)
# Returns gen2prep's exit status. Without strace: SIGINT after 1 s.
sigint_mid_stream() {
	if ! command -v strace >/dev/null; then
		timeout --preserve-status -s INT 1 "$GEN2PREP" "$@"
		return
	fi
	strace -f -qq -o /dev/null -e trace=sync_file_range \
		-e inject=sync_file_range:signal=INT:when=1 "$GEN2PREP" "$@"
}

# variant OS FORMAT VARIANT: a cached fixture made with mkfixture --variant
# (or --bad) VARIANT, rebuilt when its generator changed; prints its path.
variant() {
	local f="$FIXTURES/$1-v-$3.$2"
	mkdir -p "$FIXTURES"
	(
		flock 9
		if [ ! -s "$f" ] || fixture_stale "$f"; then
			"$top_srcdir/scripts/mkfixture" --os "$1" --format "$2" --variant "$3" "$f.part" >"$f.log" 2>&1 &&
				mv "$f.part" "$f" || { rm -f "$f.part"; cat "$f.log" >&2; exit 1; }
		fi
	) 9>"$FIXTURES/.lock-v-$1-$2-$3" || die "cannot build fixture $1 $2 --variant $3"
	printf '%s\n' "$f"
}
