"""The Lambda asset: staged locally by the pipeline's stage_lambda_code, findable in cdk.out, stable hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cdk import App, AssetStaging
from cloudhsm_backup_restore_cdk import RestoreProvider, bundling
from cloudhsm_backup_restore_pipeline.contract import HANDLER
from cloudhsm_backup_restore_pipeline.lambda_zip import stage_lambda_code

from tests.cdk.support import CLI_CONTEXT, Synthesized, build_main, logical_id


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root``."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _s3_key(synthesized_template: dict[str, object], function: str) -> str:
    resources = synthesized_template["Resources"]
    assert isinstance(resources, dict)
    key = resources[function]["Properties"]["Code"]["S3Key"]
    assert isinstance(key, str)
    return key


def _synth_main(outdir: Path) -> tuple[str, RestoreProvider, dict[str, object]]:
    app = App(outdir=str(outdir), context=CLI_CONTEXT)
    main = build_main(app)
    template = app.synth().get_stack_by_name(main.stack.stack_name).template
    provider = main.plain.provider
    return _s3_key(template, logical_id(main.stack, provider.function)), provider, template


@pytest.fixture
def fresh_bundling() -> Iterator[None]:
    """CDK caches bundling per process: clear it so a synth really re-stages (and leaves no stale entry)."""
    AssetStaging.clear_asset_hash_cache()
    yield
    AssetStaging.clear_asset_hash_cache()


def test_staged_code_dir_is_the_asset_in_cdk_out(synthesized: Synthesized) -> None:
    main = synthesized.main
    provider = main.plain.provider
    staged = provider.staged_code_dir
    asset_hash = provider.code_asset.asset_hash
    assert staged == (synthesized.outdir / f"asset.{asset_hash}").resolve()
    template = synthesized.json(main.stack)
    function = logical_id(main.stack, provider.function)
    assert _s3_key(template, function) == f"{asset_hash}.zip"
    # With the CLI's context, the function also names its asset directory in its metadata.
    assert template["Resources"][function]["Metadata"]["aws:asset:path"] == staged.name


def test_staged_code_is_exactly_the_pipelines_staging(synthesized: Synthesized, tmp_path: Path) -> None:
    staged = synthesized.main.plain.provider.staged_code_dir
    module = HANDLER.rsplit(".", 1)[0].replace(".", "/") + ".py"
    assert (staged / module).is_file()
    assert (staged / "crhelper" / "__init__.py").is_file()
    assert not [path for path in staged.rglob("*") if path.name == "__pycache__" or path.suffix == ".pyc"]
    assert _tree(staged) == _tree(stage_lambda_code(tmp_path / "code"))


def test_every_stack_stages_the_same_code(synthesized: Synthesized) -> None:
    providers = [
        synthesized.main.plain.provider,
        synthesized.vpcs.default_backup.provider,
        synthesized.tokens.backup.provider,
    ]
    assert len({provider.code_asset.asset_hash for provider in providers}) == 1


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_bundling")
def test_same_inputs_give_the_same_asset_hash(synthesized: Synthesized, tmp_path: Path) -> None:
    """Synthesize twice, each time staging afresh: same key, same hash, same files (no Docker, no network)."""
    first_key, first, _ = _synth_main(tmp_path / "first")
    AssetStaging.clear_asset_hash_cache()
    second_key, second, _ = _synth_main(tmp_path / "second")
    assert first_key == second_key == f"{first.code_asset.asset_hash}.zip"
    assert first.staged_code_dir != second.staged_code_dir
    assert _tree(first.staged_code_dir) == _tree(second.staged_code_dir)
    assert first.code_asset.asset_hash == synthesized.main.plain.provider.code_asset.asset_hash


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_bundling")
def test_the_hash_follows_the_staged_content(
    synthesized: Synthesized, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash is of the output, so a change in the staged code (e.g. another crhelper) is a new asset."""

    def stage_with_extra_file(dest: Path) -> Path:
        stage_lambda_code(dest)
        (dest / "extra.txt").write_text("changed\n", encoding="utf-8")
        return dest

    monkeypatch.setattr(bundling, "stage_lambda_code", stage_with_extra_file)
    key, provider, _ = _synth_main(tmp_path / "changed")
    assert (provider.staged_code_dir / "extra.txt").is_file()
    assert key != f"{synthesized.main.plain.provider.code_asset.asset_hash}.zip"
