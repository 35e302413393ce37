"""Tables for the terminal and bench/results.md, and the latency plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.models import CDK_CREATE_OVERHEAD_S, CDK_DELETE_OVERHEAD_S, CDK_QUERY_INTERVAL_S
from bench.rows import CDK_PROVIDER, CRHELPER_DOCUMENTED, FLOOR, MEASURED, OURS, VARIANT_LABELS, Row
from bench.run import BenchResults
from bench.world import WORKAROUNDS

BASELINES = (CRHELPER_DOCUMENTED, CDK_PROVIDER, FLOOR)
DASH = "-"
COMPRESSED_DELETE = " (+)"
"""Marks a Delete ratio taken from a compressed run of ours (see the notes)."""


def seconds(value: float | None) -> str:
    """Seconds with precision that suits the magnitude."""
    if value is None:
        return DASH
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def count(value: float | None) -> str:
    """A count (medians may be halves)."""
    return DASH if value is None else f"{value:g}"


def ratio(ours: float | None, other: float | None) -> str:
    """ours / other, two significant digits; below 1 means ours is faster or makes fewer."""
    if ours is None or other is None:
        return DASH
    if other == 0:
        return "n/a" if ours else "1x"
    value = ours / other
    return f"{value:.2g}x" if value < 10 else f"{value:.0f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    """A Markdown pipe table or an aligned plain-text table."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in rows]
    return "\n".join(out)


def _kind(row: Row) -> str:
    if row.kind == MEASURED:
        return f"measured @{row.speed:g}x"
    return row.kind


def _runs(row: Row) -> str:
    return DASH if row.runs is None else f"{row.succeeded}/{row.runs}"


def _calls(row: Row) -> str:
    text = count(row.api_calls)
    if row.throttled:
        text += f" ({count(row.throttled)} throttled)"
    return text


def lifecycle_table(results: BenchResults, markdown: bool) -> str:
    """One row per (case, variant): latency, invocations, rules, calls per Create + Delete."""
    headers = [
        "Time to READY",
        "Variant",
        "Kind",
        "Runs ok",
        "Create s",
        "Delete s",
        "Lambda invocations",
        "Lambda s",
        "Max concurrent",
        "EventBridge rules",
        "CloudHSM calls",
        "Issues",
    ]
    rows = []
    order = [OURS, *BASELINES]
    for case in results.cases:
        for variant in order:
            row = results.row(variant, case)
            if row is None:
                continue
            rows.append(
                [
                    case.label,
                    row.label,
                    _kind(row),
                    _runs(row),
                    seconds(row.create_s),
                    seconds(row.delete_s),
                    count(row.invocations),
                    seconds(row.lambda_s),
                    count(row.max_concurrent),
                    count(row.rules),
                    _calls(row),
                    ", ".join(row.violations) or DASH,
                ]
            )
    return table(headers, rows, markdown)


def ratio_table(results: BenchResults, markdown: bool) -> str:
    """Ours divided by each baseline, per case (below 1: ours is faster / makes fewer)."""
    headers = ["Time to READY", "ours / ...", "Create", "Delete", "Lambda invocations", "Lambda s", "CloudHSM calls"]
    rows = []
    for case in results.cases:
        ours = results.row(OURS, case)
        if ours is None:
            continue
        for variant in BASELINES:
            other = results.row(variant, case)
            if other is None:
                continue
            rows.append(
                [
                    case.label,
                    VARIANT_LABELS[variant],
                    ratio(ours.create_s, other.create_s),
                    ratio(ours.delete_s, other.delete_s) + (COMPRESSED_DELETE if (ours.speed or 1) > 1 else ""),
                    ratio(ours.invocations, other.invocations),
                    ratio(ours.lambda_s, other.lambda_s),
                    ratio(ours.api_calls, other.api_calls),
                ]
            )
    return table(headers, rows, markdown)


