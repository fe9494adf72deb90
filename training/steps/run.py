"""`heara run`: the whole loop on any labeled file, one function in stage order:
prepare -> train -> evaluate (beside the TF-IDF baseline) -> register -> promote.

When the gate refuses the configured model because it is below the baseline and there is no champion
yet (a small offline model on a small task often is), the loop trains the `linear` family on the same
split and offers it to the gate too: never a champion worse than the baseline, and a champion to
serve; the result says so (`fallback`).

Each stage is the same step function its own command calls; the prepared folder's dataset.json gives
every stage after `prepare` the file's task and labels, as `--data-dir` does for the single commands.
"""

from __future__ import annotations

import logging
from pathlib import Path

from training.config import Params
from training.data.dataset_info import apply_dataset_info, read_dataset_info
from training.steps.evaluate import evaluate_step
from training.steps.prepare import prepare
from training.steps.promote import promote_step
from training.steps.register import register_step
from training.steps.train import train_step
from training.steps.workspace import DataFiles

log = logging.getLogger("heara.pipeline")


def run_loop(
    params: Params,
    source: Path,
    out_dir: Path,
    *,
    header: bool = True,
    linear_fallback: bool = True,
    detect_multilabel: bool = False,
) -> dict:
    """Prepare `source` into `out_dir`, train on it, score the model and the baseline on its frozen test
    split, register the model as heara-<task> and run the promotion gate. Returns what each stage said.
    `detect_multilabel`: see `prepare`."""
    from training.evaluation.baseline_cache import cached_baseline
    from training.paths import state

    # --- data: ingest -> validate -> preprocess -> split -> augment, dataset.json -------------------
    data_report = prepare(params, source, out_dir, header=header, detect_multilabel=detect_multilabel)
    params = apply_dataset_info(params, read_dataset_info(out_dir), note=False)  # prepare gave the note
    files = DataFiles.from_dir(out_dir)

    # --- model: train, then the frozen test split (the baseline on the same rows) --------------------
    log.info("run: training %s on %s", params.task, out_dir)
    candidate = train_step(params, files)
    metrics = evaluate_step(params, files)
    splits = files.load()
    baseline = cached_baseline(  # the gate reuses it
        splits["train"],
        splits["test"],
        state().baseline_cache,
        multilabel=params.task_type == "multilabel",
        val=splits["val"],
    )

    # --- registry: register (alias challenger), then the gate moves the champion alias or not -------
    version = register_step(params, files)
    decision = promote_step(params, version, test_path=files.test)

    # --- below the baseline with no champion: the linear family on the same split, through the gate --
    fallback = None
    if linear_fallback and needs_linear_fallback(params, decision):
        log.info(
            "run: the gate refused the %s model below the baseline and %s has no champion: training the "
            "linear family on the same split",
            params.model.family,
            decision["model"],
        )
        linear = with_family(params, "linear")
        cand = train_step(linear, files)
        lin_metrics = evaluate_step(linear, files)
        lin_version = register_step(linear, files)
        fallback = {
            "family": "linear",
            "run_id": cand["run_id"],
            "test_macro_f1": lin_metrics.get("test_macro_f1"),
            **multilabel_figures(lin_metrics),
            "version": lin_version,
            "promotion": promote_step(linear, lin_version, test_path=files.test),
        }
    return {
        "task": params.task,
        "labels": list(params.labels),
        "task_type": params.task_type,
        "data_dir": str(out_dir),
        "data": {
            "rows_read": data_report["ingest"]["rows_read"],
            "train": data_report["split"]["train"]["rows"],
            "val": data_report["split"]["val"]["rows"],
            "test": data_report["split"]["test"]["rows"],
            "quarantined": data_report["quarantine"]["rows"],
        },
        "run_id": candidate["run_id"],
        "best_val_macro_f1": candidate["best_val_macro_f1"],
        "test_macro_f1": metrics.get("test_macro_f1"),
        "test_accuracy": metrics.get("test_accuracy"),
        **multilabel_figures(metrics),
        "baseline": baseline,
        "version": version,
        "family": params.model.family,
        "promotion": decision,
        "fallback": fallback,
    }


MULTILABEL_FIGURES = ("test_micro_f1", "test_samples_f1", "test_hamming_loss")


def multilabel_figures(metrics: dict) -> dict:
    """A multi-label model's figures beside macro-F1 (none for a single-label model)."""
    return {k: metrics[k] for k in MULTILABEL_FIGURES if k in metrics}


def needs_linear_fallback(params: Params, decision: dict) -> bool:
    """A non-linear model refused for being below the baseline, and no champion to serve."""
    return (
        params.model.family != "linear"
        and not decision["promote"]
        and decision.get("checks", {}).get("beats_baseline") is False
        and decision.get("champion_after") is None
    )


def with_family(params: Params, family: str) -> Params:
    """The same configuration with another model family."""
    return params.override({"model": {"family": family}})
