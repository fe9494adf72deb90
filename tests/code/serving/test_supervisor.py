"""serving.supervisor without BentoML running: secrets moved into files, instance folders claimed and
cleaned up, the circus endpoints on Unix sockets, and workers (small stand-in processes) that stop
when their supervisor is killed. tests/system/test_serve_lifecycle.py checks the same on `heara serve`."""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from serving import supervisor
from training import env
from training.paths import PROJECT_ROOT

SECRETS = ("HEARA_API_KEY", "HEARA_API_KEY_FILE", "HEARA_METRICS_TOKEN", "HEARA_METRICS_TOKEN_FILE")


@pytest.fixture
def no_secrets(monkeypatch):
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- secrets --------------------------------------------------------------------------------------


def test_a_key_given_as_a_value_is_moved_into_a_file_only_its_owner_can_read(no_secrets, tmp_path):
    no_secrets.setenv("HEARA_API_KEY", "s3cret")
    no_secrets.setenv("HEARA_METRICS_TOKEN", "scrape")
    hidden = supervisor.hide_secrets(tmp_path)
    assert "HEARA_API_KEY" not in hidden and "HEARA_METRICS_TOKEN" not in hidden
    assert "s3cret" not in hidden.values() and "scrape" not in hidden.values()
    key, token = Path(hidden["HEARA_API_KEY_FILE"]), Path(hidden["HEARA_METRICS_TOKEN_FILE"])
    assert key.parent == tmp_path and _mode(key) == 0o600 and _mode(token) == 0o600
    for name in SECRETS:  # what the workers will see
        no_secrets.delenv(name, raising=False)
    for name in ("HEARA_API_KEY_FILE", "HEARA_METRICS_TOKEN_FILE"):
        no_secrets.setenv(name, hidden[name])
    assert env.api_key() == "s3cret" and env.metrics_token() == "scrape"
    assert supervisor.hide_secrets(tmp_path) is None  # after the re-exec: nothing left to move


def test_no_key_or_a_key_file_needs_no_move(no_secrets, tmp_path):
    assert supervisor.hide_secrets(tmp_path) is None
    key = tmp_path / "key"
    key.write_text("k\n")
    key.chmod(0o600)
    no_secrets.setenv("HEARA_API_KEY_FILE", str(key))
    assert supervisor.hide_secrets(tmp_path / "instance") is None and not (tmp_path / "instance").exists()


