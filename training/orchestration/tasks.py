"""The retraining run's steps as the Airflow DAGs call them (dags/ holds wiring only).

Each step takes the path of the run's resolved params file (written once by `resolve_run`, so every
task of a run sees the same configuration, and a re-run task the same as before) and returns a small
JSON-able summary for XCom: paths, ids and metrics, never tables. The steps call the same functions as
the `heara` CLI and the DVC stages; training runs as a `heara train` subprocess so that a long run
cannot starve the Airflow task's heartbeat, and it resumes from its checkpoint when re-run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from training.config import Params, load_params
from training.env import api_key, serve_url
from training.errors import ConfigError, HearaError
from training.orchestration.form import form_overlays, form_overrides
from training.paths import PROJECT_ROOT, state

log = logging.getLogger("heara.flow")


def run_dir(run_id: str) -> Path:
    """Where one DAG run keeps its resolved params and record: $HEARA_HOME/airflow/runs/<run id>."""
    return state().airflow_run(run_id)


def resolve_run(
    form: dict[str, Any],
    run_id: str,
    *,
    trigger: str = "manual",
    trigger_files: list[dict] | None = None,
    trigger_drift: dict | None = None,
    trigger_reviews: dict | None = None,
) -> dict:
    """Validate the form against params.yaml (plus the form's overlay file, if any) and write the run's
    resolved params file and record. `trigger_drift`: the monitor's evidence when a drift event started
    the run (training.orchestration.tasks.monitor_window), kept in the record and as an MLflow tag;
    `trigger_reviews`: the reviewed-labels event that came with it (`new_reviews`, `since`, `until`)."""

    overlays = form_overlays(form)
    try:
        params = load_params(overrides=form_overrides(form, defaults=load_params()), overlays=overlays)
    except ConfigError as e:
        raise ConfigError(f"trigger form: {e}") from None
    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    params_file = params.save(folder / "params.yaml")
    record = {
        "dag_run_id": run_id,
        "trigger": trigger,
        "trigger_files": trigger_files or [],
        "trigger_drift": trigger_drift,
        "trigger_reviews": trigger_reviews,
        "force_promote": bool(form.get("force_promote")),
        "form": form,
        "overlays": [str(o) for o in overlays],
        "resolved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (folder / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    log.info(
        "run %s (%s): task %s, model %s/%s (%s), epochs %d, lr %g, augment %s; overlay %s; files: %s",
        run_id,
        trigger,
        params.task,
        params.model.family,
        params.model.name,
        params.model.profile,
        params.train.epochs,
        params.train.lr,
        params.augment.enabled,
        form.get("overlay") or "-",
        [f["name"] for f in trigger_files or []] or "-",
    )
    return {
        "params_file": str(params_file),
        "task": params.task,
        "run_dir": str(folder),
        "force_promote": record["force_promote"],
        "trigger": trigger,
        "trigger_files": [f["name"] for f in trigger_files or []],
        "trigger_drift": drift_summary(trigger_drift) if trigger_drift else "",
    }


def drift_summary(evidence: dict) -> str:
    """One line of a drift event's evidence (the MLflow tag heara.airflow.trigger_drift)."""
    reasons = "; ".join(evidence.get("reasons", [])[:5])
    return (
        f"version {evidence.get('model_version')}, window of {evidence.get('n')} predictions to "
        f"{evidence.get('to')}: {reasons}"
    )[:4000]


def monitor_window(params_file: str | None = None) -> dict:
    """The monitor DAG's `judge`: `heara monitor` on the newest window of the served version (the
    prediction log HEARA_PREDICTION_DB names, the registry's champion). Returns the window's verdict and,
    for a drift event, its evidence (no texts: version, window, reasons, the main figures)."""
    from training.errors import NoChampionError
    from training.orchestration.review import served_window
    from training.steps.monitor import monitor_step

    params = load_params(params_file) if params_file else load_params()
    try:
        source, frame = served_window(params)
    except NoChampionError as e:  # nothing served yet (a fresh install): nothing to judge, not a failure
        log.info("monitor: %s", e)
        return {"persistent_alarm": False, "window_alarm": False, "enough": False, "skipped": str(e)}
    record = monitor_step(params, frame, model_dir=source.model_dir, version=source.version_label)
    s = record["signals"]
    evidence = {
        "task": params.task,
        "model_version": record["model_version"],
        "n": record["window"]["n"],
        "from": record["window"]["from"],
        "to": record["window"]["to"],
        "reasons": record["reasons"],
        "persistence": record["persistence"],
        **{k: s[k] for k in ("label_js", "domain_auc", "estimated_macro_f1") if k in s},
    }
    return {
        "persistent_alarm": record["persistent_alarm"],
        "window_alarm": record["window_alarm"],
        "enough": record["enough"],
        "evidence": evidence,
    }


def review_window(params_file: str | None = None) -> dict:
    """The monitor DAG's `review`: `heara review select` on the newest window of the served version
    (training/orchestration/review.py), and the production holdout file refreshed. Counts only, no text."""
    from training.errors import NoChampionError
    from training.orchestration.review import fill_queue

    params = load_params(params_file) if params_file else load_params()
    try:
        return fill_queue(params)
    except NoChampionError as e:  # nothing served yet: nothing to review
        log.info("review: %s", e)
        return {"queued": 0, "skipped": str(e)}


def new_reviews(params_file: str | None = None) -> dict:
    """The monitor DAG's `reviews_ready`: how many predictions people labeled since the last reviewed-labels
    event (`$HEARA_HOME/airflow/reviews_announced.json`); `ready` when at least review.min_new_reviews."""
    from training.orchestration.review import open_queue

    params = load_params(params_file) if params_file else load_params()
    marker = state().reviews_announced
    since = json.loads(marker.read_text(encoding="utf-8"))["until"] if marker.exists() else None
    until = datetime.now(timezone.utc)
    start = datetime.fromisoformat(since) if since else datetime(1970, 1, 1, tzinfo=timezone.utc)
    count = open_queue().labeled_since(start, for_training=True)  # the holdout's rows never train
    ready = count >= params.review.min_new_reviews
    log.info(
        "review: %d labels since %s (%s %d)",
        count,
        since or "the start",
        "ready," if ready else "need",
        params.review.min_new_reviews,
    )
    return {
        "ready": ready,
        "new_reviews": count,
        "min_new_reviews": params.review.min_new_reviews,
        "since": since,
        "until": until.isoformat(timespec="microseconds"),
    }


def mark_reviews_announced(reviews: dict) -> None:
    """After the reviewed-labels event went out: the next count starts where this one ended."""
    marker = state().reviews_announced
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"until": reviews["until"], "new_reviews": reviews["new_reviews"]}), "utf-8")


