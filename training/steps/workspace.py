"""What the training-side steps hand each other on disk: the data files they read and the candidate
(`models/<task>/candidate.json`) that train writes and evaluate, register and promote read."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.errors import NotFoundError
from training.paths import state

log = logging.getLogger("heara.pipeline")


@dataclass(frozen=True)
class DataFiles:
    train: Path
    val: Path
    test: Path

    @classmethod
    def default(cls) -> "DataFiles":
        st = state()
        return cls(st.prepared / "train.parquet", st.split_dir / "val.parquet", st.split_dir / "test.parquet")

    @classmethod
    def from_dir(cls, folder: Path) -> "DataFiles":
        """A `heara data prepare --out` folder."""
        return cls(folder / "train.parquet", folder / "val.parquet", folder / "test.parquet")

    def load(self) -> dict[str, pd.DataFrame]:
        for name, path in (("train", self.train), ("val", self.val), ("test", self.test)):
            if not path.exists():
                raise NotFoundError(
                    f"{name} split not found at {path}: run the data pipeline first "
                    "(`dvc repro` or `heara data prepare`)"
                )
        return {
            "train": pd.read_parquet(self.train),
            "val": pd.read_parquet(self.val),
            "test": pd.read_parquet(self.test),
        }


def task_dir(task: str) -> Path:
    return state().task_dir(task)


def sweep_dir(task: str, study: str) -> Path:
    """One sweep's files: sweep.json, the trials' model folders, leaderboard, best.yaml (the overlay)."""
    return task_dir(task) / "sweeps" / study


def candidate_file(task: str) -> Path:
    return task_dir(task) / "candidate.json"


def registered_file(task: str) -> Path:
    return task_dir(task) / "registered.json"


def registered_version(task: str) -> int | None:
    """The registry version of the current candidate, if `heara register` has run for it."""
    path, cand = registered_file(task), read_candidate(task)
    if not path.exists():
        return None
    reg = json.loads(path.read_text(encoding="utf-8"))
    return int(reg["version"]) if reg.get("run_id") == cand["run_id"] else None


def read_candidate(task: str) -> dict:
    path = candidate_file(task)
    if not path.exists():
        raise NotFoundError(f"{path} not found: run `heara train` first")
    return json.loads(path.read_text(encoding="utf-8"))
