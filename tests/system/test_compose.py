"""The compose stack (docker-compose.yml, .env.example, docker/) checked where no Docker engine runs.

- `docker-compose config -q` (compose v1, `make compose-tool`; or `docker compose`) with an .env that
  scripts/gen_env.py generates from .env.example. No client found is a failure, not a skip, unless
  HEARA_SKIP_COMPOSE=1.
- The rules the stack relies on, read from the YAML: every `${VAR}` is in .env.example, secrets have
  no defaults, long-running services have healthchecks, `depends_on` has conditions, the GPU worker
  and the service reserve an NVIDIA GPU, the training queue and pool match, the environment variables
  the project's code reads reach the services that run it, the databases in the URLs are the ones the
  init script creates, and the Grafana dashboard asks for metrics that the service exports.
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
GEN_ENV = REPO / "scripts" / "gen_env.py"
DOCKER = REPO / "docker"
PLACEHOLDER = "change-me"
SECRET_WORDS = ("PASSWORD", "SECRET", "KEY", "TOKEN")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ...; `$${...}` is an escaped dollar.
VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
BARE_DOLLAR = re.compile(r"(?<!\$)\$(?![{$])")
ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# Environment variables the project's code reads that the compose services do not need to set.
NOT_FOR_THE_STACK = {
    "HEARA_PARAMS": "the image's params.yaml is the configuration; a per-environment copy is optional",
    "HEARA_INCOMING": "defaults to $HEARA_HOME/incoming, on the heara-state volume every Airflow "
    "service mounts",
    "HEARA_MODEL_DIR": "offline bentos only; the stack serves the registry's champion",
    "HEARA_ACTOR": "who promoted: set per task from the DAG run, else the container's user",
    "HEARA_RUN_TAGS": "set per training run by training.orchestration.tasks for its `heara train` subprocess",
    "HEARA_GPU_SLOTS": "read by `heara airflow init` (local standalone); in the stack airflow-init "
    "sizes the pool",
    "HEARA_API_KEY_FILE": "the stack passes HEARA_API_KEY from .env and `heara serve` hands it to its "
    "workers as a file itself; a compose file secret is a bind mount that keeps the host file's owner, "
    "which the image's user cannot read at mode 600",
    "HEARA_METRICS_TOKEN": "optional: Prometheus scrapes /metrics inside the compose network",
    "HEARA_METRICS_TOKEN_FILE": "optional, as HEARA_METRICS_TOKEN",
    "HEARA_ID_SALT_FILE": "the stack passes HEARA_ID_SALT from .env (`heara serve` hands it on as a file)",
    "HEARA_SUPERVISOR_PID": "set by `heara serve` for its own workers",
    "HEARA_DEMO_PORT": "scripts/demo.sh (make demo) only",
    "HEARA_SWEEP_STORAGE": "optional: the Optuna study database of a sweep with parallel workers (the "
    "heara_sweep trigger form takes it too); unset, a sweep runs one worker on a SQLite file",
    "HEARA_STACK_PG": "scripts/stack_test.py (make stack-test) only",
    "HEARA_STACK_TEST_RUN": "a marker scripts/stack_test.py sets on the processes it starts",
    "HEARA_GPU_CHECK_RUN": "a marker scripts/gpu_check.py (make gpu-check) sets on the processes it starts",
    "MLFLOW_REGISTRY_URI": "restored by training.registry.tracking.using_store after a throw-away store "
    "(tests, heara bench serve); the stack's registry is MLFLOW_TRACKING_URI's",
}
# Read by training/env.py (the one reader of HEARA_*) for the service only.
NOT_FOR_THE_WORKERS = {
    "HEARA_RECENT_SIZE": "the service's GET /recent buffer",
    "HEARA_ID_SALT": "ids are pseudonymised by the service; the DAGs never look one up",
}
# Read by training/ (which the service imports) for the Airflow side only.
NOT_FOR_THE_SERVICE = {
    "HEARA_TRAIN_QUEUE": "the Celery queue of the training task: an Airflow setting",
    "HEARA_SERVE_URL": "where the DAG reaches the service (POST /reload); the service is that URL",
}
TASK_RUNNERS = ("airflow-worker", "airflow-worker-gpu", "airflow-dag-processor")


# --- helpers ------------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if m := ENV_LINE.match(line):
            out[m.group(1)] = m.group(2)
    return out


def strings(node: Any):
    """Every string in a loaded YAML document, keys included (anchors are already expanded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def var_refs() -> list[tuple[str, str | None, str]]:
    """(name, operator or None, the whole reference) for every interpolation in the compose file."""
    return [
        (m.group(1), m.group(2), m.group(0)) for s in strings(load_compose()) for m in VAR_REF.finditer(s)
    ]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def one_shot_services(svcs: dict[str, dict[str, Any]]) -> set[str]:
    """Jobs that run and exit: never restarted, or waited for with `service_completed_successfully`."""
    waited_for = {
        name
        for s in svcs.values()
        for name, dep in (s.get("depends_on") or {}).items()
        if isinstance(dep, dict) and dep.get("condition") == "service_completed_successfully"
    }
    return waited_for | {name for name, s in svcs.items() if s.get("restart") == "no"}


def load_gen_env():
    spec = importlib.util.spec_from_file_location("gen_env", GEN_ENV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compose_client() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60).returncode == 0
    ):
        return ["docker", "compose"]
    return None


