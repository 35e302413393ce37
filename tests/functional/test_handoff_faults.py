"""End to end: the polling hand-off under faults, provider updates, a second provider and concurrency (issue 10).

The real handler and crhelper run in Lambda workers against the CloudHSM emulator and moto (EventBridge, SSM,
Lambda) behind the gateway, which injects the faults. Each scenario ends with exactly one answer per resource
(or a documented outcome: CloudFormation's own timeout when the ResponseURL cannot be read) and nothing left
behind after the deadline: no rule, target, parked parameter or per-wait permission (``world.verify()``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cloudhsm_offline.cfn.providers import add_provider
from cloudhsm_offline.cfn.world import OfflineWorld

from tests.functional.conftest import WorldFactory, assert_clean

BACKUP = "backup-abcdefghijk"
OTHER = "backup-zyxwvutsrqp"
# A 120 s Lambda: the Create hands off after 45 s in-process (120 s less the 75 s margin).
HANDOFF = {"lambda_timeout": 120}


def _quiet(world: OfflineWorld) -> None:
    """Let every rule that still exists fire its last (sweep) firing and every invocation end."""
    assert world.eventbridge is not None
    assert world.eventbridge.wait_quiet(20.0), world.eventbridge.active_rules()
    assert world.function.wait_idle(20.0)


def _on_call(world: OfflineWorld, operation: str, action: Any) -> None:
    """Run ``action()`` once, right after the first successful ``operation`` call (e.g. the hand-off's PutTargets)."""
    assert world.eventbridge is not None
    done: list[bool] = []

    def listener(kind: str, call: Any) -> None:
        if kind == "call" and call.operation == operation and call.status < 400 and not done:
            done.append(True)
            action()

    world.eventbridge.listeners.add(listener)


def _statuses(world: OfflineWorld, operation: str) -> list[int]:
    assert world.eventbridge is not None
    return [call.status for call in world.eventbridge.calls if call.operation == operation]


def test_a_precautionary_delete_rule_counts_as_no_rule_removed(make_world: WorldFactory) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    assert world.simulator.create("Restored", {"BackupId": BACKUP}).ok  # READY at once: no hand-off, no rule
    assert world.simulator.delete("Restored").ok
    bridge = world.eventbridge
    assert bridge is not None
    assert bridge.count("PutRule") == 0
    assert bridge.count("DeleteRule") >= 1  # the Delete removes a rule a wait might have left: it succeeds anyway
    assert bridge.rules_removed() == 0
    assert_clean(world)


def test_ssm_denied_at_a_poll_stops_the_polling_and_leaves_nothing(make_world: WorldFactory) -> None:
    world = make_world(restore_seconds=600, **HANDOFF)
    world.emulator.account.add_backup(BACKUP)
    bridge = world.eventbridge
    assert bridge is not None
    _on_call(world, "PutTargets", lambda: bridge.faults.deny("GetParameter"))

    outcome = world.simulator.create("Restored", {"BackupId": BACKUP}, service_timeout=900, rollback=False)

    # Documented: with the ResponseURL unreadable nothing can answer, so CloudFormation's own timeout does;
    # the first poll stopped the polling instead of firing every minute until then.
    assert outcome.timed_out
    assert outcome.responses == []
    assert _statuses(world, "GetParameter") == [400]
    assert [f.rule for f in bridge.firings if f.invocation is not None] == list(bridge.rules)
    assert bridge.count("DeleteParameter") == 1
    assert bridge.count("DeleteRule") == 1
    assert '"polling.stopped_unanswerable"' in world.logs()
    assert_clean(world)


def test_a_delete_rule_that_fails_past_retries_leaves_a_silent_rule_the_delete_removes(
    make_world: WorldFactory,
) -> None:
    world = make_world(restore_seconds=150, **HANDOFF)
    world.emulator.account.add_backup(BACKUP)
    bridge = world.eventbridge
    assert bridge is not None
    bridge.faults.fail_next(2, "DeleteRule")  # both attempts of the answering poll's DeleteRule

    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.ok, outcome.summary()
    assert len(outcome.responses) == 1
    assert _statuses(world, "DeleteRule") == [500, 500]
    assert bridge.count("AddPermission") == 0  # no run-time Lambda policy edits
    # A target-less rule never fires; the resource's Delete ends its wait by name (I3).
    assert world.simulator.delete("Restored").ok
    assert _statuses(world, "DeleteRule") == [500, 500, 200]
    _quiet(world)
    assert_clean(world)


def test_a_provider_update_during_a_wait_continues_on_the_new_code(make_world: WorldFactory) -> None:
    world = make_world(restore_seconds=150, **HANDOFF)
    world.emulator.account.add_backup(BACKUP)
    _on_call(world, "PutTargets", lambda: world.function.update(env={"DEPLOYED": "again"}))

    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    _quiet(world)

    assert outcome.ok, outcome.summary()
    polls = [record for record in world.function.records if record.event.get("CrHelperPoll")]
    assert polls[0].cold  # a new execution environment: the updated function
    assert_clean(world)


def test_two_providers_in_one_account_keep_to_their_own_rules_and_parameters(make_world: WorldFactory) -> None:
    world = make_world(restore_seconds=150, **HANDOFF)
    world.emulator.account.add_backup(BACKUP)
    world.emulator.account.add_backup(OTHER)
    second = add_provider(world, "second-provider", "bbbbbbbbbbbb")

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(world.simulator.create, "Restored", {"BackupId": BACKUP})
        other = pool.submit(second.create, "Restored", {"BackupId": OTHER})  # same LogicalResourceId
        outcomes = [first.result(), other.result()]
    _quiet(world)
    assert second.function.wait_idle(20.0)

    assert all(outcome.ok for outcome in outcomes), [outcome.summary() for outcome in outcomes]
    assert [outcome.physical_resource_id for outcome in outcomes] == [
        f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{backup_id}" for backup_id in (BACKUP, OTHER)
    ]  # the backup's ARN (issue 9: unique per backup and region)
    assert world.eventbridge is not None
    prefixes = {"first": f"cloudhsm-poll-{world.provider_id}-", "second": "cloudhsm-poll-bbbbbbbbbbbb-"}
    assert sorted(name[:27] for name in world.eventbridge.rules) == sorted(prefixes.values())
    for function, prefix in ((world.function, prefixes["first"]), (second.function, prefixes["second"])):
        polled = {record.source.split(":", 1)[1] for record in function.records if record.event.get("CrHelperPoll")}
        assert polled, function.function_name
        assert all(rule.startswith(prefix) for rule in polled), (function.function_name, polled)
    assert_clean(world)


def test_a_dozen_concurrent_hand_offs_on_one_provider_each_answer_once(make_world: WorldFactory) -> None:
    ids = [f"backup-{letter * 11}" for letter in "abcdefghijkm"]
    world = make_world(restore_seconds=150, max_concurrency=6, **HANDOFF)
    for backup_id in ids:
        world.emulator.account.add_backup(backup_id)
    world.simulator.settle = False

    with ThreadPoolExecutor(len(ids)) as pool:
        outcomes = list(pool.map(lambda i: world.simulator.create(f"Restored{i}", {"BackupId": ids[i]}), range(12)))
    _quiet(world)

    assert [outcome.status for outcome in outcomes] == ["SUCCESS"] * len(ids), [o.summary() for o in outcomes]
    assert all(len(outcome.responses) == 1 for outcome in outcomes)
    assert world.eventbridge is not None
    assert world.eventbridge.count("PutRule") == len(ids)
    assert world.eventbridge.count("AddPermission") == 0
    assert_clean(world)


def test_a_delete_during_a_parked_wait_ends_the_wait_before_it_answers(make_world: WorldFactory) -> None:
    # Issue 15, defect 2: CloudFormation cancels a Create handed off to polling and sends its Delete. The Delete
    # ends the wait (rule, target, parameter) before answering; nothing acts on the backup for the resource later.
    world = make_world(restore_seconds=600, **HANDOFF)
    world.emulator.account.add_backup(BACKUP)
    bridge = world.eventbridge
    assert bridge is not None
    parked = threading.Event()
    _on_call(world, "PutTargets", parked.set)
    props = {"BackupId": BACKUP, "OnDelete": "Delete"}
    with ThreadPoolExecutor(1) as pool:
        create = pool.submit(world.simulator.create, "Restored", props, service_timeout=900, rollback=False)
        assert parked.wait(30.0)
        arn = f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{BACKUP}"
        deleted = world.simulator.delete("Restored", props, physical_id=arn)
        assert deleted.ok, deleted.summary()
        assert bridge.active_rules() == []
        assert bridge.leftovers() == []
        acted = {op: world.emulator.count(op) for op in ("RestoreBackup", "TagResource", "ModifyBackupAttributes")}
        assert create.result(60.0).responses == []  # the cancelled Create is never answered
    _quiet(world)
    assert acted["RestoreBackup"] == 1
    assert {op: world.emulator.count(op) for op in acted} == acted
    assert [
        f
        for f in bridge.firings
        if f.invocation is not None and f.modelled > deleted.event_sent + deleted.elapsed_modelled
    ] == []
