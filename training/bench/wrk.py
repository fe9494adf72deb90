"""The load tool of `heara bench serve`: wrk (Debian package `wrk` 4.1, `make load-tool` installs it).

Why wrk and not a Python client: wrk is a standard, event-driven C client, so its figures can be
compared with other people's, and it needs a fraction of the CPU a Python thread pool needs for the
same requests (on a 2-core machine the client competes with the server; `client_cpu_s` says how
much). hey (Debian's `hey` 0.1.4) would do too, but it reads one fixed body per run: wrk's Lua hooks
give each request another text, count answers by status class and print the result as JSON.

One run is closed-loop at fixed concurrency: `-c N` connections spread over `-t T` threads, each
connection sending its next request as soon as the previous answer arrived, for `-d` whole seconds.
The Lua script (wrk_pool.lua, beside this file) draws the bodies from a pool file without
repetition (how: its header), counts sent requests, 2xx, other and 5xx answers per thread, and
prints one line `heara-wrk {...}` with wrk's totals and latency percentiles; `parse_output` reads it.
The client's CPU time is the wrk process's own (user + system, from `os.wait4`), nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from training.errors import NotFoundError

LUA_SCRIPT = Path(__file__).with_name("wrk_pool.lua")
MARKER = "heara-wrk "
MAKE_TARGET = "load-tool"


@dataclass(frozen=True)
class WrkResult:
    """One wrk run, as its Lua `done()` hook reported it."""

    duration_s: float  # how long wrk ran (a little over -d)
    requests: int  # answers received (any status)
    sent: int  # requests written, including those still unanswered when the run ended
    next_start: int  # the pool index a following run starts at to repeat none of this run's bodies
    ok: int  # 2xx answers
    non_2xx: int
    status_5xx: int
    socket_errors: int  # connect, read and write errors and timeouts: requests without an answer
    p50_ms: float | None  # latency of every answer (any status); None without answers
    p99_ms: float | None
    max_ms: float | None
    client_cpu_s: float = 0.0  # the wrk process's user + system CPU seconds

    @property
    def errors(self) -> int:
        """Failed requests: answers other than 2xx, and requests that got no answer."""
        return self.non_2xx + self.socket_errors

    @property
    def rps(self) -> float:
        """Successful (2xx) answers per second."""
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0


def require_wrk() -> str:
    """The wrk executable, or NotFoundError with the one line that says how to get it."""
    path = shutil.which("wrk")
    if path is None:
        raise NotFoundError(
            f"the load tool wrk is not installed: run `make {MAKE_TARGET}` (Debian package wrk 4.1)"
        )
    return path


def parse_output(stdout: str) -> WrkResult:
    """The result line the Lua script prints (`heara-wrk {...}`); ValueError when there is none."""
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise ValueError(f"no '{MARKER.strip()}' line in wrk's output:\n{stdout[-2000:]}")
    raw = json.loads(lines[-1].removeprefix(MARKER))
    answered = raw["requests"] > 0

    def ms(key: str) -> float | None:
        return round(raw[key] / 1000, 2) if answered else None

    return WrkResult(
        duration_s=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        sent=raw["sent"],
        next_start=raw["next"],
        ok=raw["ok"],
        non_2xx=raw["non_2xx"],
        status_5xx=raw["status_5xx"],
        socket_errors=sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")),
        p50_ms=ms("p50_us"),
        p99_ms=ms("p99_us"),
        max_ms=ms("max_us"),
    )


def run_wrk(
    url: str,
    path: str,
    bodies: Path,
    *,
    concurrency: int,
    threads: int,
    duration_s: int,
    start: int = 0,
    timeout_s: float = 30,
) -> WrkResult:
    """One closed-loop run of POST `path` on `url` with the bodies of the pool file `bodies`,
    starting at body `start` (a previous run's `next_start`, so that none of its bodies is sent again)."""
    threads = max(1, min(threads, concurrency))  # wrk needs at least one connection per thread
    argv = [
        require_wrk(),
        "-c",
        str(concurrency),
        "-t",
        str(threads),
        "-d",
        f"{duration_s}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(bodies),
        path,
        str(start),
        str(threads),
    ]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        # A run that hangs past its duration (it should not: every request has a timeout) is killed.
        watchdog = threading.Timer(duration_s + timeout_s + 30, proc.kill)
        watchdog.start()
        try:
            # wait4 instead of proc.wait(): it returns the process's own resource usage.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{text[-2000:]}")
    return dataclasses.replace(parse_output(text), client_cpu_s=round(usage.ru_utime + usage.ru_stime, 2))
