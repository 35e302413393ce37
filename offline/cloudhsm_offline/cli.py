"""Command line: ``cloudhsm-offline {demo,run-template,emulator}`` (also ``python -m cloudhsm_offline``).

Exit status: 0 every operation succeeded; 1 the stack FAILED, rolled back or broke the protocol (or the
world could not start); 2 bad input (one ``cloudhsm-offline: error: ...`` line on stderr, checked before
the world starts); 128 + N when stopped by signal N (SIGINT 130, SIGTERM 143) after stopping the
Lambda workers and servers and removing their temporary folders; with ``--output json`` stdout then
still holds one document, marked interrupted (``cloudhsm_offline.signals`` states the invariant).
"""

from __future__ import annotations

# Only what the first lines of ``main`` need: the signal handlers go in before anything heavy is imported.
import io
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO, cast

from cloudhsm_offline import signals

if TYPE_CHECKING:
    import argparse

PROG = "cloudhsm-offline"
EXIT_FAILED, EXIT_USAGE = 1, 2
OFFLINE_EXTRA = ("moto", "werkzeug", "flask", "trustme", "cbor2", "yaml", "cfnlint")


class _Timeline(io.TextIOBase):
    """sys.stderr for ``--output json``'s timeline, knowing whether a signal cut its last line short.

    The timeline uses ``write``, ``flush`` and ``isatty`` only: the ones given here.
    """

    def __init__(self) -> None:
        self.cut = False

    def write(self, text: str) -> int:
        if text:
            self.cut = not text.endswith("\n")
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


