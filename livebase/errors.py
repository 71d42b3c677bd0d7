"""Errors as exception classes carrying an HTTP status and a stable code.

They are turned into the one JSON error envelope in one place (``livebase.api.middleware``):
``{"error": {"status": 404, "code": "not_found", "message": "...", "fields": [...]}}``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class ApiError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self, message: str, *, fields: list[FieldError] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMedia(ApiError):
    status = 415
    code = "unsupported_media_type"
