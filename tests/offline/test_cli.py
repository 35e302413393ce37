"""`cloudhsm-offline` for pipelines: one-line errors (exit 2) before the world starts, JSON, regions, signals."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cloudhsm_offline import REPORT_SCHEMA, __version__, demo, inputs
from cloudhsm_offline.cli import main
from cloudhsm_offline.signals import Stopped

from tests.functional.conftest import FIXTURE_HANDLERS, FIXTURES

pytestmark = pytest.mark.slow

TWO_RESOURCES = """
Parameters:
  Second: {Type: String, Default: backup-cliseed2second}
Resources:
  First:
    Type: Custom::CloudHsmBackupRestore
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, BackupId: backup-cliseed2first}
  Second:
    Type: Custom::CloudHsmBackupRestore
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, BackupId: !Ref Second, OnDelete: Delete}
Outputs:
  FirstArn: {Value: !GetAtt First.BackupArn}
  SecondCluster: {Value: !GetAtt Second.ClusterId}
"""


def _seed(**settings: Any) -> str:
    backups = [
        {"id": "backup-cliseed2first", "state": "PENDING_DELETION", "cluster": "cluster-cliseed2abc"},
        {"id": "backup-cliseed2second", "state": "PENDING_DELETION", "cluster": "cluster-cliseed2abc"},
    ]
    return json.dumps({"restore_seconds": 2, **settings, "backups": backups})


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A two-resource template and seeds in a temporary folder (removed by pytest)."""
    (tmp_path / "two.yaml").write_text(TWO_RESOURCES, encoding="utf-8")
    (tmp_path / "seed.json").write_text(_seed(region="eu-west-2", account="210987654321"), encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("Resources: [\n", encoding="utf-8")
    (tmp_path / "no-resources.yaml").write_text("Outputs: {}\n", encoding="utf-8")
    (tmp_path / "list-seed.yaml").write_text("backups: 5\n", encoding="utf-8")
    (tmp_path / "negative-seed.yaml").write_text("backups:\n  - id: backup-x\n    restore_seconds: -3\n")
    (tmp_path / "state-seed.yaml").write_text("backups:\n  - id: backup-x\n    state: WEIRD\n")
    (tmp_path / "region-seed.yaml").write_text("region: mars\nbackups: []\n")
    (tmp_path / "unknown-seed.yaml").write_text("regoin: eu-west-1\nbackups: []\n")
    for name, text in TEMPLATES.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    for name, text in SEEDS.items():
        (tmp_path / f"{name}-seed.yaml").write_text(text, encoding="utf-8")
    return tmp_path


_CUSTOM = "  R:\n    Type: Custom::CloudHsmBackupRestore\n    Properties:\n      ServiceToken: !ImportValue token\n"
TEMPLATES = {
    "list": "- Resources\n- Outputs\n",
    "plain": "Parameters:\n  Id: {Type: String, Default: backup-x}\nResources:\n"
    + _CUSTOM
    + "      BackupId: !Ref Id\n",
    "string": "just a sentence\n",
    "getazs": "Resources:\n" + _CUSTOM + "      BackupId: !Select [0, !GetAZs '']\n",
    "unknown-ref": "Resources:\n" + _CUSTOM + "      BackupId: !Ref Nope\n",
    "unknown-sub": "Resources:\n" + _CUSTOM + "      BackupId: !Sub 'backup-${Missing}'\n",
    "unknown-map": "Resources:\n" + _CUSTOM + "      BackupId: !FindInMap [Ids, a, b]\n",
    "unknown-map-key": "Mappings:\n  Ids: {a: {b: backup-x}}\nResources:\n"
    + _CUSTOM
    + "      BackupId: !FindInMap [Ids, a, c]\n",
    "map-default": "Transform: AWS::LanguageExtensions\nMappings:\n  Ids: {a: {b: backup-x}}\nResources:\n"
    + _CUSTOM
    + "      BackupId: !FindInMap [Ids, a, c, {DefaultValue: backup-y}]\n",
    "unknown-condition": "Resources:\n" + _CUSTOM + "      BackupId: !If [Nope, a, b]\n",
    "unknown-getatt": "Resources:\n" + _CUSTOM + "      BackupId: !GetAtt Other.BackupId\n",
    "output-ref": "Resources:\n" + _CUSTOM + "      BackupId: backup-x\nOutputs:\n  O: {Value: !Ref Gone}\n",
    "length": "Resources:\n" + _CUSTOM + "      BackupId: !Select [0, !Split [',', backup-x]]\n      N: !Length [1]\n",
    "macro": "Transform: MyMacro\nResources:\n" + _CUSTOM + "      BackupId: backup-x\n",
    "no-token": "Resources:\n  R:\n    Type: Custom::X\n    Properties: {BackupId: backup-x}\n",
    "number": "Parameters:\n  N: {Type: Number, Default: ten}\nResources:\n" + _CUSTOM + "      BackupId: !Ref N\n",
}
_PENDING = "backups:\n  - id: backup-demo2restore\n    state: PENDING_DELETION\n"
SEEDS = {
    "twice": _PENDING + "  - id: backup-demo2restore\n    state: READY\n",
    "cluster": "clusters:\n  - id: cluster-declared1a\n" + _PENDING + "    cluster: cluster-undeclared\n",
    "window": _PENDING + "    deleted_seconds_ago: 700000\n",
    "future": _PENDING + "    delete_timestamp: '2999-01-01T00:00:00Z'\n",
    "created": _PENDING + "    create_timestamp: yesterday\n",
    "created-later": _PENDING + "    deleted_seconds_ago: 60\n    create_timestamp: '2099-01-01T00:00:00Z'\n",
    "retention": "clusters:\n  - id: cluster-declared1a\n    retention_days: 3\n" + _PENDING,
    "tags": _PENDING + "    tags: [just, words]\n",
    # No state: PENDING_DELETION, as add_backup's default, so the 7-day window applies to it.
    "stateless-window": "backups:\n  - id: backup-demo2restore\n    deleted_seconds_ago: 700000\n",
}


BAD_INPUTS = {
    "missing template": (["run-template", "{d}/nope.yaml"], "nope.yaml: no such file"),
    "unparsable template": (["run-template", "{d}/bad.yaml"], "cannot parse template"),
    "template without resources": (["run-template", "{d}/no-resources.yaml"], "Resources: needs at least one resource"),
    "missing seed": (["run-template", "--seed", "{d}/nope.json"], "nope.json: no such file"),
    "seed not a list": (["run-template", "--seed", "{d}/list-seed.yaml"], "'backups' must be a list"),
    "negative restore in seed": (["run-template", "--seed", "{d}/negative-seed.yaml"], "restore_seconds must be"),
    "unknown state in seed": (["run-template", "--seed", "{d}/state-seed.yaml"], "WEIRD"),
    "bad region in seed": (["run-template", "--seed", "{d}/region-seed.yaml"], "region must be a region name"),
    "unknown seed key": (["run-template", "--seed", "{d}/unknown-seed.yaml"], "unknown seed keys"),
    "emulator speed negative": (["emulator", "--speed", "-2"], "--speed: must be greater than 0"),
    "emulator speed not a number": (["emulator", "--speed", "fast"], "--speed: must be a number"),
    "speed on run-template": (["run-template", "--speed", "2"], "unrecognized arguments: --speed"),
    "lambda timeout zero": (["run-template", "--lambda-timeout", "0"], "between 1 and 900"),
    "lambda timeout too long": (["run-template", "--lambda-timeout", "901"], "between 1 and 900"),
    "negative restore time": (["run-template", "--restore-seconds", "-1"], "must not be negative"),
    "missing code folder": (["run-template", "--code", "{d}/nowhere"], "nowhere is not a directory"),
    "missing demo code folder": (["demo", "--code", "{d}/nowhere"], "nowhere is not a directory"),
    "bad region": (["run-template", "--region", "mars"], "--region: must be a region name"),
    "bad account": (["run-template", "--account", "42"], "--account: must be a 12-digit account id"),
    "unknown parameter": (["run-template", "{d}/two.yaml", "--param", "Nope=1"], "unknown parameters: Nope"),
    "pair without =": (["run-template", "--param", "novalue"], "expected KEY=VALUE"),
    "unknown command": (["launch"], "invalid choice"),
    "emulator port out of range": (["emulator", "--port", "99999"], "--port: must be between 0"),
    "emulator bad region": (["emulator", "--region", "moon-1"], "--region: must be a region name"),
    "emulator speed zero": (["emulator", "--speed", "0"], "--speed: must be greater than 0"),
    "emulator missing seed": (["emulator", "--seed", "{d}/nope.json"], "nope.json: no such file"),
    "emulator negative restore time": (["emulator", "--restore-seconds", "-1"], "must not be negative"),
    "emulator unknown state in seed": (["emulator", "--seed", "{d}/state-seed.yaml"], "WEIRD"),
    "template is a list": (["run-template", "{d}/list.yaml"], "a template is a mapping with Resources, got a list"),
    "template is a string": (["run-template", "{d}/string.yaml"], "got a str"),
    "unsupported intrinsic": (["run-template", "{d}/getazs.yaml"], "R.Properties.BackupId.Fn::Select[1].Fn::GetAZs:"),
    "unknown Ref": (["run-template", "{d}/unknown-ref.yaml"], "BackupId.Ref: Ref to unknown name Nope"),
    "unknown Sub variable": (["run-template", "{d}/unknown-sub.yaml"], "Ref to unknown name Missing"),
    "unknown mapping": (["run-template", "{d}/unknown-map.yaml"], "unknown mapping Ids"),
    "unknown mapping key": (["run-template", "{d}/unknown-map-key.yaml"], "FindInMap: mapping Ids has no a.c"),
    "FindInMap DefaultValue": (["run-template", "{d}/map-default.yaml"], "fourth argument (DefaultValue) is not sup"),
    "unknown condition": (["run-template", "{d}/unknown-condition.yaml"], "unknown condition Nope"),
    "unknown GetAtt resource": (["run-template", "{d}/unknown-getatt.yaml"], "Fn::GetAtt on unknown resource Other"),
    "unknown Ref in an output": (["run-template", "{d}/output-ref.yaml"], "Outputs.O.Value.Ref: Ref to unknown name"),
    "Fn::Length without its transform": (
        ["run-template", "{d}/length.yaml"],
        "Resources.R.Properties.N.Fn::Length: Fn::Length needs 'Transform: AWS::LanguageExtensions'",
    ),
    "a macro": (["run-template", "{d}/macro.yaml"], "Transform MyMacro: macros are not run offline"),
    "no ServiceToken": (["run-template", "{d}/no-token.yaml"], "Resources.R: a custom resource needs Properties.Ser"),
    "Number not a number": (["run-template", "{d}/number.yaml"], "parameter N='ten' must be a number"),
    "bad edited template": (
        ["run-template", "{d}/plain.yaml", "--update-template", "{d}/unknown-ref.yaml"],
        "unknown-ref.yaml: Resources.R.Properties.BackupId.Ref: Ref to unknown name Nope",
    ),
    "backup id twice": (["run-template", "--seed", "{d}/twice-seed.yaml"], "backups[1].id: backup-demo2restore is dec"),
    "undeclared cluster": (["run-template", "--seed", "{d}/cluster-seed.yaml"], "backups[0].cluster: cluster-undecl"),
    "deleted past the window": (
        ["run-template", "--seed", "{d}/window-seed.yaml"],
        "backups[0].deleted_seconds_ago: 700000 is 8.1 days ago; a PENDING_DELETION backup was deleted within the",
    ),
    "deleted in the future": (
        ["run-template", "--seed", "{d}/future-seed.yaml"],
        "days in the future; a PENDING_DELETION backup was deleted within the last 7 days",
    ),
    "unparsable timestamp": (["run-template", "--seed", "{d}/created-seed.yaml"], "create_timestamp: cannot parse"),
    "created after its deletion": (
        ["run-template", "--seed", "{d}/created-later-seed.yaml"],
        "backups[0].create_timestamp: '2099-01-01T00:00:00Z' is after its deletion: a backup is created first",
    ),
    "retention out of range": (["run-template", "--seed", "{d}/retention-seed.yaml"], "clusters[0].retention_days"),
    "tags not key/values": (["run-template", "--seed", "{d}/tags-seed.yaml"], "backups[0].tags"),
    "stateless past the window": (
        ["run-template", "--seed", "{d}/stateless-window-seed.yaml"],
        "backups[0].deleted_seconds_ago: 700000 is 8.1 days ago; a PENDING_DELETION backup",
    ),
    "layer not installed": (["run-template", "--layer", "no_such_layer"], "--layer no_such_layer: no installed"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2_before_the_world_starts(
    case: str, files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_world(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the world must not start on bad input")

    monkeypatch.setattr(demo, "OfflineWorld", no_world)
    arguments, expected = BAD_INPUTS[case]
    assert main([a.format(d=files) for a in arguments]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("cloudhsm-offline")
    assert " error: " in lines[0]
    assert expected in lines[0]
    assert captured.out == ""


UNIMPORTABLE = {
    "module missing": (["--handler", "no_such_module.handler"], "Runtime.ImportModuleError: Unable to import module"),
    "function missing": (
        ["--code", str(FIXTURE_HANDLERS), "--handler", "fixture_handlers.nothing"],
        "Runtime.HandlerNotFound: Handler 'nothing' missing on module 'fixture_handlers'",
    ),
    "handler without a dot": (["--handler", "handler"], "Runtime.MalformedHandlerName: Bad handler 'handler'"),
    "module broken": (["--code", str(FIXTURE_HANDLERS), "--handler", "broken_module.handler"], "broken_module"),
    "code without the handler": (["--code", str(FIXTURES)], "Unable to import module 'cloudhsm_backup_restore.app'"),
}


@pytest.mark.parametrize("case", sorted(UNIMPORTABLE))
def test_a_function_that_cannot_be_imported_is_exit_2_before_any_server_starts(
    case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_start(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("no server may start for a function that cannot be imported")

    monkeypatch.setattr(demo.OfflineWorld, "start", no_start)
    arguments, expected = UNIMPORTABLE[case]
    status = main(["run-template", "--param", "BackupId=backup-demo2restore", *arguments, "--output", "json"])
    captured = capsys.readouterr()
    assert status == 2, captured.err
    assert len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith("cloudhsm-offline: error: --handler ")
    assert expected in captured.err
    assert captured.out == ""


def test_version_and_program_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"cloudhsm-offline {__version__}\n"
    assert main(["run-template", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: cloudhsm-offline run-template ")


def test_json_report_in_the_seed_region_with_an_account_override(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = json.loads((files / "seed.json").read_text(encoding="utf-8"))
    seed["backups"].append({"id": "backup-cliseed2west", "region": "us-west-2", "state": "READY"})  # another region
    (files / "seed.json").write_text(json.dumps(seed), encoding="utf-8")
    arguments = ["run-template", str(files / "two.yaml"), "--seed", str(files / "seed.json")]
    status = main([*arguments, "--account", "111122223333", "--delete", "--output", "json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err[-3000:]
    report = json.loads(captured.out)  # stdout is exactly one JSON document; the timeline went to stderr
    assert "Create stack" in captured.err
    assert report["ok"] is True
    assert report["stack"]["region"] == "eu-west-2"  # the seed's region: the handler signs for it too
    assert report["stack"]["account"] == "111122223333"
    assert report["outputs"] == {
        "FirstArn": "arn:aws:cloudhsm:eu-west-2:111122223333:backup/backup-cliseed2first",
        "SecondCluster": "cluster-cliseed2abc",
    }
    assert [(s["name"], s["status"]) for s in report["steps"]] == [
        ("create", "CREATE_COMPLETE"),
        ("delete", "DELETE_COMPLETE"),
    ]
    assert [(o["request_type"], o["logical_id"], o["status"]) for o in report["operations"]] == [
        ("Create", "First", "SUCCESS"),
        ("Create", "Second", "SUCCESS"),
        ("Delete", "Second", "SUCCESS"),
        ("Delete", "First", "SUCCESS"),
    ]
    # Every region's backups: First retained (the default OnDelete), Second deleted again, the other region's.
    assert sorted((b["region"], b["backup_id"], b["state"]) for b in report["backups"]) == [
        ("eu-west-2", "backup-cliseed2first", "READY"),
        ("eu-west-2", "backup-cliseed2second", "PENDING_DELETION"),
        ("us-west-2", "backup-cliseed2west", "READY"),
    ]
    assert all(b["delete_timestamp"] for b in report["backups"] if b["state"] == "PENDING_DELETION")
    summary = report["summary"]
    assert (summary["operations"], summary["succeeded"], summary["failed"], summary["violations"]) == (4, 4, 0, 0)
    assert summary["cloudhsm_calls"]["RestoreBackup"] == 2
    assert report["failures"] == []


def test_the_default_template_restores_an_untagged_backup(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["run-template", "--seed", str(files / "seed.json"), "--param", "BackupId=backup-cliseed2first"]
    status = main([*arguments, "--output", "json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err[-3000:]
    outputs = json.loads(captured.out)["outputs"]
    # Every output the demo template declares exists for a backup the seed gave no tags: only the owner tag.
    assert [tag["Key"] for tag in json.loads(outputs["Tags"])] == ["cloudhsm-backup-restore:owner"]
    assert outputs["BackupId"] == "backup-cliseed2first"


def test_a_failed_stack_exits_1_with_the_rollback_in_the_report(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["run-template", str(files / "two.yaml"), "--seed", str(files / "seed.json")]
    status = main(
        [*arguments, "--region", "ap-southeast-2", "--param", "Second=backup-cliseed2absent", "--output", "json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["ok"] is False
    assert report["steps"] == [{"name": "create", "status": "ROLLBACK_COMPLETE"}]
    assert [(o["request_type"], o["logical_id"], o["role"], o["status"]) for o in report["operations"]] == [
        ("Create", "First", "request", "SUCCESS"),
        ("Create", "Second", "request", "FAILED"),
        ("Delete", "Second", "rollback", "SUCCESS"),
        ("Delete", "First", "rollback", "SUCCESS"),
    ]
    failed = report["operations"][1]
    assert "backup-cliseed2absent" in failed["reason"]
    assert "ap-southeast-2" in failed["reason"]
    assert report["summary"]["failed"] == 1
    mentions = [f for f in report["failures"] if "backup-cliseed2absent" in f]
    assert len(mentions) == 1, mentions  # the failed Create once, not again as the stack's error line
    assert mentions[0].startswith("create: Create Second")


def _live_processes_mentioning(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ or marker.encode() in cmdline:
            found.append(int(proc.name))
    return found


REPORT_KEYS = {"schema", "version", "ok", "stack", "steps", "operations", "outputs", "output_errors", "backups"}
REPORT_KEYS |= {"summary", "failures"}  # every --output json document's keys (report.build_report)
HELD = """
Resources:
  Held:
    Type: Custom::Fixture
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, Mode: %s}
"""
CATCHES = "the CLI catches the signal"
"""An instant that is no line: the process's signal handlers are in (main's first line, before the heavy imports)."""
INIT_WORKER = "the Init check's worker runs"
"""An instant that is no line: the main thread has a child, the worker importing the handler before start-up."""
SIGNAL_INSTANTS = [
    # (instant: a line the run prints or one of the two above, signal, whole process group as Ctrl-C does,
    #  --output json, the fixture's Mode: block holds the Create; linger succeeds but its worker outlives
    #  the world's stop by the grace the world gives it, so the teardown lasts)
    (CATCHES, signal.SIGTERM, False, True, "block"),  # the earliest instant a handler can act: imports to come
    (CATCHES, signal.SIGINT, True, False, "block"),
    (INIT_WORKER, signal.SIGTERM, False, False, "block"),  # a worker imports the handler: nothing else exists
    (INIT_WORKER, signal.SIGINT, True, True, "block"),
    ("Starting the offline world", signal.SIGTERM, False, False, "block"),  # the servers start: moto, EventBridge
    ("Starting the offline world", signal.SIGINT, True, True, "block"),
    ("Offline world", signal.SIGINT, False, False, "block"),  # the servers run, nothing invoked yet
    ("CFN>", signal.SIGTERM, False, True, "block"),  # the Create event is on its way
    ("λ>", signal.SIGINT, True, False, "block"),  # a Lambda worker holds the Create (the fixture blocks)
    ("λ>", signal.SIGTERM, False, True, "block"),
    ("all operations succeeded", signal.SIGTERM, False, True, "linger"),  # the teardown after a successful run
    ("all operations succeeded", signal.SIGINT, True, False, "linger"),
]


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (SigCgt in /proc/PID/status).

    SIGTERM's, not SIGINT's: Python has a SIGINT handler of its own from start-up on; the CLI puts in its
    SIGINT handler first, then its SIGTERM one.
    """
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


def _has_child(pid: int) -> bool:
    """Whether the process's main thread has started a child process (a Lambda worker)."""
    return bool(Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split())


def _shows(instant: str, line: str) -> bool:
    """Whether a timeline line is the instant: a marker (``λ>``) as an event's, after its modelled time.

    Not anywhere in the line: the header's legend names every marker before anything happens.
    """
    if instant in ("CFN>", "λ>"):
        return re.match(rf"\s*\d+\.\ds\s+{re.escape(instant)}\s", line) is not None
    return instant in line


def _wait_until(proc: subprocess.Popen[str], state: Any) -> None:
    """Poll the process's state (no line says it): the instant is a state, never a guessed delay."""
    pause = threading.Event()
    while not state():
        assert proc.poll() is None, f"the run ended (status {proc.returncode}) before the instant"
        pause.wait(0.001)


@pytest.mark.parametrize(("instant", "signum", "whole_group", "as_json", "mode"), SIGNAL_INSTANTS)
def test_a_signal_at_any_instant_exits_128_plus_n_and_leaves_nothing_behind(
    instant: str, signum: int, whole_group: bool, as_json: bool, mode: str, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    template = tmp_path / "held.yaml"
    template.write_text(HELD % mode, encoding="utf-8")
    # PYTHONFAULTHANDLER: should the run hang, SIGABRT makes it print every thread's stack (see below).
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    command = [sys.executable, "-m", "cloudhsm_offline", "run-template", str(template)]
    command += ["--code", str(FIXTURE_HANDLERS), "--handler", "fixture_handlers.handler"]
    command += ["--output", "json"] if as_json else []
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=whole_group
    )
    timeline = proc.stderr if as_json else proc.stdout
    assert timeline is not None
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    reader = threading.Thread(target=lambda: [lines.put(line) for line in timeline], daemon=True)
    reader.start()
    try:
        if instant == CATCHES:
            _wait_until(proc, lambda: _catches_sigterm(proc.pid))
        elif instant == INIT_WORKER:
            _wait_until(proc, lambda: _has_child(proc.pid))
        while instant not in (CATCHES, INIT_WORKER) and not any(_shows(instant, line) for line in seen):
            assert proc.poll() is None, "".join(seen)  # a marker line, never a sleep: no CPU-speed guess
            seen.append(lines.get(timeout=300))
        if whole_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:  # a hang: fail with the stacks of the run's threads, not a bare timeout
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=30)
            reader.join(timeout=10)
            other = proc.stdout if as_json else proc.stderr  # stderr holds the stacks: read by the reader with json
            assert other is not None
            dump = "".join([*seen, *lines.queue, other.read()])
            pytest.fail(f"the run did not stop within 120 s of {signal.Signals(signum).name}:\n{dump}")
        reader.join(timeout=10)
        while not lines.empty():
            seen.append(lines.get())
        other = proc.stdout if as_json else proc.stderr
        assert other is not None
        rest = other.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    name = signal.Signals(signum).name
    message = f"cloudhsm-offline: stopped by {name}: workers and servers stopped, temporary folders removed"
    assert proc.returncode == 128 + signum, "".join(seen)
    if as_json:
        document = json.loads(rest)  # the whole of stdout: one document
        assert (document["schema"], document["ok"], document["interrupted"]) == (REPORT_SCHEMA, False, name)
        assert document["failures"][-1] == f"interrupted by {name}"
        assert set(document) == REPORT_KEYS | {"interrupted"}  # one shape, however early the signal came
        assert seen[-1].strip() == message
        assert len(seen) == 1 or seen[-2].strip(), "no blank line before the stop line: no line was cut"
        if instant in ("CFN>", "λ>"):  # the Create was under way
            assert document["steps"] == [{"name": "create", "status": "INTERRUPTED"}]
        if mode == "linger":  # stopped after a successful Create: the document still says how far it got
            assert document["steps"] == [{"name": "create", "status": "CREATE_COMPLETE"}]
            assert document["summary"]["succeeded"] == 1
            assert document["failures"] == [f"interrupted by {name}"]
    else:
        assert rest.strip().splitlines() == [message]
    assert not any("Traceback" in line for line in seen)
    assert sorted(p.name for p in scratch.iterdir()) == []
    assert _live_processes_mentioning(str(scratch)) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_standalone_emulator_stops_on_a_signal_with_128_plus_n(signum: int) -> None:
    command = [sys.executable, "-m", "cloudhsm_offline", "emulator"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once it serves
        assert first.startswith("CloudHSM v2 emulator on http://127.0.0.1:"), first
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum
    assert "Traceback" not in err


def test_a_part_that_never_starts_fails_the_run_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloudhsm_offline.cfn import world
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    # moto's ThreadedMotoServer.start() waits without a bound for its server thread to say it is ready.
    monkeypatch.setattr(ThreadedMotoServer, "_server_entry", lambda _self: None)
    monkeypatch.setattr(world, "STARTUP_SECONDS", 0.5)
    assert main(["run-template", "--param", "BackupId=backup-demo2restore"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "cloudhsm-offline: error: the offline world failed: EventBridge/Lambda (moto) did not start within 0.5 s"
    ]


def test_without_the_offline_extra_it_says_which_extra_in_one_line() -> None:
    script = (
        "import sys; sys.modules['moto'] = None\n"  # as if moto (the [offline] extra) were not installed
        "from cloudhsm_offline.cli import main\n"
        "sys.exit(main(['run-template', '--param', 'BackupId=backup-demo2restore']))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "cloudhsm-offline: error: moto is missing: install the offline extra "
        "(pip install 'cloudhsm-backup-restore[offline]')"
    ]


def test_a_signal_mid_step_keeps_what_the_step_already_decided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloudhsm_offline.cfn.simulator import CloudFormationSimulator

    template = tmp_path / "two.yaml"
    template.write_text(
        "Resources:\n"
        "  First: {Type: Custom::Fixture, Properties: {ServiceToken: !ImportValue token}}\n"
        "  Held: {Type: Custom::Fixture, DependsOn: First, Properties: {ServiceToken: !ImportValue token}}\n",
        encoding="utf-8",
    )
    send = CloudFormationSimulator.send

    def stopped_at_held(self: CloudFormationSimulator, event: dict[str, Any], role: str = "request") -> Any:
        if event["LogicalResourceId"] == "Held":  # SIGTERM while the step's second event is on its way
            raise Stopped(signal.SIGTERM)
        return send(self, event, role)

    monkeypatch.setattr(CloudFormationSimulator, "send", stopped_at_held)
    command = ["run-template", str(template), "--code", str(FIXTURE_HANDLERS), "--handler", "fixture_handlers.handler"]
    assert main([*command, "--output", "json"]) == 128 + signal.SIGTERM
    document = json.loads(capsys.readouterr().out)
    assert document["steps"] == [{"name": "create", "status": "INTERRUPTED"}]
    operations = [(o["step"], o["request_type"], o["logical_id"], o["status"]) for o in document["operations"]]
    assert operations == [("create", "Create", "First", "SUCCESS")]  # decided before the signal: still reported
    assert document["summary"]["succeeded"] == 1


def test_a_signal_before_the_world_exists_still_writes_a_versioned_json_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(_path: str) -> None:
        raise Stopped(signal.SIGTERM)  # what the CLI's handler raises when SIGTERM comes while inputs are checked

    monkeypatch.setattr(inputs, "check_seed", interrupted)
    assert main(["run-template", "--output", "json"]) == 128 + signal.SIGTERM
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert (document["schema"], document["version"]) == (REPORT_SCHEMA, __version__)
    assert (document["ok"], document["interrupted"]) == (False, "SIGTERM")
    assert captured.err.strip().splitlines() == [
        "cloudhsm-offline: stopped by SIGTERM: workers and servers stopped, temporary folders removed"
    ]
