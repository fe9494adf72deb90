"""
### heara_batch_predict: score a file of utterances with the champion

Trigger it with an **input** file (CSV, TSV, JSONL or Excel with a text column) and, optionally, an
**output** path (default: `$HEARA_HOME/predictions/<input stem>.<run id>.csv`). The output keeps the
input's columns and adds label, score, one probability per label, danger and model_version.
Same as `heara predict --input FILE --output FILE`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task
from heara_common import call, default_args

from training.config import load_params

PARAMS = load_params()


@dag(
    dag_id="heara_batch_predict",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=default_args(PARAMS.orchestrate),
    params={
        "input": Param(
            "",
            type="string",
            minLength=1,
            title="Input file",
            description="Path on the worker: CSV, TSV, JSONL or Excel.",
        ),
        "output": Param(
            "", type="string", title="Output file", description="Empty: under $HEARA_HOME/predictions/."
        ),
        "text_col": Param(PARAMS.data.text_col, type="string", minLength=1, title="Text column"),
        "task": Param(PARAMS.task, type="string", minLength=1, title="Task"),
    },
    tags=["heara", "serving"],
    doc_md=__doc__,
)
def heara_batch_predict():
    @task
    def predict(**context) -> dict:
        from training.steps.predict import predict_job

        p = context["params"]
        return call(
            predict_job,
            p["input"],
            p["output"] or None,
            task=p["task"],
            text_col=p["text_col"],
            run_id=context["run_id"],
        )

    predict()


heara_batch_predict()
