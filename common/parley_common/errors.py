"""The error family shared by services and gateway.

Services raise these; nameko serializes them with ``exc.args == (code, message, details)``;
the gateway's RPC client rebuilds them with :func:`from_remote` (or :func:`from_body`, for the
per-item errors of a batch answer) and renders the public error
shape ``{"error": {"code", "message", "details"}}`` with :data:`STATUS_BY_CODE`.
"""
from __future__ import annotations

from typing import Any

STATUS_BY_CODE: dict[str, int] = {
    "invalid_json": 400,
    "bad_request": 400,
    "unauthenticated": 401,
    "invalid_credentials": 401,
    "forbidden": 403,
    "account_deactivated": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "username_taken": 409,
    "email_taken": 409,
    "room_exists": 409,
    "too_many_reactions": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "validation_failed": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "unavailable": 503,
}


class ParleyError(Exception):
    code = "internal_error"
    default_message = "Something went wrong on our side."

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None,
                 *, code: str | None = None):
        code = code or self.code
        message = message or self.default_message
        details = details or {}
        super().__init__(code, message, details)
        self.code, self.message, self.details = code, message, details

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 500)

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __str__(self) -> str:
        return self.message


class InvalidJson(ParleyError):
    code = "invalid_json"
    default_message = "The request body is not valid JSON."


class BadRequest(ParleyError):
    code = "bad_request"
    default_message = "The request is malformed."


class Unauthenticated(ParleyError):
    code = "unauthenticated"
    default_message = "A valid access token is required."


class InvalidCredentials(ParleyError):
    code = "invalid_credentials"
    default_message = "Wrong username or password."


class Forbidden(ParleyError):
    code = "forbidden"
    default_message = "You are not allowed to do that."


class NotFound(ParleyError):
    code = "not_found"
    default_message = "Not found."


class Conflict(ParleyError):
    code = "conflict"
    default_message = "That conflicts with something that already exists."


class TooLarge(ParleyError):
    code = "too_large"
    default_message = "The request is too large."


class UnsupportedMediaType(ParleyError):
    code = "unsupported_media_type"
    default_message = "Send the body as application/json."


class ValidationFailed(ParleyError):
    """``details`` maps each bad field to a sentence saying what is wrong with it."""
    code = "validation_failed"
    default_message = "Some fields are invalid."


class _RetryLater(ParleyError):
    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None,
                 *, retry_after: int = 1, code: str | None = None):
        details = dict(details or {})
        details.setdefault("retry_after", int(retry_after))
        super().__init__(message, details, code=code)

    @property
    def retry_after(self) -> int:
        return int(self.details.get("retry_after", 1))


class RateLimited(_RetryLater):
    code = "rate_limited"
    default_message = "Too many requests; slow down."


class Unavailable(_RetryLater):
    code = "unavailable"
    default_message = "A service Parley depends on is not answering; try again shortly."


class InternalError(ParleyError):
    code = "internal_error"


_CLASS_BY_CODE: dict[str, type[ParleyError]] = {
    cls.code: cls for cls in (InvalidJson, BadRequest, Unauthenticated, InvalidCredentials,
                              Forbidden, NotFound, TooLarge, UnsupportedMediaType,
                              ValidationFailed, RateLimited, Unavailable, InternalError)
}


def from_remote(error: dict[str, Any]) -> ParleyError:
    """Rebuild an exception from a nameko error reply.

    Our own errors come back as themselves; nameko's framework errors (unknown method, bad
    signature) are programming errors of the caller and become a bare ``internal_error``: no
    remote detail (not even the exception's name) reaches a client. ``remote`` keeps the
    name for the caller's log.
    """
    args = error.get("exc_args") or []
    path = error.get("exc_path") or ""
    if path.startswith("parley_common.errors.") and len(args) == 3 and isinstance(args[0], str):
        return _rebuild(*args)
    return _internal(str(error.get("exc_type", "unknown")))


def to_remote(exc: ParleyError) -> dict[str, Any]:
    """The error part of a nameko RPC reply for one of our errors (what nameko's
    ``serialize`` gives): for an RPC server that is not a nameko service (the logger), so its
    callers' ``from_remote`` rebuilds the same exception."""
    cls = type(exc)
    return {"exc_type": cls.__name__, "exc_path": f"{cls.__module__}.{cls.__name__}",
            "exc_args": list(exc.args), "value": exc.message}


def _internal(remote: str) -> InternalError:
    exc = InternalError()
    exc.remote = remote  # type: ignore[attr-defined]
    return exc


def from_body(body: Any) -> ParleyError:
    """Rebuild an exception from its public shape ``{"error": {"code", "message", "details"}}``
    (what :meth:`ParleyError.to_body` gives: e.g. one refused item of a batch answer)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return _internal("malformed error")
    details = error.get("details")
    return _rebuild(error["code"], error.get("message"), details if isinstance(details, dict) else {})


def _rebuild(code: str, message: str | None, details: dict[str, Any] | None) -> ParleyError:
    cls = _CLASS_BY_CODE.get(code)
    if cls is None:
        return Conflict(message, details, code=code) if STATUS_BY_CODE.get(code) == 409 \
            else ParleyError(message, details, code=code)
    if issubclass(cls, _RetryLater):
        return cls(message, details, retry_after=(details or {}).get("retry_after", 1))
    return cls(message, details)
