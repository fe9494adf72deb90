"""Reading wrk's result line (printed by training/bench/wrk_pool.lua) and the missing-tool message."""

from __future__ import annotations

import pytest

from training.bench import wrk
from training.errors import NotFoundError

# A run's output (wrk 4.1.0, 2 threads, 4 connections, a server answering 500 to some texts), with a read
# error and two timeouts added to the result line.
OUTPUT = """Running 2s test @ http://127.0.0.1:18777
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    43.53ms    6.39ms  54.46ms   96.88%
    Req/Sec    45.43      9.25    60.00     71.43%
  192 requests in 2.08s, 21.83KB read
  Non-2xx or 3xx responses: 11
Requests/sec:     92.36
Transfer/sec:     10.50KB
heara-wrk {"threads": 2, "duration_us": 2078836, "requests": 192, "sent": 197, "next": 203, "ok": 181, \
"non_2xx": 11, "status_5xx": 11, "connect_errors": 0, "read_errors": 1, "write_errors": 0, "timeouts": 2, \
"p50_us": 43949, "p99_us": 54389, "max_us": 54462}
"""


def test_the_result_line_is_read() -> None:
    r = wrk.parse_output(OUTPUT)
    assert (r.requests, r.sent, r.ok, r.non_2xx, r.status_5xx) == (192, 197, 181, 11, 11)
    assert r.socket_errors == 3 and r.errors == 14  # non-2xx answers and requests without an answer
    assert (r.p50_ms, r.p99_ms, r.max_ms) == (43.95, 54.39, 54.46)
    assert r.next_start == 203 and r.duration_s == pytest.approx(2.078836)
    assert r.rps == pytest.approx(181 / 2.078836)  # 2xx answers only
    assert r.client_cpu_s == 0.0  # set by run_wrk from the process's own usage


def test_a_run_without_answers_has_no_percentiles() -> None:
    line = OUTPUT.splitlines()[-3:]
    text = "\n".join(line).replace('"requests": 192', '"requests": 0').replace('"ok": 181', '"ok": 0')
    r = wrk.parse_output(text)
    assert r.p50_ms is r.p99_ms is None and r.rps == 0


def test_output_without_the_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="no 'heara-wrk' line"):
        wrk.parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_a_missing_wrk_names_the_make_target(monkeypatch) -> None:
    monkeypatch.setattr(wrk.shutil, "which", lambda name: None)
    with pytest.raises(NotFoundError, match=r"run `make load-tool`") as err:
        wrk.require_wrk()
    assert "\n" not in str(err.value)
