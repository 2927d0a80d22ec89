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
from typing import Any

from retinakit.apps.serve.limits import ASGIApp, Receive, Scope, Send

#: Endpoints that answer whatever the load (no body, no inference).
ALWAYS_OPEN = frozenset({"/healthz", "/readyz", "/metrics"})


def json_error(status: int, code: str, message: str) -> bytes:
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
        body = json_error(503, "overloaded", f"{self.active} requests are being handled (the limit is {self.limit})")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(b"retry-after", str(self.retry_after).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 JSON error answer that closes the connection (written below the framework)."""
    body = json_error(status, code, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_protocol(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a header deadline, a connection cap and JSON protocol errors."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                message = f"more than {max_connections} connections are open; retry later"
                self._close_with(raw_response(503, "Service Unavailable", "overloaded", message))
                return
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._waiting_for_client():
                self._arm()  # a deadline set earlier is kept: dripping bytes do not extend it
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # uvicorn's keep-alive timeout runs until the next bytes arrive

        def send_400_response(self, msg: str) -> None:
            self._close_with(raw_response(400, "Bad Request", "bad_request", f"invalid HTTP request ({msg})"))

        def _waiting_for_client(self) -> bool:
            """Headers incomplete, or a body the app no longer reads (its answer was sent)."""
            if self.conn.their_state is h11.IDLE:
                return True
            return self.cycle is not None and self.cycle.response_complete

        def _arm(self) -> None:
            if self._deadline is None and not self.transport.is_closing():
                self._deadline = self.loop.call_later(header_timeout, self._timed_out)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _timed_out(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or not self._waiting_for_client():
                return
            if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
                message = f"the request headers did not arrive within {header_timeout:g} s"
                self._close_with(raw_response(408, "Request Timeout", "upload_timeout", message))
            else:
                self.transport.close()

        def _close_with(self, response: bytes) -> None:
            self._disarm()
            self.transport.write(response)
            self.transport.close()

    return GuardedH11Protocol
