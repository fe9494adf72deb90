"""`heara airflow ...`: run the project's Airflow locally (see training.orchestration.airflow_local)."""

from __future__ import annotations

import json
import shlex
from typing import Annotated, Optional

import typer
from rich.console import Console

from training.orchestration import airflow_local

airflow_app = typer.Typer(
    help="Airflow on this machine: standalone, SQLite, the project's DAGs.", no_args_is_help=True
)
console = Console(stderr=True)


@airflow_app.command("up")
def up(port: Annotated[int, typer.Option(help="Port of the UI and REST API.")] = 8080) -> None:
    """Start `airflow standalone` in the background (its own process group) and wait until healthy."""
    info = airflow_local.up(port=port)
    if info.get("already_running"):
        console.print(f"Airflow is already running (pid {info['pid']}): {info['url']}")
        return
    console.print(
        f"[bold green]Airflow is up[/]: {info['url']}  user [bold]admin[/], password "
        f"[bold]{info['password']}[/]  (log: {info['log']})"
    )
    console.print(
        "Trigger `heara_retrain` from the UI (Trigger -> the form), or: heara airflow test heara_retrain"
    )
    print(json.dumps({k: info[k] for k in ("pid", "url", "user", "password")}))


@airflow_app.command("down")
def down(
    grace: Annotated[float, typer.Option(help="Seconds to wait after SIGTERM before SIGKILL.")] = 20.0,
) -> None:
    """Stop the standalone process group."""
    console.print("stopped" if airflow_local.down(grace) else "Airflow was not running")


@airflow_app.command("status")
def status(port: int = 8080) -> None:
    """The components' health (metadatabase, scheduler, triggerer, DAG processor)."""
    health = airflow_local.healthy(port)
    print(json.dumps(health or {"running": False}))
    if not health:
        raise typer.Exit(1)


@airflow_app.command("init")
def init() -> None:
    """Create or upgrade the metadata database and the `gpu` pool."""
    airflow_local.init(force=True)
    console.print(f"Airflow home: {airflow_local.home()} (gpu pool: {airflow_local.gpu_slots()} slot(s))")


@airflow_app.command("test")
def dags_test(
    dag_id: Annotated[
        str, typer.Argument(help="heara_retrain, heara_rollback, heara_batch_predict, ...")
    ] = "heara_retrain",
    conf: Annotated[
        Optional[str], typer.Option(help="The trigger form as JSON, e.g. '{\"epochs\": 3}'.")
    ] = None,
) -> None:
    """Run one DAG run in this process with `airflow dags test` (no scheduler needed)."""
    airflow_local.init()
    args = ["dags", "test", dag_id] + (["--conf", conf] if conf else [])
    rc = airflow_local.run(args, check=False).returncode
    raise typer.Exit(rc)


@airflow_app.command("env")
def show_env() -> None:
    """Print the environment as `export` lines, to run `airflow ...` commands by hand."""
    for key, value in airflow_local.env({}).items():
        print(f"export {key}={shlex.quote(value)}")
