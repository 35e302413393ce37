"""The README's CDK section says what synthesizes: the props, the acknowledgments, the VPC endpoints."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from aws_cdk import App, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider
from cloudhsm_backup_restore_pipeline.contract import VPC_ENDPOINT_SERVICES

from tests.cdk.matrix import backup_id

README = Path(__file__).resolve().parents[2] / "README.md"


def _cdk_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("\n## CDK\n") : text.index("\n## Deploy with CloudFormation")]


def _table_options(section: str, heading: str) -> list[str]:
    """The first-column names of the options table that follows ``heading``."""
    rows = section[section.index(heading) :].split("\n\n", 2)[1]
    return re.findall(r"^\| `(\w+)` \|", rows, flags=re.M)


def _keyword_options(function: object) -> list[str]:
    return [name for name, p in inspect.signature(function).parameters.items() if p.kind is p.KEYWORD_ONLY]  # type: ignore[arg-type]


def test_option_tables_list_every_option_in_order() -> None:
    section = _cdk_section()
    assert _table_options(section, "`RestoredBackup` options:") == _keyword_options(RestoredBackup.__init__)
    assert _table_options(section, "`RestoreProvider` options") == _keyword_options(RestoreProvider.__init__)


def test_vpc_endpoints_named_are_the_contracts() -> None:
    section = _cdk_section()
    (row,) = [line for line in section.splitlines() if line.startswith("| `vpc` |")]
    assert re.findall(r"`(\w+)`", row.split("|")[3]) == [name for _, name, _ in VPC_ENDPOINT_SERVICES]


def _acknowledged(construct: object) -> list[str]:
    found: list[str] = []
    for node in construct.node.find_all():  # type: ignore[attr-defined]
        for entry in node.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                found += [key.split("::", 1)[-1] for key in entry.data]
    return found


def test_acknowledgment_counts_are_the_readmes() -> None:
    """Five IAM5 per provider, two more with a VPC, and the dead-letter queue's redrive rule; nothing else."""
    section = _cdk_section()
    assert "five `AwsSolutions-IAM5`" in section
    assert "two more with `vpc`" in section
    stack = Stack(App(), "Counted")
    plain = RestoredBackup(stack, "Plain", backup_id=backup_id(1)).provider
    in_vpc = RestoreProvider(stack, "InVpc", vpc=ec2.Vpc(stack, "Vpc", max_azs=1))
    for provider, iam5 in ((plain, 5), (in_vpc, 7)):
        acknowledged = _acknowledged(provider)
        assert sum(rule.startswith("AwsSolutions-IAM5[") for rule in acknowledged) == iam5
        assert [rule for rule in acknowledged if not rule.startswith("AwsSolutions-IAM5[")] == [
            "Serverless-SQSRedrivePolicy"
        ]
