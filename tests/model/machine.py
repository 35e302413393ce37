"""The hypothesis state machine over ``Model``: which steps CloudFormation, EventBridge and the world may take.

Every step names its choices by small integers (a resource, a request, a rule: index modulo how many there
are), so hypothesis shrinks them and the defect tests replay a scenario by calling the same steps.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from tests.model.cloudformation import BACKUP_IDS, LOGICAL_IDS, STACKS, TARGETS, backup_of, properties
from tests.model.model import Model
from tests.model.world import REGION, world

CLOUDHSM_OPERATIONS = (
    "DescribeBackups",
    "RestoreBackup",
    "TagResource",
    "UntagResource",
    "ListTags",
    "ModifyBackupAttributes",
    "DeleteBackup",
)
SSM_OPERATIONS = ("PutParameter", "GetParameter", "DeleteParameter")
EVENTS_OPERATIONS = ("PutRule", "PutTargets", "RemoveTargets", "DeleteRule", "ListTargetsByRule")
MAX_RESOURCES = 3

props_strategy = st.builds(
    properties,
    target=st.sampled_from(TARGETS),
    on_delete=st.sampled_from([None, "Retain", "Delete"]),
    service_timeout=st.sampled_from(["600", "1800"]),
)
fault_strategy = st.one_of(
    st.builds(
        lambda op, n: {"service": "cloudhsmv2", "kind": "throttle", "operation": op, "n": n},
        st.sampled_from(CLOUDHSM_OPERATIONS),
        st.integers(1, 12),
    ),
    st.builds(
        lambda op: {"service": "cloudhsmv2", "kind": "deny", "operation": op}, st.sampled_from(CLOUDHSM_OPERATIONS)
    ),
    st.builds(
        lambda op, code, n: {"kind": "error", "service": "ssm", "operation": op, "code": code, "n": n},
        st.sampled_from(SSM_OPERATIONS),
        st.sampled_from(["ThrottlingException", "AccessDeniedException"]),
        st.integers(1, 12),
    ),
    st.builds(
        lambda op, code, n: {"kind": "error", "service": "eventbridge", "operation": op, "code": code, "n": n},
        st.sampled_from(EVENTS_OPERATIONS),
        st.sampled_from(["ThrottlingException", "AccessDeniedException"]),
        st.integers(1, 12),
    ),
    st.builds(
        lambda at, seconds, when: {"kind": "slow", "at": at, "seconds": seconds, "when": when},
        st.integers(0, 12),
        st.sampled_from([5.0, 60.0, 295.0, 400.0]),
        st.sampled_from(["before", "after"]),
    ),
)
faults_strategy = st.one_of(st.just([]), st.lists(fault_strategy, min_size=1, max_size=2))
"""Half the deliveries without faults, the others with one or two."""


class ModelMachine(RuleBasedStateMachine):
    """CloudFormation (one or two stacks, up to three resources), EventBridge and the world, against the handler."""

    def __init__(self) -> None:
        super().__init__()
        self.model = Model(world())

    @initialize(
        slow=st.sampled_from([(), ("B1",), ("B2",), ("B1", "B2", "B3")]),
        in_progress=st.sampled_from([(), ("B2",)]),
    )
    def backups(self, slow: tuple[str, ...], in_progress: tuple[str, ...] = ()) -> None:
        """Restores answer READY at once (the User Guide's documented behaviour) or take 120 s (the fallback);
        B2 may still be being made (CREATE_IN_PROGRESS)."""
        self.model.add_backups(dict.fromkeys(slow, 120.0))
        self.model.steps.append(f"backups; slow restore: {list(slow) or 'none'}")
        for key in in_progress:
            self.model.creation_in_progress(key)

    # -- CloudFormation --------------------------------------------------------------------------------

    @precondition(lambda self: len(self.model.live()) < MAX_RESOURCES)
    @rule(stack=st.integers(0, 1), name=st.integers(0, 3), props=props_strategy, faults=faults_strategy)
    def create(self, stack: int, name: int, props: dict[str, str], faults: list[dict[str, Any]]) -> None:
        stack_name = STACKS[stack]
        if self.model.finishing(stack_name):
            return  # C10
        free = [n for n in LOGICAL_IDS if self.model.current(stack_name, n) is None]
        slot = self.model.create_slot(stack_name, free[name % len(free)], props)
        self.model.send("Create", slot, props, faults)
        self.model.check()

    @precondition(lambda self: len(self.model.live()) < MAX_RESOURCES)
    @rule(
        stack=st.integers(0, 1),
        name=st.integers(0, 3),
        props=props_strategy,
        at=st.integers(0, 8),
        faults=faults_strategy,
        duplicate_faults=faults_strategy,
    )
    def create_delivered_twice(
        self,
        stack: int,
        name: int,
        props: dict[str, str],
        at: int,
        faults: list[dict[str, Any]],
        duplicate_faults: list[dict[str, Any]],
    ) -> None:
        """C8: the Create's two deliveries overlap: the first stops before its ``at``-th call, the second runs."""
        stack_name = STACKS[stack]
        if self.model.finishing(stack_name):
            return  # C10
        free = [n for n in LOGICAL_IDS if self.model.current(stack_name, n) is None]
        slot = self.model.create_slot(stack_name, free[name % len(free)], props)
        self.model.send("Create", slot, props, faults, overlap=(at, duplicate_faults))
        self.model.check()

    @precondition(lambda self: bool(self.model.requests))
    @rule(index=st.integers(0, 20), at=st.integers(0, 8), faults=faults_strategy, duplicate_faults=faults_strategy)
    def overlapping_duplicates(
        self, index: int, at: int, faults: list[dict[str, Any]], duplicate_faults: list[dict[str, Any]]
    ) -> None:
        """C8: two more deliveries of an earlier request, overlapping each other."""
        requests = self.model.requests
        self.model.overlap(requests[len(requests) - 1 - index % len(requests)], at, faults, duplicate_faults)
        self.model.check()

    @precondition(lambda self: bool(self.model.idle_held()) and len(self.model.live()) < MAX_RESOURCES)
    @rule(index=st.integers(0, 3), faults=faults_strategy)
    def rename(self, index: int, faults: list[dict[str, Any]]) -> None:
        """C5: the new logical id's Create (same properties); the old one's Delete comes later, in cleanup."""
        old = self.model.idle_held()[index % len(self.model.idle_held())]
        free = [n for n in LOGICAL_IDS if self.model.current(old.stack, n) is None]
        slot = self.model.create_slot(old.stack, free[0], dict(old.props))
        slot.renames = old
        self.model.send("Create", slot, dict(old.props), faults)
        self.model.check()

    @precondition(lambda self: bool(self.model.idle_held()))
    @rule(index=st.integers(0, 3), props=props_strategy, faults=faults_strategy)
    def update(self, index: int, props: dict[str, str], faults: list[dict[str, Any]]) -> None:
        slot = self.model.idle_held()[index % len(self.model.idle_held())]
        if props == slot.props:
            props = dict(props, OnDelete="Delete" if props.get("OnDelete") != "Delete" else "Retain")  # C9
        self.model.send("Update", slot, props, faults, old=slot.props)
        self.model.check()

    @precondition(lambda self: bool(self.model.idle_held()))
    @rule(index=st.integers(0, 3), faults=faults_strategy)
    def spell_region(self, index: int, faults: list[dict[str, Any]]) -> None:
        """Write the function's own region out, or remove it (the same ARN either way)."""
        slot = self.model.idle_held()[index % len(self.model.idle_held())]
        props = dict(slot.props)
        if "Region" in props:
            del props["Region"]
        else:
            props["Region"] = REGION
        if props.get("Region") not in (None, REGION):
            return
        self.model.send("Update", slot, props, faults, old=slot.props)
        self.model.check()

    @precondition(lambda self: any(s.needs == "rollback_update" for s in self.model.live()))
    @rule(index=st.integers(0, 3), faults=faults_strategy)
    def rollback_update(self, index: int, faults: list[dict[str, Any]]) -> None:
        """C6: the failed Update is rolled back with an Update to the old properties."""
        slots = [s for s in self.model.live() if s.needs == "rollback_update"]
        slot = slots[index % len(slots)]
        back, failed = dict(slot.rollback_to or slot.props), dict(slot.props)
        for request in reversed(slot.requests):
            if request.kind == "Update":
                failed = request.props
                break
        slot.needs = "rolling_back"
        self.model.send("Update", slot, back, faults, old=failed)
        self.model.check()

    @precondition(lambda self: bool(self.model.deletable()))
    @rule(index=st.integers(0, 3), faults=faults_strategy)
    def delete(self, index: int, faults: list[dict[str, Any]]) -> None:
        """Stack deletion, removal from the template, rollback (C4) or cleanup (C5) Delete."""
        slot = self.model.deletable()[index % len(self.model.deletable())]
        self.model.send("Delete", slot, dict(slot.props), faults)
        self.model.check()

    @precondition(lambda self: any(s.inflight is not None and s.inflight.listening for s in self.model.live()))
    @rule(index=st.integers(0, 3))
    def cancel(self, index: int) -> None:
        """C7: another resource failed while this one's Create or Update waits."""
        slots = [s for s in self.model.live() if s.inflight is not None and s.inflight.listening]
        self.model.cancel(slots[index % len(slots)])
        self.model.check()

    @precondition(lambda self: bool(self.model.requests))
    @rule(index=st.integers(0, 20), faults=faults_strategy)
    def redeliver(self, index: int, faults: list[dict[str, Any]]) -> None:
        """C8: the same event again (duplicate delivery, or Lambda's retry of a failed invocation)."""
        requests = self.model.requests
        self.model.redeliver(requests[len(requests) - 1 - index % len(requests)], faults)
        self.model.check()

    # -- EventBridge and time --------------------------------------------------------------------------

    @rule(index=st.integers(0, 3), faults=faults_strategy)
    def fire(self, index: int, faults: list[dict[str, Any]]) -> None:
        """One rule fires now (an extra or early firing: EventBridge delivers at least once)."""
        self.model.fire_one(index, faults)
        self.model.check()

    @rule(seconds=st.sampled_from([60.0, 300.0, 1800.0, 3700.0]))
    def wait(self, seconds: float) -> None:
        self.model.wait(seconds)
        self.model.check()

    @rule()
    def restore_window_ends(self) -> None:
        """Eight days pass: a backup in PENDING_DELETION for 7 days turns DELETED (the service's purge)."""
        self.model.wait(3700.0)
        self.model.pass_time(8 * 86400.0)
        self.model.check()

    # -- someone else ----------------------------------------------------------------------------------

    @rule(key=st.sampled_from(["B1", "B2", "B3"]))
    def creation_completes(self, key: str) -> None:
        self.model.creation_completes(key)
        self.model.check()

    @rule(key=st.sampled_from(["B1", "B2", "B3"]))
    def delete_from_outside(self, key: str) -> None:
        self.model.delete_from_outside(key)
        self.model.check()

    @precondition(lambda self: any(s.inflight is not None and s.inflight.listening for s in self.model.live()))
    @rule(index=st.integers(0, 3))
    def waited_backup_vanishes(self, index: int) -> None:
        """The backup a wait is for turns DELETED (defect 7's case)."""
        slots = [s for s in self.model.live() if s.inflight is not None and s.inflight.listening]
        slot = slots[index % len(slots)]
        assert slot.inflight is not None
        name = next(k for k, v in BACKUP_IDS.items() if v == backup_of(slot.inflight.props))
        self.model.backup_vanishes(name)
        self.model.check()

    def teardown(self) -> None:
        """Let every wait run out (fairly polled), so I4 is checked for each request still in flight."""
        if any(r.listening for r in self.model.requests):
            self.model.wait(3700.0)
        self.model.check()
