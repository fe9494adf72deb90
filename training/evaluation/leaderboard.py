"""The model-family leaderboard of `heara compare`: per family, the frozen-test macro-F1 over several
seeds with a bootstrap confidence interval, per-class F1, the Korean robustness slices, CPU latency,
model size and training time; written as Markdown, HTML (self-contained), PNG and JSON.

Pure functions on `RunScore`s (one per trained family and seed); nothing here trains or loads a model.

How the seeds are pooled into one interval (`seed_pooled_ci`): a two-level percentile bootstrap. Each
replicate draws the test rows with replacement and, independently, as many seeds as were run, with
replacement; it averages the drawn seeds' macro-F1 on the drawn rows. The point estimate is the mean over
seeds of the macro-F1 on the whole test split. The interval so covers both the test set's sampling and the
seed-to-seed variation of that mean. The row draws depend only on the bootstrap seed and the number of
test rows, so every family of a comparison is resampled on the same rows (a row's difficulty is shared).
Caveats: with two or three seeds the seed level is a coarse bootstrap (it cannot show more spread than
the seeds had); a family whose seed changes nothing (`linear`: the seed is only the solver's
random_state) has an interval from the test bootstrap alone. The seed standard deviation is shown apart.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The paired bootstrap's vectorised macro-F1 (one bincount over all resamples): the same definition of
# macro-F1 as the promotion gate's interval, and as sklearn's on every row set.
from training.evaluation.metrics import _macro_f1_rows

SLICES = {"short": "short", "no_spaces": "no spaces", "typos": "typos"}  # evaluate()'s slices, in order
LINEAR_NOTE = "seed changes only the solver's random_state: the CI reflects the test bootstrap only"


@dataclass
class RunScore:
    """One trained (family, seed): its predictions on the frozen test rows (in test order) and figures,
    or the error that stopped it (then the figures are None)."""

    family: str  # the row name: the spec as written in --families
    seed: int
    trial: int = 0  # running index over the comparison's runs
    model_family: str = ""  # params model.family (linear, kobert, hf)
    y_pred: np.ndarray | None = field(default=None, repr=False)
    macro_f1: float | None = None
    weighted_f1: float | None = None
    top_k_accuracy: dict[int, float] = field(default_factory=dict)  # k -> share of rows (evaluate()'s TOP_K)
    per_class_f1: dict[str, float] = field(default_factory=dict)
    slices: dict[str, float | None] = field(default_factory=dict)  # slice -> macro-F1
    latency_p95_ms: float | None = None  # CPU, one text per call, preprocessing included
    size_bytes: int | None = None
    train_seconds: float | None = None
    run_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.y_pred is not None


@dataclass
class FamilyRow:
    """One leaderboard row: a family's figures pooled over the seeds that ran (means unless said)."""

    family: str
    model_family: str
    seeds: list[int]  # the seeds that produced a model
    runs: int  # runs attempted
    macro_f1: float | None = None  # mean over seeds, whole test split
    ci_low: float | None = None
    ci_high: float | None = None
    seed_sd: float | None = None  # standard deviation of macro-F1 over seeds (0 for one seed)
    weighted_f1: float | None = None
    top_k_accuracy: dict[int, float] = field(default_factory=dict)
    per_class_f1: dict[str, float] = field(default_factory=dict)
    slices: dict[str, float | None] = field(default_factory=dict)
    latency_p95_ms: float | None = None
    size_bytes: int | None = None
    train_seconds: float | None = None
    error: str | None = None  # the first failure, when any run failed
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.macro_f1 is not None


