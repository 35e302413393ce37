"""A second (third, ...) provider deployed into the same offline account: its own function, id and simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudhsm_offline.cfn.simulator import CloudFormationSimulator
from cloudhsm_offline.eventbridge.deployment import PROVIDER_ID_ENV
from cloudhsm_offline.lambda_runtime.function import LambdaFunction

if TYPE_CHECKING:
    from cloudhsm_offline.cfn.world import OfflineWorld


def add_provider(
    world: OfflineWorld, function_name: str, provider_id: str, stack_name: str = "second-stack"
) -> CloudFormationSimulator:
    """Deploy the world's code again as ``function_name`` with ``provider_id``; a simulator whose events go to it.

    Both providers share the account's EventBridge, SSM and Lambda (one moto) and the CloudHSM emulator.
    """
    if world.eventbridge is None:
        raise ValueError("a second provider needs the world's EventBridge")
    main = world.function
    endpoints = {key: value for key, value in main.env.items() if key.startswith("AWS_")}
    function = LambdaFunction(
        main.code_dir,
        handler=main.handler,
        env={**endpoints, PROVIDER_ID_ENV: provider_id},
        timeout_seconds=main.timeout_seconds,
        memory_mb=main.memory_mb,
        function_name=function_name,
        clock=world.clock,
        region=world.region,
        account=world.account,
        max_concurrency=main.max_concurrency,
        async_retry_delays=main.async_retry_delays,
        layer_packages=main.layer_packages,
    )
    world.extra_functions.append(function)
    world.eventbridge.add_function(function)
    return CloudFormationSimulator(
        function,
        world.responses,
        world.clock,
        eventbridge=world.eventbridge,
        stack_name=stack_name,
        region=world.region,
        account=world.account,
    )
