"""What every `heara` command shares: the --params/--overlay/--set/--data-dir options, loading the params
(for a `--data-dir` folder: then the task and label set that `heara data prepare` recorded in its
dataset.json; an explicit `--set task=...` or `--set labels=[...]` still wins), JSON output."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from training.config import Params, load_params, parse_overrides, set_dotted
from training.data.dataset_info import DATASET_FILE, apply_dataset_info, read_dataset_info
from training.errors import NotFoundError

console = Console(stderr=True)

# The window of served predictions `heara monitor` and `heara review select` read.
WindowOpt = Annotated[
    Optional[int], typer.Option(min=1, help="Predictions per window (default: monitor.window).")
]
HoursOpt = Annotated[
    Optional[float],
    typer.Option(min=0, help="Only the last this-many hours (default: monitor.window_hours)."),
]
ParamsOpt = Annotated[
    Optional[Path],
    typer.Option("--params", help="params.yaml to use (default: the repo's, or $HEARA_PARAMS)."),
]
OverlayOpt = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--overlay",
        help="A params overlay holding only the keys that differ, e.g. params.full.yaml for a real "
        "fine-tune (repeatable; later files win).",
    ),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a value for this run, e.g. --set split.seed=7 (repeatable)."),
]


def load_params_cli(
    params_file: Optional[Path],
    overrides: Optional[list[str]],
    extra: dict | None = None,
    *,
    overlays: Optional[list[Path]] = None,
) -> Params:
    """params.yaml, then --overlay files, then --set values, then `extra` (dotted keys the command sets)."""
    merged = parse_overrides(overrides or [])
    for key, value in (extra or {}).items():
        set_dotted(merged, key, value)
    return load_params(params_file, merged, overlays or ())


def data_files(data_dir: Optional[Path]):
    from training.steps.workspace import DataFiles

    return DataFiles.from_dir(data_dir) if data_dir else DataFiles.default()


def print_json(report: dict, keys: tuple[str, ...] | None = None) -> None:
    shown = {k: report[k] for k in keys if k in report} if keys else report
    print(json.dumps(shown, ensure_ascii=False, default=str))


log = logging.getLogger("heara.cli")

# The --data-dir option of every command that reads a prepared folder (replaces common.DataDirOpt).
DATA_DIR_HELP = (
    "A `heara data prepare --out` folder (default: the DVC pipeline's outputs in the state folder). "
    f"Its {DATASET_FILE} sets task and labels, overriding params.yaml and --overlay; "
    "an explicit --set task=... / labels=[...] / serve.danger_labels=[...] still wins."
)


def explicit_keys(overrides: Optional[list[str]]) -> set[str]:
    """The dotted keys the user set with --set (e.g. {"task", "train.epochs"})."""
    parse_overrides(overrides or [])  # the same checks (KEY=VALUE) as the params themselves
    return {pair.split("=", 1)[0].strip() for pair in overrides or []}


def load_params_for(
    data_dir: Optional[Path],
    params_file: Optional[Path],
    overrides: Optional[list[str]],
    extra: dict | None = None,
    *,
    overlays: Optional[list[Path]] = None,
) -> Params:
    """`load_params_cli`, then DIR/dataset.json's task and labels when a prepared folder is given."""
    params = load_params_cli(params_file, overrides, extra, overlays=overlays)
    if data_dir is None:
        return params
    if not data_dir.is_dir():
        raise NotFoundError(
            f"data folder {data_dir} not found: create it with "
            f"`heara data prepare --source FILE --out {data_dir}`"
        )
    info = read_dataset_info(data_dir)
    if info is None:  # prepared before dataset.json existed: params.yaml's task and labels apply
        return params
    log.info("data: task %s, labels %s (from %s)", info.task, list(info.labels), data_dir / DATASET_FILE)
    return apply_dataset_info(params, info, explicit=explicit_keys(overrides))


DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help=DATA_DIR_HELP)]
