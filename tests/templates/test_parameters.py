"""Wrong parameter values fail the provider deploy before anything is created, with a message saying what was expected.

CloudFormation checks a parameter against its AllowedPattern before it creates anything; for a CommaDelimitedList
"the pattern must match each value in the list", and "each member string is space trimmed" (CloudFormation
template reference, Parameters). moto does not check patterns, so this applies them as CloudFormation documents.
"""

from __future__ import annotations

import re

import pytest

from tests.templates import readme
from tests.templates.cfn import load_file

PARAMETERS = load_file("provider.yaml")["Parameters"]
LISTS = sorted(name for name, spec in PARAMETERS.items() if spec["Type"] == "CommaDelimitedList")


def accepted(name: str, value: str) -> bool:
    """Whether CloudFormation accepts ``value`` for parameter ``name`` (each list entry matched, like it does)."""
    spec = PARAMETERS[name]
    values = [v.strip() for v in value.split(",")] if spec["Type"] == "CommaDelimitedList" else [value]
    return all(re.fullmatch(str(spec["AllowedPattern"]), entry) for entry in values)


def test_every_list_parameter_has_a_pattern_and_says_what_it_expects() -> None:
    assert LISTS == ["BackupArns", "SecurityGroupIds", "SubnetIds"]
    for name in LISTS:
        assert accepted(name, str(PARAMETERS[name]["Default"])), name
        assert PARAMETERS[name]["ConstraintDescription"].startswith("each value must be"), name


def test_the_readme_backup_arns_are_accepted() -> None:
    [documented] = [c.split("=", 1)[1] for c in readme.pipeline_commands() if c.startswith("BACKUP_ARNS=")]
    assert accepted("BackupArns", documented)


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:cloudhsm:eu-west-1:111122223333:backup/backup-abcdefghijk",
        "arn:aws:cloudhsm:eu-west-1:111122223333:backup/backup-abcdefghijk,"
        "arn:aws:cloudhsm:us-east-1:111122223333:backup/backup-234567abcdefghij",
        "arn:aws-us-gov:cloudhsm:us-gov-west-1:111122223333:backup/backup-abcdefghijk",
        "arn:aws-cn:cloudhsm:cn-north-1:111122223333:backup/*",
    ],
)
def test_backup_arns_accepted(value: str) -> None:
    assert accepted("BackupArns", value)


@pytest.mark.parametrize(
    "value",
    [
        "backup-abcdefghijk",  # an id, not an ARN: IAM would fail the role only after other resources exist
        "arn:aws:cloudhsm:eu-west-1:111122223333:backup/backup-abcdefghijk arn:aws:cloudhsm:eu-west-1:"
        "111122223333:backup/backup-lmnopqrstuv",  # separated by a space, not a comma: one value
        "arn:aws:cloudhsm:eu-west-1:111122223333:cluster/cluster-abcdefghijk",
        "arn:aws:cloudhsm:eu-west-1:1111:backup/backup-abcdefghijk",
        "arn:aws:cloudhsm:eu-west-1:111122223333:backup/backup-abc",
        "arn:aws:cloudhsm:eu-west-1:111122223333:backup/backup-abcdefghij1",  # 1 is not in [2-7a-zA-Z]
        "*",
    ],
)
def test_backup_arns_rejected(value: str) -> None:
    assert not accepted("BackupArns", value)


def test_network_ids_are_checked() -> None:
    assert accepted("SubnetIds", "subnet-0123456789abcdef0,subnet-01234567")
    assert accepted("SecurityGroupIds", "sg-0123456789abcdef0")
    assert not accepted("SubnetIds", "sg-0123456789abcdef0")
    assert not accepted("SecurityGroupIds", "subnet-0123456789abcdef0")
    assert not accepted("SubnetIds", "subnet-0123456789abcdef0 subnet-01234567")


@pytest.mark.parametrize("name", ["LogGroupEncryptionKey", "EnvironmentEncryption"])
def test_kms_keys_single_and_multi_region_but_no_alias(name: str) -> None:
    assert accepted(name, "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert accepted(name, "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab")
    assert not accepted(name, "arn:aws:kms:eu-west-1:111122223333:alias/my-key")
