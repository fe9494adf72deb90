"""`python -m training.cli ...`: the `heara` command (Airflow tasks run training this way)."""

from training.cli import app

app()
