"""PNG plots for evaluation and training reports.

Figures are built with `matplotlib.figure.Figure` and saved through the Agg canvas, never through
pyplot: no global backend is switched, nothing is drawn at import time, and the functions are safe
to call from worker threads (Airflow, BentoML). Each function writes one PNG and returns its path.
Label names may be Korean: a Hangul font is used when one is installed; otherwise the PNG is still
written (the glyphs show as boxes) and matplotlib's missing-glyph warnings are silenced.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from training.evaluation.calibration import calibration_bins, expected_calibration_error
from training.evaluation.confusion import confused_pairs

# Common Hangul fonts on Linux, macOS and Windows, best first.
_HANGUL_FONTS = (
    "Noto Sans CJK KR",
    "Noto Sans KR",
    "NanumGothic",
    "NanumBarunGothic",
    "Malgun Gothic",
    "Apple SD Gothic Neo",
    "AppleGothic",
    "UnDotum",
    "Baekmuk Gulim",
    "Source Han Sans KR",
)


def _register_bundled_nanum() -> None:
    """NanumGothic ships inside the koreanize-matplotlib wheel (a dependency), so plots have Hangul
    without a system font package. Its files are registered directly: importing that package would
    change matplotlib's global settings as a side effect."""
    import importlib.util

    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return
    for ttf in sorted((Path(next(iter(spec.submodule_search_locations))) / "fonts").glob("NanumGothic*.ttf")):
        font_manager.fontManager.addfont(str(ttf))


@functools.lru_cache(maxsize=1)
def hangul_font() -> str | None:
    """Name of an installed font with Hangul glyphs, or None."""
    _register_bundled_nanum()
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in _HANGUL_FONTS:
        if name in installed:
            return name
    return next((n for n in sorted(installed) if "CJK" in n or "Nanum" in n), None)


