"""The supervisor of the service's workers, and the workers' tie to it (issue #15, findings 4 and 7).

`heara serve` runs `python -m serving.supervisor serve serving.service:HearaService ...`: BentoML's own
`bentoml serve` (a circus arbiter that starts and restarts the worker processes) with four changes.

- A private control endpoint. BentoML 1.4 binds circus's control and event endpoints to two TCP ports
  on 127.0.0.1 without authentication: any local user could read the workers' environment (`options`,
  which held HEARA_API_KEY) or make circus start a program of their choosing as the service's user
  (`set <watcher> cmd ...`). Here both are Unix sockets (ZeroMQ `ipc://`) in a fresh folder of mode
  700, so only the service's user (and root) can reach them: `circusctl --endpoint ipc://<folder>/
  control.sock` for an operator, the folder's path being in the instance folder's `control` file.
  BentoML has no setting for this; `_private_arbiter` replaces the one function that picks the
  endpoints (`bentoml._internal.utils.circus.create_standalone_arbiter`).
- Secrets out of every environment. A key given as a value (HEARA_API_KEY, HEARA_METRICS_TOKEN) is
  written to a file of mode 600 in the instance folder and the supervisor re-executes itself with
  `<NAME>_FILE` naming that file instead: neither its own environment nor the workers' (which circus
  copies from it) hold the value. A key given as a file stays where it is.
- A folder per instance, `$HEARA_HOME/serving/instances/<pid>-<start time>@<host>/` (mode 700): the
  secret files and the Prometheus multiprocess files. BentoML keeps the latter in
  `$BENTOML_HOME/prometheus_multiproc_dir` and empties it at every start, so a second instance on one
  HEARA_HOME wiped the first one's files and the first's /metrics then showed the second's numbers.
  Removed when the supervisor stops; a supervisor killed outright (SIGKILL) leaves its folder, which
  the next start on the same host removes (its process is gone, or is another one by its start time).
- `HEARA_SUPERVISOR_PID` in the workers' environment, for `bind_to_supervisor`.

The workers' side: circus starts each worker in a session of its own, so a SIGKILL of `heara serve`'s
process group left them running, still answering on the port, with nothing left to stop or restart
them. `bind_to_supervisor` (called first in each service's __init__) asks Linux to send the worker
SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG), which starts the worker's ordinary shutdown
(requests in flight, prediction-log flush), and watches the parent from a thread: where the signal
could not be armed, or the parent had died already, it sends SIGTERM itself; a worker whose shutdown
hangs is ended ORPHAN_BACKSTOP_S later.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("heara.serve")

SECRET_FILES = {
    "HEARA_API_KEY": "api-key",
    "HEARA_METRICS_TOKEN": "metrics-token",
    "HEARA_ID_SALT": "id-salt",
}
INSTANCE_NAME = re.compile(r"^(\d+)-(\d+)@(.+)$")  # <pid>-<start time, whole seconds>@<host>
CONTROL_PREFIX = "heara-circus-"  # the private folder of the control sockets, in the temporary folder
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 1.0  # how often a worker checks that its supervisor is still its parent
ORPHAN_BACKSTOP_S = 60.0  # beyond serve.shutdown_grace_s: a flush of the prediction log took ~20 s


# --- the supervisor's side ----------------------------------------------------------------------------


def instance_name(pid: int, started: float, host: str) -> str:
    return f"{pid}-{int(started)}@{host}"


def is_running(pid: int, started: int) -> bool:
    """Whether process `pid` exists and is the one that started at `started` (not a reuse of its pid).
    A second of tolerance: the start time is derived from the boot time, which the kernel may restate."""
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - started) < 2
    except psutil.NoSuchProcess:
        return False


def remove_instance(folder: Path) -> None:
    """An instance folder and the control-socket folder it names."""
    control = folder / "control"
    if control.is_file():
        sockets = Path(control.read_text(encoding="utf-8").strip())
        if sockets.name.startswith(CONTROL_PREFIX):  # never anything else, whatever the file says
            shutil.rmtree(sockets, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def remove_stale_instances(root: Path, host: str) -> list[Path]:
    """Remove the folders that supervisors on this host left when they were killed. Folders of other
    hosts (containers sharing the volume) are left alone: their processes cannot be seen from here."""
    removed = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        match = INSTANCE_NAME.match(folder.name)
        if match and match[3] == host and not is_running(int(match[1]), int(match[2])):
            remove_instance(folder)
            removed.append(folder)
    return removed


def claim_instance(root: Path) -> Path:
    """This process's instance folder (mode 700): created, or found again after its own re-exec (which
    keeps the pid and the start time). Stale folders of dead supervisors are removed first."""
    import psutil

    host = socket.gethostname()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in remove_stale_instances(root, host):
        log.info("removed %s, left by a supervisor that is gone", folder)
    pid = os.getpid()
    folder = root / instance_name(pid, psutil.Process(pid).create_time(), host)
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    return folder


def hide_secrets(folder: Path) -> dict[str, str] | None:
    """This process's environment with each secret given as a value written to a file in `folder`
    (mode 600) and named by `<NAME>_FILE` instead; None when no secret is given as a value. Raises
    ConfigError for a secret given both ways or a bad secret file (training.env.secret)."""
    from training import env

    inline = env.inline_secrets()
    if not inline:
        return None
    hidden = dict(os.environ)
    for name, value in inline.items():
        path = folder / SECRET_FILES[name]
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value + "\n")
        del hidden[name]
        hidden[f"{name}_FILE"] = str(path)
    return hidden


def _private_arbiter(sockets: Path) -> Callable:
    """BentoML's `create_standalone_arbiter` (bentoml/_internal/utils/circus/__init__.py, 1.4.39) with
    its two endpoints on Unix sockets in `sockets` instead of TCP ports on 127.0.0.1."""
    from bentoml._internal.utils.circus import Arbiter, ThreadedArbiter

    def create_standalone_arbiter(watchers: list, *, threaded: bool = False, **kwargs):
        return (ThreadedArbiter if threaded else Arbiter)(
            watchers,
            endpoint=f"ipc://{sockets / 'control.sock'}",
            pubsub_endpoint=f"ipc://{sockets / 'events.sock'}",
            check_delay=kwargs.pop("check_delay", 10),  # BentoML's value, for the reason it gives
            **kwargs,
        )

    return create_standalone_arbiter


def run_bentoml(folder: Path, argv: list[str]) -> None:
    """`bentoml <argv>` in this process, with the private endpoint and this instance's metrics folder.
    The instance folder is removed when BentoML returns (after SIGTERM or Ctrl-C: its workers stopped)."""
    import zmq
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.utils import circus as bentoml_circus
    from bentoml_cli.cli import cli

    try:
        if zmq.has("ipc"):
            sockets = Path(tempfile.mkdtemp(prefix=CONTROL_PREFIX))  # mode 700
            (folder / "control").write_text(f"{sockets}\n", encoding="utf-8")
            bentoml_circus.create_standalone_arbiter = _private_arbiter(sockets)
        else:  # ZeroMQ without Unix sockets (Windows): BentoML's TCP endpoint on 127.0.0.1 stays
            log.warning("ZeroMQ has no ipc transport here: circus's control endpoint stays on TCP 127.0.0.1")
        # What BentoML's own pytest plugin does to move this folder (bentoml/testing/pytest/plugin.py).
        BentoMLContainer.prometheus_multiproc_dir.set(str(folder / "metrics"))
        os.environ["HEARA_SUPERVISOR_PID"] = str(os.getpid())  # copied into the workers' environment
        cli.main(args=argv, prog_name="bentoml")
    finally:
        remove_instance(folder)


def main(argv: list[str]) -> None:
    from training.errors import HearaError
    from training.paths import state

    folder = None
    try:
        folder = claim_instance(state().serving_instances)
        hidden = hide_secrets(folder)
    except HearaError as exc:  # a user's mistake: one line and exit code 2, as the CLI does
        if folder is not None:
            remove_instance(folder)
        print(f"heara serve: {exc}", file=sys.stderr)
        sys.exit(2)
    if hidden is not None:  # once: the new image finds the secrets in files and its folder in place
        os.execve(sys.executable, [sys.executable, "-m", "serving.supervisor", *argv], hidden)
    run_bentoml(folder, argv)


# --- the workers' side --------------------------------------------------------------------------------


def _arm_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies; False where that is not possible.

    The kernel keeps the request per thread and sends it when the parent *thread* that started this
    process ends: circus starts workers from its main thread (the event loop), which lives as long as
    the supervisor, and this is called on the worker's main thread (BentoML builds the service there)."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(supervisor: int, signal_self: bool, backstop_s: float) -> None:
    while os.getppid() == supervisor:
        time.sleep(POLL_S)
    log.warning("the supervisor (pid %d) is gone: this worker stops", supervisor)
    if signal_self:  # not twice: a second SIGTERM makes uvicorn skip the orderly shutdown
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(backstop_s)
    log.error("still running %.0f s after the supervisor died: exiting now", backstop_s)
    os._exit(1)


def bind_to_supervisor(grace_s: float) -> None:
    """Make this worker stop when its supervisor dies (see the module docstring). `grace_s`: how long
    its shutdown may let requests in flight finish (serve.shutdown_grace_s). Does nothing outside
    `heara serve` (the service in-process: HEARA_SUPERVISOR_PID is not set)."""
    from training import env

    supervisor = env.supervisor_pid()
    if supervisor is None:
        return
    armed = _arm_parent_death_signal(signal.SIGTERM)
    # Checked after arming: had the supervisor died before, the kernel would never send the signal.
    orphaned = os.getppid() != supervisor
    threading.Thread(
        target=_watch,
        args=(supervisor, orphaned or not armed, grace_s + ORPHAN_BACKSTOP_S),
        name="heara-supervisor-watch",
        daemon=True,
    ).start()


if __name__ == "__main__":
    main(sys.argv[1:])
