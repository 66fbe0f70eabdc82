#!/bin/bash
# build-variants.sh - the library and the program compile warning-free with
# a second compiler and with the stricter defaults of newer ones:
#   clang/  CC=clang, the project's warnings as errors (--enable-werror)
#   gcc14/  CC=gcc with what GCC 14 made errors by default (implicit function
#           declarations, incompatible pointer types, int <-> pointer
#           conversion), as a release build that users run would see them,
#           plus --enable-werror.
# Out-of-tree builds under $top_builddir/build-{clang,gcc14}; only
# lib/libgen2prep.a and src/gen2prep are built (-O0: compile errors, not
# speed), and later runs are incremental.
. "$(dirname "$0")/lib.sh"
need clang gcc
[ -x "$top_srcdir/configure" ] || skip "no configure script (run autoreconf -fi)"

GCC14_ERRORS="-Werror=implicit-function-declaration -Werror=incompatible-pointer-types -Werror=int-conversion"

# variant NAME CC CFLAGS: configure (once) and build lib + program; the
# compiler's diagnostics go to $TMP/NAME.log.
variant() {
	local name=$1 cc=$2 cflags=$3 dir="$top_builddir/build-$1"
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || ! grep -qF -- "$cflags" "$dir/Makefile"; then
		(cd "$dir" && "$top_srcdir/configure" -q --enable-werror CC="$cc" CFLAGS="$cflags") \
			>"$TMP/$name.log" 2>&1 || { fail "$name: configure failed"; tail -20 "$TMP/$name.log"; return; }
	fi
	if nice make -C "$dir" -j2 lib/libgen2prep.a src/gen2prep >>"$TMP/$name.log" 2>&1; then
		ok "$name: lib/libgen2prep.a and src/gen2prep build with -Werror ($cc $cflags)"
	else
		fail "$name: build failed ($cc $cflags)"
		grep -E 'error|warning' "$TMP/$name.log" | head -30
	fi
	# the flags really reached the compiler (not dropped by configure)
	assert_match "$name: Makefile compiles with -Werror" '^WERROR_CFLAGS = -Werror' "$(grep '^WERROR_CFLAGS' "$dir/Makefile")"
	assert_match "$name: Makefile uses $cc" "^CC = $cc" "$(grep '^CC = ' "$dir/Makefile")"
	assert_eq "$name: Makefile's CFLAGS" "CFLAGS = $cflags" "$(grep '^CFLAGS = ' "$dir/Makefile")"
	check "$name: the program runs" "$dir/src/gen2prep" --version
}

# The warning set every build uses (Makefile.am WARN_CFLAGS)
warn="$(sed -n '/^WARN_CFLAGS =/,/[^\\]$/p' "$top_builddir/Makefile" | tr '\\\n\t' '   ') "
for w in -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wundef; do
	assert_match "WARN_CFLAGS has $w" " $w( |\$)" "$warn"
done

variant clang clang "-O0"
variant gcc14 gcc "-O0 $GCC14_ERRORS"

# The check: the same flags reject what they should (a unit with an implicit
# declaration or an incompatible pointer fails), so a pass above means
# something. Compiled with the variant's own CC and CFLAGS.
cat >"$TMP/implicit.c" <<'EOF'
int f(void);
int f(void) { return undeclared_function(1); }
EOF
cat >"$TMP/pointer.c" <<'EOF'
int f(long *p);
int f(long *p) { int *q = p; return *q; }
EOF
cat >"$TMP/intconv.c" <<'EOF'
char *f(int i);
char *f(int i) { return i; }
EOF
for u in implicit pointer intconv; do
	check_fails "gcc14 flags reject $u.c" gcc -std=gnu11 $GCC14_ERRORS -c "$TMP/$u.c" -o "$TMP/$u.o"
done
# and the project's warnings are errors in the check build: an unused variable fails
cat >"$TMP/unused.c" <<'EOF'
int f(void);
int f(void) { int unused; return 0; }
EOF
check_fails "clang -Werror rejects an unused variable" clang -Wall -Werror -c "$TMP/unused.c" -o "$TMP/unused.o"
