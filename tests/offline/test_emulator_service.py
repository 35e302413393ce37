"""The emulator models the real service (issue 9): fast restore, refusals, tags and their limit, clusters with a
backup retention policy and its purge sweep, DeleteTimestamp as the permanent deletion time, ARN partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator

from tests.offline.conftest import T0, ManualClock

if TYPE_CHECKING:
    from mypy_boto3_cloudhsmv2 import CloudHSMV2Client

BACKUP = "backup-abcdefghijk"
LATEST = "backup-latestbackupx"
COPY = "backup-copiedbackupx"
CLUSTER = "cluster-clusteroneabc"
DAY = 86400.0


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# -- RestoreBackup -------------------------------------------------------------------------------


def test_restore_is_ready_at_once_by_default(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(BACKUP)
    assert client.restore_backup(BackupId=BACKUP)["Backup"]["BackupState"] == "READY"


def test_a_slow_asynchronous_restore_is_an_explicit_option(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    emulator.account.add_backup(BACKUP, restore_seconds=120)
    assert client.restore_backup(BackupId=BACKUP)["Backup"]["BackupState"] == "PENDING_DELETION"
    clock.advance(120)
    assert emulator.account.backup(BACKUP)["BackupState"] == "READY"


def test_a_refused_restore_answers_invalid_request_with_its_message(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    emulator.account.add_backup(BACKUP, refuse_restore="The backup cannot be restored: its cluster was deleted.")
    with pytest.raises(ClientError) as exc:
        client.restore_backup(BackupId=BACKUP)
    assert code(exc) == "CloudHsmInvalidRequestException"
    assert "its cluster was deleted" in str(exc.value)
    assert emulator.account.backup(BACKUP)["BackupState"] == "PENDING_DELETION"


def test_delete_timestamp_is_when_the_backup_will_be_permanently_deleted(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    emulator.account.add_backup(BACKUP, state="READY")
    deleted = client.delete_backup(BackupId=BACKUP)["Backup"]
    assert deleted["DeleteTimestamp"] == datetime.fromtimestamp(T0, tz=UTC) + timedelta(days=7)


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")]
)
def test_arns_use_the_partition_of_the_region(clock: ManualClock, region: str, partition: str) -> None:
    emulator = CloudHsmEmulator(EmulatedAccount(clock, region=region, account_id="111122223333"))
    view = emulator.account.add_backup(BACKUP)
    assert view["BackupArn"] == f"arn:{partition}:cloudhsm:{region}:111122223333:backup/{BACKUP}"


# -- tags ----------------------------------------------------------------------------------------


def test_tag_untag_and_list_tags(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(BACKUP, state="READY", tags={"Env": "prod"})
    client.tag_resource(ResourceId=BACKUP, TagList=[{"Key": "Env", "Value": "dev"}, {"Key": "Team", "Value": "a"}])
    assert client.list_tags(ResourceId=BACKUP)["TagList"] == [
        {"Key": "Env", "Value": "dev"},
        {"Key": "Team", "Value": "a"},
    ]
    client.untag_resource(ResourceId=BACKUP, TagKeyList=["Env"])
    described = client.describe_backups(Filters={"backupIds": [BACKUP]})["Backups"][0]
    assert described["TagList"] == [{"Key": "Team", "Value": "a"}]


def test_a_fifty_first_tag_is_refused_but_overwriting_one_is_not(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    emulator.account.add_backup(BACKUP, state="READY", tags={f"k{i}": "v" for i in range(50)})
    with pytest.raises(ClientError) as exc:
        client.tag_resource(ResourceId=BACKUP, TagList=[{"Key": "one-more", "Value": "v"}])
    assert code(exc) == "CloudHsmResourceLimitExceededException"
    client.tag_resource(ResourceId=BACKUP, TagList=[{"Key": "k0", "Value": "changed"}])
    assert len(client.list_tags(ResourceId=BACKUP)["TagList"]) == 50


def test_aws_prefixed_tag_keys_are_refused(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(BACKUP, state="READY")
    with pytest.raises(ClientError) as exc:
        client.tag_resource(ResourceId=BACKUP, TagList=[{"Key": "aws:owner", "Value": "x"}])
    assert code(exc) == "CloudHsmInvalidRequestException"


def test_tagging_an_unknown_backup_is_not_found(client: CloudHSMV2Client) -> None:
    with pytest.raises(ClientError) as exc:
        client.tag_resource(ResourceId=BACKUP, TagList=[{"Key": "k", "Value": "v"}])
    assert code(exc) == "CloudHsmResourceNotFoundException"


# -- clusters and the retention policy -----------------------------------------------------------


def test_describe_clusters_shows_the_backup_retention_policy(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    emulator.account.add_cluster(CLUSTER, retention_days=30)
    clusters = client.describe_clusters()["Clusters"]
    assert [c["ClusterId"] for c in clusters] == [CLUSTER]
    assert clusters[0]["BackupRetentionPolicy"] == {"Type": "DAYS", "Value": "30"}
    assert client.describe_clusters(Filters={"clusterIds": ["cluster-nosuchcluster"]})["Clusters"] == []


def _policy_world(emulator: CloudHsmEmulator, **old: object) -> None:
    emulator.account.add_cluster(CLUSTER, retention_days=30)
    emulator.account.add_backup(BACKUP, state="READY", cluster_id=CLUSTER, create_timestamp=T0 - 40 * DAY, **old)  # type: ignore[arg-type]
    emulator.account.add_backup(LATEST, state="READY", cluster_id=CLUSTER, create_timestamp=T0 - 35 * DAY)
    emulator.account.add_backup(
        COPY, state="READY", cluster_id=CLUSTER, create_timestamp=T0 - 50 * DAY, source_region="us-west-2"
    )


def test_the_purge_sweep_deletes_old_backups_but_not_the_latest_nor_copies(
    emulator: CloudHsmEmulator, clock: ManualClock
) -> None:
    _policy_world(emulator)
    assert emulator.account.backup(BACKUP)["BackupState"] == "READY"  # no sweep yet
    clock.advance(3600)
    assert emulator.account.backup(BACKUP)["BackupState"] == "PENDING_DELETION"
    assert emulator.account.backup(BACKUP)["DeleteTimestamp"] == datetime.fromtimestamp(T0 + 3600 + 7 * DAY, tz=UTC)
    assert emulator.account.backup(LATEST)["BackupState"] == "READY"  # the cluster's latest backup is kept
    assert emulator.account.backup(COPY)["BackupState"] == "READY"  # a copy belongs to no cluster here


def test_the_purge_sweep_skips_never_expires(emulator: CloudHsmEmulator, clock: ManualClock) -> None:
    _policy_world(emulator, never_expires=True)
    clock.advance(3600)
    assert emulator.account.backup(BACKUP)["BackupState"] == "READY"


def test_a_restored_old_backup_is_purged_again_unless_it_never_expires(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    _policy_world(emulator)
    clock.advance(3600)
    assert client.restore_backup(BackupId=BACKUP)["Backup"]["BackupState"] == "READY"
    clock.advance(3600)
    assert emulator.account.backup(BACKUP)["BackupState"] == "PENDING_DELETION"  # the race the user guide warns of
    client.restore_backup(BackupId=BACKUP)
    client.modify_backup_attributes(BackupId=BACKUP, NeverExpires=True)
    clock.advance(3600)
    assert emulator.account.backup(BACKUP)["BackupState"] == "READY"


def test_seed_clusters_and_purge_interval(clock: ManualClock) -> None:
    seed = {
        "purge_interval": 600,
        "clusters": [{"id": CLUSTER, "retention_days": 7}],
        "backups": [{"id": BACKUP, "state": "READY", "cluster": CLUSTER, "create_timestamp": T0 - 10 * DAY}],
    }
    emulator = CloudHsmEmulator(EmulatedAccount(clock)).seed(seed)
    emulator.account.add_backup(LATEST, state="READY", cluster_id=CLUSTER)
    clock.advance(600)
    assert emulator.account.backup(BACKUP)["BackupState"] == "PENDING_DELETION"
    emulator.reset()
    assert emulator.account.backup(BACKUP)["BackupState"] == "READY"
    assert emulator.account.store.clusters[CLUSTER].retention_days == 7


def test_another_region_is_served_from_its_own_store(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.account.add_region("eu-west-1")
    emulator.account.add_backup(BACKUP, region="eu-west-1")
    eu = boto3.client("cloudhsmv2", region_name="eu-west-1")
    assert eu.describe_backups()["Backups"][0]["BackupArn"].startswith("arn:aws:cloudhsm:eu-west-1:")
    assert client.describe_backups()["Backups"] == []
    with pytest.raises(ClientError) as exc:
        boto3.client("cloudhsmv2", region_name="ap-south-1").describe_backups()
    assert code(exc) == "InvalidSignatureException"
    with pytest.raises(ValueError, match="add_region"):
        emulator.account.add_backup(BACKUP, region="ap-south-1")


def test_a_seed_entry_may_live_in_another_region(clock: ManualClock) -> None:
    emulator = CloudHsmEmulator(EmulatedAccount(clock)).seed({"backups": [{"id": BACKUP, "region": "eu-west-1"}]})
    assert emulator.account.backup(BACKUP, region="eu-west-1")["BackupState"] == "PENDING_DELETION"
    assert emulator.account.backups() == []
