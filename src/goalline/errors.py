"""Every failure a client can see, as one exception tree.

Each class carries the Altcraft-style ``error`` code that goes into the reply envelope and the
HTTP status that mirrors it (SPEC §1). ``error_text`` always names the field and the rule broken.

    ApiError                      (code, status)
    ├── InvalidRequest            400  a field breaks a rule; the text names the field
    ├── Unauthorized              401  token missing or unknown
    ├── Forbidden                 403  token may not use that database; pixel bound elsewhere
    ├── NotFound                  404  database, pixel or profile not found
    ├── Conflict                  409  idempotency conflict; a match key hitting two profiles
    ├── PayloadTooLarge           413  body larger than the configured limit
    ├── UnsupportedMediaType      415  neither JSON nor XML
    ├── RateLimited               429  carries ``retry_after``
    ├── InternalError             500  a bug; the text never carries a traceback
    └── Unavailable               503  storage down or overloaded; carries ``retry_after``
"""

from __future__ import annotations

from typing import Any

#: The ``error_text`` of every successful reply (SPEC §1).
SUCCESS_TEXT = "Successful operation"


def success(data: dict[str, Any]) -> dict[str, Any]:
    """The success envelope ``{"error": 0, "error_text": SUCCESS_TEXT}`` with ``data`` beside it."""
    return {"error": 0, "error_text": SUCCESS_TEXT, **data}


class ApiError(Exception):
    """An error that becomes the reply envelope ``{"error": code, "error_text": text}``."""

    code = 500
    status = 500

    def __init__(self, text: str, *, retry_after: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.retry_after = retry_after

    def envelope(self) -> dict[str, Any]:
        """This error's reply envelope (the only place its shape is spelled)."""
        return {"error": self.code, "error_text": self.text}


class InvalidRequest(ApiError):
    code = status = 400

    @classmethod
    def field(cls, path: str, rule: str) -> InvalidRequest:
        """``InvalidRequest.field("goals[1].goal", "longer than 128 characters")``."""
        return cls(f"{path}: {rule}")


class Unauthorized(ApiError):
    code = status = 401


class Forbidden(ApiError):
    code = status = 403


class NotFound(ApiError):
    code = status = 404


class Conflict(ApiError):
    code = status = 409


class PayloadTooLarge(ApiError):
    code = status = 413


class UnsupportedMediaType(ApiError):
    code = status = 415


class RateLimited(ApiError):
    code = status = 429


class InternalError(ApiError):
    code = status = 500


class Unavailable(ApiError):
    code = status = 503


#: Every code a reply can carry, with its meaning; docs/api.md and a test keep this in step.
ERROR_CODES: dict[int, str] = {
    0: "Successful operation",
    400: "Invalid request: the text names the field and the rule broken",
    401: "API token missing or unknown",
    403: "The token may not use that database, or the pixel belongs to another database",
    404: "Database, pixel or profile not found",
    409: "Conflict: an idempotency key reused with another payload, or an ambiguous match",
    413: "Request body larger than the configured limit",
    415: "Unsupported content type: send JSON or XML",
    429: "Rate limit exceeded: retry after the Retry-After header's seconds",
    500: "Internal error",
    503: "Overloaded or storage unavailable: nothing was recorded, retry after Retry-After",
}