@contextlib.contextmanager
def _style() -> Iterator[None]:
    font = hangul_font()
    families = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    with rc_context({"font.family": families, "axes.unicode_minus": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from")
        yield


def _save(fig: Figure, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    return path


MAX_GRID_LABELS = 20  # above this many labels an N x N grid is unreadable: the most confused pairs instead
TOP_PAIRS = 20  # pairs that plot shows


def confusion_matrix_png(cm: np.ndarray, labels: list[str], path: Path | str) -> Path:
    """Confusion matrix (rows: true label, columns: predicted): cell colour and % are row-normalised.

    Above `MAX_GRID_LABELS` labels (seed 001 had 359) the grid would be illegible: the plot is then the
    `TOP_PAIRS` most confused (true -> predicted) pairs instead (`confused_pairs_png`); the full matrix
    is written beside it as CSV (evaluation.metrics.write_artifacts)."""
    cm = np.asarray(cm)
    k = len(labels)
    if k > MAX_GRID_LABELS:
        return confused_pairs_png(cm, labels, path)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    with _style():
        size = 2.5 + 0.9 * k
        fig = Figure(figsize=(size + 1, size))
        ax = fig.add_subplot()
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true label")
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    f"{cm[i, j]}\n{norm[i, j]:.1%}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
        ax.set_xticks(range(k), labels, rotation=30, ha="right")
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"Confusion matrix (n={int(cm.sum())})")
        return _save(fig, path)


def confused_pairs_png(cm: np.ndarray, labels: list[str], path: Path | str, top: int = TOP_PAIRS) -> Path:
    """The `top` most confused (true -> predicted) pairs as horizontal bars, most rows on top; each bar
    says its rows and their share of the true label's test rows."""
    cm = np.asarray(cm)
    pairs = confused_pairs(cm, labels, top)
    errors, total = int(cm.sum() - np.trace(cm)), int(cm.sum())
    n_pairs = np.count_nonzero(cm) - np.count_nonzero(np.diag(cm))
    with _style():
        fig = Figure(figsize=(9, 1.6 + 0.38 * max(len(pairs), 1)))
        ax = fig.add_subplot()
        if pairs:
            y = np.arange(len(pairs))[::-1]
            counts = [p["count"] for p in pairs]
            bars = ax.barh(y, counts, color="tab:red", alpha=0.75)
            ax.bar_label(bars, [f" {p['count']} ({p['share']:.0%} of true)" for p in pairs], fontsize=8)
            ax.set_yticks(y, [f"{p['true']} -> {p['predicted']}" for p in pairs], fontsize=9)
            ax.set_xlim(0, max(counts) * 1.35)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.text(0.5, 0.5, "no confusions", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        ax.set_xlabel("test rows (true -> predicted)")
        ax.set_title(
            f"Most confused pairs: top {len(pairs)} of {n_pairs} "
            f"({len(labels)} labels; {errors} of {total} test rows wrong)"
        )
        ax.grid(axis="x", alpha=0.3)
        return _save(fig, path)


def reliability_png(conf: np.ndarray, correct: np.ndarray, path: Path | str, bins: int = 15) -> Path:
    """Reliability diagram: accuracy vs mean confidence per equal-width bin, with the ECE in the title."""
    count, mean_conf, acc = calibration_bins(conf, correct, bins)
    edges = np.linspace(0, 1, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    filled = count > 0
    with _style():
        fig = Figure(figsize=(5.5, 6.5))
        ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        ax.bar(centers[filled], acc[filled], width=1 / bins, edgecolor="black", alpha=0.8, label="accuracy")
        ax.bar(
            centers[filled],
            (mean_conf - acc)[filled],
            bottom=acc[filled],
            width=1 / bins,
            color="none",
            edgecolor="tab:red",
            hatch="//",
            label="gap to mean confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.legend(loc="upper left")
        ax.set_title(
            f"Reliability (ECE={expected_calibration_error(conf, correct, bins):.3f}, n={int(count.sum())})"
        )
        hist.bar(centers, count, width=1 / bins, edgecolor="black", color="gray")
        hist.set_xlim(0, 1)
        hist.set_xlabel("confidence (top label)")
        hist.set_ylabel("rows")
        return _save(fig, path)


def training_curves_png(history: list[dict], path: Path | str) -> Path:
    """Per-epoch curves: every key with "loss" on the left panel, every key with "f1" on the right.

    `history`: one dict per epoch (e.g. {"epoch": 1, "train_loss": .., "val_loss": .., "val_macro_f1": ..}).
    """
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    keys = sorted({k for h in history for k, v in h.items() if isinstance(v, (int, float)) and k != "epoch"})
    with _style():
        fig = Figure(figsize=(10, 4))
        loss_ax, f1_ax = fig.subplots(1, 2)
        for ax, part, title in ((loss_ax, "loss", "loss"), (f1_ax, "f1", "macro-F1")):
            for key in (k for k in keys if part in k):
                points = [(e, h[key]) for e, h in zip(epochs, history) if key in h]
                ax.plot(*zip(*points), marker="o", label=key)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(title)
            if ax.lines:
                ax.legend()
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, path)


def per_label_png(per_label, path: Path | str) -> Path:
    """A multi-label model's test figures per label: F1, precision and recall as grouped horizontal
    bars, each label annotated with its support (test rows) and decision threshold. `per_label`: a
    DataFrame indexed by label with those columns (training/evaluation/multilabel.py)."""
    labels = [str(x) for x in per_label.index]
    y = np.arange(len(labels))[::-1]
    with _style():
        fig = Figure(figsize=(8, 1.5 + 0.45 * max(len(labels), 1)))
        ax = fig.add_subplot()
        for offset, name in zip((-0.27, 0.0, 0.27), ("f1", "precision", "recall")):
            ax.barh(y + offset, per_label[name].astype(float), height=0.26, label=name)
        for yi, (_, row) in zip(y, per_label.iterrows()):
            ax.text(
                1.01, yi, f"n={int(row['support'])}  t={float(row['threshold']):.2f}", va="center", fontsize=8
            )
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 1.25)
        ax.set_xlabel("test score (each label decided at its own threshold t)")
        ax.set_title("Per-label F1, precision and recall")
        ax.legend(loc="lower right")
        return _save(fig, path)


def label_distribution_png(counts: dict[str, dict[str, int]], path: Path | str) -> Path:
    """Grouped bars of rows per label, one bar per split: counts = {split: {label: rows}}."""
    splits = list(counts)
    labels = list(dict.fromkeys(lab for c in counts.values() for lab in c))
    x = np.arange(len(labels))
    width = 0.8 / max(len(splits), 1)
    with _style():
        fig = Figure(figsize=(max(5.0, 1.2 * len(labels) + 2), 4))
        ax = fig.add_subplot()
        for s, split in enumerate(splits):
            values = [counts[split].get(lab, 0) for lab in labels]
            bars = ax.bar(x + (s - (len(splits) - 1) / 2) * width, values, width, label=split)
            ax.bar_label(bars, fontsize=8)
        ax.set_xticks(x, labels, rotation=30 if len(labels) > 6 else 0)
        ax.set_ylabel("rows")
        ax.set_title("Label distribution per split")
        if splits:
            ax.legend()
        return _save(fig, path)


def leaderboard_png(
    families: list[str],
    macro_f1: list[float],
    ci: list[tuple[float, float]],
    latency_p95_ms: list[float | None],
    path: Path | str,
    level: float = 0.95,
) -> Path:
    """`heara compare`'s plot: macro-F1 per family with its CI as error bars (left), and p95 CPU latency
    against macro-F1 (right, log scale): what a better score costs at serving time."""
    f1 = np.asarray(macro_f1, dtype=float)
    err = np.array([[m - lo for (lo, _), m in zip(ci, f1)], [hi - m for (_, hi), m in zip(ci, f1)]])
    err = err.reshape(2, len(families))
    y = np.arange(len(families))[::-1]  # the best (first) family on top
    with _style():
        fig = Figure(figsize=(11, 1.6 + 0.5 * max(len(families), 1)))
        bars, scatter = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        if families:
            bars.errorbar(f1, y, xerr=err, fmt="o", capsize=4, color="tab:blue")
            for yi, m in zip(y, f1):
                bars.annotate(f"{m:.3f}", (m, yi), textcoords="offset points", xytext=(0, 7), ha="center")
            lo = float(np.nanmin(f1 - err[0]))
            bars.set_xlim(max(0.0, lo - 0.05), min(1.0, float(np.nanmax(f1 + err[1])) + 0.05))
        else:
            bars.text(0.5, 0.5, "no family trained", ha="center", va="center", transform=bars.transAxes)
        bars.set_yticks(y, families)
        bars.set_ylim(-0.7, max(len(families), 1) - 0.3)
        bars.set_xlabel(f"test macro-F1 (mean over seeds, {level:.0%} CI)")
        bars.set_title("Families on the frozen test split")
        bars.grid(axis="x", alpha=0.3)
        timed = [(n, m, e0, e1, lat) for n, m, e0, e1, lat in zip(families, f1, *err, latency_p95_ms) if lat]
        for name, m, e0, e1, lat in timed:
            scatter.errorbar(lat, m, yerr=[[e0], [e1]], fmt="o", capsize=3)
            scatter.annotate(name, (lat, m), textcoords="offset points", xytext=(5, 5), fontsize=8)
        if timed:
            scatter.set_xscale("log")
        else:
            scatter.text(0.5, 0.5, "no latency", ha="center", va="center", transform=scatter.transAxes)
        scatter.set_xlabel("p95 latency per text, CPU (ms, log)")
        scatter.set_ylabel("test macro-F1")
        scatter.set_title("Score vs latency")
        scatter.grid(alpha=0.3)
        return _save(fig, path)


def drift_png(history: list[dict], labels: list[str], path: Path | str) -> Path:
    """`heara monitor`'s picture: per window, the predicted-label shares (left) and the drift scores
    (middle: domain classifier AUC, label Jensen-Shannon distance, estimated macro-F1; alarmed windows
    marked); right, each descriptor's KS statistic in the newest window (red: significant)."""
    judged = [h for h in history if h.get("enough")]
    x = np.arange(1, len(judged) + 1)
    with _style():
        fig = Figure(figsize=(15, 4.2))
        shares, scores, shifts = fig.subplots(1, 3, gridspec_kw={"width_ratios": [4, 4, 3]})
        for lab in labels:
            shares.plot(
                x, [h["signals"]["label_shares"].get(lab, 0.0) for h in judged], marker=".", label=lab
            )
        shares.set_title("Predicted label shares per window")
        shares.set_xlabel("window")
        shares.set_ylim(0, 1)
        if labels and judged:
            shares.legend(fontsize=8)
        for key, name in (
            ("domain_auc", "domain AUC"),
            ("label_js", "label JS distance"),
            ("estimated_macro_f1", "estimated macro-F1"),
        ):
            scores.plot(x, [h["signals"].get(key, np.nan) for h in judged], marker=".", label=name)
        for xi, h in zip(x, judged):
            if h.get("window_alarm"):
                scores.axvspan(xi - 0.5, xi + 0.5, color="red", alpha=0.12, lw=0)
        scores.set_title("Drift scores (red: window alarmed)")
        scores.set_xlabel("window")
        if judged:
            scores.legend(fontsize=8)
        newest = judged[-1]["signals"].get("descriptors", {}) if judged else {}
        cut = judged[-1].get("bonferroni_cut") or 0 if judged else 0
        names = list(newest)
        shifts.barh(
            names,
            [newest[n]["ks"] for n in names],
            color=["tab:red" if newest[n]["p_value"] < cut else "tab:gray" for n in names],
        )
        shifts.invert_yaxis()
        shifts.set_title("Descriptor shift, newest window (KS)")
        shifts.set_xlim(0, 1)
        return _save(fig, path)
