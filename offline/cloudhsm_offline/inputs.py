"""Command-line input checks: each bad value becomes one ``InputError`` line before the world starts."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from cloudhsm_offline.emulator.model import ACCOUNT_PATTERN, REGION_PATTERN

LAMBDA_TIMEOUT_RANGE = (1.0, 900.0)
"""Lambda's function timeout: 1 to 900 seconds (Lambda Developer Guide, "Configure Lambda function timeout")."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class InputError(Exception):
    """A command-line value or input file that cannot be used; the message is the one line shown."""


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (``--speed``)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (``--restore-seconds``)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def lambda_timeout(text: str) -> float:
    """argparse type: a Lambda timeout, 1 to 900 seconds."""
    value = _number(text)
    low, high = LAMBDA_TIMEOUT_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g} seconds (Lambda's limit), got {text}")
    return value


def region(text: str) -> str:
    """argparse type: an AWS region name."""
    if not REGION_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be a region name like eu-west-1, got {text!r}")
    return text


def account(text: str) -> str:
    """argparse type: a 12-digit AWS account id."""
    if not ACCOUNT_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be a 12-digit account id, got {text!r}")
    return text


def port(text: str) -> int:
    """argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 (any free port) and 65535, got {text}")
    return value


def existing_dir(text: str) -> str:
    """argparse type: a directory that exists (``--code``)."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return text


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def check_template(path: str, parameter_sets: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """Parse a template file and check the runner can run it with each parameter set; InputError otherwise."""
    from cloudhsm_offline.cfn.template import TemplateError, check_runnable, load_template  # noqa: PLC0415 - [offline]

    if not Path(path).is_file():
        raise InputError(f"template {path}: no such file")
    try:
        template = load_template(Path(path))
        for parameters in parameter_sets:  # none: parsed only, the caller checks with what it carries
            check_runnable(template, parameters)
    except (TemplateError, OSError, ValueError) as exc:
        raise InputError(f"template {path}: {_one_line(exc)}") from None
    return template


def check_updated_template(
    path: str, previous: Mapping[str, Any], parameters: Mapping[str, str], update: Mapping[str, str]
) -> None:
    """An ``--update-template``: runnable with the parameters it carries over from ``previous`` plus ``update``."""
    from cloudhsm_offline.cfn.template import carried_parameters  # noqa: PLC0415 - [offline] extra

    given = carried_parameters(previous, parameters, {})
    check_template(path, [carried_parameters(check_template(path, []), given, update)])


def check_layers(packages: Sequence[str]) -> None:
    """Each ``--layer`` names an installed top-level package (exposed to the function like a Lambda layer)."""
    import importlib.util  # noqa: PLC0415

    for name in packages:
        if not name.isidentifier() or importlib.util.find_spec(name) is None:
            raise InputError(f"--layer {name}: no installed package {name!r} to expose as a layer")


def check_seed(path: str) -> Any:
    """Read and validate a seed file (schema in the README); InputError naming the file and the problem."""
    import yaml  # noqa: PLC0415 - needs the [offline] extra

    from cloudhsm_offline.emulator.seed import load_seed  # noqa: PLC0415

    if not Path(path).is_file():
        raise InputError(f"seed {path}: no such file")
    try:
        return load_seed(path)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        raise InputError(f"seed {path}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = re.sub(r"^\S+\.(ya?ml|json): ", "", text)  # load_seed prefixes the path we already show
    return text[:300] + ("..." if len(text) > 300 else "")
