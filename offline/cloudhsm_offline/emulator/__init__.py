"""An emulated CloudHSM v2 backup API over local HTTP: Describe/Restore/Delete/ModifyBackupAttributes, the tag
operations (TagResource, UntagResource, ListTags) and DescribeClusters with a backup retention policy.

Speaks the wire protocol botocore picks (AWS JSON 1.1 today, Smithy RPC v2 CBOR too), drives backup
states from a clock (restores, the 7-day window, the retention purge sweep), injects faults and records
every call. See ``CloudHsmEmulator``.
"""

from cloudhsm_offline.emulator.calls import Call
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator
from cloudhsm_offline.emulator.faults import FaultPlan
from cloudhsm_offline.emulator.model import BackupState
from cloudhsm_offline.emulator.seed import DEMO_SEED, Seed, load_seed

__all__ = ["DEMO_SEED", "BackupState", "Call", "CloudHsmEmulator", "FaultPlan", "Seed", "load_seed"]
