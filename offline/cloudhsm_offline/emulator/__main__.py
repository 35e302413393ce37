"""Run the emulator standalone: ``python -m cloudhsm_offline.emulator --seed FILE [--port N] [--speed X]``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from cloudhsm_offline import __version__, inputs, signals
from cloudhsm_offline.clock import SimClock
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator
from cloudhsm_offline.emulator.seed import DEMO_SEED
from cloudhsm_offline.inputs import OneLineParser


def build_parser(prog: str = "python -m cloudhsm_offline.emulator") -> argparse.ArgumentParser:
    """The command line."""
    parser = OneLineParser(prog=prog, description="Serve an emulated CloudHSM v2 backup API.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--seed", default=str(DEMO_SEED), help="JSON or YAML seed file (default: the demo seed)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=inputs.port, default=0, help="port to bind (default: any free port)")
    parser.add_argument(
        "--speed", type=inputs.positive_float, default=1.0, help="modelled seconds per real second (default 1)"
    )
    parser.add_argument("--region", type=inputs.region, help="override the seed's region")
    parser.add_argument(
        "--restore-seconds", type=inputs.non_negative_float, help="override the seed's default restore duration"
    )
    parser.add_argument(
        "--restore-in-progress-state",
        choices=("PENDING_DELETION", "CREATE_IN_PROGRESS"),
        help="what a restoring backup reports (default PENDING_DELETION)",
    )
    parser.add_argument("--no-auth-check", action="store_true", help="accept unsigned requests and any region")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Start the emulator, print how to reach it, serve until SIGINT or SIGTERM."""
    parser = build_parser(prog) if prog else build_parser()
    args = parser.parse_args(argv)
    try:
        seed = inputs.check_seed(args.seed)  # one line naming the file and the problem, before anything starts
    except inputs.InputError as exc:
        parser.error(str(exc))
    try:
        account = EmulatedAccount(SimClock(speed=args.speed))
        emulator = CloudHsmEmulator(account, host=args.host, port=args.port, check_auth=not args.no_auth_check)
        emulator.seed(seed)
        if args.region:
            account.region = args.region
        if args.restore_seconds is not None:
            account.restore_seconds = args.restore_seconds
        if args.restore_in_progress_state:
            account.restore_in_progress_state = args.restore_in_progress_state
        url = emulator.start()
    except (OSError, TypeError, ValueError, OverflowError) as exc:
        parser.error(" ".join(str(exc).split()))
    stopping = threading.Event()
    received: list[int] = []

    def _stop(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(
        f"CloudHSM v2 emulator on {url} (region {account.region}, account {account.account_id}, "
        f"{len(account.backups())} backups, speed {args.speed:g}x; admin: {url}/_emulator)"
    )
    print(f"export AWS_ENDPOINT_URL_CLOUDHSM_V2={url}")
    print(f"export AWS_DEFAULT_REGION={account.region}")
    sys.stdout.flush()
    signals.wait(stopping)  # not stopping.wait(): the signal may come to another thread (see signals.wait)
    emulator.stop()
    return 128 + received[0] if received else 0  # like run-template: SIGINT 130, SIGTERM 143


if __name__ == "__main__":
    sys.exit(main())
