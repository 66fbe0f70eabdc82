#!/usr/bin/env python3
"""vhdi_chain.py CHILD PARENT OUT_RAW - the disk a differencing VHDX chain
holds, as libyal's libvhdi reads it (python3-libvhdi, pyvhdi): CHILD opened,
PARENT opened and attached with set_parent() (libvhdi 20210425 does not find
the parent itself: it never matches the locator's relative_path key), every
byte of the virtual disk read through the child and written to OUT_RAW
(sparse: runs of zeros are skipped). No code shared with gen2prep; for
tests/differencing.sh and tests/convert-boot.sh. Prints the child's parent
identifier (libvhdi's reading of parent_linkage) and its disk type.
"""
import sys

import pyvhdi

CHUNK = 4 << 20


def main():
    child_path, parent_path, out_path = sys.argv[1:4]
    child, parent = pyvhdi.file(), pyvhdi.file()
    child.open(child_path)
    parent.open(parent_path)
    print("disk_type=%d" % child.disk_type)
    print("parent_identifier=%s" % child.parent_identifier)
    child.set_parent(parent)
    size = child.media_size
    zero = bytes(CHUNK)
    with open(out_path, "wb") as out:
        off = 0
        while off < size:
            n = min(CHUNK, size - off)
            data = child.read_buffer_at_offset(n, off)
            if len(data) != n:
                sys.exit("short read at %d: %d of %d bytes" % (off, len(data), n))
            if data != zero[:n]:
                out.seek(off)
                out.write(data)
            off += n
        out.truncate(size)
    print("media_size=%d" % size)


if __name__ == "__main__":
    main()
