"""Smoke test of the benchmark harness on a tiny input; ``make bench`` itself never runs in ``make test``.

GIVEN one fast case (READY right after RestoreBackup), one run of our handler in the offline world,
one cold-start pair and the package build, WHEN the bench runs, THEN the report has the expected rows
and the numbers are sane.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import plot, render
from bench.rows import CASES, CDK_PROVIDER, FLOOR, OURS
from bench.run import BenchConfig, Measure, run_bench

pytestmark = pytest.mark.slow

READY_AT_ONCE = CASES[0]


def test_bench_smoke(tmp_path: Path) -> None:
    config = BenchConfig(plan=(Measure(OURS, READY_AT_ONCE, 1.0, 1),), cold_start_runs=1, scale=None)

    results = run_bench(config)

    assert [(r.variant, r.case) for r in results.rows] == [
        (OURS, READY_AT_ONCE),
        (CDK_PROVIDER, READY_AT_ONCE),
        (FLOOR, READY_AT_ONCE),
    ]
    ours = results.row(OURS, READY_AT_ONCE)
    assert ours is not None
    assert ours.all_ok, ours.note
    assert ours.create_s is not None
    assert 0 <= ours.create_s < 30  # modelled: a restore READY at once takes no modelled time
    assert ours.delete_s is not None
    assert 0 <= ours.delete_s < 30
    assert ours.invocations == 2  # one per request: the fast path answers in the Create invocation
    assert ours.rules == 0
    # Create: DescribeBackups, RestoreBackup, TagResource (ownership), ModifyBackupAttributes (protection);
    # Delete: DescribeBackups (whose record?), DeleteBackup.
    assert ours.api_calls == 6
    assert ours.violations == []

    cold = results.cold_start
    assert cold is not None
    assert cold.all_ok
    ours_import = cold.median("ours", "import_s")
    floor_import = cold.median("floor", "import_s")
    assert ours_import is not None
    assert 0 < ours_import < 30
    assert floor_import is not None
    assert 0 < floor_import < 30

    assert [p.zip_bytes > 1000 for p in results.packages] == [True, True]

    report = render(results, markdown=True)
    assert "| READY at once | ours (handler/) | measured @1x | 1/1 |" in report
    assert "| READY at once | CDK Provider+isComplete | model |" in report
    assert "| READY at once | physical floor | limit |" in report
    assert "Machine: " in report
    assert "Cold start" in report
    assert "Package size" in report

    png = plot(results, tmp_path / "latency.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
