"""Fixtures for the offline world's own tests: the CloudHSM emulator under boto3, and the world factories.

Emulator fixtures (one set for every emulator test)
---------------------------------------------------
``clock``
    A ``ManualClock``: modelled time that moves only when the test calls ``advance``.
``emulator``
    A started, empty ``CloudHsmEmulator`` on ``clock`` (``add_backup``/``seed`` it).
``aws_env``
    Fake credentials and us-east-1; no profile, config file or other endpoint can leak in.
``make_client(attempts=1, region=None, **config)`` / ``client``
    boto3 clients that find the emulator through ``AWS_ENDPOINT_URL_CLOUDHSM_V2`` alone.
``backoffs``
    botocore's retry sleeps, recorded instead of slept.

World fixtures (``make_world``, ``fixture_world``, ...) are ``tests/functional/conftest.py``'s: the handler's
end-to-end tests there use the same ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
import botocore.endpoint
import botocore.session
import pytest
from botocore.config import Config
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator

from tests.functional.conftest import fixture_world, make_world, offline_world, simulator

if TYPE_CHECKING:
    from mypy_boto3_cloudhsmv2 import CloudHSMV2Client

__all__ = ["fixture_world", "make_world", "offline_world", "simulator"]  # the shared world fixtures, for pytest

T0 = 1_800_000_000.0
ClientFactory = Callable[..., "CloudHSMV2Client"]


class ManualClock:
    """Modelled time that moves only when a test advances it."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def sleep(self, seconds: float) -> None:
        """An injected latency: nothing else runs here, so time simply moves on."""
        self.t += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[CloudHsmEmulator]:
    with CloudHsmEmulator(EmulatedAccount(clock)) as emu:
        yield emu


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region; no profile, config file or other endpoint can leak in."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEMULATORTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry sleeps, recorded instead of slept (standard mode waits up to seconds on throttling)."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=slept.append))
    return slept


@pytest.fixture(scope="module")
def botocore_session() -> botocore.session.Session:
    """One botocore session per module: the service model loads once; env vars are still read per client."""
    return botocore.session.Session()


@pytest.fixture
def make_client(
    emulator: CloudHsmEmulator,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    botocore_session: botocore.session.Session,
) -> ClientFactory:
    """Clients that find the emulator through AWS_ENDPOINT_URL_CLOUDHSM_V2 alone."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDHSM_V2", emulator.url)

    def make(attempts: int = 1, region: str | None = None, **options: Any) -> CloudHSMV2Client:
        config = Config(retries={"mode": "standard", "total_max_attempts": attempts}, **options)
        session = boto3.session.Session(botocore_session=botocore_session)
        return session.client("cloudhsmv2", region_name=region, config=config)

    return make


@pytest.fixture
def client(make_client: ClientFactory) -> CloudHSMV2Client:
    return make_client()
