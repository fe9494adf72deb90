"""Every filesystem location Heara reads or writes, in one place (environment variables: training/env.py).

Nothing here touches the disk at import time: callers ask for a `StatePaths` and call
`ensure()` when they are about to write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training import env

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
    return env.home(PROJECT_ROOT)


def params_path() -> Path:
    """`HEARA_PARAMS` when set (a per-environment copy), else the repository's params.yaml."""
    return env.params_file(DEFAULT_PARAMS)


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
        return env.incoming(self.home / "incoming")

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
    def serving_models(self) -> Path:
        """Registry models downloaded for serving, one folder per version."""
        return self.home / "serving" / "models"

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
