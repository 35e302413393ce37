"""The API errors the emulator answers with, each mapped to its wire name and HTTP status."""

from __future__ import annotations


class ApiError(Exception):
    """An error the emulated service returns to the caller instead of a result."""

    code = "CloudHsmServiceException"
    status = 400


class InvalidRequestError(ApiError):
    """The request is malformed or not allowed in the backup's current state."""

    code = "CloudHsmInvalidRequestException"


class ResourceNotFoundError(ApiError):
    """The named backup does not exist."""

    code = "CloudHsmResourceNotFoundException"


class AccessDeniedError(ApiError):
    """The caller is not authorized to perform the action."""

    code = "CloudHsmAccessDeniedException"


class InternalFailureError(ApiError):
    """The service failed internally (retryable)."""

    code = "CloudHsmInternalFailureException"
    status = 500


class ThrottlingError(ApiError):
    """The caller sent requests faster than the service accepts them."""

    code = "ThrottlingException"


class SerializationError(ApiError):
    """The request body could not be decoded."""

    code = "SerializationException"


class UnknownOperationError(ApiError):
    """The operation is not one the emulator implements."""

    code = "UnknownOperationException"


class MissingAuthenticationTokenError(ApiError):
    """The request carries no SigV4 Authorization header."""

    code = "MissingAuthenticationTokenException"
    status = 403


class InvalidSignatureError(ApiError):
    """The SigV4 credential scope names the wrong region or signing name."""

    code = "InvalidSignatureException"
    status = 403


class ResourceLimitExceededError(ApiError):
    """The request would exceed a CloudHSM limit (here: 50 tags on a resource)."""

    code = "CloudHsmResourceLimitExceededException"
