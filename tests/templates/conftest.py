"""Fixtures for the template and packaging tests: one `make package` build per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudhsm_backup_restore_pipeline.build import PackageResult, package


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    """What `make package` writes, built into a temporary dist/."""
    return package(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def lambda_zip(packaged: PackageResult) -> Path:
    """The built Lambda zip."""
    return packaged.zip_path
