"""The offline world: an emulated CloudHSM v2 API and a CloudFormation lifecycle simulator.

It treats the handler as a black box: it imports nothing from ``cloudhsm_backup_restore`` and talks
to it only through the Lambda interface (event, context) and over HTTP.
"""
