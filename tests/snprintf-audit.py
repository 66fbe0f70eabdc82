#!/usr/bin/env python3
"""snprintf-audit.py DIR... - string formatting that may cut silently.

Issue 11 ("Sizes that cannot silently cut"): a name from the image or the
user either fits its buffer or is a clear error. This lists, in every .c
and .h file under the DIRs, each call that could cut or overflow without
anyone noticing:

  * snprintf / vsnprintf whose result is thrown away (the call is a whole
    statement, perhaps cast to void) - use fmt_fit (a name: error when it
    does not fit), msg_printf (a message: visibly ends in "...") or show
    the result is checked;
  * `x += snprintf(...)`: the sum passes the buffer's size when a piece is
    cut, and the next call's size (n - x) wraps - use text_append;
  * sprintf, vsprintf, strcpy, strcat, strncpy, strncat: no size at all,
    or one that cuts silently.

A call is accepted anyway when a comment containing "fits:" is on one of
the lines the statement spans, saying why its output cannot exceed the
buffer (constant text, bounded integers, a static assert). Comments and
string literals are masked before the calls are looked for, so a call
named in a comment or message is not one. Prints FILE:LINE: reason per
finding and exits 1 when there is any, 0 otherwise.
"""
import os
import re
import sys

CALL = re.compile(r'\b(v?snprintf|v?sprintf|strn?cpy|strn?cat)\s*\(')
STMT_START = {';', '{', '}', ')', ':', ',', ''}


def mask(text):
    """(code, comments): code with comments and literals blanked (same
    offsets, newlines kept); comments as (start, end, text)."""
    out = list(text)
    comments = []
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != '\n':
                out[k] = ' '
    while i < n:
        c = text[i]
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            comments.append((i, j, text[i:j]))
            blank(i, j)
            i = j
        elif text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            comments.append((i, j, text[i:j]))
            blank(i, j)
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            blank(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return ''.join(out), comments


def close_paren(code, i):
    """Index of the ')' that closes the '(' at i, or -1."""
    depth = 0
    for k in range(i, len(code)):
        if code[k] == '(':
            depth += 1
        elif code[k] == ')':
            depth -= 1
            if depth == 0:
                return k
    return -1


def prev_token(code, i):
    k = i - 1
    while k >= 0 and code[k].isspace():
        k -= 1
    if k < 0:
        return ''
    if code[k].isalnum() or code[k] == '_':
        j = k
        while j >= 0 and (code[j].isalnum() or code[j] == '_'):
            j -= 1
        return code[j + 1:k + 1]
    if k >= 1 and code[k - 1:k + 1] in ('+=', '-=', '>=', '<=', '==', '!='):
        return code[k - 1:k + 1]
    return code[k]


def next_char(code, i):
    k = i + 1
    while k < len(code) and code[k].isspace():
        k += 1
    return code[k] if k < len(code) else ''


def problem(code, m):
    """Why the call at match m may cut silently, or None."""
    name = m.group(1)
    start = m.start()
    if name not in ('snprintf', 'vsnprintf'):
        return f'{name}: no bound or a silent one'
    prev = prev_token(code, start)
    if prev == '+=':
        return f'{name} result summed: past a cut the next size wraps'
    end = close_paren(code, m.end() - 1)
    if end < 0:
        return f'{name}: call not closed'
    whole_statement = next_char(code, end) == ';' and (prev in STMT_START or prev in ('else', 'do'))
    if whole_statement:
        return f'{name} result not checked'
    return None


def statement_lines(code, m):
    """First and last line of the statement holding the call."""
    end = close_paren(code, m.end() - 1)
    semi = code.find(';', end if end >= 0 else m.end())
    semi = len(code) if semi < 0 else semi
    first = code.count('\n', 0, m.start()) + 1
    return first, code.count('\n', 0, semi) + 1


def has_fits(text, comments, lo, hi):
    for a, _, body in comments:
        line = text.count('\n', 0, a) + 1
        if lo <= line <= hi and 'fits:' in body:
            return True
    return False


def audit(path):
    text = open(path, encoding='utf-8', errors='replace').read()
    code, comments = mask(text)
    found = []
    for m in CALL.finditer(code):
        why = problem(code, m)
        if not why:
            continue
        lo, hi = statement_lines(code, m)
        if not has_fits(text, comments, lo, hi):
            found.append(f'{path}:{lo}: {why}')
    return found


def main(dirs):
    found = []
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in sorted(files):
                if f.endswith(('.c', '.h')):
                    found += audit(os.path.join(root, f))
    for line in sorted(found):
        print(line)
    print(f'{len(found)} call(s) that may cut silently', file=sys.stderr)
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:] or ['lib', 'src']))
