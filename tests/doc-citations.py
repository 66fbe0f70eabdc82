#!/usr/bin/env python3
"""doc-citations.py ROOT - every citation of formats.md / patches.md under
ROOT resolves to a heading of ROOT/doc/formats.md or ROOT/doc/patches.md.

A citation is written `doc/formats.md, <section>` (or `doc/formats.md
"<section>"`); <section> must start with a heading's text, or with the part
of a heading before " - ", " — " or " (" (so `doc/patches.md, loader-integrity`
finds "## loader-integrity — ImgpValidateImageHash"), compared without case.
A citation may run on to the next comment line. A bare `formats.md` (not
under doc/) or one naming no section is an error.

Prints one line per citation: "ok FILE:LINE doc/X.md -> heading" or
"bad FILE:LINE reason"; exit status 1 when any is bad.
"""
import os
import re
import sys

SCAN_DIRS = ["lib", "src", "fixtures", "tests", "fuzz", "scripts", "man", "doc"]
SCAN_FILES = ["README", "DESIGN.md"]   # build files (am/, Makefile.am) list files, they cite nothing
SKIP = {"tests/doc-citations.py", "tests/doc-citations.sh"}
CITE = re.compile(r"(?P<pre>[\w./-]*?)(?P<name>formats|patches)\.md")
KEY_SPLIT = re.compile(r"\s+(?:—|-|\()\s*")


def headings(path):
    """Heading texts of a markdown file -> list of (match key, full text)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not m:
                continue
            text = m.group(1).strip().strip("`")
            out.append((text.lower(), text))
            key = KEY_SPLIT.split(text, maxsplit=1)[0].strip().strip("`")
            if key and key.lower() != text.lower():
                out.append((key.lower(), text))
    return out


def files(root):
    for d in SCAN_DIRS:
        for dirpath, dirnames, names in os.walk(os.path.join(root, d)):
            dirnames[:] = [x for x in dirnames if x not in ("corpus", "expected")]
            for n in sorted(names):
                yield os.path.join(dirpath, n)
    for n in SCAN_FILES:
        p = os.path.join(root, n)
        if os.path.exists(p):
            yield p


def strip_comment(line):
    return re.sub(r"^\s*(?:\*|//|#|;|\|)?\s*", "", line)


def resolve(rest, heads):
    """Longest heading key that `rest` starts with (as a whole word)."""
    low = rest.lower()
    best = None
    for key, text in heads:
        if low.startswith(key) and (len(low) == len(key) or not re.match(r"[\w-]", low[len(key)])):
            if best is None or len(key) > len(best[0]):
                best = (key, text)
    return best


def main():
    root = sys.argv[1]
    docs = {}
    for name in ("formats", "patches"):
        p = os.path.join(root, "doc", name + ".md")
        docs[name] = headings(p) if os.path.exists(p) else None
    bad = 0
    missing = {}
    n = 0
    for path in files(root):
        rel = os.path.relpath(path, root)
        if rel in SKIP or rel in ("doc/formats.md", "doc/patches.md"):
            continue
        try:
            lines = open(path, encoding="utf-8").read().split("\n")
        except (UnicodeDecodeError, OSError):
            continue
        for i, line in enumerate(lines):
            for m in CITE.finditer(line):
                n += 1
                where = f"{rel}:{i + 1}"
                name = m.group("name")
                if m.group("pre") != "doc/":
                    print(f"bad {where}: cites '{m.group(0)}': write doc/{name}.md, <section>")
                    bad += 1
                    continue
                if docs[name] is None:
                    missing.setdefault(name, []).append(where)
                    continue
                rest = line[m.end():]
                if i + 1 < len(lines):
                    rest += " " + strip_comment(lines[i + 1])
                sm = re.match(r"""^[`'"]?\s*(?:,\s*|\s+")(.*)""", rest)
                hit = resolve(sm.group(1), docs[name]) if sm else None
                if not sm:
                    print(f"bad {where}: doc/{name}.md cited without a section (write doc/{name}.md, <section>)")
                    bad += 1
                elif not hit:
                    print(f"bad {where}: doc/{name}.md has no heading that '{sm.group(1)[:50]}' starts with")
                    bad += 1
                else:
                    print(f"ok {where} doc/{name}.md -> {hit[1]}")
    for name, wheres in missing.items():
        print(f"bad: doc/{name}.md does not exist but is cited {len(wheres)} times ({', '.join(wheres)})"
              + ("; it is written by helper loader (issue 11)" if name == "patches" else ""))
        bad += 1
    for name, heads in docs.items():
        if heads is None:
            continue
        full = [t for k, t in heads if k == t.lower()]
        dups = sorted({t for t in full if full.count(t) > 1})
        for t in dups:
            print(f"bad doc/{name}.md: heading '{t}' appears twice (citations would be ambiguous)")
            bad += 1
    print(f"{n} citations, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
