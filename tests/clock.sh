#!/bin/bash
# clock.sh - the output does not depend on the clock. libntfs-3g stamps what
# it touches with clock_gettime(CLOCK_REALTIME) and orders a file's two
# $FILE_NAME attributes (8.3 and long name) by their values, timestamps
# included; gen2prep pins every time to SOURCE_DATE_EPOCH and sorts the names
# again (lib/ntfs.c, sort_file_names). Here the clock is frozen
# (fixtures/clockshim.so) at instants chosen to break that, and each output
# must equal a normal run's byte for byte. The first instant is the one a
# CI run hit by chance (about 1 run in 500): its NTFS time is the pinned
# time minus 256, equal low byte, smaller second byte, so libntfs-3g put
# the long name of winload-gen2.efi first.
. "$(dirname "$0")/lib.sh"
need ntfscat ntfsinfo sfdisk
SHIM=$top_builddir/fixtures/clockshim.so
[ -e "$SHIM" ] || die "$SHIM not built (make check builds it)"

IN=$(fixture win7-sp1 vhdx)
E=$SOURCE_DATE_EPOCH
INSTANTS="$((E - 1)).999974400 $E.000025600 0.0 2147483647.999999900 1764500000.123456700"

frozen() { # INSTANT COMMAND...: COMMAND with CLOCK_REALTIME frozen at INSTANT
	local at=$1; shift
	CLOCKSHIM_REALTIME=$at LD_PRELOAD=$SHIM \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}
# the shim works: date(1) reads the frozen clock
assert_eq "the shim freezes CLOCK_REALTIME" "1970-01-01T00:00:00" "$(frozen 0.0 date -u +%Y-%m-%dT%H:%M:%S)"

assert_exit "convert (the clock running)" 0 "$GEN2PREP" convert -q "$IN" "$TMP/ref.raw"
for at in $INSTANTS; do
	rm -f "$TMP/t.raw"
	assert_exit "convert, clock frozen at $at" 0 frozen "$at" "$GEN2PREP" convert -q "$IN" "$TMP/t.raw"
	check "clock at $at: same bytes as the normal run" cmp "$TMP/ref.raw" "$TMP/t.raw"
done

# the bytes are also the right ones: the record is what Windows writes
# (8.3 name first) and both names find the file (index lookups by name)
S=$(sfdisk -d "$TMP/t.raw" | sed -n 's/^.*raw2 : start= *\([0-9]*\), size= *\([0-9]*\),.*/\1 \2/p')
set -- $S
dd if="$TMP/t.raw" of="$TMP/win.ntfs" bs=512 skip="$1" count="$2" conv=sparse status=none
NS=$(ntfsinfo -v -F /Windows/System32/winload-gen2.efi "$TMP/win.ntfs" 2>/dev/null | sed -n 's/^[[:space:]]*Namespace:[[:space:]]*//p' | tr '\n' ' ')
assert_eq "winload-gen2.efi: \$FILE_NAME order DOS, then Win32" "DOS Win32 " "$NS"
check "ntfscat finds Windows/System32/winload-gen2.efi" sh -c "ntfscat '$TMP/win.ntfs' Windows/System32/winload-gen2.efi | cmp -s - /dev/null && exit 1 || exit 0"
check "ntfscat finds it by its 8.3 name WINLOA~1.EFI" sh -c "ntfscat '$TMP/win.ntfs' Windows/System32/WINLOA~1.EFI | head -c 2 | grep -q MZ"

# a VHDX output, same rule
assert_exit "convert to VHDX (the clock running)" 0 "$GEN2PREP" convert -q "$IN" "$TMP/ref.vhdx"
assert_exit "convert to VHDX, clock frozen" 0 frozen "$((E - 1)).999974400" "$GEN2PREP" convert -q "$IN" "$TMP/t.vhdx"
check "VHDX: same bytes under a frozen clock" cmp "$TMP/ref.vhdx" "$TMP/t.vhdx"
