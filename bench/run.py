"""What ``make bench`` runs: the plan (variants x cases, speeds, runs) and the collected results."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby

from bench import REPO_ROOT
from bench.coldstart import ColdStart, measure_cold_start
from bench.lifecycle import measure_case
from bench.machine import Machine, source_state, this_machine
from bench.models import cdk_provider_row, floor_row
from bench.package import PackageSize, measure_packages
from bench.rows import CASES, CRHELPER_DOCUMENTED, OURS, Case, Row
from bench.scale import Scale, measure_scale
from bench.world import VARIANTS, open_world, warm_up

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Measure:
    """Run ``variant`` on ``case`` ``runs`` times at ``speed`` modelled seconds per real second."""

    variant: str
    case: Case
    speed: float
    runs: int


def _case(t_ready: float) -> Case:
    return next(c for c in CASES if c.t_ready == t_ready)


DEFAULT_PLAN: tuple[Measure, ...] = (
    # Ours: real time where the wait is short; compressed where it would take minutes.
    Measure(OURS, _case(0), 1.0, 5),
    Measure(OURS, _case(5), 1.0, 3),
    Measure(OURS, _case(90), 20.0, 3),
    Measure(OURS, _case(600), 30.0, 1),
    # crhelper as documented polls every 2 min and sleeps 120 s on Delete: always compressed.
    Measure(CRHELPER_DOCUMENTED, _case(0), 20.0, 3),
    Measure(CRHELPER_DOCUMENTED, _case(5), 20.0, 3),
    Measure(CRHELPER_DOCUMENTED, _case(90), 20.0, 3),
    Measure(CRHELPER_DOCUMENTED, _case(600), 30.0, 1),
)


@dataclass(frozen=True)
class ScaleSettings:
    """The scale run: ``backups`` at once against ``rps``, at most ``concurrency`` Lambda environments."""

    backups: int = 100
    rps: float = 10.0
    concurrency: int = 25
    t_ready: float = 5.0


@dataclass(frozen=True)
class BenchConfig:
    """Everything one ``python -m bench`` does."""

    plan: tuple[Measure, ...] = DEFAULT_PLAN
    models: bool = True
    cold_start_runs: int = 5
    package: bool = True
    scale: ScaleSettings | None = field(default_factory=ScaleSettings)


@dataclass
class BenchResults:
    """What a run found, plus where and how long."""

    machine: Machine
    rows: list[Row]
    cold_start: ColdStart | None
    packages: list[PackageSize]
    scale: Scale | None
    config: BenchConfig
    source: str = ""
    load: tuple[float, float] = (0.0, 0.0)
    """1-minute load average when the run started and when it ended."""
    wall_s: float = 0.0
    section_s: dict[str, float] = field(default_factory=dict)

    def row(self, variant: str, case: Case) -> Row | None:
        """The row for (variant, case), if measured or modelled."""
        return next((r for r in self.rows if r.variant == variant and r.case == case), None)

    @property
    def cases(self) -> list[Case]:
        """The cases that have at least one row, in the canonical order."""
        present = {r.case for r in self.rows}
        return [c for c in CASES if c in present]


def _quiet(_: str) -> None:
    pass


def run_bench(config: BenchConfig, progress: Progress = _quiet) -> BenchResults:
    """Run the plan, the models, cold start, package size and scale; collect the results."""
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    results = BenchResults(this_machine(), [], None, [], None, config, source=source_state(REPO_ROOT))

    def timed(name: str, action: Callable[[], None]) -> None:
        begun = time.monotonic()
        action()
        results.section_s[name] = time.monotonic() - begun

    def lifecycles() -> None:
        for (variant_key, speed), group in groupby(config.plan, key=lambda m: (m.variant, m.speed)):
            measures = list(group)
            variant = VARIANTS[variant_key]
            with open_world(variant, speed) as world:
                warm_up(world, variant)
                for measure in measures:
                    progress(f"{variant_key}: {measure.case.label}, {measure.runs} run(s) at {speed:g}x")
                    results.rows.append(measure_case(world, variant, measure.case, speed, measure.runs))

    timed("lifecycles", lifecycles)
    if config.models:
        for case in sorted({m.case for m in config.plan}, key=lambda c: c.t_ready):
            results.rows.extend([cdk_provider_row(case), floor_row(case)])
    if config.cold_start_runs:
        progress(f"cold start: {config.cold_start_runs} fresh processes each")

        def cold() -> None:
            results.cold_start = measure_cold_start(config.cold_start_runs)

        timed("cold start", cold)
    if config.package:
        progress("package size: build_zip")

        def package() -> None:
            results.packages = measure_packages()

        timed("package", package)
    if config.scale is not None:
        settings = config.scale
        progress(
            f"scale: {settings.backups} backups at once, throttled above {settings.rps:g} rps, "
            f"{settings.concurrency} Lambda environments"
        )

        def scale() -> None:
            results.scale = measure_scale(settings.backups, settings.rps, settings.concurrency, settings.t_ready)

        timed("scale", scale)
    results.wall_s = time.monotonic() - started
    results.load = (load_at_start, os.getloadavg()[0])
    return results