def run_compose_config(
    client: list[str], env_file: Path, *profiles: str, compose_file: Path = COMPOSE
) -> subprocess.CompletedProcess:
    args = [*client, "--project-directory", str(REPO), "--env-file", str(env_file), "-f", str(compose_file)]
    for p in profiles:
        args += ["--profile", p]
    # A clean environment: variables of the calling shell would override the .env under test.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
    }
    return subprocess.run([*args, "config", "-q"], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def generated_env(tmp_path: Path) -> Path:
    out = tmp_path / "stack" / ".env"
    proc = subprocess.run(
        [sys.executable, str(GEN_ENV), "--output", str(out)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return out


# --- the compose client -------------------------------------------------------------------------


@pytest.mark.parametrize("profiles", [(), ("s3", "monitoring")], ids=["default", "s3+monitoring"])
def test_compose_config_is_valid(generated_env: Path, profiles: tuple[str, ...]) -> None:
    client = compose_client()
    if client is None:
        if os.environ.get("HEARA_SKIP_COMPOSE") == "1":
            pytest.skip("no docker-compose / docker compose client (HEARA_SKIP_COMPOSE=1)")
        pytest.fail(
            "no compose client to validate docker-compose.yml: run `make compose-tool` (as root: "
            "apt-get install docker-compose; or pip install docker-compose), or set HEARA_SKIP_COMPOSE=1"
        )
    proc = run_compose_config(client, generated_env, *profiles)
    assert proc.returncode == 0, f"{' '.join(client)} config -q failed:\n{proc.stderr}"
    assert "variable is not set" not in proc.stderr, proc.stderr


def test_the_deploy_guides_extra_gpu_worker_reserves_only_its_own_gpu(
    generated_env: Path, tmp_path: Path
) -> None:
    """docs/deploy.md#scaling: the snippet, added under `services:`, gives a second GPU worker GPU 1 only."""
    guide = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    snippet = next(b for b in re.findall(r"```yaml\n(.*?)```", guide, re.S) if "<<: *airflow-worker-gpu" in b)
    text = COMPOSE.read_text(encoding="utf-8").replace("\nservices:\n", "\nservices:\n" + snippet, 1)
    extended = yaml.safe_load(text)["services"]
    worker = extended["airflow-worker-gpu-1"]
    assert worker["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "capabilities": ["gpu"], "device_ids": ["1"]}
    ]
    base = extended["airflow-worker-gpu"]
    assert {k: v for k, v in worker.items() if k != "deploy"} == {
        k: v for k, v in base.items() if k != "deploy"
    }
    client = compose_client()
    if client is None:
        pytest.skip("no compose client (test_compose_config_is_valid reports it)")
    path = tmp_path / "docker-compose.yml"
    path.write_text(text, encoding="utf-8")
    proc = run_compose_config(client, generated_env, compose_file=path)
    assert proc.returncode == 0, proc.stderr


def test_compose_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    client = compose_client()
    if client is None:
        pytest.skip("no compose client (test_compose_config_is_valid reports it)")
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env_example().items() if k != "POSTGRES_PASSWORD"))
    proc = run_compose_config(client, env_file)
    assert proc.returncode != 0 and "POSTGRES_PASSWORD" in proc.stderr, proc.stderr


# --- .env.example and scripts/gen_env.py --------------------------------------------------------


def test_every_variable_the_compose_file_uses_is_in_env_example() -> None:
    refs = var_refs()
    assert refs, "no ${VAR} found: the parser is broken"
    missing = sorted({name for name, _, _ in refs} - set(env_example()))
    assert not missing, f"used in docker-compose.yml, not defined in .env.example: {missing}"
    bare = [s for s in strings(load_compose()) if BARE_DOLLAR.search(s)]
    assert not bare, f"write ${{VAR}} (or $$ for a literal dollar), not $VAR: {bare}"


def test_secrets_have_no_default_and_fail_loudly_when_missing() -> None:
    for name, op, ref in var_refs():
        if any(word in name for word in SECRET_WORDS):
            assert op == ":?", (
                f"{ref}: a credential must be `${{{name}:?message}}` (no default, fail when unset)"
            )
        assert op not in (":-", "-") or not any(word in name for word in SECRET_WORDS), ref


def test_env_example_documents_every_variable_and_holds_no_secret() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    block_has_comment = False
    for line in lines:
        if not line.strip():
            block_has_comment = False
        elif line.lstrip().startswith("#"):
            block_has_comment = True
        else:
            assert ENV_LINE.match(line), f".env.example: not NAME=value: {line!r}"
            assert block_has_comment, f".env.example: {line.split('=')[0]} has no comment above it"
    for name, value in env_example().items():
        if any(word in name for word in SECRET_WORDS):
            assert value == PLACEHOLDER, f".env.example: {name} must be `{PLACEHOLDER}` (gen_env.py fills it)"


def test_gen_env_fills_every_placeholder_with_mode_600_and_never_overwrites(tmp_path: Path) -> None:
    gen_env = load_gen_env()
    out = tmp_path / ".env"
    assert gen_env.main(["--output", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    generated = dict(m.groups() for line in out.read_text().splitlines() if (m := ENV_LINE.match(line)))
    example = env_example()
    assert list(generated) == list(example)
    for name, value in generated.items():
        if example[name] == PLACEHOLDER:
            assert value != PLACEHOLDER and len(value) >= 12, name  # MLflow refuses shorter passwords
            if name != "AIRFLOW_FERNET_KEY":
                assert value.isalnum() and value[0].isalpha(), f"{name}: letters and digits only"
        else:
            assert value == example[name], name
    assert len(base64.urlsafe_b64decode(generated["AIRFLOW_FERNET_KEY"])) == 32
    first = out.read_text()
    assert gen_env.main(["--output", str(out)]) == 0
    assert out.read_text() == first, "an existing .env must never be overwritten"
    other = tmp_path / "again.env"
    gen_env.main(["--output", str(other)])
    assert other.read_text() != first, "each run must draw new secrets"


# --- services -----------------------------------------------------------------------------------


def test_every_long_running_service_has_a_healthcheck() -> None:
    svcs = services()
    jobs = one_shot_services(svcs)
    for name, s in svcs.items():
        if name in jobs:
            assert s.get("restart") == "no", f"{name}: a one-shot job must not be restarted"
            continue
        check = s.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
        assert s.get("restart") in ("unless-stopped", "always"), f"{name}: restart policy"


def test_every_depends_on_has_a_condition_and_a_reachable_target() -> None:
    svcs = services()
    for name, s in svcs.items():
        deps = s.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions"
        for dep, spec in deps.items():
            assert dep in svcs, f"{name} depends on unknown {dep}"
            assert isinstance(spec, dict) and spec.get("condition") in (
                "service_healthy",
                "service_completed_successfully",
            ), f"{name} -> {dep}: condition"
            # `up` without that profile would fail: a dependency may only be in profiles its dependant shares.
            assert set(svcs[dep].get("profiles", [])) <= set(s.get("profiles", [])), (
                f"{name} -> {dep}: profile"
            )
            if spec["condition"] == "service_healthy":
                assert svcs[dep].get("healthcheck"), (
                    f"{name} waits for {dep} to be healthy; it has no healthcheck"
                )


def test_gpu_worker_and_service_reserve_an_nvidia_gpu() -> None:
    svcs = services()
    for name in ("airflow-worker-gpu", "serving"):
        devices = svcs[name]["deploy"]["resources"]["reservations"]["devices"]
        assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), name
        assert svcs[name]["image"] == "heara:gpu"
        assert svcs[name]["build"]["args"]["TORCH_VARIANT"] == "cuda"
    gpu_users = [n for n, s in svcs.items() if "deploy" in s]
    assert sorted(gpu_users) == ["airflow-worker-gpu", "serving"]


def test_training_queue_pool_and_gpu_worker_match() -> None:
    svcs = services()
    gpu_cmd = command(svcs["airflow-worker-gpu"])
    queue = gpu_cmd[gpu_cmd.index("--queues") + 1]
    assert queue == "gpu" and gpu_cmd[gpu_cmd.index("--concurrency") + 1] == "1"
    cpu_cmd = command(svcs["airflow-worker"])
    assert "gpu" not in cpu_cmd[cpu_cmd.index("--queues") + 1].split(",")
    for name in TASK_RUNNERS + ("airflow-scheduler",):
        assert environment(svcs[name])["HEARA_TRAIN_QUEUE"] == queue, name
    init = " ".join(command(svcs["airflow-init"]))
    assert "airflow db migrate" in init and "airflow pools set" in init and "HEARA_GPU_SLOTS" in init
    assert "orchestrate.gpu_pool" in init  # the pool's name comes from params.yaml, as the DAG's does
    assert yaml.safe_load((REPO / "params.yaml").read_text())["orchestrate"]["gpu_pool"]


def test_airflow_components_share_one_configuration() -> None:
    svcs = services()
    airflow = {n: s for n, s in svcs.items() if n.startswith("airflow-")}
    expected = {"api-server", "scheduler", "dag-processor", "triggerer", "celery"}
    assert expected <= {word for s in airflow.values() for word in command(s)}
    reference = environment(svcs["airflow-scheduler"])
    assert reference["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert reference["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert reference["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-api-server:8080/")
    assert (
        reference["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
        == reference["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    shared = [k for k in reference if k.startswith("AIRFLOW__")]
    for name, s in airflow.items():
        env = environment(s)
        assert {k: env.get(k) for k in shared} == {k: reference[k] for k in shared}, name
        assert any(
            v.startswith("./dags:") and v.endswith(env["AIRFLOW__CORE__DAGS_FOLDER"] + ":ro")
            for v in s["volumes"]
        ), f"{name}: ./dags is not mounted at the DAGs folder"
    assert "AIRFLOW_ADMIN_PASSWORD" in environment(svcs["airflow-api-server"])


def test_code_environment_variables_reach_the_services_that_run_the_code() -> None:
    """A HEARA_*/MLFLOW_* name read in training/ or dags/ must be set for the Airflow task runners,
    one read in serving/ or training/ for the service (in compose or by the image's ENV), or be
    listed in NOT_FOR_THE_STACK with the reason."""
    read = {folder: names_read_in(REPO / folder) for folder in ("training", "serving", "dags")}
    assert "HEARA_HOME" in read["training"] and "HEARA_API_KEY" in read["training"] | read["serving"]
    stale = (set(NOT_FOR_THE_STACK) | set(NOT_FOR_THE_SERVICE) | set(NOT_FOR_THE_WORKERS)) - set().union(
        *read.values()
    )
    assert not stale, f"NOT_FOR_THE_STACK names no code reads any more: {stale}"
    image_env = dockerfile_env()
    svcs = services()
    needs = {name: read["training"] | read["dags"] for name in TASK_RUNNERS}
    needs["serving"] = read["training"] | read["serving"]
    for service, names in needs.items():
        have = set(environment(svcs[service])) | image_env
        exempt = set(NOT_FOR_THE_STACK) | (
            set(NOT_FOR_THE_SERVICE) if service == "serving" else set(NOT_FOR_THE_WORKERS)
        )
        missing = sorted(names - have - exempt)
        assert not missing, f"{service} does not set {missing} (read by the code it runs)"


def names_read_in(folder: Path) -> set[str]:
    """String constants shaped like HEARA_*/MLFLOW_* variable names in a folder's Python files."""
    out = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"(HEARA|MLFLOW)_[A-Z0-9_]+", node.value)
            ):
                out.add(node.value)
    return out


def dockerfile_env() -> set[str]:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return {
        m.group(1)
        for line in text.splitlines()
        if line.startswith("ENV ")
        for m in re.finditer(r"([A-Z_][A-Z0-9_]*)=", line)
    }


def test_named_volumes_are_declared_and_bind_mounts_exist() -> None:
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, s in compose["services"].items():
        for volume in s.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(("./", "/")):
                assert (REPO / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused volumes: {declared - used}"


def test_database_urls_name_the_databases_and_roles_init_databases_creates() -> None:
    script = (DOCKER / "postgres" / "init-databases.sh").read_text(encoding="utf-8")
    owners = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", script))
    roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD :'(\w+)'", script))
    urls = [s for s in strings(load_compose()) if "@postgres:5432/" in s]
    assert len(urls) >= 5
    for url in urls:
        m = re.search(r"://(\w+):\$\{(\w+):\?[^}]*\}@postgres:5432/(\w+)$", url)
        assert m, f"unexpected database URL form: {url}"
        user, password_var, db = m.groups()
        assert owners.get(db) == user, f"{url}: {db} is not created with owner {user}"
        assert (user, f"{user}_pw") in roles and password_var == f"{user.upper()}_DB_PASSWORD", url
    postgres_env = environment(services()["postgres"])
    for var in re.findall(r'"\$\{(\w+_DB_PASSWORD):\?\}"', script):
        assert var in postgres_env, f"init-databases.sh reads {var}; the postgres service does not pass it"


def test_mlflow_server_and_clients_agree() -> None:
    svcs = services()
    server = svcs["mlflow"]
    assert command(server) == ["docker/entrypoints/mlflow.sh"]
    entry = (DOCKER / "entrypoints" / "mlflow.sh").read_text(encoding="utf-8")
    assert "--app-name basic-auth" in entry and "mlflow/server.sh" in entry
    assert "--serve-artifacts" in (REPO / "mlflow" / "server.sh").read_text(encoding="utf-8")
    assert environment(server)["MLFLOW_PORT"] == "5000"
    allowed = env_example()["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    for name in TASK_RUNNERS + ("serving",):
        env = environment(svcs[name])
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert env["MLFLOW_TRACKING_USERNAME"] and env["MLFLOW_TRACKING_PASSWORD"], name
        assert "mlflow:5000" in allowed, "the server would refuse the Host header its clients send"


def test_prometheus_scrapes_the_service_and_the_dashboard_uses_real_metrics() -> None:
    svcs = services()
    serving_cmd = command(svcs["serving"])
    port = serving_cmd[serving_cmd.index("--port") + 1]
    prom = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [
        (job.get("metrics_path", "/metrics"), t)
        for job in prom["scrape_configs"]
        for sc in job["static_configs"]
        for t in sc["targets"]
    ]
    assert ("/metrics", f"serving:{port}") in targets
    mounted = [
        v for v in svcs["prometheus"]["volumes"] if v.startswith("./docker/prometheus/prometheus.yml:")
    ]
    assert mounted

    datasource = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    dashboard = json.loads(
        (DOCKER / "grafana" / "dashboards" / "heara-serving.json").read_text(encoding="utf-8")
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(t["datasource"]["uid"] == uid for p in dashboard["panels"] for t in p["targets"])
    # Exposition names: counters gain _total (prometheus_client strips it from the given name first),
    # histograms _bucket/_sum/_count. Compare base names.
    used = {base_name(m) for e in exprs for m in re.findall(r"\b((?:heara|bentoml)_[a-z0-9_]+)", e)}
    exported = {base_name(m) for m in heara_metric_names() | bentoml_metric_names()}
    assert not used - exported, f"the dashboard queries metrics nobody exports: {used - exported}"
    for needed in (
        "heara_predictions",
        "heara_prediction_confidence",
        "bentoml_service_request_duration_seconds",
        "heara_drift_alarm",
        "heara_drift_estimated_macro_f1",
    ):
        assert needed in used, f"the dashboard lacks {needed}"


def base_name(metric: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", metric)


def heara_metric_names() -> set[str]:
    names: set[str] = set()
    for module in ("metrics.py", "drift_gauges.py"):
        source = (REPO / "serving" / module).read_text(encoding="utf-8")
        names |= set(re.findall(r'prom\.(?:Counter|Histogram|Gauge)\(\s*"(\w+)"', source))
    return names


def bentoml_metric_names() -> set[str]:
    """BentoML's own request metrics, read from its source (namespace bentoml_service)."""
    spec = importlib.util.find_spec("bentoml")
    assert spec and spec.origin
    source = (Path(spec.origin).parent / "_internal" / "server" / "http" / "instruments.py").read_text()
    return {f"bentoml_service_{name}" for name in re.findall(r'name="(\w+)"', source)}
