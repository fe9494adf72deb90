"""Every `HEARA_*` environment variable Heara reads, in one table, and the only module that reads them.
(`python -c "from training.env import markdown_table; print(markdown_table())"` prints the README's table.)

Values are read when a function is called, never at import time, so a test or a process can set a
variable before it is used. The README's "Environment variables" table is checked against `VARIABLES`
by a test (tests/code/test_env.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# name -> (default, meaning). The default is what an unset variable means.
VARIABLES: dict[str, tuple[str, str]] = {
    "HEARA_HOME": (
        ".heara/ in the checkout",
        "the state folder: data, MLflow store, DVC cache and remote, Airflow and BentoML homes, logs",
    ),
    "HEARA_PARAMS": (
        "params.yaml in the checkout",
        "the params file every command reads (an environment's copy)",
    ),
    "HEARA_INCOMING": ("$HEARA_HOME/incoming", "the folder labelers drop new labeled files into"),
    "HEARA_STORE_RAW_TEXT": (
        "off",
        "1: raw utterances may be stored in logs and the prediction log (otherwise masked text only)",
    ),
    "HEARA_API_KEY": (
        "unset (no key)",
        "the service's API key; callers (the DAG's reload, the page) send it. `heara serve` hands it to "
        "its workers as a file (HEARA_API_KEY_FILE), never in their environment",
    ),
    "HEARA_API_KEY_FILE": (
        "unset",
        "a file holding the API key instead (mode 600: refused when group or others may read it); "
        "setting both this and HEARA_API_KEY is an error",
    ),
    "HEARA_METRICS_TOKEN": (
        "unset (no token)",
        "a bearer token for GET /metrics, separate from the API key (what a Prometheus scraper sends)",
    ),
    "HEARA_METRICS_TOKEN_FILE": ("unset", "a file holding the metrics token instead (as HEARA_API_KEY_FILE)"),
    "HEARA_ID_SALT": (
        "unset (ids stored PII-masked as given)",
        "a secret key: /classify's speaker_id, session_id and device_id are stored as their HMAC-SHA256 "
        "under it (16 hex digits) and GET /timeline looks ids up the same way; never logged",
    ),
    "HEARA_ID_SALT_FILE": ("unset", "a file holding the id salt instead (as HEARA_API_KEY_FILE)"),
    "HEARA_MODEL_DIR": (
        "unset (the registry's champion)",
        "serve this model folder instead (an offline bento)",
    ),
    "HEARA_PREDICTION_DB": (
        "$HEARA_HOME/predictions.sqlite",
        "the prediction log's store (postgresql://... for PostgreSQL)",
    ),
    "HEARA_RECENT_SIZE": ("50", "how many recent predictions GET /recent and the try-it page keep"),
    "HEARA_SERVE_URL": (
        "orchestrate.serve_url",
        "where the running service listens, for POST /reload after a promotion",
    ),
    "HEARA_TRAIN_QUEUE": ("orchestrate.train_queue", "the Celery queue of the training task (compose: gpu)"),
    "HEARA_GPU_SLOTS": ("the GPUs `nvidia-smi -L` lists (at least 1)", "slots of the Airflow `gpu` pool"),
    "HEARA_SWEEP_STORAGE": (
        "sweep.storage",
        "the Optuna storage of `heara sweep` and the heara_sweep DAG (postgresql://... for parallel workers)",
    ),
    "HEARA_RUN_TAGS": (
        "unset",
        "a JSON object of extra MLflow tags for the next training run (set by the DAG)",
    ),
    "HEARA_ACTOR": ("the OS user", "who the audit ledger records as acting (the DAG sets its run's user)"),
    "HEARA_SUPERVISOR_PID": (
        "set by `heara serve`",
        "the process that supervises the service's workers: a worker stops when it is gone "
        "(never set it yourself)",
    ),
    # Development tools (scripts/): not read by training/ or serving/.
    "HEARA_DEMO_PORT": ("3000", "the port `make demo` serves the champion on (scripts/demo.sh)"),
    "HEARA_STACK_PG": (
        "postgresql://postgres@127.0.0.1:5432",
        "the PostgreSQL server `make stack-test` creates its databases on (scripts/stack_test.py --pg)",
    ),
    "HEARA_STACK_TEST_RUN": (
        "set by the tool",
        "marks every process `make stack-test` starts, so that strays "
        "are found and stopped (never set it yourself)",
    ),
    "HEARA_GPU_CHECK_RUN": (
        "set by the tool",
        "marks every process `make gpu-check` starts, so that strays are found and stopped "
        "(never set it yourself)",
    ),
}


def _get(name: str) -> str:
    if name not in VARIABLES:  # a new variable must be added to the table (and the README)
        raise KeyError(f"{name} is not in training.env.VARIABLES")
    return os.environ.get(name, "").strip()


def home(default: Path) -> Path:
    return Path(_get("HEARA_HOME") or default).resolve()


def params_file(default: Path) -> Path:
    return Path(_get("HEARA_PARAMS") or default).resolve()


def incoming(default: Path) -> Path:
    return Path(_get("HEARA_INCOMING") or default).resolve()


def stack_pg(default: str) -> str:
    return _get("HEARA_STACK_PG") or default


def markdown_table() -> str:
    """The README's "Environment variables" table, generated from `VARIABLES` (tests/code/test_env.py
    checks that the README holds exactly this)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | {default} | {meaning} |" for name, (default, meaning) in VARIABLES.items()]
    return "\n".join(rows)


