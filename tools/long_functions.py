#!/usr/bin/env python3
"""Lists the non-test functions of serd's sources longer than a limit (default 80 lines), longest
first; exits 1 when there is one. A function runs from its `fn` line to the first line holding
only its closing brace at the same indentation (rustfmt's layout); `#[cfg(test)]` modules and
`tests.rs` files are left out.

    python3 tools/long_functions.py [--limit 80] [src]
"""
import argparse
import os
import re
import sys

FN = re.compile(r"^(\s*)(pub(\([^)]*\))? )?(const )?(async )?(unsafe )?fn (\w+)")
TEST_MOD = re.compile(r"^(\s*)mod \w+")


def long_functions(path, limit):
    lines = open(path, encoding="utf-8").read().split("\n")
    found, skip_to = [], -1
    for i, line in enumerate(lines):
        if i <= skip_to:
            continue
        if re.match(r"\s*#\[cfg\(test\)\]", line) and i + 1 < len(lines):
            module = TEST_MOD.match(lines[i + 1])
            if module:
                end = module.group(1) + "}"
                skip_to = next((j for j in range(i + 2, len(lines)) if lines[j] == end), len(lines))
                continue
        m = FN.match(line)
        if m and not line.rstrip().endswith(";"):
            end = m.group(1) + "}"
            j = next((j for j in range(i + 1, len(lines)) if lines[j] == end), None)
            if j is not None and j - i + 1 > limit:
                found.append((j - i + 1, path, i + 1, m.group(7)))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("root", nargs="?", default="src")
    args = ap.parse_args()
    found = []
    for root, _, files in os.walk(args.root):
        for name in files:
            if name.endswith(".rs") and name != "tests.rs":
                found += long_functions(os.path.join(root, name), args.limit)
    for n, path, line, name in sorted(found, reverse=True):
        print(f"{n} lines  {path}:{line}  {name}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
