"""FAILED.md: what a failed DAG run leaves in its run folder (task, masked error, what to do next)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from training.orchestration.tasks import run_dir
from training.paths import state

log = logging.getLogger("heara.flow")


STEP_HINTS = {
    "resolve_run": "Fix the trigger form's values (each error names the key) and trigger again.",
    "ingest": "A file could not be read: fix or remove it (the error names it) and trigger again.",
    "validate": "The data cannot make a valid training set: read the validation report, fix the labels or "
    "add rows, then trigger again. Rejected rows are in the quarantine folder with reasons.",
    "train": "Clear the `train` task to re-run it: it resumes from its last checkpoint. "
    "The champion is unchanged: only `promote` moves it.",
    "promote": "The champion alias moves in one call, so it still points at the previous champion.",
}


def write_failure_summary(
    dag_id: str,
    run_id: str,
    task_id: str,
    error: BaseException | str | None,
    try_number: int | None = None,
    log_url: str | None = None,
) -> Path:
    """A short Markdown summary of a failed run in its run folder (FAILED.md), also logged: which task,
    why, what to do next, and for a validation failure the validation report itself."""
    from training.pii import mask_pii

    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {dag_id}: run {run_id} failed in `{task_id}`",
        "",
        f"- when: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- try: {try_number}" if try_number else "",
        f"- log: {log_url}" if log_url else "",
        f"- error: {mask_pii(str(error) or type(error).__name__)}" if error else "",
        "",
        STEP_HINTS.get(task_id, "The champion is unchanged unless `promote` finished."),
        "",
    ]
    report = state().reports / "validate.json"
    if task_id == "validate" and report.exists():
        lines += ["## Validation report", "", "```json", report.read_text(encoding="utf-8"), "```"]
    path = folder / "FAILED.md"
    path.write_text("\n".join(line for line in lines if line is not None) + "\n", encoding="utf-8")
    log.error("run summary written to %s:\n%s", path, path.read_text(encoding="utf-8"))
    return path
