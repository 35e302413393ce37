"""``python -m bench`` (``make bench``): run everything, print the report, write results.md and latency.png."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench.report import plot, render
from bench.rows import CASES, OURS
from bench.run import BenchConfig, run_bench

HERE = Path(__file__).resolve().parent
QUICK = BenchConfig(variants=(OURS,), cases=CASES[:1], calls=False, handoffs=None, scale=None, cold_start_runs=1)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE, help="where results.md and latency.png go (default: bench/)")
    parser.add_argument("--no-write", action="store_true", help="print only; write neither results.md nor the plot")
    parser.add_argument("--no-scale", action="store_true", help="skip the 100-backup scale run")
    parser.add_argument("--no-handoffs", action="store_true", help="skip the 200 concurrent hand-offs run")
    parser.add_argument(
        "--cold-start-runs", type=int, default=5, help="fresh processes per cold-start figure (real time, median)"
    )
    parser.add_argument("--quick", action="store_true", help="ours on one fast case, one cold start (seconds)")
    return parser.parse_args(argv)


def config_of(args: argparse.Namespace) -> BenchConfig:
    """The configuration the options ask for."""
    if args.quick:
        return QUICK
    config = BenchConfig(cold_start_runs=args.cold_start_runs)
    if args.no_scale:
        config = replace(config, scale=None)
    if args.no_handoffs:
        config = replace(config, handoffs=None)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every lifecycle, call count, hand-off and cold start succeeded."""
    args = parse(argv)

    def progress(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    results = run_bench(config_of(args), progress)
    print(render(results, markdown=False))
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(render(results, markdown=True), encoding="utf-8")
        plot(results, args.out / "latency.png")
        print(f"wrote {args.out / 'results.md'} and {args.out / 'latency.png'}")
    return 0 if results.all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
