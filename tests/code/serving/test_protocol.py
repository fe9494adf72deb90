"""The request head's time and size limits, on a real uvicorn server (in a thread) using the protocol."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from serving import protocol


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    saved = dict(protocol.LIMITS)
    protocol.install(header_timeout_s=0.5, max_header_bytes=4096)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=free, log_level="warning", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert isinstance(config.http_protocol_class, type)
    assert issubclass(config.http_protocol_class, protocol.GuardedHttpToolsProtocol)
    yield free
    server.should_exit = True
    thread.join(5)
    protocol.LIMITS.update(saved)


def exchange(
    port: int, chunks: list[bytes], pause_s: float = 0.0, wait_s: float = 3.0
) -> tuple[bytes, float]:
    """Send the chunks (pausing between them), then read until the server closes: (answer, seconds)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        for chunk in chunks:
            try:
                s.sendall(chunk)
            except OSError:
                break
            time.sleep(pause_s)
        data = b""
        while True:
            try:
                part = s.recv(65536)
            except (TimeoutError, ConnectionError):
                return data, time.monotonic() - start
            if not part:
                return data + b"<closed>", time.monotonic() - start
            data += part


def test_a_complete_request_is_answered(port: int) -> None:
    answer, _ = exchange(port, [b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok<closed>")


def test_a_head_that_dribbles_in_is_cut_off(port: int) -> None:
    # one header line every 0.2 s: each one arrives, but the head is never complete
    answer, seconds = exchange(port, [b"GET / HTTP/1.1\r\n"] + [b"X-Slow: 1\r\n"] * 10, pause_s=0.2)
    assert answer.startswith(b"HTTP/1.1 408") and b"within 0.5 s" in answer and answer.endswith(b"<closed>")
    assert seconds < 2.5


def test_a_silent_connection_is_closed(port: int) -> None:
    answer, seconds = exchange(port, [])
    assert answer.startswith(b"HTTP/1.1 408") and seconds < 2.5


def test_an_oversized_head_is_431(port: int) -> None:
    answer, _ = exchange(port, [b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192])
    assert answer.startswith(b"HTTP/1.1 431") and b"over 4096 bytes" in answer


def test_each_request_on_a_kept_alive_connection_gets_its_own_limit(port: int) -> None:
    """Two requests 0.4 s apart on one connection (0.8 s in all, over the 0.5 s limit): both answered,
    because the limit runs from each head's first byte, and an idle connection waits for keep-alive."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    answer, _ = exchange(
        port,
        [request, request[:10], request[10:] + b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"],
        pause_s=0.4,
    )
    assert answer.count(b"HTTP/1.1 200") == 3 and b"408" not in answer


def test_a_refused_head_is_read_to_the_end_so_the_answer_arrives(port: int) -> None:
    """A client still sending when its head is refused: closing a socket with unread data makes the
    kernel send a reset, which can discard the 431 before the client reads it. The server stops
    writing, drains what keeps coming (up to protocol.LINGER_S) and then closes: the client reads the
    answer and a clean end, every time."""
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
            sent = 0
            try:
                for _ in range(64):
                    s.sendall(b"a" * 16384)  # 1 MB in all, far past the 4096-byte limit
                    sent += 16384
            except OSError as e:
                pytest.fail(f"the server reset the connection after {sent} bytes: {e!r}")
            data = b""
            while True:
                try:
                    part = s.recv(65536)
                except ConnectionError as e:
                    pytest.fail(f"reset before the end, after reading {data[:40]!r}: {e!r}")
                if not part:
                    break
                data += part
        assert data.startswith(b"HTTP/1.1 431"), data[:80]
