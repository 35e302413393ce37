"""The hand-off's deployment facts: isolation between providers, and the VPC endpoints the handler needs."""

from __future__ import annotations

import ast
from fnmatch import fnmatchcase

import pytest
from cloudhsm_backup_restore import polling
from cloudhsm_backup_restore_pipeline import contract

from tests.templates.cfn import ROOT, load_file

HANDLER = ROOT / "handler" / "cloudhsm_backup_restore"
ACCOUNT_RULES = "arn:aws:events:eu-west-1:111122223333:rule/"
ACCOUNT_PARAMETERS = "arn:aws:ssm:eu-west-1:111122223333:parameter"


def grants_of(provider_id: str) -> list[str]:
    """The resource patterns one provider's IAM names for its rules and parameters (templates and CDK)."""
    return [
        ACCOUNT_RULES + contract.poll_rule_prefix(provider_id) + "*",
        ACCOUNT_PARAMETERS + contract.response_parameter_prefix(provider_id) + "*",
    ]


def made_by(provider_id: str, logical_id: str) -> list[str]:
    """The ARNs of the rule and the parameter one hand-off of ``provider_id`` creates."""
    rule = polling.rule_name(provider_id, "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1-2-3-4-5", logical_id)
    return [ACCOUNT_RULES + rule, ACCOUNT_PARAMETERS + polling.response_parameter(provider_id, rule)]


@pytest.mark.parametrize("logical_id", ["Restored", "R" * 255, "abc123def456", "cloudhsm"])
def test_two_providers_in_one_account_cannot_reach_each_others_rules_or_parameters(logical_id: str) -> None:
    first, second = "0a1b2c3d4e5f", "0a1b2c3d4e5"  # one a prefix of the other: the trailing '-' or '/' matters
    for own, other in ((first, second), (second, first)):
        own_rule, own_parameter = made_by(own, logical_id)
        assert fnmatchcase(own_rule, grants_of(own)[0])
        assert fnmatchcase(own_parameter, grants_of(own)[1])
        for arn in (own_rule, own_parameter):
            assert not any(fnmatchcase(arn, pattern) for pattern in grants_of(other)), (arn, other)


def _clients_created_by_the_handler() -> set[str]:
    """Service names passed as literals to any ``*.client("...")`` call in handler/ (boto3 or the hand-off's)."""
    found: set[str] = set()
    for path in HANDLER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            if name == "client" and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


def test_vpc_endpoints_are_the_services_the_handler_calls_plus_s3_for_the_response() -> None:
    listed = {client for client, _, _ in contract.VPC_ENDPOINT_SERVICES}
    assert listed - {"s3"} == _clients_created_by_the_handler()
    assert "s3" in listed  # the ResponseURL is a presigned S3 URL: a gateway endpoint (or NAT) is needed


PLACES = ["provider.yaml SubnetIds", "README troubleshooting", "docs/iam.md VPC endpoints", "docs/cdk.md vpc option"]


@pytest.mark.parametrize("place", PLACES)
def test_every_place_listing_vpc_endpoints_lists_all_of_them(place: str) -> None:
    if place == "provider.yaml SubnetIds":
        text = load_file("provider.yaml")["Parameters"]["SubnetIds"]["Description"]
    elif place == "README troubleshooting":
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        text = readme.split("**A VPC without endpoints.**", 1)[1].split("\n\n", 1)[0]
    elif place == "docs/iam.md VPC endpoints":
        text = (ROOT / "docs" / "iam.md").read_text(encoding="utf-8").split("## VPC endpoints", 1)[1].split("\n#", 1)[0]
    else:
        cdk = ROOT / "docs" / "cdk.md"
        if not cdk.exists():
            pytest.skip("docs/cdk.md is written by issue 16")
        [text] = [line for line in cdk.read_text(encoding="utf-8").splitlines() if line.startswith("| `vpc` |")]
    for _, endpoint, _ in contract.VPC_ENDPOINT_SERVICES:
        assert f"`{endpoint}`" in text or f" {endpoint} " in text or f"{endpoint}," in text, (place, endpoint)
