"""The shape of every result row: one (case, variant) pair, measured, modelled or a physical limit."""

from __future__ import annotations

from dataclasses import dataclass, field

MEASURED = "measured"
MODEL = "model"
LIMIT = "limit"


@dataclass(frozen=True)
class Case:
    """A backup that takes ``t_ready`` modelled seconds from RestoreBackup to READY."""

    label: str
    t_ready: float


CASES: tuple[Case, ...] = (
    Case("READY at once", 0.0),
    Case("READY in 5 s", 5.0),
    Case("READY in 90 s", 90.0),
    Case("READY in 10 min", 600.0),
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
    """Per-lifecycle (Create then Delete) figures; latencies in modelled seconds, medians over ``runs``."""

    case: Case
    variant: str
    kind: str
    create_s: float | None
    delete_s: float | None
    invocations: float | None
    rules: float | None
    api_calls: float | None
    speed: float | None = None
    runs: int | None = None
    succeeded: int | None = None
    create_real_s: float | None = None
    delete_real_s: float | None = None
    throttled: float | None = None
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
    def all_ok(self) -> bool:
        """Every run succeeded (models and limits count as ok)."""
        return self.kind != MEASURED or (self.runs is not None and self.succeeded == self.runs)
