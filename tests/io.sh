#!/bin/bash
# io.sh - image I/O end to end through fixtures/g2p-stream
# (disk_open -> overlay -> writer_stream), checked with independent tools:
# every input (raw, VHDX dynamic/fixed, VHD dynamic/fixed, differencing
# VHDX and VHD children made by fixtures/mkdiff.py) x every output
# (VHDX dynamic/fixed, VHD dynamic/fixed, raw): qemu-img check, vhdiinfo,
# qemu-img compare with the expected content, input unchanged, dynamic
# outputs sparse, same bytes on a second run; --write edits, growth; and
# the refusals (truncated input, missing parent, existing output,
# unwritable directory, full file system) leaving no output and no temp.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need qemu-img vhdiinfo python3
G="$top_builddir/fixtures/g2p-stream"
[ -x "$G" ] || skip "$G not built"
cd "$TMP" || die "no tmp"

MiB=$((1024 * 1024))
VSIZE=$((192 * MiB))

# --- inputs ------------------------------------------------------------------
python3 - <<'EOF' || die "cannot make in.raw"
import random
r = random.Random(7)
size = 192 << 20
with open('in.raw', 'wb') as f:
    f.truncate(size)
    for off, data in ((0, b'\xeb\x63\x90' + bytes(r.getrandbits(8) for _ in range(509))),
                      (1000, b'HELLO'),
                      (33 << 20, r.randbytes(1 << 20)),
                      ((100 << 20) + 7, r.randbytes(70000)),
                      (size - 4, b'END!')):
        f.seek(off)
        f.write(data)
EOF
qemu-img convert -f raw -O vhdx in.raw dyn.vhdx || die "qemu-img vhdx"
qemu-img convert -f raw -O vhdx -o subformat=fixed in.raw fix.vhdx || die "qemu-img vhdx fixed"
qemu-img convert -f raw -O vpc in.raw dyn.vhd || die "qemu-img vpc"
qemu-img convert -f raw -O vpc -o subformat=fixed in.raw fix.vhd || die "qemu-img vpc fixed"
mkdir chain
qemu-img convert -f raw -O vhdx -o block_size=1M in.raw chain/parent.vhdx || die "parent vhdx"
qemu-img convert -f raw -O vpc in.raw chain/parent.vhd || die "parent vhd"
PARENT_RAW=in.raw python3 "$top_srcdir/fixtures/mkdiff.py" vhdx chain/parent.vhdx chain/child.vhdx \
	exp.child.vhdx.raw '.\parent.vhdx' || die "mkdiff vhdx"
PARENT_RAW=in.raw python3 "$top_srcdir/fixtures/mkdiff.py" vhd chain/parent.vhd chain/child.vhd \
	exp.child.vhd.raw 'C:\Hyper-V\Disks\parent.vhd' || die "mkdiff vhd"

expected_of() {
	case $1 in chain/child.vhdx) echo exp.child.vhdx.raw ;; chain/child.vhd) echo exp.child.vhd.raw ;; *) echo in.raw ;; esac
}
qfmt() { case $1 in vhdx) echo vhdx ;; vhd) echo vpc ;; raw) echo raw ;; esac; }

# the differencing fixtures really are what they claim, per libvhdi's tool
assert_match "vhdiinfo: child.vhdx is differencing" 'Disk type[^:]*: Differential' "$(vhdiinfo chain/child.vhdx)"
assert_match "vhdiinfo: child.vhd is differencing" 'Disk type[^:]*: Differential' "$(vhdiinfo chain/child.vhd)"

