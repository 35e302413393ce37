"""docs/cdk.md (the README's CDK internals moved there) and the README say what synthesizes: every Python block of
both pages and of the construct's docstrings runs as written, the option tables are the signatures, the
acknowledgment counts are the construct's."""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider
from cloudhsm_backup_restore_cdk import provider as provider_module
from cloudhsm_backup_restore_cdk import restored_backup as restored_backup_module
from cloudhsm_backup_restore_pipeline.contract import VPC_ENDPOINT_SERVICES

from tests.cdk.matrix import backup_id

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "cdk.md"
README = ROOT / "README.md"


def _page() -> str:
    return DOCS.read_text(encoding="utf-8")


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def _docstring_blocks() -> list[tuple[str, str]]:
    """(owner, code) of every reST literal block (``Example::``) in the construct's docstrings."""
    found = []
    for owner in (RestoredBackup, RestoreProvider, restored_backup_module, provider_module):
        for name, member in [(owner.__name__, owner), *inspect.getmembers(owner)]:
            doc = inspect.getdoc(member) if (member is owner or inspect.isfunction(member)) else None
            for block in re.findall(r"::\n\n((?:[ ]{4}.*\n|\n)+)", (doc or "") + "\n"):
                found.append((f"{owner.__name__}.{name}", textwrap.dedent(block)))
    return found


def _run(code: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``code`` as written; it must synthesize its ``app``."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    exec(compile(code, where, "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, App)
    assert (Path(app.outdir) / "manifest.json").is_file()


DOC_BLOCKS = _python_blocks(_page())
README_BLOCKS = _python_blocks(README.read_text(encoding="utf-8"))
DOCSTRING_BLOCKS = _docstring_blocks()


@pytest.mark.slow
@pytest.mark.parametrize("code", DOC_BLOCKS, ids=[f"docs-block-{n}" for n in range(len(DOC_BLOCKS))])
def test_every_python_block_of_the_page_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(code, str(DOCS), tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("code", README_BLOCKS, ids=[f"readme-block-{n}" for n in range(len(README_BLOCKS))])
def test_every_python_block_of_the_readme_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(code, str(README), tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize(("owner", "code"), DOCSTRING_BLOCKS, ids=[owner for owner, _ in DOCSTRING_BLOCKS])
def test_every_docstring_example_runs(owner: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(code, owner, tmp_path, monkeypatch)


def test_the_blocks_are_found() -> None:
    assert len(DOC_BLOCKS) >= 5
    assert len(README_BLOCKS) >= 1
    assert {owner.split(".")[0] for owner, _ in DOCSTRING_BLOCKS} >= {"RestoredBackup", "RestoreProvider"}


def test_no_block_uses_a_condition_on_an_attribute() -> None:
    """Defect 1: CloudFormation allows no Fn::GetAtt in a Condition; the page documents only what deploys."""
    for code in DOC_BLOCKS + README_BLOCKS + [code for _, code in DOCSTRING_BLOCKS]:
        assert "condition_equals" not in code
    assert "condition_equals" not in _page()
    assert "condition_equals" not in README.read_text(encoding="utf-8")


def _table_options(section: str, heading: str) -> list[str]:
    """The first-column names of the options table that follows ``heading``."""
    rows = section[section.index(heading) :].split("\n\n", 2)[1]
    return re.findall(r"^\| `(\w+)` \|", rows, flags=re.M)


def _keyword_options(function: object) -> list[str]:
    return [name for name, p in inspect.signature(function).parameters.items() if p.kind is p.KEYWORD_ONLY]  # type: ignore[arg-type]


def test_option_tables_list_every_option_in_order() -> None:
    page = _page()
    assert _table_options(page, "`RestoredBackup` options:") == _keyword_options(RestoredBackup.__init__)
    assert _table_options(page, "`RestoreProvider` options") == _keyword_options(RestoreProvider.__init__)


def test_vpc_endpoints_named_are_the_contracts() -> None:
    (row,) = [line for line in _page().splitlines() if line.startswith("| `vpc` |")]
    assert re.findall(r"`(\w+)`", row.split("|")[3]) == [name for _, name, _ in VPC_ENDPOINT_SERVICES]


def _acknowledged(construct: object) -> list[str]:
    found: list[str] = []
    for node in construct.node.find_all():  # type: ignore[attr-defined]
        for entry in node.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                found += [key.split("::", 1)[-1] for key in entry.data]
    return found


def test_acknowledgment_counts_are_the_pages() -> None:
    """Four IAM5 per provider, two more with a VPC, the queue's redrive rule and the invoke config's destination."""
    page = _page()
    assert "four `AwsSolutions-IAM5`" in page
    assert "two more with `vpc`" in page
    stack = Stack(App(), "Counted")
    plain = RestoredBackup(stack, "Plain", backup_id=backup_id(1)).provider
    in_vpc = RestoreProvider(stack, "InVpc", vpc=ec2.Vpc(stack, "Vpc", max_azs=1))
    for provider, iam5 in ((plain, 4), (in_vpc, 6)):
        acknowledged = _acknowledged(provider)
        assert sum(rule.startswith("AwsSolutions-IAM5[") for rule in acknowledged) == iam5
        assert sorted(rule for rule in acknowledged if not rule.startswith("AwsSolutions-IAM5[")) == [
            "Serverless-LambdaAsyncFailureDestination",
            "Serverless-SQSRedrivePolicy",
        ]
