#!/bin/bash
# hive.sh - fixtures/mkhive output (hive_new + setters through hivex) read
# back by independent readers: hivexget (libhivex-bin), python3-hivex, and
# hivexsh, with every value type mkhive accepts.
. "$(dirname "$0")/lib.sh"
need hivexget python3
MKHIVE=$top_builddir/fixtures/mkhive
[ -x "$MKHIVE" ] || skip "fixtures/mkhive not built"

cat > "$TMP/spec.reg" <<'REG'
Windows Registry Editor Version 5.00

; comment
[HKEY_LOCAL_MACHINE\SYSTEM\Select]
"Current"=dword:00000001

[ControlSet001\Services\Ntfs]
"Start"=dword:00000000
"ImagePath"="system32\\drivers\\ntfs.sys"
"Quote"="say \"hi\""
@="default text"

[ControlSet001\Control]
"Bin"=hex:de,ad,be,ef
"Exp"=hex(2):25,00,53,00,79,00,73,00,74,00,65,00,6d,00,52,00,6f,00,6f,00,74,00,\
  25,00,00,00
"Multi"=hex(7):61,00,00,00,62,00,63,00,00,00,00,00
"Q"=hex(b):88,77,66,55,44,33,22,11
"Gone"=dword:1
"Gone"=-
REG
check "mkhive builds a hive" "$MKHIVE" SYSTEM "$TMP/h" < "$TMP/spec.reg"
[ -s "$TMP/h" ] || die "no hive written"

assert_eq "hivexget dword" "1" "$(hivexget "$TMP/h" '\Select' Current)"
assert_eq "hivexget dword 0" "0" "$(hivexget "$TMP/h" '\ControlSet001\Services\Ntfs' Start)"
assert_eq "hivexget string with escapes" 'system32\drivers\ntfs.sys' "$(hivexget "$TMP/h" '\ControlSet001\Services\Ntfs' ImagePath)"
assert_eq "hivexget quoted" 'say "hi"' "$(hivexget "$TMP/h" '\ControlSet001\Services\Ntfs' Quote)"
assert_eq "hivexget default value" 'default text' "$(hivexget "$TMP/h" '\ControlSet001\Services\Ntfs' @)"
assert_eq "hivexget expand_sz" '%SystemRoot%' "$(hivexget "$TMP/h" '\ControlSet001\Control' Exp)"
assert_eq "hivexget multi_sz" "$(printf 'a\nbc')" "$(hivexget "$TMP/h" '\ControlSet001\Control' Multi)"
assert_eq "hivexget qword" "$((0x1122334455667788))" "$(hivexget "$TMP/h" '\ControlSet001\Control' Q)"
assert_eq "deleted value is gone" "" "$(hivexget "$TMP/h" '\ControlSet001\Control' Gone 2>/dev/null)"

# python3-hivex: exact types and bytes, root name, header
cat > "$TMP/check.py" <<'PY'
import sys, hivex
h = hivex.Hivex(sys.argv[1])
r = h.root()
assert h.node_name(r) == "SYSTEM", h.node_name(r)
def node(path):
    n = r
    for p in path.split("\\"):
        n = h.node_get_child(n, p)
        assert n, path
    return n
c = node("ControlSet001\\Control")
vals = {h.value_key(v): h.value_value(v) for v in h.node_values(c)}
assert vals["Bin"] == (3, b"\xde\xad\xbe\xef"), vals["Bin"]
assert vals["Exp"][0] == 2 and vals["Exp"][1].decode("utf-16le") == "%SystemRoot%\0"
assert vals["Multi"] == (7, "a\0bc\0\0".encode("utf-16le")), vals["Multi"]
assert vals["Q"] == (11, bytes.fromhex("8877665544332211"))
assert "Gone" not in vals
n = node("ControlSet001\\Services\\Ntfs")
t, d = h.value_value(h.node_get_value(n, "Start"))
assert (t, d) == (4, b"\0\0\0\0")
t, d = h.value_value(h.node_get_value(n, "ImagePath"))
assert t == 1 and d == "system32\\drivers\\ntfs.sys\0".encode("utf-16le"), d
print("python-hivex ok")
PY
# python3-hivex is Debian's: use the system interpreter (a pyenv python3
# earlier in PATH does not see it).
PYH=
for p in /usr/bin/python3 python3; do "$p" -c 'import hivex' 2>/dev/null && { PYH=$p; break; }; done
[ -n "$PYH" ] || skip "python3-hivex not importable (scripts/install-deps installs it)"
check "python3-hivex reads types and bytes" "$PYH" "$TMP/check.py" "$TMP/h"

# Base block read by python independently: clean sequence numbers, checksum
check "base block: regf, seq equal, checksum" python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read()
assert d[:4] == b"regf"
s1, s2 = struct.unpack_from("<II", d, 4)
assert s1 == s2, (s1, s2)
x = 0
for i in range(0, 508, 4): x ^= struct.unpack_from("<I", d, i)[0]
assert x == struct.unpack_from("<I", d, 508)[0]
assert struct.unpack_from("<I", d, 40)[0] + 4096 <= len(d)
' "$TMP/h"

if command -v hivexsh >/dev/null; then
	out=$(printf 'cd \\ControlSet001\\Services\\Ntfs\nlsval\n' | hivexsh "$TMP/h" 2>&1)
	assert_match "hivexsh lists values" '"Start"=dword:00000000' "$out"
fi

# Same spec, same bytes (deterministic).
"$MKHIVE" SYSTEM "$TMP/h2" < "$TMP/spec.reg"
assert_eq "deterministic output" "$(sha "$TMP/h")" "$(sha "$TMP/h2")"

# Errors: bad syntax exits 1 with the line number, leaves no output.
printf '[K]\n"x"=dword:zz\n' > "$TMP/bad.reg"
assert_exit "bad dword refused" 1 "$MKHIVE" R "$TMP/bad" < "$TMP/bad.reg"
assert_match "error names the line" 'line 2' "$ERR"
[ ! -e "$TMP/bad" ] && ok "no output on error" || fail "output left on error"
printf '"x"=dword:1\n' > "$TMP/bad2.reg"
assert_exit "value before key refused" 1 "$MKHIVE" R "$TMP/bad2" < "$TMP/bad2.reg"
