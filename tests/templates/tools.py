"""The template tests' external tools, each in its own venv (`make tools`): they pin botocore versions of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.templates.cfn import ROOT


def tool(venv: str, command: str) -> Path:
    """ROOT/<venv>/bin/<command>, or a skip that says how to install it (`make test` always does first)."""
    path = ROOT / venv / "bin" / command
    if not path.is_file():
        pytest.skip(f"{path} is missing: `make tools` (part of `make test`) installs it")
    return path
