"""The offline world: an emulated CloudHSM v2 API and a CloudFormation lifecycle simulator.

It treats the handler as a black box: it imports nothing from ``cloudhsm_backup_restore`` and talks
to it only through the Lambda interface (event, context) and over HTTP.
"""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "cloudhsm-backup-restore"

try:
    __version__ = version(DISTRIBUTION)
    """The version pyproject.toml declares, read back from the installed distribution's metadata."""
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

JSON_WRITTEN_NOTE = "cloudhsm-offline: the --output json document was written"
"""The note ``demo.run_stack`` adds to an interrupt once it wrote its JSON document (else the CLI writes one)."""

REPORT_SCHEMA = "cloudhsm-offline/run-template/v1"
"""The ``schema`` of every ``--output json`` document, the one the CLI writes on an early interrupt included."""


def partition_of(region: str) -> str:
    """The ARN partition of a region: aws-cn for cn-*, aws-us-gov for us-gov-*, else aws."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
