"""The API-calls-per-lifecycle figure (bench/calls.py): ownership and protection keep the happy path small."""

from __future__ import annotations

from bench.calls import measure, render


def test_calls_per_lifecycle_step_stay_small() -> None:
    results = {r.step: r for r in measure()}
    assert all(r.ok for r in results.values()), render(list(results.values()))
    restore = results["Create: restore (OnDelete Delete)"]
    assert restore.calls == {"DescribeBackups": 1, "ModifyBackupAttributes": 1, "RestoreBackup": 1, "TagResource": 1}
    assert results["Update: same backup, nothing to do"].total == 1
    assert results["Delete by the owner, OnDelete Delete"].calls == {"DeleteBackup": 1, "DescribeBackups": 1}
    assert "DeleteBackup" not in results["Delete by an adopter (retained)"].calls
    assert "DeleteBackup" not in results["Rename: cleanup Delete of the old logical id"].calls
    assert max(r.total for r in results.values()) <= 4
