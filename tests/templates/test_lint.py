"""cfn-lint finds nothing in any template: no errors, warnings or informational findings, in any region."""

from __future__ import annotations

import pytest
from cloudhsm_backup_restore_pipeline.build import PackageResult

from tests.templates.cfn import TEMPLATES, findings

TEMPLATE_NAMES = sorted(path.name for path in TEMPLATES.glob("*.yaml"))


def test_all_templates_are_covered() -> None:
    assert TEMPLATE_NAMES == ["consumer.yaml", "provider.yaml"]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_template_lints_clean(name: str) -> None:
    assert findings((TEMPLATES / name).read_text(encoding="utf-8")) == []


def test_packaged_provider_lints_clean(packaged: PackageResult) -> None:
    assert findings(packaged.template_path.read_text(encoding="utf-8")) == []


def test_lint_catches_a_bad_template() -> None:
    """The lint harness really reports findings (a misspelled IAM action is a warning)."""
    text = (TEMPLATES / "provider.yaml").read_text(encoding="utf-8")
    broken = text.replace("cloudhsm:RestoreBackup,", "cloudhsm:RestoreBackups,")
    assert broken != text
    assert any(finding.startswith("W3037") for finding in findings(broken))
