"""Every filesystem location and environment variable Heara reads, in one place.

Nothing here touches the disk at import time: callers ask for a `StatePaths` and call
`ensure()` when they are about to write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PARAMS = PROJECT_ROOT / "params.yaml"


def display_path(path: Path | str) -> str:
    """A path as reports and tables record it: relative to the repository when inside it, so that
    outputs (and the hashes DVC keeps of them) do not depend on where the checkout lives."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(p)


def heara_home() -> Path:
    """The single git-ignored folder that holds all local state (`HEARA_HOME`, default `.heara/`)."""
    return Path(os.environ.get("HEARA_HOME", PROJECT_ROOT / ".heara")).resolve()


def params_path() -> Path:
    """`HEARA_PARAMS` when set (a per-environment copy), else the repository's params.yaml."""
    return Path(os.environ.get("HEARA_PARAMS", DEFAULT_PARAMS)).resolve()


def store_raw_text() -> bool:
    """Raw utterances reach logs and stores only when the operator opts in (`HEARA_STORE_RAW_TEXT=1`)."""
    return os.environ.get("HEARA_STORE_RAW_TEXT", "").lower() in {"1", "true", "yes"}


def run_tags() -> dict[str, str]:
    """Extra MLflow tags for the next training run (`HEARA_RUN_TAGS`, a JSON object): the Airflow DAG
    passes its run id and the files that triggered it, so a run can be found from either side."""
    import json

    raw = os.environ.get("HEARA_RUN_TAGS", "")
    return {str(k): str(v)[:5000] for k, v in json.loads(raw).items()} if raw else {}


def serve_url(default: str | None) -> str | None:
    """Where the running service listens (`HEARA_SERVE_URL`), for `POST /reload` after a promotion."""
    return os.environ.get("HEARA_SERVE_URL", default) or None


def api_key() -> str | None:
    """The service's API key (`HEARA_API_KEY`): required by the service when set, sent by its callers."""
    return os.environ.get("HEARA_API_KEY", "").strip() or None


def train_queue(default: str) -> str:
    """The Celery queue of the training task (`HEARA_TRAIN_QUEUE`; the compose stack's GPU worker: `gpu`)."""
    return os.environ.get("HEARA_TRAIN_QUEUE", default)


@dataclass(frozen=True)
class StatePaths:
    """Locations under the state folder. Data paths match the outs declared in dvc.yaml."""

    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def raw(self) -> Path:
        return self.data / "raw.parquet"

    @property
    def valid(self) -> Path:
        return self.data / "valid.parquet"

    @property
    def clean(self) -> Path:
        return self.data / "clean.parquet"

    @property
    def split_dir(self) -> Path:
        return self.data / "split"

    @property
    def prepared(self) -> Path:
        """Final train (augmented) / val / test parquet files, the input of training."""
        return self.data / "prepared"

    @property
    def quarantine(self) -> Path:
        return self.data / "quarantine"

    @property
    def reports(self) -> Path:
        return self.data / "reports"

    @property
    def incoming(self) -> Path:
        """Labelers drop new labeled batches here; each file is ingested once."""
        return Path(os.environ.get("HEARA_INCOMING", self.home / "incoming")).resolve()

    @property
    def batches(self) -> Path:
        return self.data / "batches"

    @property
    def ledger(self) -> Path:
        return self.home / "ledger.sqlite"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def mlflow(self) -> Path:
        return self.home / "mlflow"

    @property
    def airflow(self) -> Path:
        return self.home / "airflow"

    @property
    def bentoml(self) -> Path:
        return self.home / "bentoml"

    @property
    def dvc_cache(self) -> Path:
        return self.home / "dvc-cache"

    @property
    def dvc_remote(self) -> Path:
        return self.home / "dvc-remote"

    def ensure(self, *dirs: Path) -> None:
        for d in dirs or (self.home, self.data, self.incoming, self.logs):
            d.mkdir(parents=True, exist_ok=True)


def state() -> StatePaths:
    return StatePaths(heara_home())
