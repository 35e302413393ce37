"""The provider's Lambda code as a CDK asset, staged locally: no Docker, no network, stable hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from cloudhsm_backup_restore_pipeline.lambda_zip import handler_package_dir, stage_lambda_code

UNUSED_IMAGE = "none"
"""Bundling always happens locally; CDK requires an image name all the same, and never pulls it."""


@jsii.implements(ILocalBundling)
class _StageLambdaCode:
    """Copies the handler package and the pinned crhelper into CDK's bundling output directory."""

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        """Stage the code; True tells CDK that no Docker bundling is needed."""
        stage_lambda_code(Path(output_dir))
        return True


def lambda_code() -> lambda_.Code:
    """Code.from_asset bundled by stage_lambda_code, hashed by its output so equal code -> equal hash."""
    return lambda_.Code.from_asset(
        str(handler_package_dir()),
        # The hash of what is staged (handler code and the pinned crhelper), not of the source directory.
        asset_hash_type=AssetHashType.OUTPUT,
        exclude=["__pycache__", "*.pyc"],
        bundling=BundlingOptions(
            image=DockerImage.from_registry(UNUSED_IMAGE),
            local=_StageLambdaCode(),
        ),
    )
