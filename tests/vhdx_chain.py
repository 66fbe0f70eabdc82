#!/usr/bin/env python3
"""vhdx_chain.py - an independent reading of a differencing VHDX child,
written from [MS-VHDX] alone (no code shared with gen2prep), for
tests/differencing.sh.

  vhdx_chain.py info CHILD             key=value lines: what the child says
  vhdx_chain.py parent VHDX            data_write, page83, size of any VHDX
  vhdx_chain.py merge CHILD PARENT_RAW OUT_RAW
        OUT_RAW = PARENT_RAW with every sector the child holds applied
        (PARENT_RAW '-': OUT_RAW is already a copy of the parent, changed
        in place, for big sparse disks):
        2.5.1.1 FULLY_PRESENT blocks whole, PARTIALLY_PRESENT blocks per
        the chunk's sector bitmap (2.4, bit n LSB first = sector n),
        everything else from the parent. The copy is sparse (truncate, then
        only the child's sectors written over a reflink/copy of the parent).

Checks on the way (assertions, exit 1): signatures, header and region table
CRC-32C (2.2.2, 2.2.3), HasParent set (2.6.2.1), parent locator type VHDX
with parent_linkage and a path (2.6.2.6.3), the BAT sized for a
differencing file (2.5), reserved BAT bits zero (2.5.1), every
PARTIALLY_PRESENT block's chunk has SB_BLOCK_PRESENT (2.5.1.2), no two
entries at the same FileOffsetMB and none inside the header section/
log/metadata/BAT (2.5.1: "must not overlap any other structure").
"""
import os
import shutil
import struct
import sys
import uuid

MB = 1 << 20


# CRC-32C (RFC 3720 B.4), as MS-VHDX 2.2.2 uses it: the one Python copy the
# test tools share (fixtures/mkdiff.py, also used by tests/io.sh)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures'))
from mkdiff import crc32c  # noqa: E402
G = lambda s: uuid.UUID(s).bytes_le
BAT = G('2DC27766-F623-4200-9D64-115E9BFD4A08')
META = G('8B7CA206-4790-4B9A-B8FE-575F050F886E')
ITEMS = {G('CAA16737-FA36-4D43-B3B6-33F0AA44E76B'): 'params', G('2FA54224-CD1B-4876-B211-5DBED83BF4B8'): 'size',
         G('BECA12AB-B2E6-4523-93EF-C309E000C746'): 'page83', G('8141BF1D-A96F-4709-BA47-F233A8FAAB5F'): 'lss',
         G('CDA348C7-445D-4471-9CC9-E9885251C556'): 'pss', G('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C'): 'locator'}
LOC_VHDX = G('B04AEFB7-D19E-4A81-B789-25B8E9445913')


def zero_crc(b, at):
    b = bytearray(b)
    b[at:at + 4] = b'\0\0\0\0'
    return crc32c(bytes(b))


def parse(f, child=True):
    f.seek(0)
    assert f.read(8) == b'vhdxfile', 'identifier'
    heads = []
    for off in (64 * 1024, 128 * 1024):
        f.seek(off)
        h = f.read(4096)
        if h[:4] == b'head' and struct.unpack('<I', h[4:8])[0] == zero_crc(h, 4):
            heads.append((struct.unpack('<Q', h[8:16])[0], h))
    assert heads, 'no valid header'
    h = max(heads)[1]
    assert h[48:64] == b'\0' * 16, 'LogGuid not zero'
    f.seek(192 * 1024)
    rt = f.read(64 * 1024)
    assert rt[:4] == b'regi' and struct.unpack('<I', rt[4:8])[0] == zero_crc(rt, 4), 'region table'
    reg = {}
    for i in range(struct.unpack('<I', rt[8:12])[0]):
        e = rt[16 + 32 * i:48 + 32 * i]
        reg[bytes(e[:16])] = struct.unpack('<QI', e[16:28])
    moff, mlen = reg[META]
    f.seek(moff)
    m = f.read(mlen)
    assert m[:8] == b'metadata'
    it = {}
    for i in range(struct.unpack('<H', m[10:12])[0]):
        e = m[32 + 32 * i:64 + 32 * i]
        o, ln, fl = struct.unpack('<III', e[16:28])
        it[ITEMS.get(bytes(e[:16]), e[:16].hex())] = (m[o:o + ln], fl)
    bs, flags = struct.unpack('<II', it['params'][0])
    data_write = str(uuid.UUID(bytes_le=bytes(h[32:48])))
    if not child:
        return dict(data_write=data_write, size=struct.unpack('<Q', it['size'][0])[0],
                    page83=str(uuid.UUID(bytes_le=bytes(it['page83'][0]))))
    assert flags & 2, 'HasParent not set'
    loc = it['locator'][0]
    assert loc[:16] == LOC_VHDX, 'locator type'
    kv = {}
    for i in range(struct.unpack('<H', loc[18:20])[0]):
        ko, vo, kl, vl = struct.unpack('<IIHH', loc[20 + 12 * i:32 + 12 * i])
        kv[loc[ko:ko + kl].decode('utf-16le')] = loc[vo:vo + vl].decode('utf-16le')
    assert 'parent_linkage' in kv and ('relative_path' in kv or 'absolute_win32_path' in kv or 'volume_path' in kv)
    d = dict(block_size=bs, size=struct.unpack('<Q', it['size'][0])[0], lss=struct.unpack('<I', it['lss'][0])[0],
             pss=struct.unpack('<I', it['pss'][0])[0], page83=str(uuid.UUID(bytes_le=bytes(it['page83'][0]))),
             data_write=data_write, locator_flags=it['locator'][1], **kv)
    d['bat'] = reg[BAT]
    d['meta'] = (moff, mlen)
    d['log'] = (struct.unpack('<Q', h[72:80])[0], struct.unpack('<I', h[68:72])[0])
    return d


