#!/usr/bin/env python3
"""Checks the code-shape limits of the Rust sources: no file over MAX_FILE lines and no
function over MAX_FN lines, tests excepted (`#[cfg(test)]` modules and tests/ folders).

Usage: scripts/code_size.py [DIR ...]   (default: src cli/src). Exit 1 on a breach."""

import pathlib
import re
import sys

MAX_FILE = 600
MAX_FN = 80

FN_START = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")


def strip_literals(line: str) -> str:
    """The line without string/char literals and // comments, so braces inside them don't count."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//", 1)[0]


def functions(lines):
    """(name, first line, length) of every fn outside #[cfg(test)] modules."""
    out = []
    depth = 0
    test_depth = None  # brace depth at which a #[cfg(test)] module was opened
    pending_test = False
    stack = []  # (name, start line, depth before its body opened)
    for i, raw in enumerate(lines):
        line = strip_literals(raw)
        if test_depth is None and re.match(r"^\s*#\[cfg\(test\)\]", line):
            pending_test = True
        m = FN_START.match(line)
        if m and test_depth is None and "{" in line or (m and test_depth is None and not line.rstrip().endswith(";")):
            if m:
                stack.append([m.group(7), i, depth, False])
        for ch in line:
            if ch == "{":
                if pending_test and test_depth is None and re.match(r"^\s*(pub\s+)?mod\s", line):
                    test_depth = depth
                    pending_test = False
                depth += 1
                if stack and not stack[-1][3] and stack[-1][2] == depth - 1:
                    stack[-1][3] = True
            elif ch == "}":
                depth -= 1
                if test_depth is not None and depth == test_depth:
                    test_depth = None
                if stack and stack[-1][3] and depth == stack[-1][2]:
                    name, start, _, _ = stack.pop()
                    out.append((name, start + 1, i - start + 1))
        if m and line.rstrip().endswith(";") and stack and not stack[-1][3]:
            stack.pop()  # a declaration without a body (trait method)
        if pending_test and not re.match(r"^\s*#", line) and "mod" not in line:
            pending_test = False
    return out


def main(dirs):
    bad = []
    for d in dirs:
        for path in sorted(pathlib.Path(d).rglob("*.rs")):
            lines = path.read_text().splitlines()
            if len(lines) > MAX_FILE:
                bad.append(f"{path}: {len(lines)} lines (limit {MAX_FILE})")
            for name, start, length in functions(lines):
                if length > MAX_FN:
                    bad.append(f"{path}:{start}: fn {name} is {length} lines (limit {MAX_FN})")
    for b in bad:
        print(b)
    if bad:
        print(f"code_size: {len(bad)} over the limits", file=sys.stderr)
        return 1
    print(f"code_size: ok (files <= {MAX_FILE} lines, functions <= {MAX_FN} lines outside tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [d for d in ["src", "cli/src"] if pathlib.Path(d).is_dir()]))
