"""The report for the terminal and bench/results.md, and the latency plot.

Two kinds of figures, in two parts: MODELLED ones (seconds of the offline world's virtual clock, counts)
are the same on every run and machine; REAL ones (cold start, package size, how long the run took) are
this machine's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench import calls, handoffs
from bench.models import CDK_CREATE_OVERHEAD_S, CDK_DELETE_OVERHEAD_S, CDK_QUERY_INTERVAL_S
from bench.rows import CDK_PROVIDER, CRHELPER_DOCUMENTED, FLOOR, MODEL, OURS, RUN, VARIANT_LABELS, Row
from bench.run import BenchResults

BASELINES = (CRHELPER_DOCUMENTED, CDK_PROVIDER, FLOOR)
DASH = "-"


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
    """A count."""
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


def _ok(row: Row) -> str:
    if row.kind != RUN:
        return DASH
    return "yes" if row.ok else "FAILED"


def lifecycle_table(results: BenchResults, markdown: bool) -> str:
    """One row per (case, variant): latencies, invocations, rules, calls per Create + Delete."""
    headers = [
        "Time to READY",
        "Variant",
        "Kind",
        "OK",
        "Create s",
        "Answered after READY s",
        "Delete s",
        "Lambda invocations",
        "Lambda s",
        "Max concurrent",
        "EventBridge rules",
        "CloudHSM calls",
        "Issues",
    ]
    rows = []
    for case in results.cases:
        for variant in (OURS, *BASELINES):
            row = results.row(variant, case)
            if row is None:
                continue
            rows.append(
                [
                    case.label,
                    row.label,
                    row.kind,
                    _ok(row),
                    seconds(row.create_s),
                    seconds(row.after_ready_s),
                    seconds(row.delete_s),
                    count(row.invocations),
                    seconds(row.lambda_s),
                    count(row.max_concurrent),
                    count(row.rules),
                    count(row.api_calls),
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
                    ratio(ours.delete_s, other.delete_s),
                    ratio(ours.invocations, other.invocations),
                    ratio(ours.lambda_s, other.lambda_s),
                    ratio(ours.api_calls, other.api_calls),
                ]
            )
    return table(headers, rows, markdown)


def scale_table(results: BenchResults, markdown: bool) -> str:
    """Create and Delete of many resources at once under throttling (modelled latencies)."""
    scale = results.scale
    if scale is None:
        return ""
    headers = [
        "Phase",
        "Succeeded",
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


def run_time_table(results: BenchResults, markdown: bool) -> str:
    """Real seconds each part of the run took."""
    rows = [[name, f"{value:.0f}"] for name, value in results.section_s.items()]
    rows.append(["whole run", f"{results.wall_s:.0f}"])
    return table(["Part of `make bench`", "Real s"], rows, markdown)


def findings(results: BenchResults) -> list[str]:
    """Headlines read off this run's numbers (regenerated with every run, so they never go stale)."""
    found: list[str] = []
    for case in results.cases:
        ours = results.row(OURS, case)
        if ours is None or ours.create_s is None:
            continue
        parts = [f"{case.label}: ours answers Create {seconds(ours.after_ready_s)} s after READY"]
        for variant in (CRHELPER_DOCUMENTED, CDK_PROVIDER):
            other = results.row(variant, case)
            if other is not None and other.after_ready_s is not None:
                parts.append(f"{VARIANT_LABELS[variant]} {seconds(other.after_ready_s)} s")
        line = ", ".join(parts) + f" (modelled; ours {count(ours.invocations)} invocations"
        line += f", {count(ours.rules)} EventBridge rule(s), {count(ours.api_calls)} CloudHSM calls)"
        found.append(line + ".")
    runs = [r for r in results.rows if r.kind == RUN]
    for variant in (OURS, CRHELPER_DOCUMENTED):
        measured = [r for r in runs if r.variant == variant]
        flagged = [r for r in measured if r.violations]
        if flagged:
            codes = sorted({code for r in flagged for code in r.violations})
            found.append(
                f"{VARIANT_LABELS[variant]}: protocol issues in {len(flagged)} of {len(measured)} cases: "
                f"{', '.join(codes)}."
            )
    ours_deletes = sorted({seconds(r.delete_s) for r in runs if r.variant == OURS})
    crh_deletes = sorted({seconds(r.delete_s) for r in runs if r.variant == CRHELPER_DOCUMENTED})
    if ours_deletes and crh_deletes:
        found.append(
            f"Delete: ours {' / '.join(ours_deletes)} modelled s, crhelper as documented {' / '.join(crh_deletes)} s "
            "(its sleep_on_delete=120)."
        )
    failed = [r for r in runs if not r.ok]
    if failed:
        found.append("FAILED lifecycles: " + "; ".join(f"{r.label}, {r.case.label}: {r.note}" for r in failed) + ".")
    if results.handoffs is not None:
        h = results.handoffs
        found.append(
            f"Hand-offs: {h.succeeded}/{h.count} Creates sent at once answered SUCCESS, "
            f"{sum(1 for a in h.answers if a == 1)} exactly once, {len(h.leftovers)} left behind, "
            f"{h.add_permission} lambda:AddPermission calls; Create latency {h.median_modelled_s:.0f} s median, "
            f"{h.max_modelled_s:.0f} s max (modelled)."
        )
    if results.scale is not None:
        for phase in results.scale.phases:
            found.append(
                f"Scale {phase.name}: {phase.succeeded}/{phase.resources} succeeded, the last after "
                f"{seconds(phase.max_s)} modelled s, with {phase.api_calls} CloudHSM calls, {phase.throttled} of "
                "them throttled and retried" + (f"; first failure: {phase.failures[0]}" if phase.failures else "") + "."
            )
    cold = results.cold_start
    if cold is not None:
        ours_total, floor_total = cold.median("ours", "total_s"), cold.median("floor", "total_s")
        if ours_total is not None and floor_total is not None:
            found.append(
                f"Cold start (real): import + first Create {ours_total * 1000:.0f} ms against "
                f"{floor_total * 1000:.0f} ms for the floor ({ratio(ours_total, floor_total)}, median of {cold.runs})."
            )
    if len(results.packages) > 1:
        ours_zip, other_zip = results.packages[0], results.packages[1]
        found.append(
            f"Package (real): the Lambda zip is {ours_zip.zip_bytes:,} bytes, "
            f"{ratio(ours_zip.zip_bytes, other_zip.zip_bytes)} crhelper as documented ({other_zip.zip_bytes:,})."
        )
    return found


