#!/usr/bin/env python3
"""Sum meson's test logs of several build dirs into one closing line; exit 1 on any failure."""
import glob
import json
import os
import sys

passed = failed = skipped = 0
for d in sys.argv[1:]:
    # meson names the log after a --wrapper (testlog-<wrapper>.json): take the newest one
    logs = sorted(glob.glob(f"{d}/meson-logs/testlog*.json"), key=os.path.getmtime)
    try:
        lines = open(logs[-1]).read().splitlines()
    except (OSError, IndexError):
        print(f"summary: no test log in {d}")
        failed += 1
        continue
    for line in lines:
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"summary: FAILED {d}: {r.get('name')} ({res})")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
