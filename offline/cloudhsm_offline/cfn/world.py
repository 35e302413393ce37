"""The offline world wired together: clock, CloudHSM emulator, ResponseURL server, EventBridge, Lambda, simulator."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cloudhsm_offline.cfn.checks import Violation
from cloudhsm_offline.cfn.deployment import PROVIDER_ID_ENV
from cloudhsm_offline.cfn.eventbridge import EventBridge
from cloudhsm_offline.cfn.lambda_runtime import (
    ASYNC_RETRY_DELAYS,
    DEFAULT_FUNCTION_NAME,
    DEFAULT_HANDLER,
    LambdaFunction,
)
from cloudhsm_offline.cfn.response_server import ResponseServer
from cloudhsm_offline.cfn.simulator import CloudFormationSimulator
from cloudhsm_offline.clock import SimClock
from cloudhsm_offline.emulator import CloudHsmEmulator

REPO_ROOT = Path(__file__).resolve().parents[3]
HANDLER_DIR = REPO_ROOT / "handler"


class OfflineWorld:
    """Everything a custom-resource lifecycle needs, on own ports and temp dirs; a context manager.

    ``emulator``: None starts a ``CloudHsmEmulator`` on the shared clock (seeded with ``seed``), an
    instance is used as is (already started), False runs without one. ``layer_packages`` defaults to
    ``("crhelper",)`` for the bare ``handler/`` directory and to nothing for another ``code_dir``
    (a Lambda package bundles its dependencies).
    """

    def __init__(
        self,
        *,
        speed: float = 60.0,
        clock: SimClock | None = None,
        code_dir: str | os.PathLike[str] | None = None,
        handler: str = DEFAULT_HANDLER,
        layer_packages: Iterable[str] | None = None,
        extra_sys_path: Iterable[str | os.PathLike[str]] = (),
        lambda_timeout: float = 300,
        memory_mb: int = 256,
        function_name: str = DEFAULT_FUNCTION_NAME,
        env: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        account: str = "123456789012",
        stack_name: str = "offline-stack",
        emulator: Any = None,
        restore_seconds: float | None = None,
        seed: Any = None,
        eventbridge: bool = True,
        duplicate_delivery: bool = False,
        max_concurrency: int = 10,
        async_retry_delays: Iterable[float] = ASYNC_RETRY_DELAYS,
        fast_forward_idle: bool = True,
        provider_id: str | None = None,
    ) -> None:
        self.clock = clock or SimClock(speed)
        self.code_dir = Path(code_dir) if code_dir is not None else HANDLER_DIR
        if not self.code_dir.is_dir():
            raise ValueError(f"code directory {self.code_dir} does not exist (pass code_dir / --code)")
        if layer_packages is None:
            layer_packages = ("crhelper",) if code_dir is None else ()
        self.region = region
        self.account = account
        self._emulator_arg = emulator
        self._restore_seconds = restore_seconds
        self._seed = seed
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
            fast_forward_idle=fast_forward_idle,
        )
        self.provider_id = provider_id or self.simulator.stack_id.rsplit("-", 1)[-1]
        """As deployed: the last 12 hex digits of the stack's GUID (PROVIDER_ID_ENV; templates and CDK)."""
        self.function.env.setdefault(PROVIDER_ID_ENV, self.provider_id)
        self.extra_functions: list[LambdaFunction] = []
        """Other providers deployed into this account (cloudhsm_offline.cfn.providers.add_provider)."""
        self._started = False

    def start(self) -> OfflineWorld:
        """Start every server and point the function's environment at them."""
        try:
            self.responses.start()
            endpoints = {"AWS_CA_BUNDLE": self.responses.ca_bundle}
            if self._emulator_arg is None:
                self.emulator = CloudHsmEmulator(
                    clock=self.clock,
                    region=self.region,
                    account=self.account,
                    restore_seconds=self._restore_seconds or 0.0,
                )
                if self._seed is not None:
                    self.emulator.seed(self._seed)
                    if self._restore_seconds is not None:
                        self.emulator.restore_seconds = self._restore_seconds
                self.emulator.start()
            elif self._emulator_arg is not False:
                self.emulator = self._emulator_arg
            if self.emulator is not None:
                endpoints["AWS_ENDPOINT_URL_CLOUDHSM_V2"] = self.emulator.url
            if self.eventbridge is not None:
                url = self.eventbridge.start()
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
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything this world started (an emulator passed in is left running)."""
        for function in [self.function, *self.extra_functions]:
            function.close()
        if self.eventbridge is not None:
            self.eventbridge.stop()
        if self.emulator is not None and self._owns_emulator:
            self.emulator.stop()
        self.responses.stop()

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
        if self.eventbridge is not None:
            found.extend(Violation("left-behind", item) for item in self.eventbridge.leftovers())
        for signature in self.leaked_secrets():
            found.append(Violation("secret-in-logs", f"a ResponseURL signature ({signature[:6]}...) was logged"))
        return found