def cold_start_table(results: BenchResults, markdown: bool) -> str:
    """Import (+ first event) of a fresh process: ours against the floor (import crhelper, one cloudhsmv2 client)."""
    cold = results.cold_start
    if cold is None:
        return ""

    def ms(value: float | None) -> str:
        return DASH if value is None else f"{value * 1000:.0f} ms"

    headers = [f"Fresh process (median of {cold.runs})", "Import (+init)", "First event", "Sum", "Spawn to done"]
    ours = [cold.median("ours", f) for f in ("import_s", "first_s", "total_s", "spawn_to_done_s")]
    floor = [cold.median("floor", f) for f in ("import_s", "first_s", "total_s", "spawn_to_done_s")]
    rows = [
        ["ours: import app + first Create (READY at once)", *(ms(v) for v in ours)],
        ["floor: import crhelper + one cloudhsmv2 client", *(ms(v) for v in floor)],
        ["ours / floor", ratio(ours[0], floor[0]), DASH, ratio(ours[2], floor[2]), ratio(ours[3], floor[3])],
    ]
    return table(headers, rows, markdown)


def package_table(results: BenchResults, markdown: bool) -> str:
    """Zip bytes, entries, unpacked bytes."""
    if not results.packages:
        return ""
    rows = [[p.name, f"{p.zip_bytes:,}", str(p.entries), f"{p.unpacked_bytes:,}"] for p in results.packages]
    if len(results.packages) > 1:
        first, second = results.packages[0], results.packages[1]
        rows.append(["ours / baseline", ratio(first.zip_bytes, second.zip_bytes), DASH, DASH])
    return table(["Lambda zip", "Bytes", "Entries", "Unpacked bytes"], rows, markdown)


def scale_table(results: BenchResults, markdown: bool) -> str:
    """Create and Delete of many resources at once under throttling."""
    scale = results.scale
    if scale is None:
        return ""
    headers = [
        "Phase",
        "Succeeded",
        "Wall s",
        "Median s",
        "Max s",
        "CloudHSM calls",
        "Throttled (retried)",
        "Lambda invocations",
        "EventBridge rules",
    ]
    rows = [
        [
            p.name,
            f"{p.succeeded}/{p.resources}",
            seconds(p.wall_s),
            seconds(p.median_s),
            seconds(p.max_s),
            f"{p.api_calls} (" + ", ".join(f"{k} {v}" for k, v in sorted(p.calls_by_operation.items())) + ")",
            str(p.throttled),
            str(p.invocations),
            str(p.rules),
        ]
        for p in scale.phases
    ]
    return table(headers, rows, markdown)


