"""`heara review`: the review queue. `select` fills it from the newest window of the prediction log,
people label on GET /review, `export` writes their labels to the incoming folder (a retraining's new
data), `status` counts (training/orchestration/review.py does the work; docs/monitoring.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.cli.common import HoursOpt, OverlayOpt, ParamsOpt, SetOpt, WindowOpt, console, load_params_for

app = typer.Typer()
review_app = typer.Typer(
    help="The review queue: served predictions people label, and the production holdout."
)
app.add_typer(review_app, name="review")


@review_app.command("select")
def select_cmd(
    window: WindowOpt = None,
    hours: HoursOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Queue predictions of the newest window of the served version for review: review.budget of them,
    split into the uncertain, novel and random strata, plus the danger-flagged ones (review.danger_policy).
    Predictions queued before are left out. Prints the counts, then a JSON line."""
    from training.orchestration.review import fill_queue

    p = load_params_for(None, params_file, overrides, overlays=overlays)
    result = fill_queue(p, window=window, hours=hours)
    picked = ", ".join(f"{k} {v}" for k, v in result["picked"].items()) or "none"
    console.print(
        f"{p.task} version {result['model_version']}: {result['queued']} of {result['window']} predictions "
        f"queued ({picked}); {result['waiting']} waiting for review"
    )
    print(json.dumps(result, ensure_ascii=False))


@review_app.command("export")
def export_cmd(
    out: Annotated[
        Optional[Path], typer.Option(help="Folder to write to (default: the incoming folder).")
    ] = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Write the labeled, not yet exported reviews to incoming/review-<export id>.csv (id, text, label,
    reviewer, reviewed_at, stratum, model_version), where the incoming watcher picks them up for
    retraining, and mark them exported. Skipped and unsure items are not exported."""
    from training.orchestration.review import export_reviewed

    p = load_params_for(None, params_file, overrides, overlays=overlays)
    result = export_reviewed(p, out_dir=out)
    if result["path"] is None:
        console.print("nothing to export: no labeled review that was not exported already")
    else:
        labels = ", ".join(f"{k} {v}" for k, v in result["labels"].items())
        console.print(f"exported {result['rows']} reviewed rows ({labels}) to {result['path']}")
    print(json.dumps(result, ensure_ascii=False))


@review_app.command("status")
def status_cmd(
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """The queue's items per status and stratum, what awaits export and the production holdout's size."""
    from training.orchestration.review import status

    p = load_params_for(None, params_file, overrides, overlays=overlays)
    s = status(p)
    console.print(
        "review queue: "
        + ", ".join(f"{k} {v}" for k, v in s["status"].items())
        + f"; {s['unexported']} labeled not exported"
    )
    console.print("by stratum: " + ", ".join(f"{k} {v}" for k, v in s["stratum"].items()))
    enough = "" if s["holdout_rows"] >= s["holdout_min_rows"] else " (not enough reviewed rows to report yet)"
    console.print(f"production holdout: {s['holdout_rows']} rows{enough}")
    print(json.dumps(s, ensure_ascii=False))
