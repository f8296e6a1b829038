#!/usr/bin/env python3
"""Sums doctest test-case counts from meson test logs and prints 'N passed, N failed'.

A test executable that printed no doctest summary (a crash, a script test) counts as one case.
Exits 1 when anything failed."""
import json
import re
import sys

SUMMARY = re.compile(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        print(f"sum_tests: {e}")
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        m = SUMMARY.search(t.get("stdout", "") or "")
        ok = t.get("result") == "OK"
        if m:
            passed += int(m.group(2))
            failed += int(m.group(3))
            skipped += int(m.group(4))
            if not ok and int(m.group(3)) == 0:
                failed += 1  # doctest passed but the process failed (sanitizer report at exit, leak)
        elif t.get("result") == "SKIP":
            skipped += 1
        elif ok:
            passed += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
