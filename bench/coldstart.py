"""Cold start: a fresh Python process importing the handler and serving its first event, against importing
crhelper and creating one cloudhsmv2 client in a fresh process (the floor any crhelper handler of this resource pays).

Measured in real time (no modelled clock): the CloudHSM emulator and an HTTPS ResponseURL run in this
process; each child is ``python -I`` with the repository's virtualenv site-packages (crhelper, boto3).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudhsm_offline.cfn.response_server import ResponseServer
from cloudhsm_offline.clock import VirtualClock
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator

from bench.world import BENCH_ACCOUNT, VARIANTS, new_backup_id

CHILD = Path(__file__).resolve().with_name("_coldstart_child.py")
REGION = "us-east-1"


@dataclass
class ColdStartRun:
    """One fresh process: seconds spent importing (+ initialising), on the first event, spawn to done."""

    import_s: float
    first_s: float | None
    spawn_to_done_s: float
    ok: bool


@dataclass
class ColdStart:
    """Medians over the runs, ours and the floor."""

    runs: int
    ours: list[ColdStartRun]
    floor: list[ColdStartRun]

    @staticmethod
    def _median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    def median(self, which: str, field: str) -> float | None:
        """Median of ``field`` (import_s, first_s, spawn_to_done_s, total_s) for ``ours`` or ``floor``."""
        runs = self.ours if which == "ours" else self.floor
        if field == "total_s":
            return self._median([r.import_s + (r.first_s or 0.0) for r in runs])
        return self._median([getattr(r, field) for r in runs])

    @property
    def all_ok(self) -> bool:
        """Every run of ours answered SUCCESS and every floor run initialised."""
        return all(r.ok for r in [*self.ours, *self.floor])


def _environment(emulator_url: str, ca_bundle: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIABENCHEXAMPLE0000",
        "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
        "AWS_SESSION_TOKEN": "bench-session-token",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "cloudhsm-backup-restore-provider",
        "AWS_ENDPOINT_URL_CLOUDHSM_V2": emulator_url,
        "AWS_CA_BUNDLE": ca_bundle,
    }


def _spawn(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    spawned = time.monotonic()
    done = subprocess.run(  # our own interpreter and script
        [sys.executable, "-I", str(CHILD), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"cold-start child failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, spawned


def _create_event(responses: ResponseServer, backup_id: str) -> dict[str, Any]:
    stack_id = f"arn:aws:cloudformation:{REGION}:{BENCH_ACCOUNT}:stack/bench-cold/{uuid.uuid4()}"
    request_id = str(uuid.uuid4())
    token = f"arn:aws:lambda:{REGION}:{BENCH_ACCOUNT}:function:cloudhsm-backup-restore-provider"
    return {
        "RequestType": "Create",
        "ServiceToken": token,
        "ResponseURL": responses.mint(stack_id, request_id),
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": "RestoredBackup",
        "ResourceType": "Custom::CloudHsmBackupRestore",
        "ResourceProperties": {"ServiceToken": token, "BackupId": backup_id, "OnDelete": "Delete"},
    }


def measure_cold_start(runs: int = 5) -> ColdStart:
    """``runs`` fresh processes each for our handler (import + first Create) and the bare floor."""
    ours = VARIANTS["ours"]
    clock = VirtualClock()  # nothing waits on it: the restore is READY at once, the bench times real seconds
    emulator = CloudHsmEmulator(EmulatedAccount(clock, region=REGION, account_id=BENCH_ACCOUNT))
    responses = ResponseServer(clock, REGION)
    emulator.start()
    responses.start()
    result = ColdStart(runs=runs, ours=[], floor=[])
    try:
        env = _environment(emulator.url, responses.ca_bundle)
        with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
            for number in range(runs):
                backup_id = new_backup_id()
                emulator.account.add_backup(backup_id)  # READY right after RestoreBackup: the fast path
                event = _create_event(responses, backup_id)
                event_path = Path(scratch) / f"event-{number}.json"
                event_path.write_text(json.dumps(event), encoding="utf-8")
                child, spawned = _spawn(["handler", str(ours.code_dir), ours.handler, str(event_path)], env)
                received = responses.responses_for_url(event["ResponseURL"])
                ok = len(received) == 1 and isinstance(received[0].parsed, dict)
                ok = ok and received[0].parsed.get("Status") == "SUCCESS"
                result.ours.append(
                    ColdStartRun(child["import_s"], child["first_s"], child["done_monotonic"] - spawned, ok)
                )
                floor, spawned = _spawn(["floor"], env)
                result.floor.append(ColdStartRun(floor["import_s"], None, floor["done_monotonic"] - spawned, True))
    finally:
        responses.stop()
        emulator.stop()
    return result
