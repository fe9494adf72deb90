"""What a prepared data folder is about: its task name, label set and task type, in `<folder>/dataset.json`.

`heara data prepare --out DIR` writes it; every command given `--data-dir DIR` reads it, so a folder
prepared from any labeled file trains, evaluates, registers and promotes as its own task
(`heara-<task>`) with its own labels, whatever params.yaml's `task` and `labels` say.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from training.config import Params
from training.errors import ConfigError, DataError

log = logging.getLogger("heara.data")

DATASET_FILE = "dataset.json"
TASK_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # safe in a registered model name and a folder name


@dataclass(frozen=True)
class DatasetInfo:
    task: str
    labels: tuple[str, ...]
    source: str = ""  # the file it was prepared from (as reports show it)
    task_type: str = "multiclass"  # multilabel: the label column holds label sets (training/data/labels.py)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "labels": list(self.labels)}


def task_from_source(source: Path | str) -> str:
    """A task name from a file name: ChatbotData.csv -> chatbotdata ([a-z0-9_-], never empty)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", Path(source).stem.lower()).strip("-_")
    return name or "dataset"


def check_task(task: str) -> str:
    """An explicit task name (`--task`), which names the MLflow experiment and `heara-<task>`."""
    if not TASK_PATTERN.match(task):
        raise ConfigError(
            f"task '{task}' must be lowercase letters, digits, '-' or '_' "
            f"(e.g. '{task_from_source(task + '.x')}')"
        )
    return task


def write_dataset_info(folder: Path, info: DatasetInfo) -> Path:
    path = folder / DATASET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read_dataset_info(folder: Path) -> DatasetInfo | None:
    """The folder's task and labels; None for a folder prepared before dataset.json existed."""
    path = folder / DATASET_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return DatasetInfo(
            task=check_task(str(raw["task"])),
            labels=tuple(str(x) for x in raw["labels"]),
            source=str(raw.get("source", "")),
            task_type=str(raw.get("task_type", "multiclass")),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(
            f"not a valid {DATASET_FILE} ({type(e).__name__}: {e}); run `heara data prepare` again",
            file=str(path),
        ) from None


def keep_multipliers(
    multipliers: dict[str, float], labels: list[str] | tuple[str, ...], *, note: bool = True
) -> dict[str, float]:
    """augment.multipliers restricted to `labels`; the others are dropped with a one-line note, because
    params.yaml's multipliers belong to its own task and a prepared file may have other labels."""
    kept = {k: v for k, v in multipliers.items() if k in labels}
    dropped = sorted(set(multipliers) - set(kept))
    if dropped and note:
        log.info("note: augment.multipliers for %s ignored (not labels of this data)", ", ".join(dropped))
    return kept


def keep_danger_labels(
    danger_labels: list[str] | tuple[str, ...], labels: list[str] | tuple[str, ...], *, note: bool = True
) -> list[str]:
    """serve.danger_labels restricted to `labels`: the service refuses a model that lacks one of them,
    and params.yaml's (emergency, distress) belong to its own task."""
    kept = [lab for lab in danger_labels if lab in labels]
    dropped = [lab for lab in danger_labels if lab not in labels]
    if dropped and note:
        log.info(
            "note: serve.danger_labels %s ignored (not labels of this data; no prediction is flagged "
            "as danger unless --set serve.danger_labels=[...] names labels of it)",
            ", ".join(dropped),
        )
    return kept


def apply_dataset_info(
    params: Params, info: DatasetInfo, *, explicit: set[str] = frozenset(), note: bool = True
) -> Params:
    """`params` for a prepared folder: its task and labels replace params.yaml's (unless named in
    `explicit`, the dotted keys the user set with --set); augment.multipliers and serve.danger_labels
    naming other labels are dropped (with a note unless `note` is false) unless set explicitly.

    The tree is validated whole rather than merged as overrides, because an override map merges into
    params.yaml's multipliers instead of replacing them."""
    tree = params.to_dict()
    if "task" not in explicit:
        tree["task"] = info.task
    if "labels" not in explicit:
        tree["labels"] = list(info.labels)
    tree["task_type"] = info.task_type  # how the folder was prepared decides what its label column means
    if tree["labels"]:  # an empty label set is inferred from the data later (`heara data prepare`)
        if "augment.multipliers" not in explicit:
            tree["augment"]["multipliers"] = keep_multipliers(
                tree["augment"]["multipliers"], tree["labels"], note=note
            )
        if "serve.danger_labels" not in explicit:
            tree["serve"]["danger_labels"] = keep_danger_labels(
                tree["serve"]["danger_labels"], tree["labels"], note=note
            )
    try:
        return Params.model_validate(tree)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"params for the prepared data ({info.task}): {problems}") from None
