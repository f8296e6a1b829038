#!/usr/bin/env python3
"""Sums doctest test-case counts from meson test logs and prints 'N passed, N failed'.

A test executable that printed no doctest summary (a crash, a script test) counts as one case.
Before the sum it names every failed test (build, suite, and the doctest cases that failed with the
file:line of their first failed check), so the tail of a CI log says what failed without the rest.
Exits 1 when anything failed."""
import json
import re
import sys

SUMMARY = re.compile(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")
# doctest prints "TEST CASE:  name" and then the failing check's "file:line: ERROR: ..." line.
CASE = re.compile(r"^TEST CASE:\s+(.*)$")
CHECK_LINE = re.compile(r"^(\S+:\d+): (ERROR|FATAL ERROR): (.*)$")


def failed_cases(output):
    """(case name, first failed check) for each doctest case that reported an error in output."""
    cases, current, seen = [], None, set()
    for line in output.splitlines():
        m = CASE.match(line.strip())
        if m:
            current = m.group(1)
            continue
        m = CHECK_LINE.match(line.strip())
        if m and current is not None and current not in seen:
            seen.add(current)
            cases.append((current, f"{m.group(1)}: {m.group(3)[:160]}"))
    return cases


passed = failed = skipped = 0
failures = []
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        print(f"sum_tests: {e}")
        failed += 1
        failures.append(f"{path}: unreadable")
        continue
    build = path.split("/meson-logs/")[0]
    for line in lines:
        t = json.loads(line)
        out = (t.get("stdout", "") or "") + "\n" + (t.get("stderr", "") or "")
        m = SUMMARY.search(t.get("stdout", "") or "")
        ok = t.get("result") == "OK"
        name = f"{build}/{t.get('name', '?')}"
        if m:
            passed += int(m.group(2))
            failed += int(m.group(3))
            skipped += int(m.group(4))
            for case, where in failed_cases(out):
                failures.append(f"{name}: \"{case}\" at {where}")
            if not ok and int(m.group(3)) == 0:
                failed += 1  # doctest passed but the process failed (sanitizer report at exit, leak)
                failures.append(f"{name}: {t.get('result')} after its cases passed (exit status {t.get('returncode')})")
        elif t.get("result") == "SKIP":
            skipped += 1
        elif ok:
            passed += 1
        else:
            failed += 1
            failures.append(f"{name}: {t.get('result')} (exit status {t.get('returncode')}, {t.get('duration', 0):.0f} s)")
            for case, where in failed_cases(out):
                failures.append(f"{name}: \"{case}\" at {where}")
for f in failures:
    print(f"FAILED {f}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