# ---------------------------------------------------------------- pooling
def seed_pooled_ci(
    y_true: Sequence, preds: Sequence[Sequence], *, n: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean macro-F1 over seeds, CI low, CI high): the two-level bootstrap of the module docstring.

    `preds`: one row of predicted labels per seed, each aligned with `y_true`."""
    y = np.asarray(y_true).astype(str)
    p = np.asarray(preds).astype(str)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] != len(y) or len(y) == 0:
        raise ValueError(f"preds must be [seeds, {len(y)}] predicted labels; got shape {p.shape}")
    s, m = p.shape
    _, enc = np.unique(np.concatenate([y, p.ravel()]), return_inverse=True)
    t, pe = enc[:m], enc[m:].reshape(s, m)
    k = int(enc.max()) + 1
    point = float(np.mean([_macro_f1_rows(t[None], pe[i][None], k)[0] for i in range(s)]))
    rows_rng = np.random.default_rng(seed)  # rows drawn alike for every family (same seed, same m)
    seeds_rng = np.random.default_rng([seed, 1])
    chunk = max(1, 2_000_000 // m)  # bounds memory to a few [chunk, m] int arrays
    values = []
    for start in range(0, n, chunk):
        idx = rows_rng.integers(0, m, size=(min(chunk, n - start), m))
        f1 = np.stack([_macro_f1_rows(t[idx], pe[i][idx], k) for i in range(s)], axis=1)  # [c, s]
        drawn = seeds_rng.integers(0, s, size=f1.shape)
        values.append(np.take_along_axis(f1, drawn, axis=1).mean(axis=1))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(np.concatenate(values), [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarise(
    runs: Sequence[RunScore], y_true: Sequence, *, n: int = 1000, level: float = 0.95, seed: int = 0
) -> list[FamilyRow]:
    """One row per family (in first-seen order of `runs`), sorted by mean macro-F1, best first; families
    with no successful run last, with their error."""
    by_family: dict[str, list[RunScore]] = {}
    for run in runs:
        by_family.setdefault(run.family, []).append(run)
    rows = []
    for family, group in by_family.items():
        ok = [r for r in group if r.ok]
        failed = [r for r in group if not r.ok]
        row = FamilyRow(
            family=family,
            model_family=group[0].model_family,
            seeds=[r.seed for r in ok],
            runs=len(group),
            error=failed[0].error if failed else None,
            note=LINEAR_NOTE if group[0].model_family == "linear" else None,
        )
        if ok:
            row.macro_f1, row.ci_low, row.ci_high = seed_pooled_ci(
                y_true, [r.y_pred for r in ok], n=n, level=level, seed=seed
            )
            row.seed_sd = float(np.std([r.macro_f1 for r in ok], ddof=1)) if len(ok) > 1 else 0.0
            row.per_class_f1 = {
                lab: _mean([r.per_class_f1.get(lab) for r in ok]) for lab in ok[0].per_class_f1
            }
            row.slices = {name: _mean([r.slices.get(name) for r in ok]) for name in SLICES}
            row.weighted_f1 = _mean([r.weighted_f1 for r in ok])
            row.top_k_accuracy = {
                k: _mean([r.top_k_accuracy.get(k) for r in ok]) for k in ok[0].top_k_accuracy
            }
            row.latency_p95_ms = _mean([r.latency_p95_ms for r in ok])
            size = _mean([r.size_bytes for r in ok])
            row.size_bytes = int(size) if size is not None else None
            row.train_seconds = _mean([r.train_seconds for r in ok])
        rows.append(row)
    return sorted(rows, key=lambda r: -r.macro_f1 if r.ok else math.inf)


# ---------------------------------------------------------------- tables
def _f(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(rows: Sequence[FamilyRow], level: float = 0.95) -> tuple[list[str], list[list[str]]]:
    """(headers, cells) of the main table: the one layout the terminal, Markdown and HTML show. A top-k
    accuracy column for each k any family was scored at (k below the number of labels)."""
    ks = sorted({k for r in rows for k in r.top_k_accuracy})
    headers = [
        "#",
        "family",
        "seeds",
        "macro-F1",
        f"{level:.0%} CI",
        "seed sd",
        "weighted-F1",
        *(f"top-{k} acc" for k in ks),
        *(f"{name} F1" for name in SLICES.values()),
        "p95 ms (CPU)",
        "size MB",
        "train s",
        "error",
    ]
    cells = []
    for i, r in enumerate(rows, 1):
        cells.append(
            [
                str(i) if r.ok else "-",
                r.family + (" *" if r.note else ""),
                f"{len(r.seeds)}/{r.runs}",
                _f(r.macro_f1),
                f"[{_f(r.ci_low)}, {_f(r.ci_high)}]" if r.ok else "-",
                _f(r.seed_sd),
                _f(r.weighted_f1),
                *(_f(r.top_k_accuracy.get(k)) for k in ks),
                *(_f(r.slices.get(name)) for name in SLICES),
                _f(r.latency_p95_ms, 1),
                _f(r.size_bytes / 1e6 if r.size_bytes is not None else None, 1),
                _f(r.train_seconds, 1),
                r.error or "",
            ]
        )
    return headers, cells


def per_class_table(
    rows: Sequence[FamilyRow], labels: Sequence[str], support: dict[str, int] | None = None
) -> tuple[list[str], list[list[str]]]:
    """(headers, cells): one row per class, its test rows (`support`, when given) and each family's F1,
    mean over seeds. A row per class, not a column: it stays readable at hundreds of classes."""
    ok = [r for r in rows if r.ok]
    headers = ["class", *(["test rows"] if support else []), *(r.family for r in ok)]
    return headers, [
        [lab, *([str(support.get(lab, 0))] if support else []), *(_f(r.per_class_f1.get(lab)) for r in ok)]
        for lab in labels
    ]


def notes(rows: Sequence[FamilyRow], meta: dict[str, Any]) -> list[str]:
    """The footnotes every rendering carries: what the figures are and how to reproduce a run."""
    level, n = meta.get("ci_level", 0.95), meta.get("bootstrap_samples", 1000)
    out = [
        f"macro-F1: mean over seeds on the frozen test split ({meta.get('test_rows', '?')} rows). "
        f"{level:.0%} CI: two-level percentile bootstrap ({n} resamples): test rows and seeds drawn "
        "with replacement, the same row draws for every family.",
        f"Slices (mean macro-F1 over seeds): short texts ({_short(meta)}), spaces removed, typos added "
        f"(all rows). p95 ms: CPU "
        "latency of one text per call, preprocessing included. size: weights in memory. train s: "
        "wall time of building and training the model (not scoring; not the tiny profile's "
        "vocabulary, built once per study).",
    ]
    if any(r.note for r in rows):
        out.append(f"* {LINEAR_NOTE}.")
    if meta.get("reproduce"):
        out.append(f"Reproduce a run: `{meta['reproduce']}`.")
    return out


def _short(meta: dict[str, Any]) -> str:
    if "short_rows" not in meta:
        return "the shortest texts"
    return f"up to {meta.get('short_max_chars', '?')} characters: {meta['short_rows']} rows"


def _md_table(headers: list[str], cells: list[list[str]]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in cells]
    return "\n".join(lines)


def _heading(meta: dict[str, Any]) -> tuple[str, str]:
    title = f"Model comparison {meta.get('study', '')}".strip()
    facts = ", ".join(
        f"{k}: {meta[k]}" for k in ("task", "data", "seeds", "parent_run_id", "created") if meta.get(k)
    )
    return title, facts


def to_markdown(rows: Sequence[FamilyRow], labels: Sequence[str], meta: dict[str, Any]) -> str:
    title, facts = _heading(meta)
    parts = [f"# {title}", "", facts, ""]
    parts += [_md_table(*summary_table(rows, meta.get("ci_level", 0.95))), ""]
    if any(r.ok for r in rows):
        parts += [
            "Per-class F1 (mean over seeds):",
            "",
            _md_table(*per_class_table(rows, labels, meta.get("support"))),
            "",
        ]
    parts += [f"- {line}" for line in notes(rows, meta)]
    return "\n".join(parts) + "\n"


_CSS = """
body { font-family: system-ui, 'Noto Sans KR', sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; }
td:nth-child(2), th:nth-child(2), td.text { text-align: left; }
tr.failed td { color: #999; }
td.error { color: #b00; text-align: left; max-width: 30em; }
img { max-width: 100%; }
p.facts, li { color: #555; }
"""


def _html_table(headers: list[str], cells: list[list[str]], failed: Sequence[bool] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(cells):
        tds = "".join(
            f'<td class="{"error" if headers[j] == "error" else ""}">{html.escape(c)}</td>'
            for j, c in enumerate(row)
        )
        body.append(f'<tr class="{"failed" if i < len(failed) and failed[i] else ""}">{tds}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def to_html(
    rows: Sequence[FamilyRow], labels: Sequence[str], meta: dict[str, Any], png: Path | None = None
) -> str:
    """One self-contained page: the tables, the notes and the plot inlined as a data URI."""
    title, facts = _heading(meta)
    parts = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="facts">{html.escape(facts)}</p>',
        _html_table(*summary_table(rows, meta.get("ci_level", 0.95)), failed=[not r.ok for r in rows]),
    ]
    if any(r.ok for r in rows):
        parts += [
            "<h2>Per-class F1 (mean over seeds)</h2>",
            _html_table(*per_class_table(rows, labels, meta.get("support"))),
        ]
    if png is not None and Path(png).exists():
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        parts.append(f'<p><img alt="macro-F1 per family" src="data:image/png;base64,{data}"></p>')
    parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes(rows, meta)) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def to_json(rows: Sequence[FamilyRow], runs: Sequence[RunScore], meta: dict[str, Any]) -> dict[str, Any]:
    """Everything, machine-readable: the meta, the rows and each run's own figures (no predictions)."""
    return {
        "meta": meta,
        "families": [asdict(r) for r in rows],
        "runs": [{k: v for k, v in asdict(r).items() if k != "y_pred"} for r in runs],
    }


def write(
    rows: Sequence[FamilyRow],
    runs: Sequence[RunScore],
    labels: Sequence[str],
    meta: dict[str, Any],
    out_dir: Path | str,
) -> list[Path]:
    """leaderboard.png, .md, .html and .json in `out_dir`; returns their paths."""
    from training.evaluation.plots import leaderboard_png  # matplotlib only when writing

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ok = [r for r in rows if r.ok]
    png = leaderboard_png(
        [r.family for r in ok],
        [r.macro_f1 for r in ok],
        [(r.ci_low, r.ci_high) for r in ok],
        [r.latency_p95_ms for r in ok],
        out / "leaderboard.png",
        level=meta.get("ci_level", 0.95),
    )
    md = out / "leaderboard.md"
    md.write_text(to_markdown(rows, labels, meta), encoding="utf-8")
    page = out / "leaderboard.html"
    page.write_text(to_html(rows, labels, meta, png), encoding="utf-8")
    summary = out / "leaderboard.json"
    summary.write_text(
        json.dumps(to_json(rows, runs, meta), ensure_ascii=False, indent=2, default=str) + "\n",
        encoding="utf-8",
    )
    return [md, page, png, summary]
