"""``python -m bench`` (``make bench``): run everything, print the report, write results.md and latency.png."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import calls
from bench.report import plot, render
from bench.rows import OURS
from bench.run import DEFAULT_PLAN, BenchConfig, Measure, run_bench

HERE = Path(__file__).resolve().parent
QUICK_PLAN = (Measure(OURS, DEFAULT_PLAN[0].case, 1.0, 1),)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE, help="where results.md and latency.png go (default: bench/)")
    parser.add_argument("--no-write", action="store_true", help="print only; write neither results.md nor the plot")
    parser.add_argument("--no-scale", action="store_true", help="skip the 100-backup scale run")
    parser.add_argument("--quick", action="store_true", help="one fast case, one run, no scale (a few seconds)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every lifecycle and cold start succeeded.

    The scale run probes a limit (many resources against a throttled API): its failures are results,
    reported in the findings, not an error of the benchmark.
    """
    args = parse(argv)
    config = BenchConfig()
    if args.quick:
        config = BenchConfig(plan=QUICK_PLAN, cold_start_runs=1, scale=None)
    elif args.no_scale:
        config = BenchConfig(scale=None)

    def progress(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    results = run_bench(config, progress)
    progress("CloudHSM calls per lifecycle step")
    call_counts = calls.measure()
    calls_section = "\n\n## CloudHSM calls per lifecycle step\n\n" + calls.render(call_counts) + "\n"
    print(render(results, markdown=False) + calls_section)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(render(results, markdown=True) + calls_section, encoding="utf-8")
        plot(results, args.out / "latency.png")
        print(f"wrote {args.out / 'results.md'} and {args.out / 'latency.png'}")
    failed = [r for r in results.rows if not r.all_ok]
    cold_ok = results.cold_start is None or results.cold_start.all_ok
    return 0 if not failed and cold_ok and all(c.ok for c in call_counts) else 1


if __name__ == "__main__":
    sys.exit(main())
