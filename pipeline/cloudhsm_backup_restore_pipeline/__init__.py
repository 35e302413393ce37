"""Deployment facts shared by the CDK construct, the CloudFormation templates and the Lambda package."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "cloudhsm-backup-restore"


def _installed_version() -> str:
    """The version pyproject.toml declares, read back from the installed distribution's metadata."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


__version__ = _installed_version()