def modelled_notes(results: BenchResults) -> list[str]:
    """What the modelled figures mean, and every assumption behind them."""
    found = [
        "Latencies are CloudFormation-visible (event sent -> first response PUT received) in MODELLED seconds "
        "of the offline world's virtual clock (offline/cloudhsm_offline/clock.py): modelled time stands still "
        "while anything computes (process start, imports, HTTP, moto) and jumps to the next wake-up once every "
        "actor waits (a backoff sleep, a Lambda timeout, an EventBridge schedule, crhelper's sleep_on_delete). "
        "So a Create answered in the invocation that received it shows 0.00 s: what it costs in real time is "
        "the cold start's 'First event' below.",
        "Deterministic: nothing in a lifecycle depends on the machine's speed or load, so each (variant, case) "
        "runs once; tests/bench runs a case twice and asserts the two rows are equal. Latencies, invocations, "
        "Lambda s, rules and calls are the same on every machine.",
        "Each case's backup takes its 'Time to READY' from RestoreBackup to READY: the emulator's "
        "restore_seconds for that backup (the seed field of docs/offline.md). 'Answered after READY' = Create "
        "s minus that time: the granularity of each variant's polling and hand-off.",
        "Lifecycle = Create, then Delete of the same resource, in one world per variant (the first case pays "
        "the cold start, which takes no modelled time). Ours runs with OnDelete=Delete so both handlers call "
        "DeleteBackup; 'Issues' are protocol problems the simulator found (secret-in-logs: a ResponseURL "
        "signature appeared in the function's logs).",
        "Ours (handler/cloudhsm_backup_restore/waiting.py): DescribeBackups 1 s after RestoreBackup, then "
        "every x1.5 up to 5 s, in-process while more than the 90 s hand-off margin of the 300 s Lambda timeout "
        "is left (210 s); then one EventBridge rule rate(1 minute), each poll waiting up to 40 s in-process.",
        "crhelper as documented: bench/baselines/crhelper_documented/index.py, CfnResource() defaults "
        "(log_level DEBUG, polling_interval 2 -> rate(2 minutes), sleep_on_delete 120), botocore default "
        "retries; its first poll comes 2 minutes after the Create, so its lateness depends on where READY falls "
        "in its 120 s grid (READY at 30 min = 15 polls: seen at once). It trusts the offline ResponseURL CA "
        "via SSL_CERT_FILE (environment only, code as documented).",
        f"CDK Provider + isComplete is a MODEL, not a run (aws-cdk-lib 2.275 provider framework): user onEvent "
        f"(RestoreBackup), then a Step Functions waiter calls isComplete (DescribeBackups) at once and every "
        f"queryInterval={CDK_QUERY_INTERVAL_S:g} s (backoffRate 1, totalTimeout 30 min). Create = ceil(t/5)*5 s "
        f"+ {CDK_CREATE_OVERHEAD_S:g} s assumed Lambda/Step Functions overhead; Delete = {CDK_DELETE_OVERHEAD_S:g} s. "
        "Invocations count user code (onEvent + isComplete = 1 + ceil(t/5) + 1 on Create, 2 on Delete); the "
        "framework's own relay Lambdas double that.",
        "Physical floor: latency = time-to-READY (Delete: one API call), API calls = RestoreBackup + "
        "DeleteBackup, one invocation per request, no EventBridge rule.",
        "Lambda s = modelled seconds the function ran for the lifecycle's requests (what Lambda bills); Max "
        "concurrent = most invocations of one lifecycle running at once (above 1: poll invocations overlap).",
    ]
    if results.handoffs is not None:
        found.append(
            "Hand-offs: every Create is sent at the same modelled instant; each backup is READY 90 s after its "
            "RestoreBackup, past the 30 s a 120 s Lambda may wait in-process, so every resource is handed off "
            "to an EventBridge rule and answered by a poll. Latency spreads with the queue for the "
            f"{results.handoffs.concurrency} Lambda environments."
        )
    scale = results.scale
    if scale is not None:
        found.append(
            f"Scale (ours only): {scale.backups} resources in one stack, Create events all sent at the same "
            f"modelled instant (then all Deletes), backups READY {scale.t_ready:g} s after RestoreBackup, emulator "
            f"throttles above {scale.rps:g} requests per modelled second (token bucket, burst {scale.rps:g}). At "
            f"most {scale.concurrency} Lambda execution environments (the rest of the events queue). boto3 "
            "retry: standard mode, 8 attempts; 'throttled' = ThrottlingException answers, each one retried. NOT "
            "deterministic: botocore's retry backoff draws a random jitter, so which calls collide, how many are "
            "throttled and the latencies vary from run to run (a run may see a Create fail after 8 throttled "
            "attempts)."
        )
    return found


