"""Guards against slow, idle and too many clients, below the endpoints.

- :class:`RequestCap` (ASGI middleware): at most ``limit`` requests handled at once; one more is answered
  JSON 503 ``overloaded``, except the cheap operations endpoints (``/healthz``, ``/readyz``, ``/metrics``),
  which always answer.
- :func:`guarded_protocol` (uvicorn's h11 protocol, for :func:`~retinakit.apps.serve.serve`): a deadline for a
  request's headers (a connection that has not sent complete headers ``header_timeout`` seconds after it
  opened or after its last answer is answered 408 and closed; an idle keep-alive connection is closed after
  uvicorn's ``timeout_keep_alive``), a cap on open connections (one more is answered 503 and closed), and
  JSON instead of uvicorn's plain-text answer to a malformed request.
"""

from __future__ import annotations

import asyncio
import json

from retinakit.apps.serve.limits import ASGIApp, Receive, Scope, Send

#: Endpoints that answer whatever the load (no body, no inference).
ALWAYS_OPEN = frozenset({"/healthz", "/readyz", "/metrics"})


def json_error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class RequestCap:
    """ASGI middleware: at most ``limit`` HTTP requests in the app at once (JSON 503 past it)."""

    def __init__(self, app: ASGIApp, limit: int, retry_after: int = 1) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ALWAYS_OPEN:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            await self._refuse(send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1

    async def _refuse(self, send: Send) -> None:
        body = json_error("overloaded", f"{self.active} requests are being handled (the limit is {self.limit})")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(b"retry-after", str(self.retry_after).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 JSON error answer that closes the connection (written below the framework)."""
    body = json_error(code, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_protocol(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a header deadline, a connection cap and JSON protocol errors."""
    from retinakit.apps.serve.protocol import GuardedH11Protocol

    limits = {"header_timeout": header_timeout, "max_connections": max_connections}
    return type("GuardedH11Protocol", (GuardedH11Protocol,), limits)
