"""Fixtures for functional tests: the offline world (CloudFormation simulator + Lambda workers + emulators).

Every fixture starts its servers on port 0 (own ports), in own temp dirs, with its own moto server,
and tears them down after the test, so tests are safe under pytest-xdist. Time is the world's
``VirtualClock``: it moves only while every part of the world waits (a Lambda worker in ``time.sleep``
or a ``threading.Timer``, the simulator on a ServiceTimeout, EventBridge on its next firing), so real
compute takes no modelled time and no outcome depends on CPU speed (see docs/offline.md).

Fixtures
--------
``clock``
    A ``VirtualClock`` (nothing drives it here: it moves when the test calls ``advance``).
``emulator``
    A started ``CloudHsmEmulator`` on ``clock`` (empty; ``add_backup``/``seed`` it).
``make_world``
    Factory: ``make_world(**options) -> OfflineWorld`` (started; stopped after the test). Options are
    ``OfflineWorld``'s: ``restore_seconds``, ``lambda_timeout`` (300), ``code_dir`` +
    ``handler`` (default ``handler/`` with crhelper as a layer), ``seed``, ``emulator`` (None = own,
    False = none), ``env``, ``duplicate_delivery``, ``async_retry_delays`` ((60, 120)),
    ``max_concurrency``, ``function_name``, ``stack_name``, ``region``, ``account``.
``offline_world``
    ``make_world()`` with options from the test's ``@pytest.mark.world(**options)`` marker.
``simulator``
    ``offline_world.simulator``: ``create(logical_id, props, resource_type=..., service_timeout=None)``,
    ``update(logical_id, props, service_timeout=..., old_properties=..., physical_id=...)``,
    ``delete(logical_id, ...)``, ``deliver_again(event)``, ``build_event``/``send`` for hand-made events;
    each returns an ``Outcome`` (status, reason, physical_resource_id, data, response_bytes,
    elapsed_modelled/real, invocations, violations, responses, followups: cleanup/rollback).
``fixture_world``
    Factory like ``make_world`` but running ``tests/fixtures/handlers`` (``fixture_handlers.handler``,
    chosen by the ``Mode`` property) without a CloudHSM emulator.

On the world: ``world.emulator`` (calls, faults, backup states), ``world.function`` (records: one
``InvocationRecord`` per attempt with logs, cold, timed_out, error; ``log_text()``),
``world.eventbridge`` (calls, rules, firings, problems, ``count("PutRule")``, ``active_rules()``),
``world.responses`` (every PUT), ``world.verify()`` (late/duplicate responses, EventBridge problems,
leftover rules, leaked ResponseURL signatures) and ``world.leaked_secrets()``. ``assert_clean(world)``
asserts both are empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudhsm_offline.cfn.world import OfflineWorld
from cloudhsm_offline.clock import VirtualClock
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE_HANDLERS = FIXTURES / "handlers"

WorldFactory = Callable[..., OfflineWorld]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``world`` marker (options for the ``offline_world`` fixture)."""
    config.addinivalue_line("markers", "world(**options): OfflineWorld options for the offline_world fixture")


def checked_worlds(make_world: Callable[..., OfflineWorld]) -> Iterator[Callable[..., OfflineWorld]]:
    """Wrap a world factory: every world it made is checked with ``assert_clean`` when the test ends."""
    made: list[OfflineWorld] = []

    def make(**options: Any) -> OfflineWorld:
        world = make_world(**options)
        made.append(world)
        return world

    yield make
    for world in made:
        assert_clean(world, ignore=("late-response",))


def assert_clean(world: OfflineWorld, ignore: tuple[str, ...] = ()) -> None:
    """No protocol violation, EventBridge problem, leftover rule or leaked signature so far."""
    assert world.leaked_secrets() == []
    assert [v for v in world.verify() if v.code not in ignore] == []


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock (moves only when a test advances it: no actor runs on it here)."""
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> Iterator[CloudHsmEmulator]:
    """A started, empty CloudHSM emulator on ``clock``."""
    with CloudHsmEmulator(EmulatedAccount(clock)) as emu:
        yield emu


@pytest.fixture
def make_world() -> Iterator[WorldFactory]:
    """Factory for started OfflineWorlds, all stopped after the test."""
    worlds: list[OfflineWorld] = []

    def make(**options: Any) -> OfflineWorld:
        world = OfflineWorld(**options).start()
        worlds.append(world)
        return world

    yield make
    for world in reversed(worlds):
        world.stop()


@pytest.fixture
def offline_world(make_world: WorldFactory, request: pytest.FixtureRequest) -> OfflineWorld:
    """A started world on ``handler/``, configured by ``@pytest.mark.world(**options)``."""
    marker = request.node.get_closest_marker("world")
    return make_world(**(marker.kwargs if marker else {}))


@pytest.fixture
def simulator(offline_world: OfflineWorld) -> Any:
    """The world's CloudFormationSimulator."""
    return offline_world.simulator


@pytest.fixture
def fixture_world(make_world: WorldFactory) -> WorldFactory:
    """Factory for worlds running the misbehaving fixture handlers (no CloudHSM emulator)."""

    def make(**options: Any) -> OfflineWorld:
        options.setdefault("code_dir", FIXTURE_HANDLERS)
        options.setdefault("handler", "fixture_handlers.handler")
        options.setdefault("emulator", False)
        options.setdefault("lambda_timeout", 60)
        return make_world(**options)

    return make
