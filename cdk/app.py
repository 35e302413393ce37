#!/usr/bin/env python3
"""Example app: restore the backup named by ``-c backup_id=...`` and output its attributes.

    cd cdk && npx aws-cdk synth -c backup_id=backup-abcdefghijk

Optional context: ``removal_policy`` (retain | destroy), ``never_expires`` (true | false), ``region``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
# Run from a checkout without ``pip install``: make the project's packages importable (installed ones win).
for _package_root in ("cdk", "handler", "pipeline"):
    if (_CHECKOUT / _package_root).is_dir() and str(_CHECKOUT / _package_root) not in sys.path:
        sys.path.append(str(_CHECKOUT / _package_root))

from aws_cdk import App, CfnOutput, Environment, RemovalPolicy, Stack  # noqa: E402
from cloudhsm_backup_restore_cdk import RestoredBackup  # noqa: E402
from cloudhsm_backup_restore_cdk.restored_backup import ATTRIBUTE_PROPERTIES  # noqa: E402
from constructs import Construct  # noqa: E402

STACK_NAME = "RestoredBackupExample"


class MissingContextError(ValueError):
    """A required ``-c key=value`` was not given."""


def _flag(value: object, name: str) -> bool | None:
    """A context value as a boolean: True/False or the strings true/false; None when absent."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"Context {name} must be true or false, got {value!r}")


def _removal_policy(value: object) -> RemovalPolicy:
    """The ``removal_policy`` context value (retain or destroy, any case; retain when absent)."""
    if value is None:
        return RemovalPolicy.RETAIN
    for choice in (RemovalPolicy.RETAIN, RemovalPolicy.DESTROY):
        if isinstance(value, str) and value.lower() == choice.value.lower():
            return choice
    raise ValueError(f"Context removal_policy must be retain or destroy, got {value!r}")


class RestoredBackupExample(Stack):
    """One RestoredBackup and a CfnOutput per attribute."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        backup_id: str,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        never_expires: bool | None = None,
        region: str | None = None,
        env: Environment | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description="Restores a deleted CloudHSM backup")
        backup = RestoredBackup(
            self,
            "Backup",
            backup_id=backup_id,
            removal_policy=removal_policy,
            never_expires=never_expires,
            region=region,
        )
        for prop, attribute in ATTRIBUTE_PROPERTIES.items():
            CfnOutput(self, attribute, value=getattr(backup, prop), description=f"The backup's {attribute}")


def build(app: App) -> RestoredBackupExample:
    """Add the example stack to ``app``, configured from its context."""
    backup_id = app.node.try_get_context("backup_id")
    if not backup_id:
        raise MissingContextError(
            "Context backup_id is required: the id of the deleted backup to restore, "
            "e.g. cdk synth -c backup_id=backup-abcdefghijk"
        )
    return RestoredBackupExample(
        app,
        STACK_NAME,
        backup_id=str(backup_id),
        removal_policy=_removal_policy(app.node.try_get_context("removal_policy")),
        never_expires=_flag(app.node.try_get_context("never_expires"), "never_expires"),
        region=app.node.try_get_context("region") or None,
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )


def main() -> None:
    """Synthesize the example app; a configuration error exits with its message, not a traceback."""
    app = App()
    try:
        build(app)
    except (ValueError, TypeError) as error:
        sys.exit(f"error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
