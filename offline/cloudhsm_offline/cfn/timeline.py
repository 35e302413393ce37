"""A readable, live timeline of an offline run: events, invocations, API calls, rules, responses, outcomes."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from cloudhsm_offline import report
from cloudhsm_offline.cfn.outcome import Outcome
from cloudhsm_offline.cfn.response_server import ReceivedResponse
from cloudhsm_offline.cfn.stack import OutputValue
from cloudhsm_offline.cfn.world import OfflineWorld
from cloudhsm_offline.emulator.calls import Call
from cloudhsm_offline.eventbridge.gateway import ApiCall
from cloudhsm_offline.eventbridge.scheduler import Firing, RuleState
from cloudhsm_offline.lambda_runtime.worker import InvocationRecord

COLOURS = {"ok": "32", "bad": "31", "dim": "2", "head": "1"}


def short(request_id: str) -> str:
    """The first block of a UUID."""
    return request_id.split("-", maxsplit=1)[0]


class Timeline:
    """Subscribes to a world's parts and prints one line per step, stamped with modelled seconds since the start."""

    def __init__(self, world: OfflineWorld, out: TextIO | None = None) -> None:
        self.world = world
        self.out = out or sys.stdout
        self.colour = self.out.isatty()
        self.start_modelled = world.clock.now()
        self._lock = threading.Lock()
        self._numbers: dict[str, int] = {}
        world.simulator.listeners.add(self._on_simulator)
        world.function.listeners.add(self._on_invocation)
        world.responses.listeners.add(self._on_response)
        if world.eventbridge is not None:
            world.eventbridge.listeners.add(self._on_eventbridge)
        if world.emulator is not None:
            world.emulator.call_log.listeners.add(self._on_cloudhsm_call)

    # -- output ------------------------------------------------------------------------------------

    def paint(self, text: str, style: str) -> str:
        """Wrap text in an ANSI colour when writing to a terminal."""
        return f"\x1b[{COLOURS[style]}m{text}\x1b[0m" if self.colour else text

    def line(self, marker: str, text: str, style: str | None = None, at: float | None = None) -> None:
        """Print one timeline line."""
        modelled = (at if at is not None else self.world.clock.now()) - self.start_modelled
        stamp = f"{modelled:8.1f}s"
        body = f"{marker:<5} {text}"
        self.plain(f"{self.paint(stamp, 'dim')}  {self.paint(body, style) if style else body}")

    def heading(self, text: str) -> None:
        """Print a section heading."""
        self.plain(f"\n{self.paint(text, 'head')}")

    def plain(self, text: str = "") -> None:
        """Print a line as is."""
        with self._lock:
            print(text, file=self.out, flush=True)

    # -- listeners ---------------------------------------------------------------------------------

    def _on_simulator(self, kind: str, item: Any) -> None:
        if kind == "event":
            props = item.get("ResourceProperties", {})
            shown = ", ".join(f"{k}={v}" for k, v in props.items() if k != "ServiceToken" and isinstance(v, str))
            extra = f" physical={item['PhysicalResourceId']}" if "PhysicalResourceId" in item else ""
            what = f"{item['RequestType']} {item['LogicalResourceId']} (request {short(item['RequestId'])})"
            self.line("CFN>", f"{what}{extra} [{shown}]")
        elif kind == "outcome":
            self._on_outcome(item)

    def _on_outcome(self, outcome: Outcome) -> None:
        style = "ok" if outcome.ok else "bad"
        text = (
            f"{outcome.operation} {outcome.logical_id} -> {outcome.status} "
            f"in {outcome.elapsed_modelled:.1f}s, "
            f"{outcome.invocations} invocation(s)"
        )
        if outcome.role != "request":
            text += f" [{outcome.role}]"
        self.line("CFN=", text, style)
        if outcome.status != "SUCCESS" and outcome.reason:
            self.line("", f"reason: {outcome.reason}", "bad")
        for violation in outcome.violations:
            self.line("", f"violation: {violation}", "bad")

    def _on_invocation(self, phase: str, record: InvocationRecord) -> None:
        number = self._numbers.setdefault(record.request_id, len(self._numbers) + 1)
        label = f"#{number} {record.kind} (request {short(str(record.event.get('RequestId', '?')))})"
        if phase == "start":
            how = "cold start" if record.cold else "warm"
            poll = " poll" if "CrHelperPoll" in record.event else ""
            self.line("λ>", f"invoke{poll} {label} via {record.source}, {how}", at=record.start_modelled)
            return
        if record.error is not None:
            self.line("λ!", f"{label} error {record.error.get('errorType')}: {record.error.get('errorMessage')}", "bad")
        else:
            self.line("λ<", f"{label} returned after {record.modelled_seconds or 0:.1f}s", "dim")

    def _on_response(self, response: ReceivedResponse) -> None:
        body = response.parsed if isinstance(response.parsed, dict) else {}
        text = f"{body.get('Status', '?')} physical={body.get('PhysicalResourceId') or '-'} ({response.size} bytes)"
        if body.get("Reason"):
            text += f" reason={body['Reason']!r}"
        self.line("<CFN", f"response to request {short(response.request_id)}: {text}", at=response.modelled)

    def _on_eventbridge(self, kind: str, item: Any) -> None:
        if kind == "call" and isinstance(item, ApiCall):
            params = item.params
            detail = " ".join(
                str(params[key]) for key in ("Name", "Rule", "ScheduleExpression", "StatementId") if key in params
            )
            outcome = "ok" if item.status < 400 else f"{item.error} ({item.status})"
            self.line(
                "EB", f"{item.service}.{item.operation} {detail} -> {outcome}", None if item.status < 400 else "bad"
            )
        elif kind == "fire" and isinstance(item, Firing):
            if item.problem:
                self.line("EB!", f"rule {item.rule} could not fire: {item.problem}", "bad")
            else:
                self.line("EB", f"rule {item.rule} fired -> invoking the function with the target Input")
        elif kind == "rule-gone" and isinstance(item, RuleState):
            self.line("EB", f"rule {item.name} gone after firing {item.fired} time(s)", "dim")

    def _on_cloudhsm_call(self, call: Call) -> None:
        params = call.params or {}
        target = params.get("BackupId") or params.get("ResourceId")  # TagResource & co. name a ResourceId
        if target is None:
            ids = (params.get("Filters") or {}).get("backupIds")
            target = ",".join(ids) if ids else ""
        extras = f" NeverExpires={params['NeverExpires']}" if "NeverExpires" in params else ""
        if params.get("TagList"):
            extras += " " + ",".join(f"{tag.get('Key')}" for tag in params["TagList"] if isinstance(tag, dict))
        style = None if call.ok else "bad"
        self.line("HSM", f"{call.operation} {target}{extras} -> {call.outcome}", style, at=call.at)

    # -- tables ------------------------------------------------------------------------------------

    def outputs(self, outputs: list[OutputValue], title: str = "Outputs") -> None:
        """Print an outputs table."""
        self.heading(title)
        if not outputs:
            self.plain("  (none)")
            return
        width = max(len(o.name) for o in outputs)
        for output in outputs:
            value = output.value if output.error is None else self.paint(f"ERROR {output.error}", "bad")
            self.plain(f"  {output.name:<{width}}  {value}")

    def backups(self) -> None:
        """Print the emulator's backups and their states."""
        if self.world.emulator is None:
            return
        self.heading("Emulated backups")
        for backup in report.backups(self.world):
            extra = f" (DeleteTimestamp {backup['delete_timestamp']})" if backup["delete_timestamp"] else ""
            self.plain(f"  {backup['region']:<14} {backup['backup_id']:<24} {backup['state']}{extra}")