def prune_predictions(params_file: str | None = None) -> dict:
    """The monitor DAG's retention: delete logged predictions older than monitor.retention_days."""
    from datetime import timedelta

    from serving.predlog import PredictionLog
    from training import env

    days = (load_params(params_file) if params_file else load_params()).monitor.retention_days
    if days is None:
        return {"deleted": 0, "retention_days": None}
    predlog = PredictionLog(env.prediction_db())
    try:
        deleted = predlog.prune(datetime.now(timezone.utc) - timedelta(days=days))
    finally:
        predlog.close()
    log.info("retention: deleted %d predictions older than %g days", deleted, days)
    return {"deleted": deleted, "retention_days": days}


def _params(params_file: str) -> Params:
    return load_params(params_file)


def ingest(params_file: str) -> dict:
    """Ingest the configured source and every new file of the incoming folder (the ledger knows which)."""
    from training.steps.ingest import run_ingest

    st = state()
    report = run_ingest(
        _params(params_file).data, st.raw, st.quarantine, st.reports / "ingest.json", state=st
    )
    return {
        "rows": report["rows"],
        "unparseable": report["unparseable"],
        "report": str(st.reports / "ingest.json"),
        "new_files": [f["name"] for f in report.get("incoming", {}).get("new_files", [])],
    }


def validate(params_file: str) -> dict:
    """Validate; a failure (too few rows, nothing valid) stops the run with the report in the log."""
    from training.errors import DataError
    from training.steps.validate import run_validate

    st = state()
    report_path = st.reports / "validate.json"
    try:
        report = run_validate(_params(params_file), st.raw, st.valid, st.quarantine, report_path)
    except DataError as e:
        if report_path.exists():
            log.error("validation report (%s):\n%s", report_path, report_path.read_text(encoding="utf-8"))
        raise DataError(f"validation failed: {e} (report: {report_path})", report=e.report) from None
    return {
        "rows_valid": report["rows_valid"],
        "rows_quarantined": report["rows_quarantined"],
        "per_class": report["per_class"],
        "report": str(report_path),
    }


def preprocess(params_file: str) -> dict:
    from training.steps.preprocess import run_preprocess

    st = state()
    report = run_preprocess(
        _params(params_file), st.valid, st.clean, st.quarantine, st.reports / "preprocess.json"
    )
    return {
        "rows": report.get("rows_out", report.get("rows")),
        "duplicates_removed": report["duplicates_removed"],
    }


def split(params_file: str) -> dict:
    from training.steps.split import run_split

    st = state()
    report = run_split(_params(params_file), st.clean, st.split_dir, st.reports / "split.json")
    return {k: report[k] for k in ("train", "val", "test", "test_frozen") if k in report}


