"""The params of a command given `--data-dir DIR`: params.yaml (+ --overlay, --set), then the task and
label set that `heara data prepare` recorded in DIR/dataset.json. An explicit `--set task=...` or
`--set labels=[...]` still wins: the user said so on this command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.cli.common import load_params_cli
from training.config import Params, parse_overrides
from training.data.dataset_info import DATASET_FILE, apply_dataset_info, read_dataset_info
from training.errors import NotFoundError

log = logging.getLogger("heara.cli")

# The --data-dir option of every command that reads a prepared folder (replaces common.DataDirOpt).
DATA_DIR_HELP = ("A `heara data prepare --out` folder (default: the DVC pipeline's outputs in the state folder). "
                 f"Its {DATASET_FILE} sets task and labels, overriding params.yaml and --overlay; "
                 "an explicit --set task=... / labels=[...] / serve.danger_labels=[...] still wins.")


def explicit_keys(overrides: Optional[list[str]]) -> set[str]:
    """The dotted keys the user set with --set (e.g. {"task", "train.epochs"})."""
    parse_overrides(overrides or [])  # the same checks (KEY=VALUE) as the params themselves
    return {pair.split("=", 1)[0].strip() for pair in overrides or []}


def load_params_for(data_dir: Optional[Path], params_file: Optional[Path], overrides: Optional[list[str]],
                    extra: dict | None = None, *, overlays: Optional[list[Path]] = None) -> Params:
    """`load_params_cli`, then DIR/dataset.json's task and labels when a prepared folder is given."""
    params = load_params_cli(params_file, overrides, extra, overlays=overlays)
    if data_dir is None:
        return params
    if not data_dir.is_dir():
        raise NotFoundError(f"data folder {data_dir} not found: create it with "
                            f"`heara data prepare --source FILE --out {data_dir}`")
    info = read_dataset_info(data_dir)
    if info is None:  # prepared before dataset.json existed: params.yaml's task and labels apply
        return params
    log.info("data: task %s, labels %s (from %s)", info.task, list(info.labels), data_dir / DATASET_FILE)
    return apply_dataset_info(params, info, explicit=explicit_keys(overrides))


DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help=DATA_DIR_HELP)]
