"""Run in a fresh interpreter by ``bench.coldstart``: time an import (+ first event), print JSON.

Usage: ``python -I _coldstart_child.py handler <code_dir> <module.function> <event.json>`` or
``python -I _coldstart_child.py floor``. Standard library only before the timed part.
"""

# ruff: noqa: PLC0415 - the imports are what is timed, so they happen inside the timed section

import sys
import time

STARTED = time.monotonic()
PERF_STARTED = time.perf_counter()


class Context:
    """The Lambda context fields crhelper and the handler read; 300 s to run."""

    function_name = "cloudhsm-backup-restore-provider"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:210987654321:function:cloudhsm-backup-restore-provider"
    memory_limit_in_mb = "256"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/cloudhsm-backup-restore-provider"
    log_stream_name = "cold-start"

    def __init__(self) -> None:
        self.deadline = time.monotonic() + 300.0

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left."""
        return int((self.deadline - time.monotonic()) * 1000)


def main() -> None:
    """Time the import (and first invocation) and report on stdout."""
    mode = sys.argv[1]
    if mode == "floor":
        import boto3
        import crhelper  # noqa: F401 - importing it is part of the floor

        boto3.client("cloudhsmv2")  # the one client any handler of this resource needs
        imported = time.perf_counter()
        result = {"import_s": imported - PERF_STARTED, "first_s": None, "done_monotonic": time.monotonic()}
    else:
        code_dir, handler_string, event_path = sys.argv[2], sys.argv[3], sys.argv[4]
        sys.path.insert(0, code_dir)
        import importlib

        module_name, _, function_name = handler_string.rpartition(".")
        handler = getattr(importlib.import_module(module_name), function_name)
        imported = time.perf_counter()
        with open(event_path, encoding="utf-8") as stream:
            text = stream.read()
        import json

        event = json.loads(text)
        read = time.perf_counter()
        handler(event, Context())
        answered = time.perf_counter()
        result = {
            "import_s": imported - PERF_STARTED,
            "first_s": answered - read,
            "done_monotonic": time.monotonic(),
        }
    import json

    sys.stdout.write(json.dumps({**result, "started_monotonic": STARTED}) + "\n")


if __name__ == "__main__":
    main()