def real_notes() -> list[str]:
    """What the real figures mean."""
    return [
        "Cold start: fresh `python -I` processes with the repository's virtualenv (boto3, crhelper), the "
        "emulator and an HTTPS ResponseURL in the parent; 'Import (+init)' is the import of the handler module "
        "(or, for the floor, of crhelper plus one cloudhsmv2 client), 'First event' the first Create (READY at "
        "once) up to its answer. Medians of the runs; the machine is shared, so other work adds noise.",
        "Package: the zip `make package` ships (pipeline build_zip), against the baseline's index.py plus the "
        "installed crhelper zipped the same way (deflate 9). Depends on the code, not on the machine.",
        "Run time: how long each part of this run took on this machine; the modelled figures above do not "
        "depend on it.",
    ]


def render(results: BenchResults, markdown: bool) -> str:
    """The whole report."""
    parts: list[str] = []

    def heading(title: str, level: int) -> None:
        if markdown:
            parts.append(f"{'#' * level} {title}\n")
        else:
            parts.append(f"{title}\n{('=' if level <= 2 else '-') * len(title)}\n")

    def section(title: str, body: str, level: int = 3) -> None:
        if body:
            heading(title, level)
            parts.append(body + "\n")

    def bullets(items: list[str]) -> str:
        return "\n".join(("- " if markdown else "* ") + item for item in items)

    machine = results.machine
    if markdown:
        parts.append("# Benchmark: CloudHSM backup restore custom resource\n")
    parts.append(
        f"Machine: {machine.describe()}.\n"
        f"Code measured: {results.source}.\n"
        f"Load average (1 min) at start / end: {results.load[0]:.2f} / {results.load[1]:.2f}.\n"
        f"`make bench` took {results.wall_s:.0f} s real.\n"
    )
    heading("Modelled figures (virtual clock: deterministic, one run each)", 2)
    parts.append(
        "Seconds of the offline world's virtual clock and counts: the same on every run and every machine "
        "(the scale run excepted: retry jitter). See the notes below.\n"
    )
    section("Lifecycle per resource (Create, then Delete)", lifecycle_table(results, markdown))
    section("Ratios: ours / baseline (below 1 = ours faster or fewer)", ratio_table(results, markdown))
    if results.calls:
        section("CloudHSM calls per lifecycle step (ours)", calls.render(results.calls))
    if results.handoffs is not None:
        section("Concurrent polling hand-offs on one provider", handoffs.summary(results.handoffs))
    section(
        "Scale: many resources at once against a throttled API (modelled, varies with retry jitter)",
        scale_table(results, markdown),
    )
    heading("Real figures (this machine)", 2)
    section("Cold start", cold_start_table(results, markdown))
    section("Package size", package_table(results, markdown))
    section("Run time", run_time_table(results, markdown))
    section("Findings (read off this run)", bullets(findings(results)), level=2)
    section("Notes: modelled figures", bullets(modelled_notes(results)), level=2)
    section("Notes: real figures", bullets(real_notes()), level=2)
    return "\n".join(parts)


