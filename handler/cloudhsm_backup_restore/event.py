"""The event the function receives: a CloudFormation custom-resource request, or a poll of a wait handed off."""

from __future__ import annotations

from typing import Any, TypedDict


class CloudFormationEvent(TypedDict, total=False):
    """CloudFormation User Guide, "Custom resource request objects"; checked at run time (protocol._missing_fields)."""

    RequestType: str
    ResponseURL: str
    StackId: str
    RequestId: str
    LogicalResourceId: str
    PhysicalResourceId: str
    ResourceProperties: dict[str, Any]
    OldResourceProperties: dict[str, Any]
    CrHelperPoll: bool  # crhelper's poll keys: set by the hand-off, carried by the rule's target Input
    CrHelperRule: str
    CrHelperData: dict[str, Any]
    CrHelperResponseParameter: str  # the SSM parameter parking the ResponseURL (never the URL itself)
    CloudHsmRestorePollDeadline: float  # epoch s when CloudFormation stops waiting: a later poll only tears down
