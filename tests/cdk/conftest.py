"""Fixtures for the CDK construct tests: the scenario app is synthesized once per session (jsii synth is slow)."""

from __future__ import annotations

import pytest

from tests.cdk.support import Synthesized, synthesize_scenarios


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Every scenario stack (plain, VPC, tokens) in one synthesized app."""
    return synthesize_scenarios(tmp_path_factory.mktemp("cdk-scenarios"))
