"""What CloudFormation records about custom resources: converted properties, resource state, operation outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudhsm_offline.cfn.checks import Violation
from cloudhsm_offline.cfn.response_server import ReceivedResponse

DEFAULT_RESOURCE_TYPE = "Custom::CloudHsmBackupRestore"
DEFAULT_SERVICE_TIMEOUT = 3600


def cfn_string(value: Any) -> Any:
    """Convert property values as CloudFormation does: scalars become strings, containers keep their shape."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): cfn_string(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cfn_string(v) for v in value]
    return value


@dataclass
class ResourceState:
    """What the simulated stack remembers about a custom resource (the simulator keys it by logical id)."""

    resource_type: str
    physical_id: str
    properties: dict[str, Any]
    data: dict[str, Any]


@dataclass
class Outcome:
    """The result of one operation as CloudFormation records it."""

    operation: str
    logical_id: str
    request_id: str
    role: str
    status: str
    reason: str
    physical_resource_id: str | None
    data: dict[str, Any]
    response_status: str | None
    response_bytes: int | None
    elapsed_modelled: float
    invocations: int
    violations: list[Violation]
    event: dict[str, Any]
    responses: list[ReceivedResponse]
    timed_out: bool = False
    deliveries: int = 1
    event_sent: float = 0.0
    followups: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """SUCCESS with no violations."""
        return self.status == "SUCCESS" and not self.violations

    @property
    def all_ok(self) -> bool:
        """This outcome and every follow-up (cleanup, rollback) are ok."""
        return self.ok and all(f.all_ok for f in self.followups)

    def followup(self, role: str) -> Outcome | None:
        """The follow-up with this role (``cleanup``, ``rollback``, ``update-rollback``)."""
        return next((f for f in self.followups if f.role == role), None)

    @property
    def cleanup(self) -> Outcome | None:
        """The Delete of the replaced resource, if any."""
        return self.followup("cleanup")

    @property
    def rollback(self) -> Outcome | None:
        """The rollback Delete (failed Create) or rollback Update (failed Update), if any."""
        return self.followup("rollback") or self.followup("update-rollback")

    def flatten(self) -> list[Outcome]:
        """This outcome followed by its follow-ups, depth first."""
        return [self, *(o for f in self.followups for o in f.flatten())]

    def summary(self) -> str:
        """One line: operation, status, physical id, reason."""
        text = f"{self.operation} {self.logical_id} ({self.role}): {self.status} {self.physical_resource_id or '-'}"
        if self.reason:
            text += f" - {self.reason}"
        return text
