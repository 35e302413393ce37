"""Smoke test of the benchmark harness on a tiny input; ``make bench`` itself never runs in ``make test``.

GIVEN ours on the fast case (READY right after RestoreBackup), one cold-start pair and the package build,
WHEN the bench runs, THEN the modelled figures are exactly the fast path's and the report has both parts.
No real-time figure is asserted on beyond "it was measured": those are the machine's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import QUICK
from bench.report import plot, render
from bench.rows import CASES, CDK_PROVIDER, FLOOR, OURS
from bench.run import run_bench

pytestmark = pytest.mark.slow

READY_AT_ONCE = CASES[0]


def test_bench_smoke(tmp_path: Path) -> None:
    results = run_bench(QUICK)

    assert [(r.variant, r.case) for r in results.rows] == [
        (OURS, READY_AT_ONCE),
        (CDK_PROVIDER, READY_AT_ONCE),
        (FLOOR, READY_AT_ONCE),
    ]
    ours = results.row(OURS, READY_AT_ONCE)
    assert ours is not None
    assert ours.ok, ours.note
    # Modelled: the fast path answers in the invocation that got the event, and compute takes no modelled time.
    assert ours.create_s == 0.0
    assert ours.delete_s == 0.0
    assert ours.invocations == 2  # one per request
    assert ours.rules == 0
    # Create: DescribeBackups, RestoreBackup, TagResource (ownership), ModifyBackupAttributes (protection);
    # Delete: DescribeBackups (whose record?), DeleteBackup.
    assert ours.calls_by_operation == {
        "DeleteBackup": 1,
        "DescribeBackups": 2,
        "ModifyBackupAttributes": 1,
        "RestoreBackup": 1,
        "TagResource": 1,
    }
    assert ours.violations == []
    assert results.all_ok

    cold = results.cold_start
    assert cold is not None
    assert cold.all_ok
    assert cold.median("ours", "import_s") is not None
    assert cold.median("floor", "import_s") is not None
    assert [p.zip_bytes > 1000 for p in results.packages] == [True, True]

    report = render(results, markdown=True)
    modelled, real = report.index("## Modelled figures"), report.index("## Real figures")
    assert modelled < report.index("| READY at once | ours (handler/) | run | yes | 0.00 | 0.00 | 0.00 | 2 |") < real
    assert modelled < report.index("| READY at once | CDK Provider+isComplete | model |") < real
    assert real < report.index("### Cold start") < report.index("### Package size") < report.index("### Run time")

    png = plot(results, tmp_path / "latency.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