def test_a_bad_key_file_stops_the_start_with_exit_code_2(no_secrets, tmp_path):
    key = tmp_path / "key"
    key.write_text("k\n")
    key.chmod(0o644)
    run_env = {**os.environ, "HEARA_HOME": str(tmp_path / "home"), "HEARA_API_KEY_FILE": str(key)}
    done = subprocess.run(
        [sys.executable, "-m", "serving.supervisor", "serve", "nothing:Here"],
        env=run_env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and f"HEARA_API_KEY_FILE={key} may be read" in done.stderr, done.stderr
    assert list((tmp_path / "home" / "serving" / "instances").iterdir()) == []


# --- instance folders -----------------------------------------------------------------------------


def _dead_process() -> tuple[int, float]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return proc.pid, started


def test_claiming_makes_a_private_folder_and_finds_it_again_after_the_re_exec(tmp_path):
    root = tmp_path / "instances"
    folder = supervisor.claim_instance(root)
    me = psutil.Process()
    assert folder.name == supervisor.instance_name(me.pid, me.create_time(), socket.gethostname())
    assert _mode(folder) == 0o700
    (folder / "api-key").write_text("k")
    assert supervisor.claim_instance(root) == folder and (folder / "api-key").exists()


def test_folders_of_dead_supervisors_on_this_host_are_removed(tmp_path):
    host = socket.gethostname()
    root = tmp_path / "instances"
    root.mkdir()
    me = psutil.Process()
    live = root / supervisor.instance_name(me.pid, me.create_time(), host)
    dead = root / supervisor.instance_name(*_dead_process(), host)
    reused = root / supervisor.instance_name(me.pid, me.create_time() - 3600, host)  # its pid, reused
    elsewhere = root / supervisor.instance_name(*_dead_process(), "another-container")
    unrelated = root / "notes"
    for folder in (live, dead, reused, elsewhere, unrelated):
        folder.mkdir()
    sockets = Path(tempfile.mkdtemp(prefix=supervisor.CONTROL_PREFIX))
    (dead / "control").write_text(f"{sockets}\n")
    keep = tmp_path / "not-ours"
    keep.mkdir()
    (reused / "control").write_text(str(keep))  # only heara-circus-* folders are ever removed

    assert sorted(supervisor.remove_stale_instances(root, host)) == sorted([dead, reused])
    assert sorted(root.iterdir()) == sorted([live, elsewhere, unrelated])
    assert not sockets.exists() and keep.exists()


def test_the_circus_endpoints_are_unix_sockets(tmp_path):
    from bentoml._internal.utils import circus as bentoml_circus

    create = supervisor._private_arbiter(tmp_path)
    # The replacement must stay a drop-in for BentoML's function (checked again after an upgrade).
    assert (
        inspect.signature(create).parameters.keys()
        == inspect.signature(bentoml_circus.create_standalone_arbiter).parameters.keys()
    )
    arbiter = create([])
    assert arbiter.endpoint == f"ipc://{tmp_path}/control.sock"
    assert arbiter.pubsub_endpoint == f"ipc://{tmp_path}/events.sock" and arbiter.check_delay == 10
    assert arbiter.ctrl.endpoint == arbiter.endpoint


# --- workers --------------------------------------------------------------------------------------

# A stand-in worker: bound to its supervisor as the services bind themselves, in a session of its own
# as circus starts workers; it records SIGTERM. argv: output file, "prctl" | "poll", "stop" | "hang".
WORKER = textwrap.dedent(
    """
    import signal, sys, time
    from serving import supervisor
    out, how, on_term = sys.argv[1:4]
    supervisor.POLL_S, supervisor.ORPHAN_BACKSTOP_S = 0.1, 1.0
    if how == "poll":
        supervisor._arm_parent_death_signal = lambda sig: False
    def term(*_):
        open(out, "a").write("SIGTERM\\n")
        if on_term == "stop":
            sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    supervisor.bind_to_supervisor(0)
    open(out, "a").write("bound\\n")
    time.sleep(120)
    """
)


def _start(tmp_path: Path, how: str, on_term: str, supervisor_pid: int | None = None):
    """A stand-in supervisor (a Python process) that starts one stand-in worker; (supervisor, worker
    pid, the worker's record)."""
    out = tmp_path / "worker.txt"
    code = (
        "import os, subprocess, sys, time\n"
        "pid = sys.argv[1] or str(os.getpid())\n"
        "w = subprocess.Popen([sys.executable, '-c', sys.argv[2], *sys.argv[3:]],\n"
        "                     env={**os.environ, 'HEARA_SUPERVISOR_PID': pid}, start_new_session=True)\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code, str(supervisor_pid or ""), WORKER, str(out), how, on_term],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = int(parent.stdout.readline())
    return parent, worker, out


def _stop(parent: subprocess.Popen, worker: int) -> None:
    """Whatever a failed test left running."""
    parent.kill()
    parent.wait()
    parent.stdout.close()
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(worker).send_signal(signal.SIGKILL)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _wait_for(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["prctl", "poll"])
def test_a_worker_stops_in_order_when_its_supervisor_is_killed(tmp_path, how):
    parent, worker, out = _start(tmp_path, how, "stop")
    try:
        _wait_for(out, "bound")
        assert psutil.pid_exists(worker)
        parent.kill()  # SIGKILL: no chance to stop its workers
        parent.wait()
        assert _wait_gone(worker, 10), f"the worker outlived its supervisor ({how})"
        assert out.read_text().splitlines() == ["bound", "SIGTERM"]
    finally:
        _stop(parent, worker)


def test_a_worker_whose_supervisor_died_before_it_was_bound_stops(tmp_path):
    # HEARA_SUPERVISOR_PID names a process that is not the worker's parent: as if the supervisor had
    # died between starting the worker and the worker arming the signal.
    gone, _ = _dead_process()
    parent, worker, out = _start(tmp_path, "prctl", "stop", supervisor_pid=gone)
    try:
        assert _wait_gone(worker, 60)
        assert "SIGTERM" in out.read_text().splitlines()  # maybe before "bound": the watcher is quick
    finally:
        _stop(parent, worker)


def test_a_worker_that_does_not_stop_on_sigterm_is_ended_by_the_backstop(tmp_path):
    parent, worker, out = _start(tmp_path, "prctl", "hang")
    try:
        _wait_for(out, "bound")
        parent.kill()
        parent.wait()
        _wait_for(out, "SIGTERM", 10)  # which it ignores: only the backstop can end it
        assert _wait_gone(worker, 10)  # ORPHAN_BACKSTOP_S (1 s here) after the watcher noticed
    finally:
        _stop(parent, worker)


def test_binding_does_nothing_outside_heara_serve(monkeypatch):
    import threading

    monkeypatch.delenv("HEARA_SUPERVISOR_PID", raising=False)
    before = threading.active_count()
    supervisor.bind_to_supervisor(3)
    assert threading.active_count() == before