def bat_entries(f, d):
    bs, lss, size = d['block_size'], d['lss'], d['size']
    ratio = (1 << 23) * lss // bs
    nblocks = (size + bs - 1) // bs
    total = (nblocks + ratio - 1) // ratio * (ratio + 1)
    off, ln = d['bat']
    assert total * 8 <= ln, 'BAT region too small for a differencing file'
    f.seek(off)
    raw = f.read(total * 8)
    ents = struct.unpack('<%dQ' % total, raw)
    return ratio, nblocks, ents


def check_bat(d, ratio, ents):
    used = set()
    low = max(d['bat'][0] + d['bat'][1], d['meta'][0] + d['meta'][1], d['log'][0] + d['log'][1])
    for i, e in enumerate(ents):
        assert (e >> 3) & ((1 << 17) - 1) == 0, 'reserved BAT bits set at %d' % i
        st, fo = e & 7, e >> 20
        if fo:
            assert fo not in used, 'two entries at FileOffsetMB %d' % fo
            assert fo * MB >= low, 'entry %d inside the header structures' % i
            used.add(fo)
        if (i + 1) % (ratio + 1) == 0:
            assert st in (0, 6), 'sector bitmap state %d' % st
        else:
            assert st in (0, 6, 7), 'payload state %d' % st
            if st == 7:
                chunk = i // (ratio + 1)
                assert ents[(chunk + 1) * (ratio + 1) - 1] & 7 == 6, 'PARTIALLY_PRESENT without a sector bitmap'


def merge(child, parent_raw, out):
    if parent_raw != '-':
        shutil.copyfile(parent_raw, out)
    with open(child, 'rb') as f:
        d = parse(f)
        ratio, nblocks, ents = bat_entries(f, d)
        check_bat(d, ratio, ents)
        bs, lss = d['block_size'], d['lss']
        assert os.path.getsize(out) == d['size'], 'parent and child sizes differ'
        stats = dict(full=0, partial=0, sectors=0, chunks=len({b // ratio for b in range(nblocks) if ents[b + b // ratio] & 7}))
        with open(out, 'r+b') as o:
            for b in range(nblocks):
                e = ents[b + b // ratio]
                st, fo = e & 7, (e >> 20) * MB
                n = min(bs, d['size'] - b * bs)
                if st == 6:
                    f.seek(fo)
                    o.seek(b * bs)
                    o.write(f.read(n))
                    stats['full'] += 1
                elif st == 7:
                    chunk = b // ratio
                    sb = (ents[(chunk + 1) * (ratio + 1) - 1] >> 20) * MB
                    first = (b % ratio) * (bs // lss)
                    f.seek(sb + first // 8)
                    bits = f.read(bs // lss // 8)
                    f.seek(fo)
                    data = f.read(n)
                    for s in range(n // lss):
                        if bits[s // 8] >> (s % 8) & 1:
                            o.seek(b * bs + s * lss)
                            o.write(data[s * lss:(s + 1) * lss])
                            stats['sectors'] += 1
                    stats['partial'] += 1
        print(' '.join('%s=%d' % kv for kv in stats.items()))


def main():
    if sys.argv[1] in ('info', 'parent'):
        with open(sys.argv[2], 'rb') as f:
            d = parse(f, sys.argv[1] == 'info')
        for k, v in sorted(d.items()):
            print('%s=%s' % (k, v))
    else:
        merge(*sys.argv[2:5])


if __name__ == '__main__':
    main()
