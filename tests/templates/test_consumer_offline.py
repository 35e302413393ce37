"""The artefact a pipeline ships is the artefact we test: consumer.yaml run by the CloudFormation simulator
against the code unzipped from the reproducible Lambda package (crhelper included, no handler/ on the path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudhsm_backup_restore_pipeline.lambda_zip import build_zip, extract_zip
from cloudhsm_offline.cfn.stack import StackRunner
from cloudhsm_offline.cfn.world import OfflineWorld

ROOT = Path(__file__).resolve().parents[2]
BACKUP = "backup-pipe2lineabc"


@pytest.mark.slow
def test_consumer_template_runs_on_the_packaged_zip(tmp_path: Path) -> None:
    code = extract_zip(build_zip(tmp_path / "lambda.zip"), tmp_path / "task")
    assert (code / "crhelper").is_dir()
    with OfflineWorld(code_dir=code, restore_seconds=20) as world:
        world.emulator.account.add_backup(BACKUP, cluster_id="cluster-pipe2lineabc", tags={"Environment": "prod"})
        runner = StackRunner(
            world.simulator,
            ROOT / "cfn-templates" / "consumer.yaml",
            {
                "ProviderStackName": "cloudhsm-backup-restore-provider",
                "BackupId": BACKUP,
                "OnDelete": "Delete",
                "NeverExpires": "true",
                "ReadEnvironmentTag": "true",
            },
        )
        created = runner.create()
        assert created.ok, created.errors or [o.summary() for o in created.outcomes]
        outputs = {output.name: output.value for output in created.outputs}
        assert outputs["ClusterId"] == "cluster-pipe2lineabc"
        assert outputs["BackupState"] == "READY"
        assert outputs["CreateTimestamp"].endswith("Z")
        assert outputs["EnvironmentTag"] == "prod"
        assert outputs["BackupArn"] == f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{BACKUP}"
        assert world.emulator.account.backup(BACKUP)["NeverExpires"] is True
        assert Path(world.function.code_dir) == code
        assert world.function.layer_packages in ((), [])  # nothing but the zip and the runtime

        deleted = runner.delete()
        assert deleted.ok, [o.summary() for o in deleted.outcomes]
        assert world.emulator.account.backup(BACKUP)["BackupState"] == "PENDING_DELETION"
        assert world.verify() == []
        assert world.leaked_secrets() == []
