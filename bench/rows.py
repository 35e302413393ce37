"""The shape of every lifecycle row: one (case, variant) pair, run in the offline world, modelled or a limit."""

from __future__ import annotations

from dataclasses import dataclass, field

RUN = "run"
MODEL = "model"
LIMIT = "limit"


@dataclass(frozen=True)
class Case:
    """A backup that takes ``t_ready`` modelled seconds from RestoreBackup to READY (its seed's ``restore_seconds``)."""

    label: str
    t_ready: float


CASES: tuple[Case, ...] = (
    Case("READY at once", 0.0),
    Case("READY in 5 s", 5.0),
    Case("READY in 90 s", 90.0),
    Case("READY in 5 min", 300.0),
    Case("READY in 30 min", 1800.0),
)

OURS = "ours"
CRHELPER_DOCUMENTED = "crhelper-documented"
CDK_PROVIDER = "cdk-provider"
FLOOR = "floor"

VARIANT_LABELS: dict[str, str] = {
    OURS: "ours (handler/)",
    CRHELPER_DOCUMENTED: "crhelper as documented",
    CDK_PROVIDER: "CDK Provider+isComplete",
    FLOOR: "physical floor",
}


@dataclass
class Row:
    """One lifecycle (Create then Delete): latencies in modelled seconds of the virtual clock, and counts."""

    case: Case
    variant: str
    kind: str
    create_s: float | None
    delete_s: float | None
    invocations: float | None
    rules: float | None
    api_calls: float | None
    ok: bool = True
    """The run succeeded: both answers SUCCESS and the backup back in PENDING_DELETION (models and limits: True)."""
    calls_by_operation: dict[str, int] = field(default_factory=dict)
    lambda_s: float | None = None
    """Modelled seconds the function ran for these requests (what Lambda bills, before rounding)."""
    max_concurrent: float | None = None
    """Most invocations of one lifecycle running at the same time."""
    violations: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def label(self) -> str:
        """The variant's display name."""
        return VARIANT_LABELS.get(self.variant, self.variant)

    @property
    def after_ready_s(self) -> float | None:
        """How long after the backup became READY the Create was answered (polling and hand-off granularity)."""
        return None if self.create_s is None else self.create_s - self.case.t_ready
