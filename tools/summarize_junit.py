"""Print one closing line over several pytest JUnit XML reports.

    python tools/summarize_junit.py REPORT.xml ...

Exits 1 when a report is missing or has failures or errors, so a run that collected
nothing cannot pass silently.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> int:
    passed = failed = skipped = 0
    ok = bool(paths)
    for path in paths:
        file = Path(path)
        if not file.is_file():
            print(f"summary: {path}: no report (the run did not finish)")
            ok = False
            continue
        root = ET.parse(file).getroot()
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        run_tests = run_failed = run_skipped = 0
        for suite in suites:
            run_tests += int(suite.get("tests", 0))
            run_failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            run_skipped += int(suite.get("skipped", 0))
        run_passed = run_tests - run_failed - run_skipped
        print(f"summary: {file.stem}: {run_passed} passed, {run_failed} failed, "
              f"{run_skipped} skipped")
        if run_tests == 0 or run_failed:
            ok = False
        passed, failed, skipped = passed + run_passed, failed + run_failed, skipped + run_skipped
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
