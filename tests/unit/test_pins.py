"""The crhelper the zip ships is the crhelper the project is tested with."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_crhelper_pin_agrees_everywhere() -> None:
    pinned = (ROOT / "handler" / "requirements.txt").read_text().split()
    assert pinned == ["crhelper==2.0.12"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pinned[0] in project["project"]["dependencies"]
    assert version("crhelper") == pinned[0].split("==")[1]


def test_handler_string_resolves() -> None:
    from cloudhsm_backup_restore import app

    assert callable(app.handler)
