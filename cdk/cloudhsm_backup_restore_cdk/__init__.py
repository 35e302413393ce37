"""CDK v2 construct that restores a deleted AWS CloudHSM backup and exposes its attributes."""

from cloudhsm_backup_restore_cdk.provider import RestoreProvider
from cloudhsm_backup_restore_cdk.restored_backup import RestoredBackup

__all__ = ["RestoreProvider", "RestoredBackup"]
