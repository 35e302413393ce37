"""Many concurrent polling hand-offs on one provider: does every resource get exactly one answer, nothing left?

``python -m bench.handoffs [--count 200]`` prints the figure (``make bench`` puts it in bench/results.md).
All ``count`` Creates are sent at once to one provider; each backup becomes READY only after its Create has
handed off (so every resource waits through an EventBridge rule and is answered by a poll). The Lambda runs
at most ``concurrency`` execution environments and a 120 s timeout (hand-off after 30 s in-process: the 90 s
margin). Latencies are modelled seconds of the world's virtual clock; the run's real duration is reported
apart. Before issue 10 each hand-off added a statement to the function's resource policy (20 KB: about 50
at once); now one deploy-time permission covers every rule of the provider.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.rows import OURS
from bench.world import VARIANTS, at_once, new_backup_id, open_world


@dataclass
class Handoffs:
    """What the run saw."""

    count: int
    concurrency: int
    succeeded: int
    answers: list[int]
    rules: int
    add_permission: int
    polls: int
    leftovers: list[str]
    violations: list[str]
    real_s: float
    """Real seconds the run took on this machine."""
    median_modelled_s: float
    max_modelled_s: float
    failures: list[str] = field(default_factory=list)

    @property
    def all_ok(self) -> bool:
        """Every resource SUCCESS with exactly one answer, nothing left behind, no protocol violation."""
        return (
            self.succeeded == self.count
            and self.answers == [1] * self.count
            and not self.leftovers
            and not self.violations
        )


def measure_handoffs(count: int = 200, concurrency: int = 25) -> Handoffs:
    """Send ``count`` Creates at once; each hands off and is answered by a poll."""
    variant = VARIANTS[OURS]
    with open_world(variant, max_concurrency=concurrency, init_timeout_real=300.0) as world:
        world.function.timeout_seconds = 120.0
        assert world.emulator is not None
        assert world.eventbridge is not None
        ids = [new_backup_id() for _ in range(count)]
        for backup_id in ids:
            world.emulator.account.add_backup(backup_id, restore_seconds=90.0)
        simulator = world.simulator
        simulator.settle = False
        started = time.monotonic()
        creates = [
            functools.partial(simulator.create, f"Restored{n}", variant.properties(ids[n])) for n in range(count)
        ]
        outcomes = at_once(world, creates)
        world.eventbridge.wait_quiet()
        world.function.wait_idle()
        real = time.monotonic() - started
        elapsed = [o.elapsed_modelled for o in outcomes]
        return Handoffs(
            count=count,
            concurrency=concurrency,
            succeeded=sum(1 for o in outcomes if o.status == "SUCCESS"),
            answers=[len(o.responses) for o in outcomes],
            rules=world.eventbridge.count("PutRule"),
            add_permission=world.eventbridge.count("AddPermission"),
            polls=sum(1 for r in world.function.records if r.event.get("CrHelperPoll")),
            leftovers=world.eventbridge.leftovers() + world.eventbridge.active_rules(),
            violations=[str(v) for v in world.verify()],
            real_s=real,
            median_modelled_s=statistics.median(elapsed),
            max_modelled_s=max(elapsed),
            failures=[o.summary()[:300] for o in outcomes if o.status != "SUCCESS"][:3],
        )


def summary(result: Handoffs) -> str:
    """The figure as markdown: settings, the table, the verdict."""
    lines = [
        f"{result.count} Creates at once, each handed off to an EventBridge rule and answered by a poll; "
        f"at most {result.concurrency} Lambda environments, 120 s Lambda timeout, backups READY 90 s after "
        f"RestoreBackup. Modelled figures; the run took {result.real_s:.0f} s real.",
        "",
        "| resources | SUCCESS | exactly one answer | rules | lambda:AddPermission | polls | left behind "
        "| violations | Create latency (modelled, median / max) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {result.count} | {result.succeeded} | {sum(1 for a in result.answers if a == 1)} | {result.rules} "
        f"| {result.add_permission} | {result.polls} | {len(result.leftovers)} | {len(result.violations)} "
        f"| {result.median_modelled_s:.0f} s / {result.max_modelled_s:.0f} s |",
        "",
        "All succeeded."
        if result.all_ok
        else "NOT all succeeded: " + "; ".join(result.failures + result.leftovers[:5] + result.violations[:5]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run once and print the figure (``make bench`` puts it in bench/results.md); 0 when every hand-off
    succeeded cleanly."""
    parser = argparse.ArgumentParser(prog="python -m bench.handoffs", description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=25)
    args = parser.parse_args(argv)
    result = measure_handoffs(args.count, args.concurrency)
    print("# Concurrent polling hand-offs on one provider\n\n" + summary(result))
    return 0 if result.all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
