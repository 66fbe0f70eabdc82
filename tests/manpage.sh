#!/bin/bash
# manpage.sh - the man page documents what the program accepts (issue 13):
# for each command, the long options of its getopt table (src/cmd_*.c) and
# the letters of its short-option string equal the options its man page
# section (.SS COMMAND) names, both ways; --version and `help COMMAND` are
# there; every blocker code the code can raise (lib/windows.c blocker_id,
# add_blocker(...) in lib/*.c) is an entry of BLOCKERS, and every entry
# there is a code the program has (add_blocker and plan_add_blocker). Each command's --help lists its options.
. "$(dirname "$0")/lib.sh"
MAN=$top_srcdir/man/gen2prep.1
SRC=$top_srcdir/src
[ -r "$MAN" ] || die "no man page"

# section NAME: the roff text of ".SS NAME ..." up to the next .SS/.SH
section() { awk -v n="$1" '$1 == ".SS" {on = ($2 == n); next} /^\.SH/ {on = 0} on' "$MAN"; }
# long options of a command's getopt table, one per line, sorted
code_long() {
	grep -o '{ *"[a-z0-9-]*", *\(no\|required\|optional\)_argument' "$SRC/cmd_$1.c" |
		sed 's/{ *"\([^"]*\)".*/\1/' | grep -vx help | sort -u
}
# the letters of its short options (cli_getopt("cmd", argc, argv, "O:o:h", ...))
code_short() {
	grep -o "cli_getopt(\"$1\", argc, argv, \"[^\"]*\"" "$SRC/cmd_$1.c" | sed 's/.*"\([^"]*\)"$/\1/' |
		tr -d ':' | fold -w1 | grep -vx h | sort -u
}
# the options the man page documents for a command: those on its macro lines
# that start with an option (.B/.BR/.BI \-\-name ...), not prose mentions
man_long() {
	section "$1" | grep '^\.B[RI]* \\-' | grep -o '\\-\\-[a-z0-9][a-z0-9\\-]*' | sed 's/\\//g; s/^--//' |
		sed 's/-$//' | grep -vx help | sort -u
}
man_short() { section "$1" | grep -o '^\.B[RI]* \\-[A-Za-z]\b' | sed 's/.*-//' | grep -vx h | sort -u; }

for cmd in inspect convert verify patch bcd; do
	test -n "$(section "$cmd")" || { fail "man page has a section .SS $cmd"; continue; }
	c=$(code_long "$cmd")
	test -n "$c" || fail "$cmd: long options found in src/cmd_$cmd.c"
	diff <(echo "$c") <(man_long "$cmd") >"$TMP/d-$cmd" && ok "$cmd: the man page names exactly the long options of the code" ||
		{ fail "$cmd: long options differ (< code, > man page)"; sed 's/^/    /' "$TMP/d-$cmd"; }
	diff <(code_short "$cmd") <(man_short "$cmd") >"$TMP/s-$cmd" && ok "$cmd: the man page names exactly the short options of the code" ||
		{ fail "$cmd: short options differ (< code, > man page)"; sed 's/^/    /' "$TMP/s-$cmd"; }
	"$GEN2PREP" "$cmd" --help >"$TMP/help-$cmd" 2>&1
	missing=$(for o in $c; do grep -q -- "--$o\b" "$TMP/help-$cmd" || echo "--$o"; done)
	assert_eq "$cmd --help lists every long option" "" "$missing"
	check "help $cmd = $cmd --help" cmp "$TMP/help-$cmd" <("$GEN2PREP" help "$cmd" 2>&1)
done

grep -q '^\.B gen2prep \\-\\-version' "$MAN" && ok "SYNOPSIS: --version" || fail "SYNOPSIS names --version"
grep -q '^\.B gen2prep help' "$MAN" && ok "SYNOPSIS: help COMMAND" || fail "SYNOPSIS names help COMMAND"
check "--help and -h are documented" grep -q '\\-\\-help' "$MAN"

# Blocker codes: the table in lib/windows.c and every add_blocker(p, "code", ...)
{
	sed -n '/blocker_id\[BLK_COUNT\] = {/,/};/p' "$top_srcdir/lib/windows.c" | grep -o '"[a-z0-9-]*"' | tr -d '"'
	grep -ho 'add_blocker([^,"]*, "[a-z0-9-]*"' "$top_srcdir"/lib/*.c | sed 's/.*"\(.*\)"/\1/'
} | sort -u >"$TMP/blockers.code"
test "$(wc -l <"$TMP/blockers.code")" -ge 10 && ok "blocker codes found in the code" || fail "blocker codes found in the code"
sed -n '/^\.SH BLOCKERS/,/^\.PP/p' "$MAN" | awk 'prev == ".TP" && $1 == ".B" {print $2} {prev = $0}' | sort -u >"$TMP/blockers.man"
diff "$TMP/blockers.code" "$TMP/blockers.man" >"$TMP/blockers.diff" && ok "BLOCKERS lists exactly the codes of the code" ||
	{ fail "blocker codes differ (< code, > man page)"; sed 's/^/    /' "$TMP/blockers.diff"; }