# --- every input x every output ------------------------------------------------
for in in in.raw dyn.vhdx fix.vhdx dyn.vhd fix.vhd chain/child.vhdx chain/child.vhd; do
	before=$(sha "$in")
	exp=$(expected_of "$in")
	info=$("$G" --info "$in")
	case $in in
	*.vhdx) assert_match "$in detected as vhdx" '^format=vhdx' "$info" ;;
	*.vhd) assert_match "$in detected as vhd" '^format=vhd$' "$(echo "$info" | head -1)" ;;
	*) assert_match "$in detected as raw" '^format=raw' "$info" ;;
	esac
	case $in in chain/*) assert_match "$in: parent resolved in the child's folder (its absolute path)" 'parent=/.*/chain/parent\.vhdx?$' "$info" ;; esac
	for out in vhdx vhdx-fixed vhd vhd-fixed raw; do
		fmt=${out%-fixed}
		opt=()
		[ "$out" != "$fmt" ] && opt=(-o subformat=fixed)
		o="out.$(basename "$in").$out.$fmt"
		if ! "$G" -O "$fmt" "${opt[@]}" "$in" "$o" 2>"$o.err"; then
			fail "$in -> $out: g2p-stream failed: $(cat "$o.err")"
			continue
		fi
		ok "$in -> $out written"
		if [ "$fmt" = vhdx ]; then
			check "$in -> $out: qemu-img check clean" qemu-img check -q -f vhdx "$o"
		fi
		if [ "$fmt" != raw ]; then
			vinfo=$(vhdiinfo "$o" 2>&1)
			assert_match "$in -> $out: vhdiinfo reads it" 'Media size' "$vinfo"
			want=$( [ "$out" = "$fmt" ] && echo Dynamic || echo Fixed )
			assert_match "$in -> $out: vhdiinfo disk type" "Disk type[^:]*: $want" "$vinfo"
		fi
		check "$in -> $out: same content as expected (qemu-img compare)" \
			qemu-img compare -q -f raw -F "$(qfmt "$fmt")" "$exp" "$o"
		if [ "$out" = vhdx ] || [ "$out" = vhd ]; then
			asize=$(stat -c %s "$o")
			if [ "$asize" -lt "$VSIZE" ]; then ok "$in -> $out: dynamic output smaller ($asize) than the virtual size"
			else fail "$in -> $out: dynamic output not sparse: $asize bytes"; fi
		fi
	done
	assert_eq "$in unchanged" "$before" "$(sha "$in")"
done

# a dynamic VHD and VHDX read by libvhdi's FUSE-free reader equal the input
# byte for byte (vhdiinfo above only opened them): qemu-img compare covers
# qemu's reading, g2p-stream --info covers ours
check "our reader agrees on our VHDX" "$G" -O raw out.in.raw.vhdx.vhdx back.raw
check "round trip VHDX -> raw == input" cmp in.raw back.raw
check "our reader agrees on our VHD" "$G" -O raw out.in.raw.vhd.vhd back2.raw
check "round trip VHD -> raw == input" cmp in.raw back2.raw

# --- determinism ------------------------------------------------------------------
for fmt in vhdx vhd raw; do
	"$G" -O "$fmt" dyn.vhdx det1."$fmt" && "$G" -O "$fmt" dyn.vhdx det2."$fmt"
	assert_eq "deterministic $fmt output" "$(sha det1."$fmt")" "$(sha det2."$fmt")"
done

