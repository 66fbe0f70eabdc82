#!/bin/bash
# vhd-bitmap.sh - dynamic VHD blocks are read through their sector bitmaps
# (VHD spec, "Block Allocation Table and Data Blocks": a set bit is a sector
# with data, a clear one reads as zeros). A block whose bits are all set is
# copied straight from the file (lib/vhdmeta.c vhd_block_full: pread and
# copy_file_range instead of libvhdi); a block with clear bits still reads
# zeros there. Expected bytes are computed here from the spec, not by a
# reader under test.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need qemu-img python3 strace
G="$top_builddir/fixtures/g2p-stream"
[ -x "$G" ] || skip "$G not built"
cd "$TMP" || die "no tmp"

# 16 MiB of random data: 8 blocks of 2 MiB, all allocated by qemu-img
python3 -c "
import random
open('in.raw', 'wb').write(random.Random(12).randbytes(16 << 20))" || die "in.raw"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on in.raw full.vhd || die "qemu-img vpc"

# part.vhd: block 1's bitmap says sectors 0, 8-15 and 19 were never
# written (bytes 0x7f, 0x00, 0xef; the data area still holds non-zero
# bytes there); exp.raw is what the spec says it reads as. libvhdi 20210425
# reads sector 19 (a clear bit after set ones in its byte) as written
# (doc/notes-speed.md): gen2prep reads the bitmap itself.
python3 - <<'PY' || die "cannot edit the bitmap"
import shutil, struct
shutil.copy('full.vhd', 'part.vhd')
f = open('part.vhd', 'r+b')
footer = f.read(512)
assert footer[:8] == b'conectix'
dyn = struct.unpack('>Q', footer[16:24])[0]
f.seek(dyn); h = f.read(1024)
assert h[:8] == b'cxsparse'
bat, bs = struct.unpack('>Q', h[16:24])[0], struct.unpack('>I', h[32:36])[0]
assert bs == 2 << 20
f.seek(bat); entries = struct.unpack('>8I', f.read(32))
assert all(e != 0xffffffff for e in entries), entries
bitmap_at = entries[1] * 512
f.seek(bitmap_at); bm = bytearray(f.read(512))
assert all(b == 0xff for b in bm), 'qemu-img writes full bitmaps'
bm[0], bm[1], bm[2] = 0x7f, 0x00, 0xef
f.seek(bitmap_at); f.write(bm); f.close()
raw = bytearray(open('in.raw', 'rb').read())
base = 1 * bs
for s in [0] + list(range(8, 16)) + [16 + 3]:
    raw[base + s * 512: base + (s + 1) * 512] = bytes(512)
open('exp.raw', 'wb').write(raw)
PY

check "full bitmaps: raw output equals the input" "$G" -O raw full.vhd full.out.raw
check "full bitmaps: bytes" cmp in.raw full.out.raw
check "partial bitmap: raw output written" "$G" -O raw part.vhd part.out.raw
check "partial bitmap: clear sectors (0, 8-15, 19) read as zeros, the rest as stored" cmp exp.raw part.out.raw
check "partial bitmap -> vhdx" "$G" -O vhdx part.vhd part.out.vhdx
check "partial bitmap -> vhdx: qemu-img reads the expected bytes" qemu-img compare -q -f raw -F vhdx exp.raw part.out.vhdx

# the full blocks go file to file: copy_file_range, not read + write
strace -f -qq -e trace=copy_file_range -o full.trace "$G" -O vhdx full.vhd full.out.vhdx >/dev/null 2>&1
n=$(grep -c 'copy_file_range(.*= [1-9]' full.trace || true)
if [ "${n:-0}" -ge 1 ]; then ok "full bitmaps: copied file to file ($n copy_file_range calls)"
else fail "full bitmaps: no copy_file_range (the block was not mapped)"; fi
check "full bitmaps -> vhdx: qemu-img compare" qemu-img compare -q -f raw -F vhdx in.raw full.out.vhdx
# the stored bytes of the clear sectors are never copied file to file
# (the set runs of block 1 may be); the bytes above already say they are
# not in the output either
strace -f -qq -e trace=copy_file_range -o part.trace "$G" -O vhdx part.vhd part.out2.vhdx >/dev/null 2>&1
check "partial bitmap: output the same on a second run" cmp part.out.vhdx part.out2.vhdx
python3 - part.vhd part.trace <<'PY' && ok "partial bitmap: clear sectors not copied file to file" || fail "partial bitmap: clear sectors copied file to file"
import re, struct, sys
f = open(sys.argv[1], 'rb'); footer = f.read(512)
dyn = struct.unpack('>Q', footer[16:24])[0]; f.seek(dyn); h = f.read(1024)
bat = struct.unpack('>Q', h[16:24])[0]; f.seek(bat)
data = struct.unpack('>I', f.read(8)[4:8])[0] * 512 + 512
clear = [data + s * 512 for s in [0] + list(range(8, 16)) + [19]]
for m in re.finditer(r'copy_file_range\(\d+, \[(\d+)\], \d+, \[\d+\], (\d+)', open(sys.argv[2]).read()):
    s, n = int(m.group(1)), int(m.group(2))
    if any(s < c + 512 and s + n > c for c in clear):
        sys.exit(1)
PY

# a bitmap the file cuts short is refused as a truncated image, not read
python3 - <<'PY' || die "cannot truncate"
import shutil, os, struct
shutil.copy('full.vhd', 'trunc.vhd')
size = os.path.getsize('trunc.vhd')
os.truncate('trunc.vhd', size - 512 - (1 << 20))   # half of the last block, and the footer
PY
assert_exit "truncated dynamic VHD refused" 1 "$G" -O raw trunc.vhd trunc.out.raw
assert_eq "truncated dynamic VHD: no output" "" "$(ls trunc.out.raw* 2>/dev/null)"
