"""The leaderboard of `heara compare`: seeds pooled into one bootstrap interval, rows ranked with failures
last, and the same table rendered as Markdown, self-contained HTML, PNG and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from training.evaluation.leaderboard import (
    LINEAR_NOTE,
    RunScore,
    per_class_table,
    seed_pooled_ci,
    summarise,
    summary_table,
    to_html,
    to_markdown,
    write,
)

LABELS = ["normal", "emergency", "confusion"]
Y = np.array(LABELS * 20)


def noisy(share_wrong: float, seed: int) -> np.ndarray:
    """Y with a share of rows relabelled at random."""
    rng = np.random.default_rng(seed)
    pred = Y.copy()
    wrong = rng.random(len(Y)) < share_wrong
    pred[wrong] = rng.choice(LABELS, size=int(wrong.sum()))
    return pred


def run(family: str, seed: int, pred: np.ndarray | None, **kw) -> RunScore:
    if pred is None:
        return RunScore(family, seed, error=kw.pop("error", "boom"), **kw)
    f1 = float(f1_score(Y, pred, average="macro"))
    per_class = dict(zip(LABELS, f1_score(Y, pred, labels=LABELS, average=None)))
    defaults = dict(
        y_pred=pred,
        macro_f1=f1,
        per_class_f1=per_class,
        slices={"short": f1, "no_spaces": f1 - 0.1, "typos": None},
        latency_p95_ms=2.0,
        size_bytes=3_000_000,
        train_seconds=1.5,
    )
    return RunScore(family, seed, **{**defaults, **kw})


def test_the_point_is_the_mean_of_the_seeds_macro_f1() -> None:
    preds = [noisy(0.3, s) for s in range(3)]
    point, lo, hi = seed_pooled_ci(Y, preds, n=200)
    assert point == pytest.approx(np.mean([f1_score(Y, p, average="macro") for p in preds]))
    assert lo < point < hi


def test_seeds_that_agree_give_the_row_bootstrap_alone() -> None:
    """Identical seeds (the linear family): resampling seeds changes nothing, and the row draws are the
    same for any number of seeds, so the interval is exactly the one-seed interval."""
    pred = noisy(0.3, 1)
    assert seed_pooled_ci(Y, [pred, pred, pred], n=300) == seed_pooled_ci(Y, [pred], n=300)


def test_seed_spread_widens_the_interval() -> None:
    good, bad = noisy(0.1, 1), noisy(0.6, 2)
    _, lo_one, hi_one = seed_pooled_ci(Y, [good, good], n=500)
    _, lo_two, hi_two = seed_pooled_ci(Y, [good, bad], n=500)
    assert hi_two - lo_two > hi_one - lo_one


def test_a_perfect_family_has_a_point_interval_and_bad_shapes_are_refused() -> None:
    assert seed_pooled_ci(Y, [Y, Y], n=100) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="preds must be"):
        seed_pooled_ci(Y, [Y[:-1]])


def test_rows_are_ranked_best_first_and_failures_come_last_with_their_error() -> None:
    runs = [
        run("hf:broken", 42, None, error="OSError: cannot load", model_family="hf"),
        run("hf:broken", 43, None, error="not run: seed 42 failed", model_family="hf"),
        run("linear", 42, noisy(0.4, 1), model_family="linear"),
        run("linear", 43, noisy(0.4, 1), model_family="linear"),
        run("kobert-tiny", 42, noisy(0.1, 2), model_family="kobert", latency_p95_ms=4.0),
        run("kobert-tiny", 43, noisy(0.2, 3), model_family="kobert", latency_p95_ms=6.0),
    ]
    rows = summarise(runs, Y, n=100)
    assert [r.family for r in rows] == ["kobert-tiny", "linear", "hf:broken"]
    best, linear, broken = rows
    assert best.seeds == [42, 43] and best.runs == 2 and best.latency_p95_ms == pytest.approx(5.0)
    assert best.seed_sd > 0 and linear.seed_sd == 0.0
    assert best.per_class_f1["normal"] == pytest.approx(
        np.mean([runs[4].per_class_f1["normal"], runs[5].per_class_f1["normal"]])
    )
    assert best.slices["typos"] is None and best.slices["no_spaces"] == pytest.approx(best.macro_f1 - 0.1)
    assert linear.note == LINEAR_NOTE and best.note is None
    assert (
        not broken.ok and broken.seeds == [] and broken.runs == 2 and broken.error == "OSError: cannot load"
    )
    headers, cells = summary_table(rows)
    assert headers[:5] == ["#", "family", "seeds", "macro-F1", "95% CI"]
    assert [c[:3] for c in cells] == [
        ["1", "kobert-tiny", "2/2"],
        ["2", "linear *", "2/2"],
        ["-", "hf:broken", "0/2"],
    ]
    assert cells[2][-1] == "OSError: cannot load" and cells[2][3] == "-"


def test_markdown_and_html_show_the_same_table_safely(tmp_path: Path) -> None:
    runs = [
        run("linear", 42, noisy(0.3, 1), model_family="linear"),
        run("hf:<x>|y", 42, None, error="bad | <name>"),
    ]
    rows = summarise(runs, Y, n=100)
    meta = {
        "study": "s1",
        "test_rows": len(Y),
        "short_rows": 4,
        "short_max_chars": 8,
        "reproduce": "heara train --params P",
    }
    md = to_markdown(rows, LABELS, meta)
    assert "| 1 | linear * | 1/1 |" in md and "bad \\| <name>" in md
    assert "| class | linear |" in md and "| normal | " in md  # a row per class: readable at 359 classes
    assert LINEAR_NOTE in md and "`heara train --params P`" in md
    assert "(60 rows)" in md and "short texts (up to 8 characters: 4 rows)" in md
    page = to_html(rows, LABELS, meta)
    assert "<td>hf:&lt;x&gt;|y</td>" in page.replace(' class=""', "") and "<name>" not in page
    assert page.startswith("<!doctype html>") and "data:image" not in page  # no plot given


def test_weighted_f1_top_k_and_support_are_shown() -> None:
    runs = [
        run("linear", 1, noisy(0.3, 1), weighted_f1=0.6, top_k_accuracy={3: 0.9}),
        run("linear", 2, noisy(0.3, 2), weighted_f1=0.8, top_k_accuracy={3: 0.7}),
        run("hf:x", 42, None),
    ]
    rows = summarise(runs, Y, n=100)
    assert rows[0].weighted_f1 == pytest.approx(0.7) and rows[0].top_k_accuracy == {3: pytest.approx(0.8)}
    headers, cells = summary_table(rows)
    assert headers[6:8] == ["weighted-F1", "top-3 acc"]
    assert cells[0][6:8] == ["0.7000", "0.8000"] and cells[1][6:8] == ["-", "-"]
    support = {lab: 15 for lab in LABELS}
    headers, cells = per_class_table(rows, LABELS, support)
    assert headers == ["class", "test rows", "linear"]  # the failed family has no column
    assert [c[:2] for c in cells] == [[lab, "15"] for lab in LABELS]


def test_write_produces_the_four_files_with_the_plot_inlined(tmp_path: Path) -> None:
    runs = [run("linear", 42, noisy(0.3, 1)), run("kobert-tiny", 42, noisy(0.1, 1)), run("hf:x", 42, None)]
    rows = summarise(runs, Y, n=100)
    paths = write(rows, runs, LABELS, {"study": "s1", "test_rows": len(Y)}, tmp_path)
    assert [p.name for p in paths] == [
        "leaderboard.md",
        "leaderboard.html",
        "leaderboard.png",
        "leaderboard.json",
    ]
    assert (tmp_path / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (tmp_path / "leaderboard.html").read_text(encoding="utf-8")
    data = json.loads((tmp_path / "leaderboard.json").read_text(encoding="utf-8"))
    assert [f["family"] for f in data["families"]] == ["kobert-tiny", "linear", "hf:x"]
    assert len(data["runs"]) == 3 and "y_pred" not in data["runs"][0]


def test_a_study_where_every_family_failed_still_writes_its_files(tmp_path: Path) -> None:
    runs = [run("hf:x", 42, None)]
    paths = write(summarise(runs, Y), runs, LABELS, {"study": "s1"}, tmp_path)
    assert all(p.exists() for p in paths)
    assert "Per-class" not in (tmp_path / "leaderboard.md").read_text(encoding="utf-8")
