"""``run-template --output json``: one JSON document a pipeline can assert on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cloudhsm_offline import REPORT_SCHEMA

if TYPE_CHECKING:  # only types: the CLI imports this module to mark a document interrupted, world or none
    from cloudhsm_offline.cfn.outcome import Outcome
    from cloudhsm_offline.cfn.stack import StackRun
    from cloudhsm_offline.cfn.world import OfflineWorld


def operation(step: str, outcome: Outcome) -> dict[str, Any]:
    """One resource operation's final status, as CloudFormation recorded it."""
    return {
        "step": step,
        "logical_id": outcome.logical_id,
        "request_type": outcome.operation,
        "role": outcome.role,
        "status": outcome.status,
        "reason": outcome.reason,
        "physical_resource_id": outcome.physical_resource_id,
        "modelled_seconds": round(outcome.elapsed_modelled, 3),
        "invocations": outcome.invocations,
        "violations": [str(v) for v in outcome.violations],
    }


def backups(world: OfflineWorld) -> list[dict[str, Any]]:
    """Every emulated backup of every region, as DescribeBackups would show it now."""
    if world.emulator is None:
        return []
    account = world.emulator.account
    return [
        {
            "region": region,
            "backup_id": backup["BackupId"],
            "state": backup["BackupState"],
            "cluster_id": backup.get("ClusterId"),
            "delete_timestamp": f"{deleted:%Y-%m-%dT%H:%M:%SZ}" if (deleted := backup.get("DeleteTimestamp")) else None,
        }
        for region in account.regions
        for backup in account.store_of(region).views()
    ]


def build_report(
    world: OfflineWorld,
    steps: Sequence[tuple[str, StackRun | None]],
    failures: Sequence[str],
) -> dict[str, Any]:
    """The whole run: stack statuses, every operation (follow-ups included), Outputs, backups, summary counts."""
    decided = [(name, item) for name, run in steps if run is not None for o in run.outcomes for item in o.flatten()]
    if steps and steps[-1][1] is None:  # under way when a signal came: what CloudFormation decided in it so far
        listed = {id(item) for _name, item in decided}
        decided += [(steps[-1][0], o) for o in list(world.simulator.outcomes) if id(o) not in listed]
    operations = [operation(name, item) for name, item in decided]
    outputs: dict[str, str] = {}
    output_errors: dict[str, str] = {}
    for _name, run in steps:
        if run is not None and run.outputs:  # the Outputs the stack showed last (Delete leaves them be)
            outputs = {o.name: o.value for o in run.outputs if o.value is not None}
            output_errors = {o.name: o.error for o in run.outputs if o.error}
    statuses = Counter(op["status"] for op in operations)
    function = world.function
    calls = Counter(call.operation for call in world.emulator.calls) if world.emulator is not None else Counter()
    bridge = world.eventbridge
    from cloudhsm_offline import __version__  # noqa: PLC0415 - read lazily (see the package docstring)

    return {
        "schema": REPORT_SCHEMA,
        "version": __version__,
        "ok": not failures,
        "stack": {
            "name": world.simulator.stack_name,
            "id": world.simulator.stack_id,
            "region": world.region,
            "account": world.account,
        },
        # None: the step was under way when a signal stopped the run (demo.run_stack records it first)
        "steps": [{"name": name, "status": run.status if run else "INTERRUPTED"} for name, run in steps],
        "operations": operations,
        "outputs": outputs,
        "output_errors": output_errors,
        "backups": backups(world),
        "summary": {
            "operations": len(operations),
            "succeeded": statuses.get("SUCCESS", 0),
            "failed": statuses.get("FAILED", 0),
            "violations": sum(len(op["violations"]) for op in operations),
            "invocations": len(function.records),
            "cold_starts": function.cold_starts,
            "cloudhsm_calls": dict(sorted(calls.items())),
            "eventbridge_rules_created": bridge.count("PutRule") if bridge is not None else 0,
            "eventbridge_firings": len(bridge.firings) if bridge is not None else 0,
            "eventbridge_rules_deleted": bridge.rules_removed() if bridge is not None else 0,
            "secrets_in_logs": bool(world.leaked_secrets()),
        },
        "failures": list(failures),
    }


def interrupted(document: Mapping[str, Any] | None, signal_name: str) -> dict[str, Any]:
    """``document`` (the report of how far the run got; None: not that far) saying a signal stopped the run."""
    from cloudhsm_offline import __version__  # noqa: PLC0415 - read lazily (see the package docstring)

    # Not that far (the world had not started): the same keys, empty, so a pipeline's queries still apply.
    empty: dict[str, Any] = {
        "stack": None,
        "steps": [],
        "operations": [],
        "outputs": {},
        "output_errors": {},
        "backups": [],
        "summary": None,
    }
    report = dict(document or {"schema": REPORT_SCHEMA, "version": __version__, "ok": False, **empty})
    message = f"interrupted by {signal_name}"
    failures = list(report.get("failures", []))
    report.update(
        ok=False, interrupted=signal_name, failures=[*failures, message] if message not in failures else failures
    )
    return report
