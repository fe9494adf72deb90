"""`heara`: one command-line entry point, a subcommand per pipeline verb. The commands (one module per
group: data, train, run, experiments, serve, monitor, review, bench, config, airflow) parse options and call
`training.steps`; they hold no logic of their own.

Errors: a `HearaError` (bad data, bad settings, something not there yet) is printed as one line and
exits with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup

from training.cli import bench, config, data, experiments, monitor, review, run, serve, train
from training.cli.airflow import airflow_app
from training.cli.common import console
from training.errors import HearaError
from training.logs import setup_logging


class _Group(TyperGroup):
    """The one place where an expected failure becomes a one-line message and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HearaError as e:
            console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True, highlight=False)
            raise typer.Exit(code=2) from None


app = typer.Typer(
    cls=_Group,
    help="Heara: Korean utterance classification, from labeled data to a served model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(train.app)
app.add_typer(run.app)
app.add_typer(experiments.app)
app.add_typer(serve.app)
app.add_typer(monitor.app)
app.add_typer(review.app)
app.add_typer(bench.app, name="bench")
app.add_typer(config.app, name="config")
app.add_typer(airflow_app, name="airflow")


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    setup_logging("DEBUG" if verbose else "INFO")


if __name__ == "__main__":
    sys.exit(app())