def notes(results: BenchResults) -> list[str]:
    """What is measured, what is modelled, and every assumption or workaround."""
    found = [
        "Latencies are CloudFormation-visible (event sent -> first response PUT received) in MODELLED "
        "seconds of the simulator's clock ('@Nx' = N modelled seconds per real second). At 1x modelled = real. "
        "Above 1x the worker's time.sleep/time/monotonic run compressed, so waits and schedules are modelled "
        "exactly, but real compute is not compressed: each real second of work shows as N modelled seconds "
        "(e.g. the baseline's ~0.2 s of real work per Create, mostly moto's EventBridge/Lambda API, adds ~4 s "
        "at 20x). Compressed figures therefore err high by a few seconds, never low.",
        "Every measured lifecycle runs on a warm execution environment (one warm-up Update first); the cold "
        "start is measured separately, in real time, in fresh processes.",
        "Lifecycle = Create, then Delete of the same resource. Ours runs with OnDelete=Delete so both "
        "handlers call DeleteBackup; 'Issues' are protocol problems the simulator found (secret-in-logs: a "
        "ResponseURL signature appeared in the function's logs).",
        f"CDK Provider + isComplete is a MODEL, not a run (aws-cdk-lib 2.275 provider framework): user onEvent "
        f"(RestoreBackup), then a Step Functions waiter calls isComplete (DescribeBackups) at once and every "
        f"queryInterval={CDK_QUERY_INTERVAL_S:g} s (backoffRate 1, totalTimeout 30 min). Create = ceil(t/5)*5 s "
        f"+ {CDK_CREATE_OVERHEAD_S:g} s assumed Lambda/Step Functions overhead; Delete = {CDK_DELETE_OVERHEAD_S:g} s. "
        "Invocations count user code (onEvent + isComplete = 1 + ceil(t/5) + 1 on Create, 2 on Delete); the "
        "framework's own relay Lambdas double that.",
        "Physical floor: latency = time-to-READY (Delete: one API call), API calls = RestoreBackup + "
        "DeleteBackup, one invocation per request, no EventBridge rule.",
        "crhelper as documented: bench/baselines/crhelper_documented/index.py, CfnResource() defaults "
        "(log_level DEBUG, polling_interval 2 -> rate(2 minutes), sleep_on_delete 120), botocore default "
        "retries. It trusts the offline ResponseURL CA via SSL_CERT_FILE (environment only, code as documented).",
        "Lambda s = modelled seconds the function ran for the lifecycle's requests (what Lambda bills); Max "
        "concurrent = most invocations of one lifecycle running at once (above 1: poll invocations overlap).",
        f"{COMPRESSED_DELETE.strip()} Ours' Delete does not wait, so in a compressed run its modelled time is only "
        "its real compute multiplied by the speed (about 0.07 s real shows as 1.4 s at 20x); the 1x rows show "
        "it undistorted.",
    ]
    if WORKAROUNDS:
        found.append("Workarounds in bench/ (offline/ not edited): " + "; ".join(sorted(WORKAROUNDS)) + ".")
    runs_note = ", ".join(
        f"{VARIANT_LABELS[m.variant]} {m.case.label}: {m.runs} run(s) @{m.speed:g}x" for m in results.config.plan
    )
    found.append(f"Runs (medians): {runs_note}.")
    scale = results.scale
    if scale is not None:
        found.append(
            f"Scale (ours only, real time): {scale.backups} resources in one stack, Create events all sent at once "
            f"(then all Deletes), backups READY {scale.t_ready:g} s after RestoreBackup, emulator throttles above "
            f"{scale.rps:g} requests/s (token bucket, burst {scale.rps:g}). The simulated Lambda runs at most "
            f"{scale.concurrency} execution environments, pre-warmed (the rest of the events queue): 100 worker "
            "processes importing boto3 at once would measure this 2-core machine, not the handler. "
            "boto3 retry: standard mode, 8 attempts; 'throttled' = ThrottlingException answers, each one retried. "
            "Retry jitter makes this run vary: some runs on this machine saw 1 of 100 Creates fail after 8 "
            "throttled attempts (DescribeBackups), others none."
        )
    for row in results.rows:
        if row.kind == MEASURED and row.note:
            found.append(f"{row.label}, {row.case.label}: {row.note}.")
    return found


def findings(results: BenchResults) -> list[str]:
    """Headlines read off this run's numbers (regenerated with every run, so they never go stale)."""
    found: list[str] = []
    for case in results.cases:
        ours, crh = results.row(OURS, case), results.row(CRHELPER_DOCUMENTED, case)
        cdk, floor = results.row(CDK_PROVIDER, case), results.row(FLOOR, case)
        if ours is None or ours.create_s is None:
            continue
        parts = [f"{case.label}: ours answers Create in {seconds(ours.create_s)} s"]
        if floor is not None and floor.create_s:
            parts.append(f"{seconds(ours.create_s - floor.create_s)} s after READY")
        if crh is not None and crh.create_s is not None:
            parts.append(f"crhelper as documented {seconds(crh.create_s)} s")
        if cdk is not None and cdk.create_s is not None:
            parts.append(f"CDK Provider model {seconds(cdk.create_s)} s")
        line = ", ".join(parts)
        if ours.max_concurrent and ours.max_concurrent > 1:
            line += (
                f". Its poll invocations overlapped (up to {count(ours.max_concurrent)} at once): the function ran "
                f"{seconds(ours.lambda_s)} modelled s for this lifecycle"
                + (f" (crhelper as documented: {seconds(crh.lambda_s)} s)" if crh is not None else "")
                + f" and made {count(ours.api_calls)} CloudHSM calls"
            )
        found.append(line + ".")
    for variant in (OURS, CRHELPER_DOCUMENTED):
        measured = [r for r in results.rows if r.variant == variant and r.kind == MEASURED]
        flagged = [r for r in measured if r.violations]
        if flagged:
            codes = sorted({code for r in flagged for code in r.violations})
            found.append(
                f"{VARIANT_LABELS[variant]}: protocol issues in {len(flagged)} of {len(measured)} cases: "
                f"{', '.join(codes)}."
            )
    delete_rows = [r for r in results.rows if r.variant == CRHELPER_DOCUMENTED and r.delete_s is not None]
    ours_fast = [r for r in results.rows if r.variant == OURS and r.speed == 1 and r.delete_s is not None]
    if delete_rows and ours_fast:
        found.append(
            f"Delete: ours {seconds(ours_fast[0].delete_s)} s (1x), crhelper as documented "
            f"{seconds(delete_rows[0].delete_s)} s (its sleep_on_delete=120)."
        )
    scale = results.scale
    if scale is not None:
        for phase in scale.phases:
            found.append(
                f"Scale {phase.name}: {phase.succeeded}/{phase.resources} succeeded in {seconds(phase.wall_s)} s "
                f"with {phase.api_calls} CloudHSM calls, {phase.throttled} of them throttled and retried"
                + (f"; first failure: {phase.failures[0]}" if phase.failures else "")
                + "."
            )
    return found


