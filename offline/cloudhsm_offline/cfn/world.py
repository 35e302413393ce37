"""The offline world wired together: clock, CloudHSM emulator, ResponseURL server, EventBridge, Lambda, simulator."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from cloudhsm_offline import signals
from cloudhsm_offline.cfn.checks import Violation
from cloudhsm_offline.cfn.response_server import ResponseServer
from cloudhsm_offline.cfn.simulator import CloudFormationSimulator
from cloudhsm_offline.clock import VirtualClock
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator
from cloudhsm_offline.emulator.seed import Seed, load_seed
from cloudhsm_offline.eventbridge.bridge import EventBridge
from cloudhsm_offline.eventbridge.deployment import PROVIDER_ID_ENV
from cloudhsm_offline.lambda_runtime.function import (
    ASYNC_RETRY_DELAYS,
    DEFAULT_FUNCTION_NAME,
    DEFAULT_HANDLER,
    LambdaFunction,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
HANDLER_DIR = REPO_ROOT / "handler"
"""The handler's source in a checkout; an installed wheel has none (see ``_default_code``)."""
T = TypeVar("T")
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"


def _default_code(scratch: Path) -> tuple[Path, tuple[str, ...]]:
    """handler/ plus crhelper as a layer in a checkout; else the installed handler staged as the Lambda zip holds it."""
    if (HANDLER_DIR / "cloudhsm_backup_restore" / "__init__.py").is_file():
        return HANDLER_DIR, ("crhelper",)
    # Installed from a wheel: stage what the zip carries (handler package + pinned crhelper) into a temp dir.
    from cloudhsm_backup_restore_pipeline.lambda_zip import stage_lambda_code  # noqa: PLC0415 - only when installed

    return stage_lambda_code(scratch / "code"), ()


STARTUP_SECONDS = 60.0
"""Real seconds a part may take to start; then the world fails instead of hanging (moto's start waits unbounded)."""


def bounded_start(start: Callable[[], T], what: str, starting: list[threading.Event] | None = None) -> T:
    """Run ``start`` with a bound of ``STARTUP_SECONDS`` real seconds: a part that never comes up is an error.

    ``start`` runs in a thread; an event set when it ends is added to ``starting``, so a stop that comes
    meanwhile (a signal) waits for it first and stops what it started instead of stopping it under it.
    The caller waits on that event, never with ``Thread.join``: in CPython 3.11 an exception raised in
    ``join`` by a signal handler can mark the thread finished while it still runs (gh-90882).
    """
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(start())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)
        finally:
            done.set()

    if starting is not None:
        starting.append(done)
    threading.Thread(target=run, name=f"start {what}", daemon=True).start()
    done.wait(STARTUP_SECONDS)
    if failure:
        raise failure[0]
    if not outcome:
        raise RuntimeError(f"{what} did not start within {STARTUP_SECONDS:g} s")
    return outcome[0]


