#!/usr/bin/env python3
"""vhdx_item.py locator CHILD OUT | structures CHILD OUT  (fuzz/mkcorpus)

locator: writes the Parent Locator metadata item (MS-VHDX 2.6.2.6) of the
VHDX CHILD to OUT, found through the region table (2.2.3) and the metadata
table (2.6.1) as tests/vhdx_chain.py reads them.
structures: writes a sparse copy of CHILD that keeps every byte up to the
end of its last region (headers, log, metadata, BAT) and reads as zeros
beyond, at the same size: a seed of fuzz_disk that opens as the same
differencing disk without its payload.
"""
import os, struct, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests'))
import vhdx_chain as c  # noqa: E402


def regions(f):
    f.seek(192 * 1024)   # 2.2.3: the first region table
    rt = f.read(64 * 1024)
    assert rt[:4] == b'regi', 'region table'
    return {bytes(rt[16 + 32 * i:32 + 32 * i]): struct.unpack('<QI', rt[32 + 32 * i:44 + 32 * i])
            for i in range(struct.unpack('<I', rt[8:12])[0])}


def locator(f):
    moff, mlen = regions(f)[c.META]
    f.seek(moff)
    m = f.read(mlen)
    for i in range(struct.unpack('<H', m[10:12])[0]):   # 2.6.1.1 EntryCount
        e = m[32 + 32 * i:64 + 32 * i]
        o, ln = struct.unpack('<II', e[16:24])
        if c.ITEMS.get(bytes(e[:16])) == 'locator':
            return m[o:o + ln]
    sys.exit('vhdx_item: %s has no parent locator' % f.name)


def structures(f, out):
    end = max(o + ln for o, ln in regions(f).values())
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    head = f.read(end)
    with open(out, 'wb') as o:
        o.write(head)
        o.truncate(size)


def main():
    what, child, out = sys.argv[1:4]
    with open(child, 'rb') as f:
        if what == 'locator':
            with open(out, 'wb') as o:
                o.write(locator(f))
        else:
            structures(f, out)


if __name__ == '__main__':
    main()