def plot(results: BenchResults, path: Path) -> Path:
    """Create latency, and how long after READY it is answered, against time-to-READY (modelled seconds)."""
    import matplotlib  # noqa: PLC0415 - only a full run plots; keep the import off the smoke path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    styles = {
        OURS: {"marker": "o", "linestyle": "-", "color": "tab:blue"},
        CRHELPER_DOCUMENTED: {"marker": "s", "linestyle": "-", "color": "tab:red"},
        CDK_PROVIDER: {"marker": "^", "linestyle": "--", "color": "tab:green"},
        FLOOR: {"marker": "", "linestyle": ":", "color": "black"},
    }
    fig, (latency, late) = plt.subplots(1, 2, figsize=(12, 5))
    for variant, style in styles.items():
        rows = sorted(
            (r for r in results.rows if r.variant == variant and r.create_s is not None), key=lambda r: r.case.t_ready
        )
        if not rows:
            continue
        label = VARIANT_LABELS[variant] + (" (model)" if rows[0].kind == MODEL else "")
        xs = [r.case.t_ready for r in rows]
        latency.plot(xs, [r.create_s for r in rows], label=label, **style)  # type: ignore[arg-type]
        late.plot(xs, [r.after_ready_s for r in rows], label=label, **style)  # type: ignore[arg-type]
        if variant in (OURS, CRHELPER_DOCUMENTED):
            offset = (6, -12) if variant == OURS else (-10, 8)
            for r in rows:
                late.annotate(
                    seconds(r.after_ready_s),
                    (r.case.t_ready, r.after_ready_s or 0.0),
                    textcoords="offset points",
                    xytext=offset,
                    fontsize=8,
                    color=style["color"],
                )
    ticks = [c.t_ready for c in results.cases]
    for axis in (latency, late):
        axis.set_xscale("symlog", linthresh=5)
        axis.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
        axis.set_xlabel("time from RestoreBackup to READY (modelled s)")
        axis.grid(True, which="both", alpha=0.3)
    latency.set_yscale("symlog", linthresh=1)
    latency.set_ylim(bottom=0)
    latency.set_ylabel("Create latency (modelled s)")
    latency.set_title("Create latency")
    late.set_ylim(bottom=-2)
    late.set_ylabel("answered after READY (modelled s)")
    late.set_title("How soon after READY the Create is answered")
    late.legend()
    fig.suptitle("Virtual clock: deterministic modelled seconds (CDK Provider = model)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
