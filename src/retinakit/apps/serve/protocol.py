"""uvicorn's h11 protocol with the guards of :mod:`retinakit.apps.serve.guard` (imports uvicorn: the serve extra).

Use :func:`~retinakit.apps.serve.guard.guarded_protocol` to get the class with its limits set.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from retinakit.apps.serve.guard import raw_response


class GuardedH11Protocol(H11Protocol):
    """A request's headers must arrive within ``header_timeout`` seconds of the connection opening or of its
    last answer (else 408 and close); past ``max_connections`` open connections a new one gets 503 and is
    closed; a malformed request gets JSON 400."""

    header_timeout: float = 10.0
    max_connections: int = 1000
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            message = f"more than {self.max_connections} connections are open; retry later"
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
            self._deadline = self.loop.call_later(self.header_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or not self._waiting_for_client():
            return
        if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            message = f"the request headers did not arrive within {self.header_timeout:g} s"
            self._close_with(raw_response(408, "Request Timeout", "upload_timeout", message))
        else:
            self.transport.close()

    def _close_with(self, response: bytes) -> None:
        self._disarm()
        self.transport.write(response)
        self.transport.close()
