"""CloudFormation as the model drives it: resources, requests, their events and when CloudFormation listens.

Each behaviour relied on, with its source (AWS CloudFormation User Guide unless said otherwise):
- C1 A request is an event with RequestType, RequestId, ResponseURL, StackId, LogicalResourceId,
  ResourceType, ResourceProperties (every value a string), ServiceToken; Update and Delete add
  PhysicalResourceId, Update adds OldResourceProperties ("Custom resource request objects",
  crpg-ref-requests.html; crpg-ref-requesttypes-*.html). The ResponseURL "identifies a presigned S3 bucket"
  (same page): a SigV4 presigned URL whose X-Amz-Date is when CloudFormation signed it, the request's sending.
- C2 CloudFormation waits for one response per request until the resource's ServiceTimeout (1-3600 s,
  default 3600) and then fails the operation ("AWS::CloudFormation::CustomResource", ServiceTimeout;
  "Response timeout" in template-custom-resources.html). The first response ends the wait: it is the
  answer. A response must be at most 4096 bytes ("Custom resource response objects", crpg-ref-responses.html)
  and name a PhysicalResourceId.
- C3 CloudFormation works on one resource one operation at a time: it sends a Delete (or the next Update)
  only after the previous request was answered, timed out or was cancelled.
- C4 A Create that fails (FAILED or no answer in time) is rolled back: CloudFormation sends a Delete with
  the answer's PhysicalResourceId; with no answer it invents one (the offline simulator's
  ``<stack>-<logical>-<12 characters>``; the exact form is not documented, so the handler must be
  right for any id that is not one of its own).
- C5 An Update answered with a different PhysicalResourceId is a replacement: the old physical resource gets a
  Delete (with its old properties) in the cleanup phase, after the update succeeded
  (crpg-ref-requesttypes-delete.html: "If the value returned is different, CloudFormation recognizes the
  update as a replacement and sends a delete request to the old resource"). A rename is a Create of the new
  logical id followed, in cleanup, by the Delete of the old one ("Update behaviors of stack resources").
- C6 A failed Update (FAILED or no answer) is rolled back with an Update back to the old properties
  (UPDATE_ROLLBACK_IN_PROGRESS, "Stack status codes").
- C7 When another resource fails, CloudFormation cancels the resources still in progress and rolls back:
  it stops waiting for their answer and sends the rollback request (Delete after a Create, Update back after
  an Update) ("Stack status codes": "Resource creation cancelled").
- C8 CloudFormation invokes the function asynchronously (Lambda Developer Guide, "Invoking a function
  asynchronously": events are delivered at least once, so one event may arrive twice; a failed
  invocation is retried unless EventInvokeConfig says otherwise; an event is kept up to
  MaximumEventAgeInSeconds). The model delivers any request again at any time within that age.
- C9 CloudFormation sends no Update when no property changed ("Update behaviors of stack resources").
- C10 A stack operation ends with its rollback or cleanup requests (UPDATE_COMPLETE_CLEANUP_IN_PROGRESS,
  ROLLBACK_IN_PROGRESS, "Stack status codes"); the next operation on the stack starts only after them. The
  model sends no Create or Update in a stack that still owes a rollback or cleanup request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.model.world import ACCOUNT, FUNCTION_ARN, OTHER_REGION, REGION, Arrival

RESOURCE_TYPE = "Custom::RestoredBackup"
BACKUP_IDS = {"B1": "backup-firstmodelbkp", "B2": "backup-secondmodelbk", "B3": "backup-copyineuwestx"}
BACKUP_REGIONS = {"B1": REGION, "B2": REGION, "B3": OTHER_REGION}
TARGETS: list[tuple[str, str | None]] = [
    ("B1", None),
    ("B1", REGION),
    ("B2", None),
    ("B2", REGION),
    ("B3", OTHER_REGION),
]
"""(backup, Region property) pairs: B1/B2 with Region absent or written out (the function's own region,
the same ARN either way); B3 lives in another region. Identity is the resolved ARN."""
STACKS = ("Stack1", "Stack2")
LOGICAL_IDS = ("Restored1", "Restored2", "Restored3", "Renamed1")


def stack_id(stack: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/00000000-model-{STACKS.index(stack)}"


def properties(target: tuple[str, str | None], on_delete: str | None, service_timeout: str) -> dict[str, str]:
    """ResourceProperties as CloudFormation sends them: strings, ServiceToken included."""
    name, region = target
    props = {"ServiceToken": FUNCTION_ARN, "BackupId": BACKUP_IDS[name], "ServiceTimeout": service_timeout}
    if region is not None:
        props["Region"] = region
    if on_delete is not None:
        props["OnDelete"] = on_delete
    return props


def backup_of(props: dict[str, Any]) -> str:
    """The backup a property set names (ids are unique across the model's regions)."""
    return str(props["BackupId"])


def arn_of(props: dict[str, Any]) -> str:
    return f"arn:aws:cloudhsm:{props.get('Region') or REGION}:{ACCOUNT}:backup/{props['BackupId']}"


def region_of(backup_id: str) -> str:
    return next(BACKUP_REGIONS[k] for k, v in BACKUP_IDS.items() if v == backup_id)


def deletes(props: dict[str, Any]) -> bool:
    return str(props.get("OnDelete", "Retain")).lower() == "delete"


@dataclass(eq=False)
class Slot:
    """One physical resource as CloudFormation knows it (a replacement makes a new one for the old physical id)."""

    number: int
    stack: str
    logical: str
    props: dict[str, str]
    physical: str | None = None
    held: dict[str, str] | None = None
    """Properties of the last SUCCESS CloudFormation accepted for a Create or Update (None: none yet)."""
    held_at: float = 0.0
    needs: str | None = None
    """What CloudFormation owes this resource next: rollback_delete, rollback_update, cleanup_delete."""
    rollback_to: dict[str, str] | None = None
    inflight: Request | None = None
    delete_sent: bool = False
    """A Delete is in flight or answered SUCCESS (a DELETE_FAILED resource may be sent another)."""
    delete_came: bool = False
    """A Delete was ever sent: from then on I2 no longer applies ("no Delete of that resource has come")."""
    gone: bool = False
    """Its Delete was answered SUCCESS: CloudFormation forgot it."""
    gone_at_call: int = 0
    requests: list[Request] = field(default_factory=list)
    renames: Slot | None = None
    """The resource this one's Create renames: it gets its cleanup Delete once this Create succeeded (C5)."""

    def label(self) -> str:
        return f"{self.stack}/{self.logical}#{self.number}"


@dataclass(eq=False)
class Request:
    """One CloudFormation request and what became of it."""

    number: int
    kind: str
    slot: Slot
    event: dict[str, Any]
    path: str
    sent_at: float
    deadline: float
    listening: bool = True
    answer: Arrival | None = None
    ended_by: str = ""

    @property
    def request_id(self) -> str:
        return str(self.event["RequestId"])

    @property
    def props(self) -> dict[str, Any]:
        return dict(self.event["ResourceProperties"])

    def label(self) -> str:
        return f"{self.kind}#{self.number} of {self.slot.label()}"


def build_event(
    kind: str,
    number: int,
    slot: Slot,
    props: dict[str, str],
    url: str,
    old: dict[str, str] | None = None,
    physical: str | None = None,
) -> dict[str, Any]:
    """A request event (C1)."""
    event: dict[str, Any] = {
        "RequestType": kind,
        "ServiceToken": FUNCTION_ARN,
        "ResponseURL": url,
        "StackId": stack_id(slot.stack),
        "RequestId": f"model-request-{number:04d}",
        "LogicalResourceId": slot.logical,
        "ResourceType": RESOURCE_TYPE,
        "ResourceProperties": dict(props),
    }
    if kind != "Create":
        event["PhysicalResourceId"] = physical
    if kind == "Update":
        event["OldResourceProperties"] = dict(old or {})
    copied: dict[str, Any] = json.loads(json.dumps(event))
    return copied


def invented_physical_id(slot: Slot) -> str:
    """C4: the id CloudFormation gives a resource whose Create never answered."""
    return f"{slot.stack}-{slot.logical}-MODEL{slot.number:07d}"
