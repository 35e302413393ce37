"""The README's code blocks, by language, and its quick-start commands."""

from __future__ import annotations

import re

from tests.templates.cfn import ROOT

README = ROOT / "README.md"
QUICK_START = "## Quick start with AWS"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def text() -> str:
    return README.read_text(encoding="utf-8")


def blocks(language: str, source: str | None = None) -> list[str]:
    """Every fenced block of ``language`` (``bash``, ``yaml``, ``python``, ``json``...)."""
    return [body for lang, body in _BLOCK.findall(source if source is not None else text()) if lang == language]


def quick_start() -> str:
    """The Quick start section (up to the next level-2 heading)."""
    return text().split(QUICK_START, 1)[1].split("\n## ", 1)[0]


def pipeline_commands() -> list[str]:
    """The quick start's first bash block as commands: continuation lines joined, comments dropped."""
    [first, *_] = blocks("bash", quick_start())
    return commands(first)


def commands(block: str) -> list[str]:
    joined = block.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            found.append(" ".join(command.split()))
    return found