# --- edits through the overlay and growth ----------------------------------------
cp in.raw exp.edit.raw
printf '\xde\xad\xbe\xef' | dd of=exp.edit.raw bs=1 seek=4094 conv=notrunc status=none
printf '\x01\x02' | dd of=exp.edit.raw bs=1 seek=$((150 * MiB + 3)) conv=notrunc status=none
dd if=/dev/zero of=exp.edit.raw bs=1 seek=$((33 * MiB + 100)) count=5000 conv=notrunc status=none
truncate -s $((256 * MiB)) exp.edit.raw
printf 'TAIL' | dd of=exp.edit.raw bs=1 seek=$((256 * MiB - 4)) conv=notrunc status=none
for fmt in vhdx vhd raw; do
	if "$G" -O "$fmt" --grow 256M --write 4094:deadbeef --write $((150 * MiB + 3)):0102 \
		--zero $((33 * MiB + 100)):5000 --write $((256 * MiB - 4)):5441494c dyn.vhd edit."$fmt" 2>edit.err; then
		check "edits + growth in $fmt (qemu-img compare)" \
			qemu-img compare -q -f raw -F "$(qfmt "$fmt")" exp.edit.raw edit."$fmt"
		vs=$(qemu-img info -f "$(qfmt "$fmt")" --output=json edit."$fmt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
		assert_eq "grown $fmt has the new virtual size" $((256 * MiB)) "$vs"
	else
		fail "edits in $fmt: $(cat edit.err)"
	fi
done
assert_exit "write past the end refused" 1 "$G" -O raw --write $((VSIZE - 1)):0102 in.raw bad.raw
assert_match "write past the end: E_INTERNAL" 'E_INTERNAL' "$ERR"
[ ! -e bad.raw ] && ok "no output after a refused edit" || fail "bad.raw exists"

# --- a 1 TiB sparse disk: time grows with the data, not the virtual size ----------
if truncate -s 1T huge.in 2>/dev/null; then
	A=$((5 * 1024 * MiB + 12345)) Z=$((1024 * 1024 * MiB - 1))
	printf 'A' | dd of=huge.in bs=1 seek=$A conv=notrunc status=none
	printf 'Z' | dd of=huge.in bs=1 seek=$Z conv=notrunc status=none
	for fmt in vhdx vhd raw; do
		start=$(date +%s)
		if "$G" -O "$fmt" huge.in big."$fmt" 2>big.err; then
			secs=$(($(date +%s) - start))
			[ "$secs" -le 30 ] && ok "1 TiB sparse -> $fmt in ${secs}s" || fail "1 TiB sparse -> $fmt took ${secs}s"
			kb=$(du -k big."$fmt" | cut -f1)
			[ "$kb" -lt 200000 ] && ok "1 TiB sparse -> $fmt uses ${kb} KiB" || fail "1 TiB -> $fmt uses ${kb} KiB"
		else
			fail "1 TiB sparse -> $fmt: $(cat big.err)"
		fi
	done
	check "1 TiB VHDX: qemu-img check clean" qemu-img check -q -f vhdx big.vhdx
	if command -v qemu-io >/dev/null; then
		for f in vhdx:big.vhdx vpc:big.vhd raw:big.raw; do
			check "1 TiB ${f%%:*}: qemu-io reads the data bytes and zeros around them" qemu-io -f "${f%%:*}" \
				-c "read -P 0x41 $A 1" -c "read -P 0x5a $Z 1" -c "read -P 0 $((A - 65536)) 65536" \
				-c "read -P 0 $((A + 1)) 65535" -c "read -P 0 $((4096 * MiB)) 1M" "${f#*:}"
		done
	fi
	# the BAT, read by python from the spec (MS-VHDX 2.5): ChunkRatio 128 for
	# 32 MiB blocks and 512-byte sectors, so payload block b is entry
	# b + b // 128; exactly the two data blocks are present (state 6)
	check "1 TiB VHDX: BAT entries where MS-VHDX 2.5 puts them" python3 - big.vhdx $A $Z <<'EOF'
import struct, sys
path, a, z = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = open(path, 'rb')
def rd(off, n):
    d.seek(off); return d.read(n)
rt = rd(192 << 10, 65536)
assert rt[:4] == b'regi'
bat_off = bat_len = None
for i in range(struct.unpack('<I', rt[8:12])[0]):
    e = rt[16 + 32 * i:48 + 32 * i]
    if e[:4] == bytes.fromhex('6677c22d'):
        bat_off, bat_len = struct.unpack('<QI', e[16:28])
bs, ratio = 32 << 20, 128
nblocks = (1 << 40) // bs
total = nblocks + (nblocks - 1) // ratio
assert bat_len >= total * 8 and bat_len % (1 << 20) == 0, (bat_len, total)
bat = rd(bat_off, total * 8)
present = {i for i in range(total) if struct.unpack_from('<Q', bat, 8 * i)[0] & 7}
want = {b + b // ratio for b in (a // bs, z // bs)}
assert present == want, (sorted(present), sorted(want))
for i in want:
    e = struct.unpack_from('<Q', bat, 8 * i)[0]
    assert e & 7 == 6 and (e >> 20) << 20 >= (4 << 20), hex(e)
EOF
	rm -f big.* huge.in
else
	echo "note: this file system cannot hold a 1 TiB sparse file: large-disk checks not run"
fi

# --- refusals ------------------------------------------------------------------
no_leftovers() {   # DIR NAME: neither NAME nor NAME.gen2prep-* in DIR
	if [ -e "$1/$2" ] || compgen -G "$1/$2.gen2prep-*" >/dev/null; then
		fail "$3: leftovers: $(ls "$1")"
	else ok "$3: no output, no temp file"; fi
}
head -c 1000 /dev/zero >odd.raw
printf 'x' >>odd.raw
assert_exit "VHDX of a size that is no multiple of 512 refused" 1 "$G" -O vhdx odd.raw odd.vhdx
assert_match "odd size: E_UNSUPPORTED, says why" "E_UNSUPPORTED.*multiple of 512" "$ERR"
assert_exit "VHD of a size that is no multiple of 512 refused" 1 "$G" -O vhd odd.raw odd.vhd
assert_match "odd size VHD: E_UNSUPPORTED" "E_UNSUPPORTED.*multiple of 512" "$ERR"
check "raw of any size is fine" "$G" -O raw odd.raw odd.out.raw
check "odd raw copied exactly" cmp odd.raw odd.out.raw
assert_exit "VHDX block size 3 MiB refused" 1 "$G" -O vhdx -o block_size=3M in.raw bs.vhdx
assert_match "bad block size: E_USAGE" "E_USAGE.*block size" "$ERR"
no_leftovers . bs.vhdx "bad block size"
check "VHDX with 1 MiB blocks" "$G" -O vhdx -o block_size=1M in.raw bs1.vhdx
check "VHDX with 1 MiB blocks: qemu-img check" qemu-img check -q -f vhdx bs1.vhdx
check "VHDX with 1 MiB blocks: same content" qemu-img compare -q -f raw -F vhdx in.raw bs1.vhdx
check "VHD with 512 KiB blocks" "$G" -O vhd -o block_size=512K in.raw bs.vhd
check "VHD with 512 KiB blocks: same content" qemu-img compare -q -f raw -F vpc in.raw bs.vhd
dsize=$(stat -c %s dyn.vhdx)
head -c $((dsize - MiB)) dyn.vhdx >trunc.vhdx
assert_exit "truncated VHDX refused" 1 "$G" -O vhdx trunc.vhdx t.vhdx
assert_match "truncated VHDX: E_FORMAT naming the file" "E_FORMAT.*trunc\.vhdx" "$ERR"
no_leftovers . t.vhdx "truncated VHDX"
head -c 200000 dyn.vhdx >stub.vhdx
assert_exit "VHDX cut inside its headers refused" 1 "$G" -O raw stub.vhdx t.raw
assert_match "cut VHDX: E_FORMAT naming the file" "E_FORMAT.*stub\.vhdx" "$ERR"
no_leftovers . t.raw "cut VHDX"
fsize=$(stat -c %s fix.vhd)
head -c $((fsize - 4096)) fix.vhd >trunc.vhd
tail -c 512 fix.vhd >>trunc.vhd
assert_exit "truncated fixed VHD refused" 1 "$G" -O raw trunc.vhd t.raw
assert_match "truncated VHD: E_FORMAT" "E_FORMAT" "$ERR"

mkdir lonely
cp chain/child.vhdx lonely/
assert_exit "missing differencing parent refused" 1 "$G" -O vhdx lonely/child.vhdx t.vhdx
assert_match "missing parent: names parent and child" "E_NOTFOUND.*lonely/child\.vhdx.*parent\.vhdx.*nothing at '[^']*/lonely/parent\.vhdx'" "$ERR"
no_leftovers . t.vhdx "missing parent"

echo keep >exists.vhdx
assert_exit "existing output refused" 1 "$G" -O vhdx in.raw exists.vhdx
assert_match "existing output: E_EXISTS" "E_EXISTS" "$ERR"
assert_eq "existing output untouched" keep "$(cat exists.vhdx)"
compgen -G "exists.vhdx.gen2prep-*" >/dev/null && fail "temp left beside exists.vhdx" || ok "no temp beside exists.vhdx"
check "--overwrite replaces it" "$G" -O vhdx --overwrite in.raw exists.vhdx
check "replaced output is right" qemu-img compare -q -f raw -F vhdx in.raw exists.vhdx

assert_exit "missing output directory refused" 1 "$G" -O raw in.raw nodir/out.raw
assert_match "missing directory: says why" "E_OUTPUT.*cannot create the output in 'nodir'" "$ERR"

# interrupted: SIGINT halfway through leaves neither OUT nor the temp file
mkdir sig
G2P_STREAM_SLOW=200 "$G" -O vhd in.raw sig/int.vhd 2>sig.err &
pid=$!
# the output is written into a file without a name (O_TMPFILE, writer_out.c)
nameless() { ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$PWD/sig/#.*(deleted)"; }
for _ in $(seq 50); do nameless && break; sleep 0.1; done
nameless && ok "output open without a name in OUT's folder while writing" || fail "no nameless output seen while writing"
assert_eq "nothing named in OUT's folder while writing" "" "$(ls -A sig)"
kill -INT "$pid"
wait "$pid"; rc=$?
assert_eq "SIGINT exits 130" 130 "$rc"
no_leftovers sig int.vhd "SIGINT"

# our own structural checks: corrupt headers, a log that needs replay
python3 - <<'EOF' || die "cannot make corrupt VHDX copies"
import struct, sys
sys.path.insert(0, __import__('os').environ['top_srcdir'] + '/fixtures')
from mkdiff import crc32c
d = bytearray(open('dyn.vhdx', 'rb').read())
bad = bytearray(d)
for off in (64 << 10, 128 << 10):
    bad[off + 100] ^= 0xff               # breaks the CRC-32C of both headers
open('badcrc.vhdx', 'wb').write(bad)
log = bytearray(d)
for off in (64 << 10, 128 << 10):
    h = log[off:off + 4096]
    h[48:64] = b'\x11' * 16                # LogGuid set: a log to replay
    h[4:8] = b'\0\0\0\0'
    struct.pack_into('<I', h, 4, crc32c(bytes(h)))
    log[off:off + 4096] = h
open('dirtylog.vhdx', 'wb').write(log)
EOF
assert_exit "VHDX with bad header CRCs refused" 1 "$G" -O raw badcrc.vhdx t.raw
assert_match "bad CRCs: E_FORMAT, says why" "E_FORMAT.*badcrc\.vhdx.*no valid VHDX header" "$ERR"
assert_exit "VHDX with a log to replay refused" 1 "$G" -O raw dirtylog.vhdx t.raw
assert_match "log to replay: E_UNSUPPORTED, says why" "E_UNSUPPORTED.*dirtylog\.vhdx.*log is not empty" "$ERR"
no_leftovers . t.raw "corrupt VHDX"

if [ "$(id -u)" = 0 ] && mkdir mnt && mount -t tmpfs -o size=512k tmpfs mnt 2>/dev/null; then
	assert_exit "full file system refused" 1 "$G" -O raw in.raw mnt/full.raw
	assert_match "full file system: E_NOSPACE" "E_NOSPACE.*full\.raw" "$ERR"
	no_leftovers mnt full.raw "full file system"
	assert_exit "full file system (vhdx) refused" 1 "$G" -O vhdx in.raw mnt/full.vhdx
	assert_match "full file system (vhdx): E_NOSPACE" "E_NOSPACE" "$ERR"
	no_leftovers mnt full.vhdx "full file system (vhdx)"
	mount -o remount,ro mnt
	assert_exit "read-only directory refused" 1 "$G" -O raw in.raw mnt/ro.raw
	assert_match "read-only: says why" "cannot create the output in 'mnt'" "$ERR"
	umount mnt
else
	echo "note: cannot mount a tmpfs here (not root or no mount permission): full/read-only file system checks not run"
fi
