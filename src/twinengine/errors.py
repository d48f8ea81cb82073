"""One error root for the whole product.

Services raise only these; the API maps them to ``{"error": {"code", "message"}}`` with the
status below, the web UI renders an error page, the CLI prints the message and exits non-zero.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable machine-readable error codes."""

    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_INPUT = "invalid_input"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    MODEL_FIT = "model_fit_error"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    BUDGET_EXCEEDED = "budget_exceeded"


class AppError(Exception):
    """Root of every error twinengine raises on purpose."""

    code: ErrorCode = ErrorCode.INVALID_INPUT
    http_status: int = 400

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the API sends for this error."""
        body: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class NotFound(AppError):
    """The thing asked for does not exist."""

    code = ErrorCode.NOT_FOUND
    http_status = 404


class Conflict(AppError):
    """The request clashes with the current state."""

    code = ErrorCode.CONFLICT
    http_status = 409


class InvalidInput(AppError):
    """The input is malformed or out of range."""

    code = ErrorCode.INVALID_INPUT
    http_status = 400


class PayloadTooLarge(AppError):
    """The request body or batch exceeds a configured cap."""

    code = ErrorCode.PAYLOAD_TOO_LARGE
    http_status = 413


class RateLimited(AppError):
    """Too many requests for this key or address."""

    code = ErrorCode.RATE_LIMITED
    http_status = 429


class Unauthorized(AppError):
    """No valid credentials."""

    code = ErrorCode.UNAUTHORIZED
    http_status = 401


class Forbidden(AppError):
    """Credentials lack the scope needed."""

    code = ErrorCode.FORBIDDEN
    http_status = 403


class BackendUnavailable(AppError):
    """A database, model or remote service cannot be reached."""

    code = ErrorCode.BACKEND_UNAVAILABLE
    http_status = 503


class ModelFitError(AppError):
    """Training a model failed (no data, NaN factors, ...)."""

    code = ErrorCode.MODEL_FIT
    http_status = 422


class BudgetExceeded(AppError):
    """A spending budget ran out."""

    code = ErrorCode.BUDGET_EXCEEDED
    http_status = 402


class MissingDependency(ImportError):
    """An optional dependency is not installed; the message says how to install it."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed: pip install 'twinengine[{extra}]'"
            f" (or pip install {package})"
        )