def store_raw_text() -> bool:
    """Raw utterances reach logs and stores only when the operator opts in (`HEARA_STORE_RAW_TEXT=1`)."""
    return _get("HEARA_STORE_RAW_TEXT").lower() in {"1", "true", "yes"}


def api_key() -> str | None:
    """The service's API key: required by the service when set, sent by its callers.
    `HEARA_API_KEY` or the file `HEARA_API_KEY_FILE` names (see `secret`)."""
    return secret("HEARA_API_KEY")


def metrics_token() -> str | None:
    """The bearer token for GET /metrics: `HEARA_METRICS_TOKEN` or the file `HEARA_METRICS_TOKEN_FILE`
    names (see `secret`)."""
    return secret("HEARA_METRICS_TOKEN")


def id_salt() -> str | None:
    """The key speaker, session and device ids are pseudonymised with (HMAC-SHA256): `HEARA_ID_SALT` or the
    file `HEARA_ID_SALT_FILE` names (see `secret`); None: ids are stored PII-masked as given."""
    return secret("HEARA_ID_SALT")


def secret(name: str) -> str | None:
    """A secret given either as the variable `name` or as a file named by `<name>_FILE`; None when neither
    is set. Both set is refused rather than one silently winning: two sources of one key would leave an
    operator unsure which one the service checks. Raises ConfigError (the message names the variable and
    the file) for a file that is missing, empty, not a regular file, or open to group or others."""
    from training.errors import ConfigError

    value, file = _get(name), _get(f"{name}_FILE")
    if value and file:
        raise ConfigError(f"both {name} and {name}_FILE are set: set one of them")
    return read_secret_file(Path(file), f"{name}_FILE") if file else value or None


def inline_secrets() -> dict[str, str]:
    """The secrets given as values rather than files, name -> value (each checked by `secret`): what
    `heara serve` moves into files before its workers start (serving.supervisor)."""
    names = ("HEARA_API_KEY", "HEARA_METRICS_TOKEN", "HEARA_ID_SALT")
    return {name: value for name in names if (value := secret(name)) and not _get(f"{name}_FILE")}


def read_secret_file(path: Path, variable: str) -> str:
    """The secret in `path` without surrounding whitespace (the trailing newline an editor adds).
    The file must be readable by its owner only (mode 600 or 400): a key that every local user can read
    protects nothing. Symbolic links are followed (Kubernetes mounts secrets as links)."""
    import stat

    from training.errors import ConfigError

    where = f"{variable}={path}"
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{where} is not a regular file")
        if mode & 0o077:
            raise ConfigError(
                f"{where} may be read or written by group or others (mode {stat.S_IMODE(mode):03o}): "
                f"`chmod 600 {path}`"
            )
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} cannot be read: {exc}") from None
    if not value:
        raise ConfigError(f"{where} is empty")
    return value


def supervisor_pid() -> int | None:
    """The pid of the process that supervises this service worker (set by serving.supervisor), or None
    outside `heara serve` (the service in-process, tests)."""
    value = _get("HEARA_SUPERVISOR_PID")
    return int(value) if value.isdigit() else None


def model_dir() -> Path | None:
    value = _get("HEARA_MODEL_DIR")
    return Path(value).expanduser().resolve() if value else None


def prediction_db() -> str | None:
    return _get("HEARA_PREDICTION_DB") or None


def recent_size(default: int) -> int:
    """The size of `GET /recent`'s buffer: a positive integer, or `default` when unset."""
    from training.errors import ConfigError

    value = _get("HEARA_RECENT_SIZE")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"HEARA_RECENT_SIZE must be a positive integer, got {value!r}")
    return int(value)


def serve_url(default: str | None) -> str | None:
    return _get("HEARA_SERVE_URL") or default or None


def train_queue(default: str) -> str:
    return _get("HEARA_TRAIN_QUEUE") or default


def sweep_storage(default: str | None) -> str | None:
    return _get("HEARA_SWEEP_STORAGE") or default or None


def gpu_slots() -> int | None:
    value = _get("HEARA_GPU_SLOTS")
    return max(1, int(value)) if value else None


def run_tags() -> dict[str, str]:
    """Extra MLflow tags for the next training run: the Airflow DAG passes its run id and the files that
    triggered it, so a run can be found from either side."""
    raw = _get("HEARA_RUN_TAGS")
    return {str(k): str(v)[:5000] for k, v in json.loads(raw).items()} if raw else {}


def actor() -> str | None:
    return _get("HEARA_ACTOR") or None
