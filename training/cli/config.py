"""`heara config show`: the resolved configuration."""

from __future__ import annotations

import json

import typer

from training.cli.common import (
    OverlayOpt,
    ParamsOpt,
    SetOpt,
    load_params_cli,
)

app = typer.Typer(help="Show the resolved configuration.", no_args_is_help=True)


@app.command("show")
def config_show(params_file: ParamsOpt = None, overlays: OverlayOpt = None, overrides: SetOpt = None) -> None:
    """Print the resolved configuration (params.yaml plus overrides) as JSON."""
    print(
        json.dumps(
            load_params_cli(params_file, overrides, overlays=overlays).to_dict(), ensure_ascii=False, indent=2
        )
    )
