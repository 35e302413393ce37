"""Structured log lines: one JSON object per event, never the raw CloudFormation event or ResponseURL."""

from __future__ import annotations

import json
import logging
from typing import Any


def log_event(logger: logging.Logger, action: str, **fields: Any) -> None:
    """Log ``action`` and its fields at INFO as one JSON object (crhelper's formatter nests it)."""
    logger.info(json.dumps({"action": action, **fields}, default=str, sort_keys=True))
