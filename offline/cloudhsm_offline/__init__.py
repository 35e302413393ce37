"""The offline world: an emulated CloudHSM v2 API and a CloudFormation lifecycle simulator.

It treats the handler as a black box: it imports nothing from ``cloudhsm_backup_restore`` and talks
to it only through the Lambda interface (event, context) and over HTTP.

Importing the package is cheap on purpose: ``cloudhsm-offline`` installs its signal handlers first
thing (``cloudhsm_offline.signals``), and ``__version__`` (importlib.metadata) is read when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

DISTRIBUTION = "cloudhsm-backup-restore"

REPORT_SCHEMA = "cloudhsm-offline/run-template/v1"
"""The ``schema`` of every ``--output json`` document, the one the CLI writes on an early interrupt included."""

if TYPE_CHECKING:
    __version__: str
    """The version pyproject.toml declares, read back from the installed distribution's metadata."""


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed distribution's metadata on first use."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - costly: only when asked

    try:
        value = version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value


def partition_of(region: str) -> str:
    """The ARN partition of a region: aws-cn for cn-*, aws-us-gov for us-gov-*, else aws."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