def render(results: BenchResults, markdown: bool) -> str:
    """The whole report."""
    parts: list[str] = []

    def section(title: str, body: str) -> None:
        if not body:
            return
        parts.append(f"## {title}\n\n{body}\n" if markdown else f"{title}\n{'=' * len(title)}\n{body}\n")

    header = "# Benchmark: CloudHSM backup restore custom resource\n" if markdown else ""
    machine = results.machine
    intro = (
        f"Machine: {machine.describe()}.\n"
        f"Code measured: {results.source}.\n"
        f"Load average (1 min) at start / end: {results.load[0]:.2f} / {results.load[1]:.2f} "
        "(the machine is shared; other work adds noise to real-time figures).\n"
        f"`make bench` wall time: {results.wall_s:.0f} s"
        + (" (" + ", ".join(f"{k} {v:.0f} s" for k, v in results.section_s.items()) + ")" if results.section_s else "")
        + ".\n"
    )
    parts.append(header + ("\n" if markdown else "") + intro)
    section(
        "Lifecycle per resource (Create + Delete; latency in modelled seconds, medians)",
        lifecycle_table(results, markdown),
    )
    section("Ratios: ours / baseline (below 1 = ours faster or fewer)", ratio_table(results, markdown))
    section("Cold start (real time)", cold_start_table(results, markdown))
    section("Package size", package_table(results, markdown))
    section("Scale", scale_table(results, markdown))
    bullet = "- " if markdown else "* "
    section("Findings (read off this run)", "\n".join(bullet + n for n in findings(results)))
    section("Notes: measured vs modelled, assumptions", "\n".join(bullet + n for n in notes(results)))
    return "\n".join(parts)


def plot(results: BenchResults, path: Path) -> Path:
    """Create latency against time-to-READY for ours and the baselines (symlog axes)."""
    import matplotlib  # noqa: PLC0415 - only a full run plots; keep the import off the smoke path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    styles = {
        OURS: {"marker": "o", "linestyle": "-", "color": "tab:blue"},
        CRHELPER_DOCUMENTED: {"marker": "s", "linestyle": "-", "color": "tab:red"},
        CDK_PROVIDER: {"marker": "^", "linestyle": "--", "color": "tab:green"},
        FLOOR: {"marker": "", "linestyle": ":", "color": "black"},
    }
    fig, axis = plt.subplots(figsize=(8, 5.5))
    for variant, style in styles.items():
        points = sorted(
            (r.case.t_ready, r.create_s) for r in results.rows if r.variant == variant and r.create_s is not None
        )
        if not points:
            continue
        kind = next(r.kind for r in results.rows if r.variant == variant)
        label = VARIANT_LABELS[variant] + (" (model)" if kind == "model" else "")
        axis.plot([p[0] for p in points], [p[1] for p in points], label=label, **style)  # type: ignore[arg-type]
        if variant in (OURS, CRHELPER_DOCUMENTED):
            offset = (6, -12) if variant == OURS else (-10, 8)
            for x, y in points:
                axis.annotate(
                    seconds(y), (x, y), textcoords="offset points", xytext=offset, fontsize=8, color=style["color"]
                )
    axis.set_xscale("symlog", linthresh=5)
    axis.set_yscale("symlog", linthresh=0.1)
    ticks = [c.t_ready for c in results.cases]
    axis.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    axis.set_ylim(bottom=0)
    axis.set_xlabel("time from RestoreBackup to READY (s)")
    axis.set_ylabel("CloudFormation-visible Create latency (modelled s)")
    axis.set_title("Create latency vs time-to-READY (medians; CDK Provider = model)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
