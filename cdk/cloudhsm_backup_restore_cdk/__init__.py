"""CDK v2 construct that restores a deleted AWS CloudHSM backup and exposes its attributes."""

from cloudhsm_backup_restore.properties import OnDelete

from cloudhsm_backup_restore_cdk.provider import PROVIDER_ID, RestoreProvider
from cloudhsm_backup_restore_cdk.restored_backup import RestoredBackup

__all__ = ["PROVIDER_ID", "OnDelete", "RestoreProvider", "RestoredBackup"]
