"""The machine a benchmark ran on, so results are read against it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    """CPU count, CPU model, Python and OS, and when the run started (UTC)."""

    nproc: int
    cpu_model: str
    python: str
    system: str
    date: str

    def describe(self) -> str:
        """One line for the report."""
        return f"{self.nproc} CPUs ({self.cpu_model}), Python {self.python}, {self.system}; run started {self.date}"


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first ``model name`` in /proc/cpuinfo (or what platform knows)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cpus() -> int:
    """CPUs this process may run on (what ``nproc`` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def this_machine() -> Machine:
    """Facts about the current machine and interpreter."""
    return Machine(
        nproc=usable_cpus(),
        cpu_model=cpu_model(),
        python=sys.version.split()[0],
        system=f"{platform.system()} {platform.release()}",
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def source_state(repo: Path, paths: tuple[str, ...] = ("handler", "offline", "pipeline", "bench")) -> str:
    """The commit measured and which of ``paths`` had uncommitted changes (the tree is shared and moving)."""
    try:
        commit = subprocess.run(  # read-only git queries
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", *paths],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    outputs = {"bench/results.md", "bench/latency.png"}  # what the run itself writes
    changed = [line[3:] for line in status.splitlines() if line.strip() and line[3:] not in outputs]
    dirty = sorted({path.split("/", 1)[0] for path in changed})
    return f"commit {commit}" + (f", with uncommitted changes in {', '.join(dirty)}/" if dirty else ", clean")
