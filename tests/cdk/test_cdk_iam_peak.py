"""No edit of any set of backups exceeds an IAM quota during the stack update, at 1 to 450 backups.

IAM is not emulated offline, so the peak is computed from the old and the new synthesized templates and
CloudFormation's documented update order: resources new to the template, and resources whose immutable
properties change (an AWS::IAM::ManagedPolicy's ``ManagedPolicyName``, ``Path`` or ``Description``: "Update
requires: Replacement"), are created in the update phase; the old ones are deleted in the cleanup phase, after the
whole update. So at the peak the role holds every managed policy of the old template, plus every one created new,
plus a second copy of every one replaced; each policy document is the old or the new one, whichever is larger.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Environment, Fn, RemovalPolicy, Stack
from cloudhsm_backup_restore_cdk import RestoredBackup
from cloudhsm_backup_restore_cdk.grants import (
    MANAGED_POLICIES_PER_ROLE,
    MANAGED_POLICY_CHARACTERS,
    ROLE_INLINE_CHARACTERS,
)

from tests.cdk.matrix import EXPLICIT, backup_id, evaluate, policy_size
from tests.cdk.support import resources

SIZES = (1, 5, 30, 100, 450)
"""450: with the provider's resources, close to CloudFormation's 500 resources per stack."""
REPLACING_PROPERTIES = ("ManagedPolicyName", "Path", "Description")
"""AWS::IAM::ManagedPolicy properties whose change replaces the policy (CloudFormation resource reference)."""
IDS_PARAMETER = "BackupIds"
DOCUMENTED = tuple(Path(__file__).resolve().parents[2] / "docs" / name for name in ("cdk.md", "iam.md"))
"""The pages quoting the figures this test measures."""


def longest_id(number: int) -> str:
    """A valid backup id of the longest length (16 characters after the prefix), distinct per ``number``."""
    return backup_id(number).replace("backup-", "backup-zzzzz")


@dataclass(frozen=True)
class Deployed:
    """One synthesized stack and the parameter values its update is deployed with."""

    template: dict[str, Any]
    parameters: Mapping[str, Any]


def synthesize(
    tmp_path: Path,
    name: str,
    ids: list[str],
    *,
    env: Environment | None = EXPLICIT,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    tokens: bool = False,
) -> dict[str, Any]:
    """A stack of RestoredBackups ``Backup<index>`` (index-based construct ids, as a loop writes them)."""
    app = App(outdir=str(tmp_path / name))
    stack = Stack(app, "Peak", env=env)
    values: list[str] = ids
    if tokens:
        parameter = CfnParameter(stack, IDS_PARAMETER, type="CommaDelimitedList")
        values = [Fn.select(index, parameter.value_as_list) for index in range(len(ids))]
    for index, value in enumerate(values):
        RestoredBackup(stack, f"Backup{index}", backup_id=value, removal_policy=removal_policy)
    return dict(app.synth().get_stack_by_name("Peak").template)


def _attached(template: Mapping[str, Any], role: str, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical: body
        for logical, body in resources(template, kind).items()
        if {"Ref": role} in body["Properties"].get("Roles", [])
    }


@dataclass(frozen=True)
class Peak:
    """What the provider role holds at the worst moment of one update."""

    managed_policies: int
    largest_policy: int
    inline_characters: int

    def problems(self) -> list[str]:
        """Every IAM quota the peak exceeds."""
        found = []
        if self.managed_policies > MANAGED_POLICIES_PER_ROLE:
            found.append(f"{self.managed_policies} managed policies > {MANAGED_POLICIES_PER_ROLE}")
        if self.largest_policy > MANAGED_POLICY_CHARACTERS:
            found.append(f"a managed policy of {self.largest_policy} characters > {MANAGED_POLICY_CHARACTERS}")
        if self.inline_characters > ROLE_INLINE_CHARACTERS:
            found.append(f"inline policies of {self.inline_characters} characters > {ROLE_INLINE_CHARACTERS}")
        return found


def peak(old: Deployed, new: Deployed) -> Peak:
    """The peak of the update from ``old`` to ``new`` for every role the two templates share (the provider's)."""
    roles = set(resources(old.template, "AWS::IAM::Role")) | set(resources(new.template, "AWS::IAM::Role"))
    worst = Peak(0, 0, 0)
    for role in roles:
        before = _attached(old.template, role, "AWS::IAM::ManagedPolicy")
        after = _attached(new.template, role, "AWS::IAM::ManagedPolicy")
        replaced = [
            logical
            for logical in before.keys() & after.keys()
            if any(
                evaluate(before[logical]["Properties"].get(key), old.parameters)
                != evaluate(after[logical]["Properties"].get(key), new.parameters)
                for key in REPLACING_PROPERTIES
            )
        ]
        arns = max(
            (
                len(body["Properties"].get("ManagedPolicyArns", []))
                for template in (old.template, new.template)
                for logical, body in resources(template, "AWS::IAM::Role").items()
                if logical == role
            ),
            default=0,
        )
        sizes = [
            policy_size(body["Properties"]["PolicyDocument"], app.parameters)
            for app, attached in ((old, before), (new, after))
            for body in attached.values()
        ]
        inline: dict[str, int] = {}
        for app in (old, new):
            for logical, body in _attached(app.template, role, "AWS::IAM::Policy").items():
                size = policy_size(body["Properties"]["PolicyDocument"], app.parameters)
                inline[logical] = max(inline.get(logical, 0), size)
        candidate = Peak(
            managed_policies=len(before.keys() | after.keys()) + len(replaced) + arns,
            largest_policy=max(sizes, default=0),
            inline_characters=sum(inline.values()),
        )
        worst = Peak(*(max(a, b) for a, b in zip(vars(worst).values(), vars(candidate).values(), strict=True)))
    return worst


Edit = Callable[[Path, int], tuple[Deployed, Deployed]]


def _literal(tmp_path: Path, name: str, ids: list[str], **options: Any) -> Deployed:
    return Deployed(synthesize(tmp_path, name, ids, **options), {})


def removal_policy_destroy_on_all(tmp_path: Path, count: int) -> tuple[Deployed, Deployed]:
    ids = [longest_id(n) for n in range(count)]
    return _literal(tmp_path, "retain", ids), _literal(tmp_path, "destroy", ids, removal_policy=RemovalPolicy.DESTROY)


def env_added(tmp_path: Path, count: int) -> tuple[Deployed, Deployed]:
    ids = [longest_id(n) for n in range(count)]
    return _literal(tmp_path, "agnostic", ids, env=None), _literal(tmp_path, "explicit", ids)


def index_based_ids_one_removed(tmp_path: Path, count: int) -> tuple[Deployed, Deployed]:
    ids = [longest_id(n) for n in range(count)]
    fewer = ids[: count // 2] + ids[count // 2 + 1 :]
    return _literal(tmp_path, "all", ids), _literal(tmp_path, "one-removed", fewer)


def token_ids_all_changed(tmp_path: Path, count: int) -> tuple[Deployed, Deployed]:
    template = synthesize(tmp_path, "tokens", [""] * count, tokens=True)
    old = [longest_id(n) for n in range(count)]
    new = [longest_id(n + count) for n in range(count)]
    return Deployed(template, {IDS_PARAMETER: old}), Deployed(template, {IDS_PARAMETER: new})


def literal_ids_become_tokens(tmp_path: Path, count: int) -> tuple[Deployed, Deployed]:
    ids = [longest_id(n) for n in range(count)]
    tokens = Deployed(synthesize(tmp_path, "tokens", [""] * count, tokens=True), {IDS_PARAMETER: ids})
    return _literal(tmp_path, "literals", ids), tokens


EDITS: dict[str, Edit] = {
    "removal_policy DESTROY on all": removal_policy_destroy_on_all,
    "env added": env_added,
    "index-based ids, one removed": index_based_ids_one_removed,
    "token ids, every value changed": token_ids_all_changed,
    "literal ids become tokens": literal_ids_become_tokens,
}


@pytest.mark.slow
@pytest.mark.parametrize("count", SIZES)
def test_no_edit_exceeds_an_iam_quota_during_the_update(tmp_path: Path, count: int) -> None:
    figures = {}
    for name, edit in EDITS.items():
        old, new = edit(tmp_path / name.replace(" ", "-").replace(",", ""), count)
        figures[name] = peak(old, new)
        assert figures[name].problems() == [], (name, figures[name])
    # The figures are what the design promises: the peak is the larger template, never the sum of both.
    assert all(figure.inline_characters == 0 for figure in figures.values())
    assert max(figure.managed_policies for figure in figures.values()) <= 1 + -(-count // 60)
    measured = tuple(max(getattr(figure, name) for figure in figures.values()) for name in vars(Peak(0, 0, 0)))
    for page in DOCUMENTED:
        assert documented_figures(page).get(count) == measured, page.name


def documented_figures(page: Path) -> dict[int, tuple[int, ...]]:
    """The peak table of a docs page: backups -> (managed policies, largest policy, inline characters)."""
    rows = re.findall(r"^\| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$", page.read_text(encoding="utf-8"), re.M)
    return {int(row[0].replace(",", "")): tuple(int(cell.replace(",", "")) for cell in row[1:]) for row in rows}


def test_the_pages_tabulate_every_size() -> None:
    for page in DOCUMENTED:
        assert sorted(documented_figures(page)) == list(SIZES), page.name


def test_the_peak_counts_a_replaced_policy_twice(tmp_path: Path) -> None:
    """The arithmetic itself: a ManagedPolicyName that changes with the content replaces the policy."""

    def template(name: str) -> dict[str, Any]:
        return {
            "Resources": {
                "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
                "Policy": {
                    "Type": "AWS::IAM::ManagedPolicy",
                    "Properties": {
                        "ManagedPolicyName": name,
                        "Roles": [{"Ref": "Role"}],
                        "PolicyDocument": {"Statement": []},
                    },
                },
            }
        }

    assert peak(Deployed(template("a"), {}), Deployed(template("b"), {})).managed_policies == 2
    assert peak(Deployed(template("a"), {}), Deployed(template("a"), {})).managed_policies == 1
