"""The service's error table and the exception that carries one of its codes (no FastAPI needed here)."""

from __future__ import annotations

#: Status and code of every error the API gives, for the docs and the tests. 499 is not sent (the client has
#: gone); it labels abandoned requests in ``/metrics``.
ERRORS = {
    "bad_request": 400,
    "missing_image": 400,
    "bad_image": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "upload_timeout": 408,
    "payload_too_large": 413,
    "too_many_pixels": 413,
    "too_many_crops": 413,
    "unsupported_image": 415,
    "invalid_option": 422,
    "client_closed": 499,
    "internal_error": 500,
    "overloaded": 503,
    "not_ready": 503,
    "timeout": 504,
}


class ApiError(Exception):
    """An error answered as JSON ``{"error": {"code", "message"}}`` with ``status``; ``headers`` are added."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class ClientGone(Exception):
    """The client closed the connection before its answer: nothing is sent, the request counts as 499."""


def code_of_status(status: int) -> str:
    """The table's code for an HTTP status raised by the framework (e.g. a malformed multipart form: 400)."""
    named = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
    named |= {408: "upload_timeout", 413: "payload_too_large", 415: "unsupported_image", 422: "invalid_option"}
    if status in named:
        return named[status]
    return "internal_error" if status >= 500 else "bad_request"
