"""The synthesized CDK app, run for real: its Lambda asset from cdk.out (handler + bundled crhelper) under
the offline CloudFormation simulator, against the emulated CloudHSM."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, CfnOutput, RemovalPolicy, Stack
from cloudhsm_backup_restore_cdk import RestoredBackup
from cloudhsm_offline.cfn.stack import StackRunner
from cloudhsm_offline.cfn.world import OfflineWorld

KEEP = "backup-cdk2keepaaaa"
DROP = "backup-cdk2dropaaaa"


@pytest.mark.slow
def test_synthesized_asset_restores_and_deletes_for_real(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Offline")
    kept = RestoredBackup(stack, "Kept", backup_id=KEEP)
    dropped = RestoredBackup(stack, "Dropped", backup_id=DROP, removal_policy=RemovalPolicy.DESTROY, never_expires=True)
    CfnOutput(stack, "KeptState", value=kept.backup_state)
    CfnOutput(stack, "KeptTeam", value=kept.get_tag("Team"))
    CfnOutput(stack, "DroppedNeverExpires", value=dropped.never_expires)
    CfnOutput(stack, "DroppedCluster", value=dropped.cluster_id)
    app.synth()
    template = tmp_path / "cdk.out" / "Offline.template.json"
    code = kept.provider.staged_code_dir
    assert code.parent == tmp_path / "cdk.out"
    assert (code / "crhelper").is_dir()

    with OfflineWorld(code_dir=code, restore_seconds=10) as world:
        world.emulator.account.add_backup(KEEP, tags={"Team": "hsm"})
        world.emulator.account.add_backup(DROP, cluster_id="cluster-cdk2dropaaaa")
        runner = StackRunner(world.simulator, template, {})
        created = runner.create()
        assert created.ok, created.errors or [o.summary() for o in created.outcomes]
        assert len(created.outcomes) == 2
        outputs = {output.name: output.value for output in created.outputs}
        assert outputs == {
            "KeptState": "READY",
            "KeptTeam": "hsm",
            "DroppedNeverExpires": "true",
            "DroppedCluster": "cluster-cdk2dropaaaa",
        }
        assert all(o.event["ResourceProperties"]["ServiceTimeout"] == "3600" for o in created.outcomes)

        deleted = runner.delete()
        assert deleted.ok, [o.summary() for o in deleted.outcomes]
        assert world.emulator.account.backup(KEEP)["BackupState"] == "READY"
        assert world.emulator.account.backup(DROP)["BackupState"] == "PENDING_DELETION"
        assert world.verify() == []
        assert world.leaked_secrets() == []
