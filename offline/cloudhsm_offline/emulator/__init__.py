"""An emulated CloudHSM v2 backup API over local HTTP: Describe/Restore/Delete/ModifyBackupAttributes, the tag
operations (TagResource, UntagResource, ListTags) and DescribeClusters with a backup retention policy.

Speaks the wire protocol botocore picks (AWS JSON 1.1 today, Smithy RPC v2 CBOR too), drives backup
states from a clock (restores, the 7-day window, the retention purge sweep), injects faults and records
every call. See ``emulator.CloudHsmEmulator`` and ``account.EmulatedAccount``.
"""