TIMELINE = _Timeline()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    from cloudhsm_offline import __version__, inputs  # noqa: PLC0415 - after the signal handlers (see main)
    from cloudhsm_offline.inputs import OneLineParser  # noqa: PLC0415
    from cloudhsm_offline.lambda_runtime.function import DEFAULT_HANDLER  # noqa: PLC0415

    parser = OneLineParser(
        prog=PROG,
        description="The offline world: an emulated CloudHSM API and a CloudFormation lifecycle simulator "
        "that runs the real handler in Lambda-like worker processes.",
        epilog="Exit status: 0 success, 1 a stack operation FAILED or broke the protocol, 2 bad input, "
        "128 + N stopped by signal N (SIGINT 130, SIGTERM 143).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,run-template,emulator}")

    demo = commands.add_parser("demo", help="Create -> Update (replacement) -> Delete through the real handler")
    demo.add_argument("--code", type=inputs.existing_dir, help="run this unzipped Lambda package instead of handler/")

    run = commands.add_parser("run-template", help="run a template's custom resources against the emulator")
    run.add_argument("template", nargs="?", help="CloudFormation template, YAML or JSON (default: the demo template)")
    run.add_argument("--param", action="append", metavar="K=V", help="template parameter (repeatable)")
    run.add_argument("--update", action="append", metavar="K=V", help="then update with these parameters")
    run.add_argument(
        "--update-template",
        action="append",
        metavar="FILE",
        help="then update to this edited template (repeatable: one Update each, in order; with --update's values)",
    )
    run.add_argument("--delete", action="store_true", help="then delete the stack")
    run.add_argument("--seed", help="emulator seed, YAML or JSON (default: the demo seed; keys in docs/offline.md)")
    run.add_argument("--region", type=inputs.region, help="region of the stack and emulator (default: the seed's)")
    run.add_argument("--account", type=inputs.account, help="12-digit account id (default: the seed's)")
    run.add_argument("--code", type=inputs.existing_dir, help="unzipped Lambda package or CDK asset directory")
    run.add_argument("--handler", default=DEFAULT_HANDLER, help=f"handler string (default {DEFAULT_HANDLER})")
    run.add_argument(
        "--layer",
        action="append",
        metavar="PACKAGE",
        help="installed package to expose like a Lambda layer (default: crhelper for handler/, none for --code)",
    )
    run.add_argument("--restore-seconds", type=inputs.non_negative_float, help="override the seed's restore time")
    run.add_argument(
        "--lambda-timeout", type=inputs.lambda_timeout, default=300, help="function timeout, 1-900 s (default 300)"
    )
    run.add_argument("--logs", action="store_true", help="print the function's logs (signatures redacted)")
    run.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="json: one JSON document on stdout (statuses, Outputs, counts); the timeline goes to stderr",
    )

    commands.add_parser("emulator", help="the CloudHSM emulator standalone (emulator --help)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (the module docstring lists them).

    SIGINT and SIGTERM are handled from the first line on (``cloudhsm_offline.signals`` states the
    invariant). The previous handlers are put back on return; run as the program (``argv`` None), a
    signal after the run has ended is ignored instead: its status and output are already decided.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    document = io.StringIO()  # the --output json document: written by the run, printed here once, last
    try:
        signals.install()
        status = _main(arguments, document)
    except KeyboardInterrupt as exc:  # the world has stopped: every with block and finally clause has run
        status = _stopped(exc, arguments, document)
    finally:
        signals.uninstall(ignore_late=argv is None)
    if document.getvalue():
        sys.stdout.write(document.getvalue())
        sys.stdout.flush()
    return status


def _main(arguments: list[str], document: io.StringIO) -> int:
    from cloudhsm_offline.inputs import InputError  # noqa: PLC0415 - after the signal handlers

    try:
        return _dispatch(arguments, document)
    except SystemExit as exc:  # argparse: --help, --version, or a one-line usage error (exit 2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in OFFLINE_EXTRA:
            raise
        print(
            f"{PROG}: error: {missing} is missing: install the offline extra "
            "(pip install 'cloudhsm-backup-restore[offline]')",
            file=sys.stderr,
        )
        return EXIT_USAGE


def _stopped(exc: KeyboardInterrupt, arguments: Sequence[str], document: io.StringIO) -> int:
    """The one stderr line, and with --output json the document marked interrupted; 128 + N."""
    import json  # noqa: PLC0415 - after the signal handlers
    import signal  # noqa: PLC0415

    from cloudhsm_offline.report import interrupted  # noqa: PLC0415

    signum = exc.signum if isinstance(exc, signals.Stopped) else signal.SIGINT
    name = signal.Signals(signum).name
    if _wants_json(arguments):  # what the run wrote (how far it got), else a document saying only that
        written = document.getvalue()
        document.seek(0)
        document.truncate()
        json.dump(interrupted(json.loads(written) if written else None, name), document, indent=2)
        document.write("\n")
    lead = "\n" if TIMELINE.cut else ""  # the timeline shares stderr with --output json: end a line cut short
    print(f"{lead}{PROG}: stopped by {name}: workers and servers stopped, temporary folders removed", file=sys.stderr)
    return 128 + signum


def _wants_json(arguments: Sequence[str]) -> bool:
    return arguments[:1] == ["run-template"] and any(
        a == "--output=json" or (a == "--output" and n == "json")
        for a, n in zip(arguments, [*arguments[1:], ""], strict=True)
    )


def _dispatch(arguments: list[str], document: io.StringIO) -> int:
    if arguments[:1] == ["emulator"]:
        from cloudhsm_offline.emulator.__main__ import main as emulator_main  # noqa: PLC0415 - [offline] extra

        return emulator_main(arguments[1:], prog=f"{PROG} emulator")
    args = build_parser().parse_args(arguments)
    if args.command == "demo":
        from cloudhsm_offline.demo import run_demo  # noqa: PLC0415 - [offline] extra

        return _guard_start(lambda: run_demo(code_dir=args.code))
    return _run_template(args, document)


def _run_template(args: argparse.Namespace, document: io.StringIO) -> int:
    from cloudhsm_offline import inputs  # noqa: PLC0415 - after the signal handlers
    from cloudhsm_offline.demo import DEMO_TEMPLATE, RunOptions, parse_pairs, run_stack  # noqa: PLC0415
    from cloudhsm_offline.emulator.seed import DEMO_SEED  # noqa: PLC0415
    from cloudhsm_offline.inputs import InputError  # noqa: PLC0415

    try:
        parameters, update = parse_pairs(args.param), parse_pairs(args.update)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.layer:
        inputs.check_layers(args.layer)
    seed = args.seed or str(DEMO_SEED)
    inputs.check_seed(seed)
    template_path = args.template or str(DEMO_TEMPLATE)
    update_templates = list(args.update_template or [])
    template = inputs.check_template(template_path, [parameters])
    if not update_templates and update:
        inputs.check_template(template_path, [{**parameters, **update}])
    for path in update_templates:  # each carries the parameters its template declares
        inputs.check_updated_template(path, template, parameters, update)
        template = inputs.check_template(path, [])
    options = RunOptions(
        template=template_path,
        parameters=parameters,
        update=update,
        update_templates=update_templates,
        delete=args.delete,
        seed=seed,
        code_dir=args.code,
        handler=args.handler,
        layers=args.layer,
        restore_seconds=args.restore_seconds,
        lambda_timeout=args.lambda_timeout,
        show_logs=args.logs,
        region=args.region,
        account=args.account,
    )
    if args.output == "json":
        TIMELINE.cut = False
        return _guard_start(lambda: run_stack(options, out=cast("TextIO", TIMELINE), json_out=document))
    return _guard_start(lambda: run_stack(options))


def _guard_start(run: Callable[[], int]) -> int:
    """Run; an OSError or RuntimeError (a server that cannot start, a port in use) is one line and exit 1."""
    try:
        status = run()
    except (OSError, RuntimeError) as exc:
        print(f"{PROG}: error: the offline world failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_FAILED
    return status


if __name__ == "__main__":
    sys.exit(main())
