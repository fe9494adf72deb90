"""What every `heara` command shares: the --params/--set/--data-dir options, loading the params, JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from training.config import Params, load_params, parse_overrides, set_dotted

console = Console(stderr=True)

ParamsOpt = Annotated[Optional[Path], typer.Option("--params", help="params.yaml to use (default: the repo's, or $HEARA_PARAMS).")]
OverlayOpt = Annotated[Optional[list[Path]], typer.Option("--overlay", help="A params overlay holding only the keys that differ, e.g. params.full.yaml for a real fine-tune (repeatable; later files win).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a value for this run, e.g. --set split.seed=7 (repeatable).")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="A `heara data prepare --out` folder (default: the DVC pipeline's outputs in the state folder).")]


def load_params_cli(params_file: Optional[Path], overrides: Optional[list[str]], extra: dict | None = None, *,
                    overlays: Optional[list[Path]] = None) -> Params:
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

