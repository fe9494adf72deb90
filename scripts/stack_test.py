"""`make stack-test`: the compose stack's topology run natively on this machine, end to end.

    .venv/bin/python scripts/stack_test.py [--keep] [--timeout 840] [--pg postgresql://postgres@127.0.0.1:5432]

What it starts, each in its own process group with its log in the run's folder
(`$TMPDIR/heara-stack-test/<run>/logs/`, default /tmp), as docker-compose.yml does with containers:
- three fresh PostgreSQL databases on the local server (`heara_stack_{airflow,mlflow,predictions}_<run>`);
- the MLflow tracking server on PostgreSQL, artifacts served through it (`mlflow/server.sh`);
- Airflow 3 on PostgreSQL with the LocalExecutor: `airflow db migrate`, the `gpu` pool, then the API
  server, scheduler, DAG processor and triggerer as separate processes, the project's DAG folder, the
  simple auth manager with a generated admin password;
- after the DAG run, the BentoML service (`heara serve`) with an API key, loading the champion through
  the MLflow server, its prediction log on PostgreSQL.

What it checks: every service healthy (MLflow /health, Airflow /api/v2/monitor/health with every
component, BentoML /readyz); `heara_retrain` unpaused and triggered through Airflow's REST API with a
token from /auth/token, followed until it succeeds; the registry (through the MLflow server and in its
PostgreSQL database): `heara-<task>@champion` exists and its run carries the REST-triggered run id;
Airflow's own database holds the run as successful; a served prediction carries the champion's
version and lands in the predictions table. Then it stops everything (SIGTERM to each process group,
SIGKILL after a grace period, also on Ctrl-C or SIGTERM) and drops the databases (kept with --keep);
the run's folder keeps its logs after a pass, everything after a failure or with --keep.

The last line printed is one JSON object with the figures; the exit status is 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python scripts/stack_test.py` puts scripts/ first, not the project
    sys.path.insert(0, str(ROOT))

from training.bench.serve import Server, free_port, wait_ready  # noqa: E402
from training.env import stack_pg  # noqa: E402

log = logging.getLogger("stack-test")

DAG_ID = "heara_retrain"
CHAMPION = "champion"
# The trigger form of the run: the fast settings of tests/system/test_airflow_dag.py (2 epochs of the tiny
# profile, a small bootstrap, no augmented rows, a promotion gate any trained model passes: no min_f1 and
# no baseline floor).
CONF = {
    "epochs": 2,
    "learning_rate": 0.003,
    "overrides": {
        "promote.min_f1": 0.0,
        "promote.require_beat_baseline": False,
        "promote.latency_budget_ms": 100000,
        "promote.bootstrap_samples": 200,
        "evaluate.latency_samples": 20,
        "augment.multipliers": {},
    },
}
TEXTS = [
    "화장실에서 넘어졌어 못 일어나겠어",
    "오늘 날씨가 참 좋네요",
    "여기가 어디지? 집에 어떻게 가는지 모르겠어",
]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Variables of the caller's environment that would point a service somewhere else than this stack.
FOREIGN_PREFIXES = ("HEARA_", "MLFLOW_", "AIRFLOW", "BENTOML_HOME")
MARKER = "HEARA_STACK_TEST_RUN"  # in every process's environment: stray descendants are found by it
# SIGTERM reaches circusd only (BentoML's workers have sessions of their own); it then stops the workers,
# and the front one took 20-25 s on this machine. Airflow and MLflow stop within 15 s.
STOP_GRACE_S = 45


class StackTestFailed(RuntimeError):
    pass


class Interrupted(BaseException):
    """SIGTERM or SIGHUP (e.g. CI's `timeout`): unwind through the clean-up like Ctrl-C does."""


# --- pure helpers (tests/system/test_stack_test.py) --------------------------------------------------


def database_names(run: str) -> dict[str, str]:
    return {role: f"heara_stack_{role}_{run}" for role in ("airflow", "mlflow", "predictions")}


def database_url(server: str, db: str, driver: str = "psycopg") -> str:
    """`postgresql+psycopg://...` for SQLAlchemy (Airflow, MLflow); driver "" for a plain libpq URL."""
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return f"{scheme}://{server.split('://', 1)[1].rstrip('/')}/{db}"


def stack_params(source: Path, dest: Path) -> Path:
    """A copy of params.yaml for the stack: no retries (a failure fails at once) and no schedule (no run
    but the one triggered through the REST API)."""
    params = yaml.safe_load(source.read_text(encoding="utf-8"))
    params["orchestrate"]["retries"] = 0
    params["orchestrate"]["schedule"] = None
    dest.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


def clean_env(base: dict[str, str], **values: str) -> dict[str, str]:
    """`base` without the caller's Heara/MLflow/Airflow settings, plus `values` and telemetry off."""
    env = {k: v for k, v in base.items() if not k.startswith(FOREIGN_PREFIXES)}
    env.update(
        {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "BENTOML_DO_NOT_TRACK": "True",
            "DVC_NO_ANALYTICS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(values)
    return env


def unhealthy(health: dict | None) -> list[str]:
    """Airflow components that /api/v2/monitor/health does not report healthy (all of them when no answer)."""
    expected = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    if not health:
        return list(expected)
    return [name for name in expected if (health.get(name) or {}).get("status") != "healthy"]


def log_lines(answer: Any) -> list[str]:
    """Airflow 3's task log answer ({"content": [structured messages or strings]}) as text lines."""
    content = answer.get("content", answer) if isinstance(answer, dict) else answer
    if isinstance(content, str):
        return content.splitlines()
    lines = []
    for item in content or []:
        if isinstance(item, dict):
            extra = {k: v for k, v in item.items() if k not in {"timestamp", "event", "level", "logger"}}
            text = " ".join(
                str(p) for p in (item.get("timestamp", ""), item.get("level", ""), item.get("event", "")) if p
            )
            lines.append(text + (f" {extra}" if extra else ""))
        else:
            lines.extend(str(item).splitlines())
    return lines


def task_states(task_instances: list[dict]) -> dict[str, str]:
    return {ti["task_id"]: ti.get("state") or "none" for ti in task_instances}


# --- the run --------------------------------------------------------------------------------------


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = time.strftime("%m%d%H%M%S") + secrets.token_hex(2)
        # Not under $HEARA_HOME: `make clean-state` (or a demo) may wipe that while the stack runs.
        self.dir = Path(tempfile.gettempdir()) / "heara-stack-test" / self.run
        self.logs = self.dir / "logs"
        self.dbs = database_names(self.run)
        self.deadline = time.monotonic() + args.timeout
        self.servers: list[Server] = []
        self.phases: dict[str, float] = {}
        self.result: dict[str, Any] = {"run": self.run, "folder": str(self.dir)}
        self.ports = {
            "mlflow": free_port(),
            "airflow": free_port(),
            "serving": free_port(),
            "airflow_worker_logs": free_port(),
            "airflow_trigger_logs": free_port(),
        }
        self.api_key = secrets.token_urlsafe(24)
        self.admin_password = secrets.token_urlsafe(16)
        self.dbs_created = False

    # helpers ---------------------------------------------------------------------------------------

    def remaining(self, cap: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise StackTestFailed(f"the overall time limit of {self.args.timeout:.0f} s is spent")
        return min(cap, left)

    def phase(self, name: str, started: float) -> None:
        self.phases[name] = round(time.monotonic() - started, 1)
        log.info("phase %s: %.1f s", name, self.phases[name])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def spawn(self, name: str, argv: list[str], env: dict[str, str], port: int = 0) -> Server:
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{name}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                argv,
                env={**env, MARKER: self.run},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(name, port, proc, self.dir, log_path)
        self.servers.append(server)
        log.info(
            "started %s (pid %d, own process group): %s; log %s", name, proc.pid, " ".join(argv[:4]), log_path
        )
        return server

    def wait(
        self,
        what: str,
        probe: Callable[[], Any],
        timeout_s: float,
        servers: list[Server],
        every_s: float = 1.0,
    ) -> Any:
        """Poll `probe` until it returns something truthy; fail at once when one of `servers` exits."""
        deadline = time.monotonic() + self.remaining(timeout_s)
        while time.monotonic() < deadline:
            for s in servers:
                if s.proc.poll() is not None:
                    raise StackTestFailed(
                        f"{s.name} exited with {s.proc.returncode} while waiting for "
                        f"{what}:\n{s.log_tail(60)}"
                    )
            with suppress(httpx.HTTPError, OSError, ValueError):
                if answer := probe():
                    return answer
            time.sleep(every_s)
        tails = "\n".join(f"--- {s.name}:\n{s.log_tail(30)}" for s in servers)
        raise StackTestFailed(f"timed out waiting for {what}\n{tails}")

    def pg(self, db: str = "postgres"):
        import psycopg

        return psycopg.connect(database_url(self.args.pg, db, driver=""), autocommit=True, connect_timeout=10)

    # phases ----------------------------------------------------------------------------------------

    def postgres(self) -> None:
        t = time.monotonic()
        with self.pg() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            log.info("PostgreSQL %s at %s: healthy", version, self.args.pg)
            for db in self.dbs.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{db}"')
        self.dbs_created = True
        log.info("created databases %s", ", ".join(self.dbs.values()))
        self.phase("postgres", t)

    def mlflow(self) -> None:
        t = time.monotonic()
        home = self.dir / "mlflow"
        env = clean_env(
            dict(os.environ),
            HEARA_HOME=str(home),
            MLFLOW_BACKEND_STORE_URI=database_url(self.args.pg, self.dbs["mlflow"]),
            MLFLOW_ARTIFACTS_DESTINATION=str(home / "artifacts"),
            MLFLOW_HOST="127.0.0.1",
            MLFLOW_PORT=str(self.ports["mlflow"]),
            MLFLOW_WORKERS="1",
            PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        )
        server = self.spawn("mlflow", ["bash", str(ROOT / "mlflow" / "server.sh")], env, self.ports["mlflow"])
        body = self.wait(
            "MLflow /health", lambda: _get_text(f"{self.url('mlflow')}/health") == "OK", 180, [server]
        )
        log.info(
            "MLflow %s/health: %s (backend: PostgreSQL %s, artifacts served by the server)",
            self.url("mlflow"),
            "OK" if body else body,
            self.dbs["mlflow"],
        )
        self.phase("mlflow", t)

    def airflow_env(self) -> dict[str, str]:
        from training.orchestration.airflow_local import env as airflow_env

        home = self.dir / "airflow"
        passwords = home / "simple_auth_manager_passwords.json"
        db = database_url(self.args.pg, self.dbs["airflow"])
        port = self.ports["airflow"]
        base = clean_env(
            dict(os.environ),
            AIRFLOW_HOME=str(home),
            HEARA_HOME=str(self.dir / "heara"),
            HEARA_PARAMS=str(self.dir / "params.yaml"),
            MLFLOW_TRACKING_URI=self.url("mlflow"),
            HEARA_SERVE_URL=self.url("serving"),
            HEARA_API_KEY=self.api_key,
            # heara_monitor reads (and prunes) the service's prediction log, as in docker-compose.yml
            HEARA_PREDICTION_DB=database_url(self.args.pg, self.dbs["predictions"], driver=""),
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=db,
            # Derived from the URL above Airflow would ask for asyncpg, which the lock does not hold.
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=db,
            AIRFLOW__CORE__FERNET_KEY=_fernet_key(),
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
            AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__API__BASE_URL=self.url("airflow"),
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",  # only what the test unpauses runs
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(self.ports["airflow_worker_logs"]),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(self.ports["airflow_trigger_logs"]),
        )
        return airflow_env(base, port=port)

    def airflow(self) -> dict:
        t = time.monotonic()
        env = self.airflow_env()
        home = Path(env["AIRFLOW_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        passwords.write_text(json.dumps({"admin": self.admin_password}))
        passwords.chmod(0o600)
        airflow = str(Path(sys.executable).with_name("airflow"))
        from training.config import load_params

        pool = load_params(Path(env["HEARA_PARAMS"])).orchestrate.gpu_pool
        for argv in (["db", "migrate"], ["pools", "set", pool, "1", "Heara training: one slot per GPU"]):
            step = time.monotonic()
            with open(self.logs / "airflow-init.log", "ab") as out:
                rc = subprocess.run(
                    [airflow, *argv],
                    env={**env, MARKER: self.run},
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=self.remaining(300),
                ).returncode
            if rc != 0:
                tail = "\n".join(
                    (self.logs / "airflow-init.log").read_text(errors="replace").splitlines()[-40:]
                )
                raise StackTestFailed(f"airflow {' '.join(argv)} failed ({rc}):\n{tail}")
            log.info("airflow %s: done in %.1f s", " ".join(argv[:2]), time.monotonic() - step)
        servers = []
        for component in COMPONENTS:
            argv = [airflow, component] + (
                ["--port", str(self.ports["airflow"])] if component == "api-server" else []
            )
            servers.append(
                self.spawn(
                    f"airflow-{component}",
                    argv,
                    env,
                    self.ports["airflow"] if component == "api-server" else 0,
                )
            )

        def health() -> dict | None:
            answer = httpx.get(f"{self.url('airflow')}/api/v2/monitor/health", timeout=5).json()
            return answer if not unhealthy(answer) else None

        answer = self.wait("every Airflow component healthy", health, 240, servers, every_s=2)
        log.info(
            "Airflow %s/api/v2/monitor/health: every component healthy:\n%s",
            self.url("airflow"),
            json.dumps(answer, indent=2),
        )
        self.result["airflow_health"] = {k: v.get("status") for k, v in answer.items() if isinstance(v, dict)}
        self.phase("airflow_start", t)
        return env

    def trigger(self) -> str:
        t = time.monotonic()
        api = f"{self.url('airflow')}/api/v2"
        r = httpx.post(
            f"{self.url('airflow')}/auth/token",
            timeout=30,
            json={"username": "admin", "password": self.admin_password},
        )
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        log.info("REST: POST /auth/token as admin -> HTTP %d, bearer token received", r.status_code)
        self.http = httpx.Client(headers=headers, timeout=30)
        servers = [s for s in self.servers if s.name.startswith("airflow-")]

        def parsed() -> dict | None:
            answer = self.http.get(f"{api}/dags/{DAG_ID}")
            return answer.json() if answer.status_code == 200 else None

        def import_errors() -> str:
            with suppress(httpx.HTTPError, ValueError):
                return json.dumps(self.http.get(f"{api}/importErrors").json(), ensure_ascii=False)[:3000]
            return "(no answer)"

        try:
            dag = self.wait(f"the DAG processor to parse {DAG_ID}", parsed, 180, servers, every_s=2)
        except StackTestFailed as e:
            raise StackTestFailed(f"{e}\nimport errors: {import_errors()}") from None
        log.info(
            "REST: GET /api/v2/dags/%s -> parsed from %s, is_paused=%s",
            DAG_ID,
            dag.get("fileloc"),
            dag.get("is_paused"),
        )
        r = self.http.patch(f"{api}/dags/{DAG_ID}", json={"is_paused": False})
        r.raise_for_status()
        log.info(
            'REST: PATCH /api/v2/dags/%s {"is_paused": false} -> HTTP %d, is_paused=%s',
            DAG_ID,
            r.status_code,
            r.json().get("is_paused"),
        )
        r = self.http.post(f"{api}/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": CONF})
        if r.status_code >= 400:
            raise StackTestFailed(f"POST dagRuns -> HTTP {r.status_code}: {r.text[:2000]}")
        run = r.json()
        log.info(
            "REST: POST /api/v2/dags/%s/dagRuns conf=%s -> HTTP %d, dag_run_id=%s, run_type=%s, state=%s",
            DAG_ID,
            json.dumps(CONF),
            r.status_code,
            run["dag_run_id"],
            run.get("run_type"),
            run.get("state"),
        )
        self.result["dag_run_id"] = run["dag_run_id"]
        self.phase("trigger", t)
        return run["dag_run_id"]

    def follow(self, run_id: str) -> None:
        t = time.monotonic()
        api = f"{self.url('airflow')}/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
        servers = [s for s in self.servers if s.name.startswith("airflow-")]
        seen: dict[str, str] = {}
        state = {"run": None}

        def finished() -> str | None:
            run = self.http.get(api).json()
            tis = self.http.get(f"{api}/taskInstances", params={"limit": 100}).json()["task_instances"]
            states = task_states(tis)
            for task_id, st in states.items():
                if seen.get(task_id) != st:
                    log.info("  %-15s %s", task_id, st)
            seen.update(states)
            if run["state"] != state["run"]:
                log.info("run %s: %s", run_id, run["state"])
                state["run"] = run["state"]
            return run["state"] if run["state"] in ("success", "failed") else None

        final = self.wait(f"run {run_id} to finish", finished, self.args.run_timeout, servers, every_s=3)
        self.result["task_states"] = dict(seen)
        self.phase("dag_run", t)
        if final != "success":
            self.explain_failure(api, seen)
            raise StackTestFailed(f"run {run_id} ended {final}: {seen}")
        with suppress(httpx.HTTPError, KeyError, ValueError):
            xcom = self.http.get(f"{api}/taskInstances/reload_serving/xcomEntries/return_value").json()
            log.info(
                "reload_serving returned %s (the service starts after the run: it loads the champion "
                "at start)",
                xcom.get("value"),
            )

    def explain_failure(self, api: str, states: dict[str, str]) -> None:
        for task_id, st in states.items():
            if st != "failed":
                continue
            with suppress(httpx.HTTPError, ValueError, KeyError):
                ti = self.http.get(f"{api}/taskInstances/{task_id}").json()
                answer = self.http.get(
                    f"{api}/taskInstances/{task_id}/logs/{ti.get('try_number') or 1}",
                    params={"full_content": "true"},
                    headers={"Accept": "application/json"},
                ).json()
                log.error(
                    "log of the failed task %s (last 60 lines):\n%s",
                    task_id,
                    "\n".join(log_lines(answer)[-60:]),
                )
        for summary in (self.dir / "heara" / "airflow" / "runs").glob("*/FAILED.md"):
            log.error("%s:\n%s", summary, summary.read_text(errors="replace")[:3000])

    def registry(self, run_id: str) -> dict:
        t = time.monotonic()
        from training.config import load_params
        from training.registry.aliases import model_name

        name = model_name(load_params(self.dir / "params.yaml").task)
        api = f"{self.url('mlflow')}/api/2.0/mlflow"
        mv = (
            httpx.get(f"{api}/registered-models/alias", params={"name": name, "alias": CHAMPION}, timeout=30)
            .raise_for_status()
            .json()["model_version"]
        )
        run = (
            httpx.get(f"{api}/runs/get", params={"run_id": mv["run_id"]}, timeout=30)
            .raise_for_status()
            .json()
        )
        tags = {tag["key"]: tag["value"] for tag in run["run"]["data"].get("tags", [])}
        metrics = {m["key"]: m["value"] for m in run["run"]["data"].get("metrics", [])}
        log.info(
            "registry (MLflow server): %s@%s = version %s, run %s, source %s",
            name,
            CHAMPION,
            mv["version"],
            mv["run_id"],
            mv.get("source"),
        )
        log.info(
            "  run tags: heara.airflow.dag_id=%s heara.airflow.run_id=%s heara.airflow.trigger=%s",
            tags.get("heara.airflow.dag_id"),
            tags.get("heara.airflow.run_id"),
            tags.get("heara.airflow.trigger"),
        )
        log.info(
            "  run metrics: test_macro_f1=%s; artifacts at %s",
            metrics.get("test_macro_f1"),
            run["run"]["info"].get("artifact_uri"),
        )
        if tags.get("heara.airflow.run_id") != run_id:
            raise StackTestFailed(
                f"the champion's run carries heara.airflow.run_id={tags.get('heara.airflow.run_id')!r}, "
                f"not the REST-triggered {run_id!r}"
            )
        if not str(run["run"]["info"].get("artifact_uri", "")).startswith("mlflow-artifacts:"):
            raise StackTestFailed(
                f"artifacts do not go through the server: {run['run']['info'].get('artifact_uri')}"
            )
        with self.pg(self.dbs["mlflow"]) as conn:  # the registry really lives in PostgreSQL
            row = conn.execute(
                "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = %s",
                (name, CHAMPION),
            ).fetchone()
        log.info(
            "  PostgreSQL %s: registered_model_aliases(%s, %s) -> version %s",
            self.dbs["mlflow"],
            name,
            CHAMPION,
            row and row[0],
        )
        if not row or str(row[0]) != str(mv["version"]):
            raise StackTestFailed(
                f"registered_model_aliases in {self.dbs['mlflow']} holds {row}, not {mv['version']}"
            )
        with self.pg(self.dbs["airflow"]) as conn:
            row = conn.execute(
                "SELECT state, run_type FROM dag_run WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id)
            ).fetchone()
        log.info(
            "  PostgreSQL %s: dag_run(%s) -> state=%s run_type=%s",
            self.dbs["airflow"],
            run_id,
            *(row or (None, None)),
        )
        if not row or row[0] != "success":
            raise StackTestFailed(f"dag_run in {self.dbs['airflow']}: {row}")
        self.result.update(
            model=name,
            champion_version=str(mv["version"]),
            mlflow_run_id=mv["run_id"],
            test_macro_f1=metrics.get("test_macro_f1"),
        )
        self.phase("registry", t)
        return mv

    def serving(self, champion_version: str) -> None:
        t = time.monotonic()
        home = self.dir / "serving"
        env = clean_env(
            dict(os.environ),
            HEARA_HOME=str(home),
            HEARA_PARAMS=str(self.dir / "params.yaml"),
            MLFLOW_TRACKING_URI=self.url("mlflow"),
            HEARA_API_KEY=self.api_key,
            HEARA_PREDICTION_DB=database_url(self.args.pg, self.dbs["predictions"], driver=""),
            BENTOML_HOME=str(home / "bentoml"),
        )
        heara = str(Path(sys.executable).with_name("heara"))
        server = self.spawn(
            "serving",
            [heara, "serve", "--host", "127.0.0.1", "--port", str(self.ports["serving"])],
            env,
            self.ports["serving"],
        )
        try:
            wait_ready(server, timeout_s=self.remaining(300))
        except (RuntimeError, TimeoutError) as e:
            raise StackTestFailed(f"the service did not get ready: {e}") from None
        log.info("BentoML %s/readyz: ready (%.1f s after start)", self.url("serving"), time.monotonic() - t)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.url("serving"), timeout=60) as client:
            model = client.get("/model", headers=headers).raise_for_status().json()
            log.info(
                "GET /model: %s version %s (run %s)",
                model.get("name"),
                model.get("version"),
                model.get("run_id"),
            )
            refused = client.post("/classify", json={"texts": TEXTS[:1]})
            log.info("POST /classify without the API key -> HTTP %d", refused.status_code)
            if refused.status_code != 401:
                raise StackTestFailed(
                    f"the service answered {refused.status_code} to a request without its key"
                )
            r = client.post("/classify", json={"texts": TEXTS}, headers=headers)
            if r.status_code != 200:
                raise StackTestFailed(f"POST /classify -> HTTP {r.status_code}: {r.text[:1000]}")
            answer = r.json()
        predictions = answer["predictions"]
        for text, p in zip(TEXTS, predictions):
            log.info(
                "  %s -> %s (%.3f) danger=%s model_version=%s",
                text,
                p["label"],
                p["score"],
                p["danger"],
                p["model_version"],
            )
        versions = {str(p["model_version"]) for p in predictions}
        if versions != {champion_version}:
            raise StackTestFailed(f"served model_version {versions}, champion is {champion_version}")

        def logged() -> int:
            with self.pg(self.dbs["predictions"]) as conn:
                return conn.execute(
                    "SELECT count(*) FROM predictions WHERE request_id = %s AND model_version = %s",
                    (answer["request_id"], champion_version),
                ).fetchone()[0]

        import psycopg

        def enough() -> int | None:
            with suppress(psycopg.Error):
                n = logged()
                return n if n >= len(TEXTS) else None
            return None

        rows = self.wait("the prediction log to reach PostgreSQL", enough, 30, [server], every_s=0.5)
        log.info(
            "PostgreSQL %s: %d rows in predictions for request %s (model_version %s)",
            self.dbs["predictions"],
            rows,
            answer["request_id"],
            champion_version,
        )
        self.result.update(
            served_version=champion_version, predictions_logged=rows, labels=[p["label"] for p in predictions]
        )
        self.phase("serving", t)

    # clean-up --------------------------------------------------------------------------------------

    def stop_all(self) -> None:
        """SIGTERM to every process group at once (the newest first), SIGKILL to the groups still alive
        after the grace period; says which needed it and what was left in them."""
        t = time.monotonic()
        pending = list(reversed(self.servers))
        if pending:
            log.info(
                "stopping %s: SIGTERM to each process group, SIGKILL after %d s",
                ", ".join(s.name for s in pending),
                STOP_GRACE_S,
            )
        for s in pending:
            with suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGTERM)
        while pending and time.monotonic() - t < STOP_GRACE_S:
            for s in [s for s in pending if s.proc.poll() is not None and not _group_members(s.proc.pid)]:
                log.info("  %s stopped in %.1f s (exit %s)", s.name, time.monotonic() - t, s.proc.returncode)
                pending.remove(s)
            time.sleep(0.2)
        for s in pending:
            log.warning(
                "  %s still running after %d s (%s): SIGKILL to its group",
                s.name,
                STOP_GRACE_S,
                "; ".join(_group_members(s.proc.pid)) or "leader only",
            )
            with suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                s.proc.wait(timeout=10)
        if strays := _kill_marked(self.run):
            log.warning(
                "  killed %d processes of this run outside its process groups: %s",
                len(strays),
                "; ".join(strays),
            )
        self.phases["stop"] = round(time.monotonic() - t, 1)

    def prune(self) -> None:
        """After a pass: the run's folder less its logs (a few hundred kB)."""
        for path in self.dir.iterdir():
            if path.is_dir() and path != self.logs:
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_file():
                path.unlink(missing_ok=True)
        log.info("removed the run's state; its logs stay in %s", self.logs)

    def drop_databases(self) -> None:
        with self.pg() as conn:
            for db in self.dbs.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        log.info("dropped databases %s", ", ".join(self.dbs.values()))


def _get_text(url: str) -> str:
    return httpx.get(url, timeout=5).text.strip()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _describe(proc) -> str:
    return f"{proc.pid} {' '.join(proc.cmdline()[:3])[:120]}"


def _group_members(pgid: int) -> list[str]:
    """The live processes of a process group (pid and command)."""
    import psutil

    members = []
    for proc in psutil.process_iter(["pid"]):
        with suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(_describe(proc))
    return members


def _kill_marked(run: str) -> list[str]:
    """SIGKILL processes this run started (found by the marker in their environment) that are still alive
    after their process groups were stopped: one that started a session of its own, say."""
    import psutil

    killed = []
    for proc in psutil.process_iter(["pid"]):
        with suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get(MARKER) == run:
                killed.append(_describe(proc))
                proc.kill()
    return killed


def _on_signal(signum, _frame) -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):  # one is enough (timeout and make may both send it)
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg",
        default=stack_pg("postgresql://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (a role that may create databases); env HEARA_STACK_PG",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and the run's folder")
    parser.add_argument("--timeout", type=float, default=840, help="overall time limit, seconds")
    parser.add_argument("--run-timeout", type=float, default=600, help="time limit of the DAG run, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        datefmt="%H:%M:%S",
        format="%(asctime)s stack-test %(levelname)s %(message)s",
    )
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    stack = Stack(args)
    started = time.monotonic()
    ok = False
    log.info("run %s: folder %s, ports %s", stack.run, stack.dir, stack.ports)
    try:
        stack.dir.mkdir(parents=True)  # a new folder per run (time and random suffix)
        stack_params(ROOT / "params.yaml", stack.dir / "params.yaml")
        stack.postgres()
        stack.mlflow()
        stack.airflow()
        run_id = stack.trigger()
        stack.follow(run_id)
        champion = stack.registry(run_id)
        stack.serving(str(champion["version"]))
        ok = True
    except (StackTestFailed, httpx.HTTPError, subprocess.SubprocessError, OSError) as e:
        log.error("FAILED: %s", e)
        stack.result["error"] = str(e)[:2000]
    except (KeyboardInterrupt, Interrupted) as e:
        log.error(
            "interrupted (%s): stopping everything",
            type(e).__name__ if isinstance(e, KeyboardInterrupt) else e,
        )
        stack.result["error"] = f"interrupted ({e or 'SIGINT'})"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop_all()
        if args.keep:
            log.info("kept (--keep): databases %s, folder %s", ", ".join(stack.dbs.values()), stack.dir)
        else:
            if stack.dbs_created:
                try:
                    stack.drop_databases()
                except Exception as e:  # the verdict stands; say what is left behind
                    log.warning("could not drop the databases %s: %s", ", ".join(stack.dbs.values()), e)
            if ok:
                stack.prune()
            else:
                log.info("the run's folder is kept for a look: %s (logs in %s)", stack.dir, stack.logs)
    stack.result.update(ok=ok, seconds=round(time.monotonic() - started, 1), phases=stack.phases)
    log.info("%s in %.1f s", "PASSED" if ok else "FAILED", stack.result["seconds"])
    print(json.dumps(stack.result, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
