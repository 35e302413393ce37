"""The project's error types and the Reason text CloudFormation shows for them."""

from __future__ import annotations

REASON_LIMIT = 256
"""CloudFormation shows Reasons up to this length; crhelper keeps only the tail of longer ones."""


def clip_reason(text: str, limit: int = REASON_LIMIT) -> str:
    """Shorten a Reason to ``limit`` characters, keeping the head (where the key fact is)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 3].rstrip() + "..."


class BackupRestoreError(Exception):
    """Base class: the message is the Reason CloudFormation shows, key fact first."""

    def __init__(self, message: str) -> None:
        super().__init__(clip_reason(message))


class InvalidPropertiesError(BackupRestoreError):
    """ResourceProperties do not satisfy the resource's contract."""


class CloudHsmCallError(BackupRestoreError):
    """A CloudHSM API call failed; the message names the operation and what to do. ``code`` is AWS's error code ('' when
    no answer came), ``aws_message`` AWS's own words, ``transient`` throttling, internal failure or an unreachable
    endpoint (worth trying later), ``access_denied`` IAM said no (final, unless a fresh grant is propagating)."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        access_denied: bool = False,
        code: str = "",
        aws_message: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.aws_message = aws_message
        self.transient = transient
        self.access_denied = access_denied
