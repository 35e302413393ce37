"""What ``make bench`` runs (variants x cases, the models, calls, hand-offs, scale, cold start, package) and
what it found."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import REPO_ROOT
from bench.calls import StepCalls
from bench.calls import measure as measure_calls
from bench.coldstart import ColdStart, measure_cold_start
from bench.handoffs import Handoffs, measure_handoffs
from bench.lifecycle import measure_case
from bench.machine import Machine, source_state, this_machine
from bench.models import cdk_provider_row, floor_row
from bench.package import PackageSize, measure_packages
from bench.rows import CASES, CRHELPER_DOCUMENTED, OURS, Case, Row
from bench.scale import Scale, measure_scale
from bench.world import VARIANTS, open_world

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScaleSettings:
    """The scale run: ``backups`` at once against ``rps``, at most ``concurrency`` Lambda environments."""

    backups: int = 100
    rps: float = 10.0
    concurrency: int = 25
    t_ready: float = 5.0


@dataclass(frozen=True)
class HandoffSettings:
    """The hand-off run: ``count`` Creates at once, at most ``concurrency`` Lambda environments."""

    count: int = 200
    concurrency: int = 25


@dataclass(frozen=True)
class BenchConfig:
    """Everything one ``python -m bench`` does.

    Each (variant, case) lifecycle runs once: its figures are modelled on the virtual clock and the same
    on every run. Only the cold start is real time on this machine, hence its ``cold_start_runs``.
    """

    variants: tuple[str, ...] = (OURS, CRHELPER_DOCUMENTED)
    cases: tuple[Case, ...] = CASES
    models: bool = True
    calls: bool = True
    handoffs: HandoffSettings | None = field(default_factory=HandoffSettings)
    scale: ScaleSettings | None = field(default_factory=ScaleSettings)
    cold_start_runs: int = 5
    package: bool = True


@dataclass
class BenchResults:
    """What a run found, plus where and how long."""

    machine: Machine
    config: BenchConfig
    source: str = ""
    rows: list[Row] = field(default_factory=list)
    calls: list[StepCalls] = field(default_factory=list)
    handoffs: Handoffs | None = None
    scale: Scale | None = None
    cold_start: ColdStart | None = None
    packages: list[PackageSize] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)
    """1-minute load average when the run started and when it ended."""
    wall_s: float = 0.0
    section_s: dict[str, float] = field(default_factory=dict)
    """Real seconds per part of the run."""

    def row(self, variant: str, case: Case) -> Row | None:
        """The row for (variant, case), if run or modelled."""
        return next((r for r in self.rows if r.variant == variant and r.case == case), None)

    @property
    def cases(self) -> list[Case]:
        """The cases that have at least one row, in the canonical order."""
        present = {r.case for r in self.rows}
        return [c for c in CASES if c in present]

    @property
    def all_ok(self) -> bool:
        """Every lifecycle, call count step, hand-off and cold start succeeded.

        The scale run probes a limit (many resources against a throttled API): its failures are results,
        reported in the findings, not an error of the benchmark.
        """
        return (
            all(r.ok for r in self.rows)
            and all(c.ok for c in self.calls)
            and (self.handoffs is None or self.handoffs.all_ok)
            and (self.cold_start is None or self.cold_start.all_ok)
        )


def _quiet(_: str) -> None:
    pass


def run_bench(config: BenchConfig, progress: Progress = _quiet) -> BenchResults:
    """Run the lifecycles, the models, calls, hand-offs, scale, cold start and package size; collect the results."""
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    results = BenchResults(this_machine(), config, source=source_state(REPO_ROOT))

    def timed(name: str, action: Callable[[], None]) -> None:
        begun = time.monotonic()
        action()
        results.section_s[name] = time.monotonic() - begun

    def lifecycles() -> None:
        for variant_key in config.variants:
            variant = VARIANTS[variant_key]
            with open_world(variant) as world:
                for number, case in enumerate(config.cases):
                    progress(f"{variant_key}: {case.label}")
                    results.rows.append(measure_case(world, variant, case, number))

    timed("lifecycles", lifecycles)
    if config.models:
        for case in config.cases:
            results.rows.extend([cdk_provider_row(case), floor_row(case)])
    if config.calls:
        progress("CloudHSM calls per lifecycle step")

        def calls() -> None:
            results.calls = measure_calls()

        timed("calls", calls)
    if config.handoffs is not None:
        handoff_settings = config.handoffs
        progress(f"{handoff_settings.count} concurrent polling hand-offs on one provider")

        def handoffs() -> None:
            results.handoffs = measure_handoffs(handoff_settings.count, handoff_settings.concurrency)

        timed("hand-offs", handoffs)
    if config.scale is not None:
        settings = config.scale
        progress(
            f"scale: {settings.backups} backups at once, throttled above {settings.rps:g} rps, "
            f"{settings.concurrency} Lambda environments"
        )

        def scale() -> None:
            results.scale = measure_scale(settings.backups, settings.rps, settings.concurrency, settings.t_ready)

        timed("scale", scale)
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
    results.wall_s = time.monotonic() - started
    results.load = (load_at_start, os.getloadavg()[0])
    return results
