"""Command line: ``python -m cloudhsm_offline {demo,run-template,emulator}``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cloudhsm_offline.cfn.lambda_runtime import DEFAULT_HANDLER
from cloudhsm_offline.demo import DEMO_TEMPLATE, RunOptions, parse_pairs, run_demo, run_stack
from cloudhsm_offline.emulator import DEMO_SEED
from cloudhsm_offline.emulator.__main__ import main as emulator_main


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m cloudhsm_offline",
        description="The offline world: an emulated CloudHSM API and a CloudFormation lifecycle simulator "
        "that runs the real handler in Lambda-like worker processes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="Create -> Update (replacement) -> Delete through the real handler")
    demo.add_argument("--speed", type=float, default=10.0, help="modelled seconds per real second (default 10)")
    demo.add_argument("--code", help="run this code directory (an unzipped Lambda package) instead of handler/")

    run = commands.add_parser("run-template", help="run a template's custom resources against the emulator")
    run.add_argument("template", nargs="?", default=str(DEMO_TEMPLATE), help="CloudFormation template (YAML/JSON)")
    run.add_argument("--param", action="append", metavar="K=V", help="template parameter (repeatable)")
    run.add_argument("--update", action="append", metavar="K=V", help="then update with these parameters")
    run.add_argument("--delete", action="store_true", help="then delete the stack")
    run.add_argument("--seed", default=str(DEMO_SEED), help="emulator seed file (default: the demo seed)")
    run.add_argument("--code", help="code directory: an unzipped Lambda package or CDK asset (default handler/)")
    run.add_argument("--handler", default=DEFAULT_HANDLER, help=f"handler string (default {DEFAULT_HANDLER})")
    run.add_argument(
        "--layer",
        action="append",
        metavar="PACKAGE",
        help="installed package to expose like a Lambda layer (default: crhelper for handler/, none for --code)",
    )
    run.add_argument("--speed", type=float, default=10.0, help="modelled seconds per real second (default 10)")
    run.add_argument("--restore-seconds", type=float, help="override the seed's default restore duration")
    run.add_argument("--lambda-timeout", type=float, default=300, help="function timeout in seconds (default 300)")
    run.add_argument("--logs", action="store_true", help="print the function's logs (signatures redacted)")

    emulator = commands.add_parser("emulator", help="the CloudHSM emulator standalone", add_help=False)
    emulator.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["emulator"]:
        return emulator_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    if args.command == "demo":
        return run_demo(speed=args.speed, code_dir=args.code)
    try:
        options = RunOptions(
            template=args.template,
            parameters=parse_pairs(args.param),
            update=parse_pairs(args.update),
            delete=args.delete,
            seed=args.seed,
            code_dir=args.code,
            handler=args.handler,
            layers=args.layer,
            speed=args.speed,
            restore_seconds=args.restore_seconds,
            lambda_timeout=args.lambda_timeout,
            show_logs=args.logs,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_stack(options)


if __name__ == "__main__":
    sys.exit(main())
