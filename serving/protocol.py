"""Slow and oversized request heads: a time limit and a size limit, in the HTTP server itself.

uvicorn (under `bentoml serve`) gives a connection that is sending its request head all the time it
wants, and llhttp buffers a head of any size: 5,000 connections holding half-sent headers stayed
open for 40 s and 8 MB headers were accepted (issue #15). This subclass of uvicorn's httptools
protocol adds, per request head:
- `serve.header_timeout_s`: the head (request line and headers) must be complete this long after its
  first byte (for a new connection: after it opened), else 408 and the connection is closed;
- `serve.max_header_bytes`: a head larger than this gets 431 and the connection is closed.
A refused connection is closed the way nginx's lingering close does it: the answer is written, the
sending side shut down, and what the client still sends is read and dropped until it closes or
`LINGER_S` passes. Closing a socket that holds unread data makes the kernel send a reset, which
can discard the answer before the client reads it: a client still dribbling (or uploading a huge
head) would see "connection reset" instead of the 408 or 431 that says what went wrong.
The body's own time limit (`serve.body_timeout_s`) is enforced by the request guard
(serving/guard.py), where the body is read. Idle keep-alive connections are closed by uvicorn's
keep-alive timeout.

`install()` makes uvicorn's default ("auto") protocol this class. BentoML's worker builds uvicorn's
Config without a protocol choice after it has imported the service module, which calls `install()`;
there is no option for it in BentoML 1.4. A reverse proxy in front can add the same limits at the
edge (the README names nginx's settings); these hold without one.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LIMITS = {"header_timeout_s": 10.0, "max_header_bytes": 32768}
LINGER_S = 5.0  # how long a refused connection is drained before it is closed (nginx's lingering_timeout)


def _error(status: int, reason: bytes, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a per-head time limit and size limit (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True  # waiting for (or receiving) a request head
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None  # set once refused: answered, draining

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:
        if self._linger_timer is not None:
            return None  # the client has read the answer and closed: so do we
        return super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._linger_timer is not None:
            return  # refused and answered: what the client still sends is dropped
        counting = self._head_open
        if counting:
            self._start_head_timer()
            self._head_bytes += len(data)
        super().data_received(data)
        limit = LIMITS["max_header_bytes"]
        if counting and self._head_open and self._head_bytes > limit and not self.transport.is_closing():
            self._refuse(431, b"Request Header Fields Too Large", f"request head over {limit} bytes")

    def on_headers_complete(self) -> None:
        self._head_open, self._head_bytes = False, 0
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_open = True  # what follows on this connection is the next request's head

    # --- the head's timer ------------------------------------------------------------------------

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(LIMITS["header_timeout_s"], self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._head_open or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._start_head_timer()  # a pipelined head behind a request still being answered: wait
            return
        limit = LIMITS["header_timeout_s"]
        self._refuse(408, b"Request Timeout", f"request head not complete within {limit:g} s")

    def _refuse(self, status: int, reason: bytes, message: str) -> None:
        """Answer, stop sending, drain until the client closes or LINGER_S passes (module docstring)."""
        self._stop_head_timer()
        self.transport.write(_error(status, reason, message))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)
        self.flow.resume_reading()


def install(header_timeout_s: float, max_header_bytes: int) -> None:
    """Use GuardedHttpToolsProtocol for uvicorn's "auto" and "httptools" protocols in this process."""
    from uvicorn import config

    LIMITS.update(header_timeout_s=float(header_timeout_s), max_header_bytes=int(max_header_bytes))
    target = f"{__name__}:GuardedHttpToolsProtocol"
    config.HTTP_PROTOCOLS["auto"] = target
    config.HTTP_PROTOCOLS["httptools"] = target
