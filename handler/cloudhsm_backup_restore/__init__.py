"""CloudFormation custom resource that restores a deleted AWS CloudHSM backup and waits until it is READY."""

__version__ = "0.1.0"
