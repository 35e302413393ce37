"""``make demo`` and ``run-template``: a template's custom resources through the real handler, offline."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from cloudhsm_offline import signals
from cloudhsm_offline.cfn.stack import StackRun, StackRunner
from cloudhsm_offline.cfn.timeline import Timeline
from cloudhsm_offline.cfn.world import OfflineWorld
from cloudhsm_offline.emulator.seed import DEMO_SEED
from cloudhsm_offline.lambda_runtime.function import DEFAULT_HANDLER
from cloudhsm_offline.report import build_report, interrupted

DEMO_TEMPLATE = Path(__file__).with_name("cfn") / "demo_template.yaml"
EXIT_USAGE = 2


@dataclass
class RunOptions:
    """What to run and how."""

    template: str | Path = DEMO_TEMPLATE
    parameters: dict[str, str] = field(default_factory=dict)
    update: dict[str, str] = field(default_factory=dict)
    update_templates: Sequence[str] = ()
    """Each one an Update applying that (edited) template, in order, with ``parameters`` + ``update``."""
    delete: bool = False
    seed: str | Path | None = DEMO_SEED
    code_dir: str | None = None
    handler: str = DEFAULT_HANDLER
    layers: Sequence[str] | None = None
    restore_seconds: float | None = None
    lambda_timeout: float = 300
    show_logs: bool = False
    region: str | None = None
    account: str | None = None


def run_stack(options: RunOptions, out: TextIO | None = None, json_out: TextIO | None = None) -> int:
    """Create (then optionally Update, any number of times, and Delete) a template's custom resources.

    0 if every operation succeeded with no protocol violation, 1 otherwise (a stack that FAILED or
    rolled back, a broken protocol), 2 when the function cannot even be imported (checked before any
    server starts). The timeline goes to ``out``; with ``json_out`` the JSON report
    (``cloudhsm_offline.report``) is written there once the world has stopped, also when a signal
    stopped the run (then it says how far the run got, and ``interrupted``).

    Signals (``cloudhsm_offline.signals``): the run stops at the first one; the world's teardown and the
    report are never cut short, and a signal that comes during them is raised once they are done.
    """
    out = out or sys.stdout
    steps: list[tuple[str, StackRun | None]] = []
    failures: list[str] = []
    with signals.deferred():
        world = OfflineWorld(
            seed=options.seed,
            restore_seconds=options.restore_seconds,
            code_dir=options.code_dir,
            handler=options.handler,
            layer_packages=options.layers,
            lambda_timeout=options.lambda_timeout,
            region=options.region,
            account=options.account,
        )
        stopped: KeyboardInterrupt | None = None
        status: int | None = None  # None: stopped before the run ended
        try:
            with signals.raising():
                status = _start_and_run(world, options, steps, failures, out)
        except KeyboardInterrupt as exc:
            stopped = exc
        finally:
            try:
                world.stop()
            except Exception:
                if stopped is None:  # when stopping on a signal, the signal decides the exit status
                    raise
        if json_out is not None and status != EXIT_USAGE:
            _write_report(json_out, world, steps, failures, signals.stopped_by(stopped))
        if stopped is not None:
            raise stopped
    assert status is not None
    return status


def _write_report(
    json_out: TextIO,
    world: OfflineWorld,
    steps: list[tuple[str, StackRun | None]],
    failures: list[str],
    stopped_by: str | None,
) -> None:
    """The report of the run, or with ``stopped_by`` (a signal's name) of how far it got."""
    if stopped_by is None:
        document = build_report(world, steps, failures)
    else:
        try:
            document = interrupted(build_report(world, steps, failures), stopped_by)
        except Exception:  # noqa: BLE001 - stopped half-way through start-up: the document says only that
            document = interrupted(None, stopped_by)
    json.dump(document, json_out, indent=2)
    json_out.write("\n")


def _start_and_run(
    world: OfflineWorld,
    options: RunOptions,
    steps: list[tuple[str, StackRun | None]],
    failures: list[str],
    out: TextIO,
) -> int:
    init_error = world.function.check_init()
    if init_error is not None:
        message = f"--handler {options.handler}: {init_error['errorType']}: {init_error['errorMessage']}"
        print(f"cloudhsm-offline: error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_USAGE
    print("Starting the offline world: the function imports; now the servers ...", file=out, flush=True)
    world.start()
    return _run(world, options, steps, failures, out)


def _run(
    world: OfflineWorld,
    options: RunOptions,
    steps: list[tuple[str, StackRun | None]],
    failures: list[str],
    out: TextIO,
) -> int:
    timeline = Timeline(world, out)
    _describe_world(world, options, timeline)
    runner = StackRunner(world.simulator, options.template, options.parameters)
    names = runner.custom_resources()
    timeline.heading(f"Create stack {world.simulator.stack_name} ({', '.join(names)})")
    created = _step(steps, "create", runner.create)
    timeline.outputs(created.outputs, f"Outputs after Create ({created.status})")
    updates: list[str | None] = list(options.update_templates) or ([None] if options.update else [])
    for number, template in enumerate(updates, start=1):
        if not created.ok or (number > 1 and steps[-1][1] is not None and not steps[-1][1].ok):
            break
        changes = ", ".join(f"{k}={v}" for k, v in options.update.items())
        what = " and ".join(x for x in (f"template {template}" if template else "", changes) if x)
        timeline.heading(f"Update stack: {what}")
        updated = _step(steps, "update", partial(runner.update, options.update, template))
        timeline.outputs(updated.outputs, f"Outputs after Update ({updated.status})")
    if options.delete and runner.applied:
        timeline.heading("Delete stack")
        _step(steps, "delete", runner.delete)
    timeline.backups()
    failures.extend(_failures(steps))
    failures.extend(str(v) for v in world.verify())
    report = build_report(world, steps, failures)
    _summary(world, timeline, report)
    if options.show_logs:
        timeline.heading("Function logs")
        timeline.plain(_redacted_logs(world))
    return 1 if failures else 0


def _step(steps: list[tuple[str, StackRun | None]], name: str, operation: Callable[[], StackRun]) -> StackRun:
    """Run one stack operation, listed in ``steps`` from its start: a signal meanwhile leaves it INTERRUPTED."""
    steps.append((name, None))
    steps[-1] = (name, done := operation())
    return done


def run_demo(code_dir: str | None = None, out: TextIO | None = None) -> int:
    """The demo: Create -> outputs -> Update to another backup (replacement) -> Delete, OnDelete=Delete."""
    out = out or sys.stdout
    restore, replace = "backup-demo2restore", "backup-demo2replace"
    print(
        "Offline demo: CloudFormation simulator -> real handler (Lambda worker) -> emulated CloudHSM API.\n"
        f"Create restores {restore}, Update switches to {replace} (a replacement, so CloudFormation deletes\n"
        f"the old resource in cleanup), Delete ends the stack. OnDelete=Delete puts each backup back into\n"
        "PENDING_DELETION. Time is modelled: a ten-minute restore takes no real ten minutes. Each Delete\n"
        "first removes the polling hand-off's rule and parameter in case a wait left them: a 400 not-found\n"
        "there is the expected answer.",
        file=out,
    )
    options = RunOptions(
        parameters={"BackupId": restore, "OnDelete": "Delete"},
        update={"BackupId": replace},
        delete=True,
        code_dir=code_dir,
    )
    status = run_stack(options, out)
    print(f"\nDemo {'passed' if status == 0 else 'FAILED'}.", file=out)
    return status


def _describe_world(world: OfflineWorld, options: RunOptions, timeline: Timeline) -> None:
    timeline.heading("Offline world")
    timeline.plain(f"  function     {world.function.arn} (handler {world.function.handler})")
    timeline.plain(f"  code         {world.function.code_dir}" + _layers(world))
    if world.emulator is not None:
        timeline.plain(f"  CloudHSM     {world.emulator.url} (emulated, seed {Path(str(options.seed)).name})")
    if world.eventbridge is not None:
        timeline.plain(f"  events/λ API {world.eventbridge.url} (moto behind a checking gateway)")
    timeline.plain(f"  ResponseURL  {world.responses.url} (HTTPS, offline CA)")
    timeline.plain("  clock        virtual: it moves only while every part waits, so compute takes no modelled time")
    timeline.plain("  columns      modelled seconds since the start, marker, what happened")
    timeline.plain(
        "  markers      CFN> CloudFormation sends an event   <CFN a response reaches the ResponseURL\n"
        "               CFN= CloudFormation decides the operation   λ> the function is invoked   λ< it returns\n"
        "               λ! it fails   HSM a CloudHSM API call   EB an EventBridge/SSM/Lambda API call or a rule firing"
    )


def _layers(world: OfflineWorld) -> str:
    layers = world.function.layer_packages
    return f" + layer {', '.join(layers)}" if layers else ""


def _failures(steps: Sequence[tuple[str, StackRun | None]]) -> list[str]:
    failures: list[str] = []
    for name, run in steps:
        if run is None:
            continue
        failed = [item for outcome in run.outcomes for item in outcome.flatten() if not item.ok]
        reasons = {item.reason for item in failed}
        # A resource's error repeats its failed operation's reason: list the operation (it says more) once.
        failures.extend(f"{name}: {error}" for error in run.errors if error.split(": ", 1)[-1] not in reasons)
        failures.extend(f"{name}: {item.summary()}" for item in failed)
        failures.extend(f"{name}: output {o.name}: {o.error}" for o in run.outputs if o.error)
    return list(dict.fromkeys(failures))


def _summary(world: OfflineWorld, timeline: Timeline, report: dict[str, Any]) -> None:
    """The report's summary, as lines."""
    summary, failures = report["summary"], report["failures"]
    timeline.heading("Summary")
    timeline.plain(f"  invocations  {summary['invocations']} ({summary['cold_starts']} cold)")
    if world.emulator is not None:
        calls = ", ".join(f"{k} x{v}" for k, v in summary["cloudhsm_calls"].items())
        timeline.plain(f"  CloudHSM API {calls or 'no calls'}")
    if world.eventbridge is not None:
        timeline.plain(
            f"  EventBridge  {summary['eventbridge_rules_created']} rule(s) created, "
            f"{summary['eventbridge_firings']} firing(s), {summary['eventbridge_rules_deleted']} removed"
        )
    timeline.plain(f"  secrets      ResponseURL signature in logs: {'YES' if summary['secrets_in_logs'] else 'no'}")
    if failures:
        timeline.plain(timeline.paint("  FAILED:", "bad"))
        for failure in failures:
            timeline.plain(timeline.paint(f"    - {failure}", "bad"))
    else:
        timeline.plain(timeline.paint("  all operations succeeded; no protocol violations", "ok"))


def _redacted_logs(world: OfflineWorld) -> str:
    text = world.logs()
    for signature in world.responses.secrets:
        text = text.replace(signature, "<signature>")
    return text


def parse_pairs(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["K=V", ...]`` as a dict."""
    values: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        values[key] = value
    return values
