#!/usr/bin/env python3
"""sparse_encode.py IMAGE OUT [--prefix-size] [--skip-zero-runs]

Writes IMAGE in the record form of fuzz/sparse_disk.h: for each run of
non-zero 512-byte sectors, u32 sector offset (LE), u16 length, bytes; runs
of sectors that repeat one byte value become fill records (bit 15 of the
length set, sector count, the byte). Only data extents are read
(SEEK_DATA), so a sparse multi-GiB image encodes in a moment.
--prefix-size: first write u32 LE file size in 512-byte sectors (the
header fuzz_disk expects).
"""
import os, struct, sys

def extents(fd, end):
    pos = 0
    while pos < end:
        try:
            pos = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        hole = os.lseek(fd, pos, os.SEEK_HOLE)
        yield pos, hole
        pos = hole

def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    src, dst = args
    fd = os.open(src, os.O_RDONLY)
    end = os.fstat(fd).st_size
    out = bytearray()
    if '--prefix-size' in sys.argv:
        out += struct.pack('<I', (end + 511) // 512)
    pend = None  # (first sector, bytes) of literal data being gathered

    def flush():
        nonlocal pend
        if pend:
            s, b = pend
            for k in range(0, len(b), 0x7e00):
                chunk = b[k:k + 0x7e00]
                out.extend(struct.pack('<IH', s + k // 512, len(chunk)) + chunk)
        pend = None

    for a, b in extents(fd, end):
        a &= ~511
        data = os.pread(fd, b - a, a)
        sec = a // 512
        i = 0
        while i < len(data):
            blk = data[i:i + 512]
            if blk.count(blk[0]) == len(blk):
                # count the run of sectors of this one byte
                j = i
                while j < len(data) and (j - i) // 512 < 0x7fff and data[j:j + 512] == blk:
                    j += 512
                if blk[0] != 0:
                    n = (j - i) // 512
                    if n >= 2 or not pend:
                        flush()
                        out.extend(struct.pack('<IH', sec + i // 512, 0x8000 | n) + bytes([blk[0]]))
                    else:
                        pend = (pend[0], pend[1] + data[i:j])
                else:
                    flush()
                i = j
                continue
            if pend and pend[0] + len(pend[1]) // 512 == sec + i // 512:
                pend = (pend[0], pend[1] + blk)
            else:
                flush()
                pend = (sec + i // 512, bytearray(blk))
            i += 512
        flush()
    flush()
    open(dst, 'wb').write(out)

main()
