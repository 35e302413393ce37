"""Fixtures of the model tests: a fresh Model (clean account, cold Lambda) on the process's one World."""

from __future__ import annotations

import pytest

from tests.model.model import Model
from tests.model.world import world


@pytest.fixture
def model() -> Model:
    """A clean example: B1, B2, B3 restorable, restores READY at once unless a test makes them slow."""
    fresh = Model(world())
    fresh.add_backups({})
    return fresh