def augment(params_file: str) -> dict:
    from training.data.reports import combine_reports
    from training.steps.augment import run_augment

    st = state()
    report = run_augment(
        _params(params_file),
        st.split_dir / "train.parquet",
        st.prepared / "train.parquet",
        st.reports / "augment.json",
    )
    params = _params(params_file)
    combined = combine_reports(st.reports, st.quarantine, task=params.task, source=params.data.source)
    # The data report the training run attaches to its MLflow run (as `heara data report` writes it).
    (st.reports / "report.json").write_text(
        json.dumps(combined, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return {
        "added": report["added"],
        "per_class_after": report["per_class_after"],
        "nothing_lost": combined["accounting"]["balanced"],
    }


def train(params_file: str, run_tags: dict[str, str] | None = None, *, tail_lines: int = 40) -> dict:
    """`heara train --params FILE` in a subprocess, its output streamed into this task's log.
    A re-run after a crash resumes from the checkpoint of the same configuration and data."""
    from training.steps.workspace import read_candidate

    cmd = [sys.executable, "-m", "training.cli", "train", "--params", params_file]
    env = {
        **os.environ,
        "HEARA_RUN_TAGS": json.dumps(run_tags or {}),
        "HEARA_HOME": str(state().home),
        "PYTHONUNBUFFERED": "1",
        "TERM": "dumb",
        "COLUMNS": "240",
    }  # one log line per record
    log.info("training: %s", " ".join(cmd))
    # A crash or a kill is retried, and the retry resumes from the last checkpoint.
    run_streamed(cmd, env, "train", what="training", tail_lines=tail_lines)
    cand = read_candidate(_params(params_file).task)
    return {
        k: cand[k]
        for k in ("run_id", "model_dir", "best_val_macro_f1", "epochs_run", "steps", "resumed_from_epoch")
        if k in cand
    }


def run_streamed(
    cmd: list[str], env: dict[str, str], prefix: str, *, what: str, tail_lines: int = 40
) -> list[str]:
    """Run a `heara` subprocess with its output streamed into this task's log, one line per record; returns
    its last lines. Exit code 2 (the CLI's HearaError: bad data or settings) raises a HearaError, which no
    retry can mend; any other failure a RuntimeError (retried). A killed or timed-out task stops it."""
    tail: deque[str] = deque(maxlen=tail_lines)
    proc = subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    try:
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            log.info("%s | %s", prefix, line)
        rc = proc.wait()
    finally:
        if proc.poll() is None:  # the task was killed or timed out: do not leave the work running
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if rc == 2:
        raise HearaError(f"{what} refused its input (exit code 2); last lines:\n" + "\n".join(tail))
    if rc != 0:
        raise RuntimeError(f"{what} exited with code {rc}; last lines:\n" + "\n".join(tail))
    return list(tail)


def evaluate(params_file: str) -> dict:
    from training.steps.evaluate import evaluate_step

    metrics = evaluate_step(_params(params_file))
    return {k: v for k, v in metrics.items() if k in ("test_macro_f1", "test_accuracy", "test_ece")}


def register(params_file: str) -> int:
    from training.steps.register import register_step

    return register_step(_params(params_file))


def promote(params_file: str, version: int, force: bool = False) -> dict:
    """The champion/challenger gate; the champion alias moves only when it passes (or is forced)."""
    from training.steps.promote import promote_step

    record = promote_step(_params(params_file), version, force=force)
    log.info("%s: %s", "PROMOTED" if record["promote"] else "REFUSED", record["reason"])
    return {
        k: record.get(k) for k in ("promote", "reason", "model", "champion_after", "mlflow_run_id", "forced")
    }


def notify_serving(params_file: str | None = None, *, timeout_s: float = 120.0) -> dict:
    """`POST /reload` on the service after a promotion. A service that is down is not a failed run: it
    loads the champion when it starts, and a running one also polls the registry."""
    import urllib.error
    import urllib.request

    url = serve_url((_params(params_file) if params_file else load_params()).orchestrate.serve_url)
    if not url:
        return {"reloaded": False, "skipped": "no serve_url configured"}
    headers = {"Content-Type": "application/json"}
    if api_key():
        headers["Authorization"] = f"Bearer {api_key()}"
    req = urllib.request.Request(url.rstrip("/") + "/reload", data=b"{}", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            answer = json.loads(resp.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as e:
        log.warning(
            "could not reach the service at %s (%s); it picks the champion up on its next poll or start",
            url,
            e,
        )
        return {"reloaded": False, "error": str(e), "url": url}
    log.info("service at %s: %s", url, answer)
    return {**answer, "url": url}