class OfflineWorld:
    """Everything a custom-resource lifecycle needs, on own ports and temp dirs; a context manager.

    ``emulator``: None starts a ``CloudHsmEmulator`` on the shared clock (seeded with ``seed``), an
    instance is used as is (already started), False runs without one. ``layer_packages`` defaults to
    ``("crhelper",)`` for the bare ``handler/`` directory and to nothing for another ``code_dir``
    (a Lambda package bundles its dependencies). ``region``/``account``: given values win, then the
    seed's, then us-east-1 / 123456789012; the function, the simulator, EventBridge and the emulator
    all use the same pair (the handler's SigV4 scope must name the emulator's region).
    """

    def __init__(
        self,
        *,
        clock: VirtualClock | None = None,
        code_dir: str | os.PathLike[str] | None = None,
        handler: str = DEFAULT_HANDLER,
        layer_packages: Iterable[str] | None = None,
        extra_sys_path: Iterable[str | os.PathLike[str]] = (),
        lambda_timeout: float = 300,
        memory_mb: int = 256,
        function_name: str = DEFAULT_FUNCTION_NAME,
        env: Mapping[str, str] | None = None,
        region: str | None = None,
        account: str | None = None,
        stack_name: str = "offline-stack",
        emulator: Any = None,
        restore_seconds: float | None = None,
        seed: Any = None,
        eventbridge: bool = True,
        duplicate_delivery: bool = False,
        max_concurrency: int = 10,
        async_retry_delays: Iterable[float] = ASYNC_RETRY_DELAYS,
        provider_id: str | None = None,
    ) -> None:
        self.clock = clock or VirtualClock()
        # The seed is read first: a bad seed fails here, before anything starts, and names the region.
        self._seed: Seed | None = None if seed is None else load_seed(seed)
        settings = self._seed.settings if self._seed is not None else {}
        self.region = str(region or settings.get("region") or DEFAULT_REGION)
        self.account = str(account or settings.get("account") or DEFAULT_ACCOUNT)
        if code_dir is not None and not Path(code_dir).is_dir():
            raise ValueError(f"code directory {code_dir} does not exist (pass code_dir / --code)")
        self._scratch = tempfile.TemporaryDirectory(prefix="offline-world-")
        try:  # a failure (or a signal) half-way through leaves no temporary folder behind
            if code_dir is None:
                self.code_dir, default_layers = _default_code(Path(self._scratch.name))
            else:
                self.code_dir, default_layers = Path(code_dir), ()
            if layer_packages is None:
                layer_packages = default_layers
            region, account = self.region, self.account
            self._emulator_arg = emulator
            self._restore_seconds = restore_seconds
            self._owns_emulator = emulator is None
            self.emulator: Any = None
            self.responses = ResponseServer(self.clock, region)
            self.function = LambdaFunction(
                self.code_dir,
                handler=handler,
                env=env,
                timeout_seconds=lambda_timeout,
                memory_mb=memory_mb,
                function_name=function_name,
                clock=self.clock,
                extra_sys_path=extra_sys_path,
                region=region,
                account=account,
                max_concurrency=max_concurrency,
                async_retry_delays=async_retry_delays,
                layer_packages=layer_packages,
            )
            self.eventbridge = EventBridge(self.function, self.clock) if eventbridge else None
            self.simulator = CloudFormationSimulator(
                self.function,
                self.responses,
                self.clock,
                eventbridge=self.eventbridge,
                stack_name=stack_name,
                region=region,
                account=account,
                duplicate_delivery=duplicate_delivery,
            )
            self.provider_id = provider_id or self.simulator.stack_id.rsplit("-", 1)[-1]
            """As deployed: the last 12 hex digits of the stack's GUID (PROVIDER_ID_ENV; templates and CDK)."""
            self.function.env.setdefault(PROVIDER_ID_ENV, self.provider_id)
            self.extra_functions: list[LambdaFunction] = []
            """Other providers deployed into this account (cloudhsm_offline.cfn.providers.add_provider)."""
            self._started = False
            self._starting: list[threading.Event] = []
        except BaseException:
            if hasattr(self, "function"):
                self.function.close()
            if hasattr(self, "responses"):
                self.responses.stop()
            self._scratch.cleanup()
            raise

    def start(self) -> OfflineWorld:
        """Start every server and point the function's environment at them."""
        try:
            self.responses.start()
            endpoints = {"AWS_CA_BUNDLE": self.responses.ca_bundle}
            if self._emulator_arg is None:
                self.emulator = CloudHsmEmulator(EmulatedAccount(self.clock))
                if self._seed is not None:
                    self.emulator.seed(self._seed)
                account = self.emulator.account  # the world's pair wins over the seed's (--region / --account)
                account.region, account.account_id = self.region, self.account
                if self._restore_seconds is not None:
                    account.restore_seconds = self._restore_seconds
                self.emulator.start()
            elif self._emulator_arg is not False:
                self.emulator = self._emulator_arg
            if self.emulator is not None:
                endpoints["AWS_ENDPOINT_URL_CLOUDHSM_V2"] = self.emulator.url
            if self.eventbridge is not None:
                url = bounded_start(self.eventbridge.start, "EventBridge/Lambda (moto)", self._starting)
                endpoints.update(  # boto3 names these after the service id: EventBridge, Lambda, CloudWatch Logs, SSM
                    AWS_ENDPOINT_URL_EVENTBRIDGE=url,
                    AWS_ENDPOINT_URL_LAMBDA=url,
                    AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=url,
                    AWS_ENDPOINT_URL_SSM=url,
                )
            for key, value in endpoints.items():
                self.function.env.setdefault(key, value)
            self._started = True
        except BaseException:
            with signals.deferred():  # stopping what did start is never cut short
                self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything this world started (an emulator passed in is left running)."""
        for started in self._starting:  # a part still coming up (a signal during start): let it finish first
            started.wait(STARTUP_SECONDS)
        steps: list[Callable[[], object]] = [function.close for function in [self.function, *self.extra_functions]]
        if self.eventbridge is not None:
            steps.append(self.eventbridge.stop)
        if self.emulator is not None and self._owns_emulator:
            steps.append(self.emulator.stop)
        steps += [self.responses.stop, self._scratch.cleanup]
        errors: list[Exception] = []
        for step in steps:  # every part is stopped even when one fails (a half-started world)
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> OfflineWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- conveniences for tests --------------------------------------------------------------------

    def logs(self) -> str:
        """Every line the function wrote (all invocations), newline-joined."""
        return self.function.log_text()

    def leaked_secrets(self) -> list[str]:
        """ResponseURL signatures that appear in the function's logs (should be empty)."""
        text = self.logs()
        return [signature for signature in self.responses.secrets if signature in text]

    def verify(self) -> list[Violation]:
        """Every protocol problem seen so far: late/duplicate responses, leftover rules, leaked secrets."""
        found = self.simulator.verify()
        if self.eventbridge is not None:  # what the hand-off may leave in EventBridge, SSM and Lambda
            found.extend(Violation("eventbridge", problem) for problem in self.eventbridge.problems)
            rules = self.eventbridge.active_rules()
            found.extend(Violation("rule-left-behind", f"EventBridge rule {rule} still exists") for rule in rules)
            found.extend(Violation("left-behind", item) for item in self.eventbridge.leftovers())
        for signature in self.leaked_secrets():
            found.append(Violation("secret-in-logs", f"a ResponseURL signature ({signature[:6]}...) was logged"))
        return found
