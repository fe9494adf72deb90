"""Airflow on this machine, for `heara airflow ...` and `make airflow`: standalone, SQLite, examples
off, low parallelism, the project's DAG folder, state under $HEARA_HOME/airflow/home.

`airflow standalone` starts the API server, scheduler, DAG processor and triggerer as children; a
SIGTERM to the parent leaves them running (STACK-NOTES), so it runs in its own process group and
`down` stops the whole group, escalating to SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from training.paths import PROJECT_ROOT, state


def home() -> Path:
    return state().airflow_home


def env(base: dict[str, str] | None = None, *, port: int = 8080) -> dict[str, str]:
    """The environment every Airflow command of this project runs with (values already set win)."""
    out = dict(os.environ if base is None else base)
    defaults = {
        "AIRFLOW_HOME": str(home()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",  # a 2-core box: one training plus one light task at a time
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "30",
        "HEARA_HOME": str(state().home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), out.get("PYTHONPATH", "")) if p),
    }
    for key, value in defaults.items():
        out.setdefault(key, value)
    # standalone starts its components as `airflow ...` from PATH: the venv's bin first.
    out["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), out.get("PATH", "")])
    return out


def _airflow() -> str:
    exe = Path(sys.executable).with_name("airflow")
    return str(exe) if exe.exists() else (shutil.which("airflow") or "airflow")


def run(args: list[str], *, check: bool = True, capture: bool = False, extra_env: dict | None = None):
    """One `airflow ...` command with the project's environment."""
    e = env()
    e.update(extra_env or {})
    return subprocess.run(
        [_airflow(), *args], env=e, check=check, text=True, capture_output=capture, cwd=PROJECT_ROOT
    )


def gpu_slots() -> int:
    """Slots of the `gpu` pool: HEARA_GPU_SLOTS, else the GPUs nvidia-smi lists, else 1 (CPU training)."""
    from training.env import gpu_slots as configured

    if configured():
        return configured()
    smi = shutil.which("nvidia-smi")
    if smi:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False).stdout
        return max(1, sum(1 for line in out.splitlines() if line.startswith("GPU ")))
    return 1


def init(pool: str = "gpu", *, force: bool = False) -> None:
    """Create or upgrade the metadata database and the training pool (idempotent). Each `airflow`
    command costs ~10 s of start-up on a small machine, so a marker records what was done for which
    Airflow version, database and pool size, and a repeated call with the same values does nothing."""
    from importlib.metadata import version

    home().mkdir(parents=True, exist_ok=True)
    e = env()
    key = json.dumps(
        {
            "airflow": version("apache-airflow"),
            "pool": pool,
            "slots": gpu_slots(),
            "db": e.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite (default)"),
        },
        sort_keys=True,
    )
    marker = home() / ".heara-init.json"
    db_present = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in e or (home() / "airflow.db").exists()
    if not force and db_present and marker.exists() and marker.read_text() == key:
        return
    run(["db", "migrate"], capture=True)
    run(["pools", "set", pool, str(gpu_slots()), "Heara training: one slot per GPU"], capture=True)
    marker.write_text(key)


def _pid_file() -> Path:
    return home() / "standalone.pid"


def password() -> str | None:
    """The generated admin password (simple auth manager), once standalone has started."""
    path = home() / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data.get("admin") if isinstance(data, dict) else None


def healthy(port: int = 8080) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def up(port: int = 8080, timeout_s: float = 180.0) -> dict:
    """Start `airflow standalone` in its own process group; wait until every component is healthy."""
    if _pid_file().exists() and _alive(int(_pid_file().read_text())):
        return {
            "already_running": True,
            "pid": int(_pid_file().read_text()),
            "url": f"http://127.0.0.1:{port}",
        }
    init()
    logs = state().logs
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / "airflow-standalone.log", "ab")
    proc = subprocess.Popen(
        [_airflow(), "standalone"],
        env=env(port=port),
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _pid_file().write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = healthy(port)
        if health and all(v.get("status") == "healthy" for v in health.values() if isinstance(v, dict)):
            return {
                "pid": proc.pid,
                "url": f"http://127.0.0.1:{port}",
                "user": "admin",
                "password": password(),
                "log": str(logs / "airflow-standalone.log"),
                "health": health,
            }
        if proc.poll() is not None:
            raise RuntimeError(
                f"airflow standalone exited with {proc.returncode}; see {logs / 'airflow-standalone.log'}"
            )
        time.sleep(2)
    down()
    raise TimeoutError(
        f"Airflow was not healthy after {timeout_s:.0f} s; see {logs / 'airflow-standalone.log'}"
    )


def _alive(pid: int, *, group: bool = False) -> bool:
    """Whether the process (or, with group=True, any process of its group) still exists."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
        return True
    except OSError:
        return False


def down(grace_s: float = 20.0) -> bool:
    """Stop the standalone process group: SIGTERM, then SIGKILL after `grace_s`. False if none ran."""
    if not _pid_file().exists():
        return False
    pid = int(_pid_file().read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        _pid_file().unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(pid, group=True):
        time.sleep(0.5)
    if _alive(pid, group=True):
        os.killpg(pid, signal.SIGKILL)
    _pid_file().unlink(missing_ok=True)
    return True
