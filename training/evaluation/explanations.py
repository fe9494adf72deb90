"""How far to trust the explanations, and a page of them: faithfulness on the frozen test split (ERASER's
comprehensiveness and sufficiency against a random ranking) and `explanations.html`.

Comprehensiveness at k %: the explained label's probability on the text minus its probability once the
top k % of words (by score) are removed; high means the words the explanation ranks first are the ones
the model needs. Sufficiency at k %: the same probability minus the one on the top k % words alone; low
(or negative) means they are enough. Both are reported beside the same figures for a random ranking of
the same texts (seeded), so "0.31 against 0.05" reads at once; AOPC is the mean over the k values
(DeYoung et al. 2020, ERASER).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.model.explain import Explainer, Explanation

PREFIX = "explain_"
# What the gate shows (and with promote.min_comprehensiveness checks), and evaluate logs: comprehensiveness
# at 20 % of the words.
GATE_METRIC = f"{PREFIX}comprehensiveness_20"


def _keep(words: list[str], chosen: set[int], keep: bool) -> str:
    return " ".join(w for i, w in enumerate(words) if (i in chosen) == keep)


def faithfulness(
    explanations: Sequence[Explanation], proba, labels: Sequence[str], ks: Sequence[int], seed: int = 0
) -> dict[str, float]:
    """Comprehensiveness and sufficiency at each k (% of words), for the explanations' ranking and a random
    one. `explanations`: word-level, one per text; `proba(texts) -> probabilities` on preprocessed texts."""
    rng = np.random.default_rng(seed)
    variants: list[str] = []
    rows = []  # (p_full, target, {(ranking, kind, k): variant index})
    for ex in explanations:
        words = [u.text for u in ex.units]
        if not words:
            continue
        order = sorted(range(len(words)), key=lambda i: -ex.units[i].score)
        random_order = rng.permutation(len(words)).tolist()
        slots = {}
        for k in ks:
            m = max(1, math.ceil(k / 100 * len(words)))
            for name, ranking in (("", order), ("_random", random_order)):
                top = set(ranking[:m])
                for kind, keep in (("comprehensiveness", False), ("sufficiency", True)):
                    slots[(name, kind, k)] = len(variants)
                    variants.append(_keep(words, top, keep))
        rows.append((ex.scores[ex.target], labels.index(ex.target), slots))
    if not rows:
        return {f"{PREFIX}texts": 0.0}
    probs = proba(variants)
    sums: dict[str, list[float]] = {}
    for p_full, target, slots in rows:
        for (name, kind, k), j in slots.items():
            sums.setdefault(f"{PREFIX}{kind}_{k}{name}", []).append(p_full - float(probs[j, target]))
    out = {key: float(np.mean(vals)) for key, vals in sums.items()}
    for kind in ("comprehensiveness", "sufficiency"):
        for name in ("", "_random"):
            out[f"{PREFIX}aopc_{kind}{name}"] = float(np.mean([out[f"{PREFIX}{kind}_{k}{name}"] for k in ks]))
    out[f"{PREFIX}texts"] = float(len(rows))
    return out


def sample_indices(n: int, limit: int, seed: int) -> np.ndarray:
    """All of 0..n-1, or a fixed, sorted sample of `limit` of them."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


# --- the page -----------------------------------------------------------------------------------------

TOWARD = (200, 60, 20)  # toward the explained label: orange-red
AGAINST = (25, 100, 200)  # against it: blue


def highlight(ex: Explanation) -> str:
    """The explained text as HTML, each unit's background by its score (strongest unit: most opaque)."""
    peak = max((abs(u.score) for u in ex.units), default=0.0) or 1.0
    parts, at = [], 0
    for u in ex.units:
        parts.append(html.escape(ex.text[at : u.start]))
        rgb = TOWARD if u.score > 0 else AGAINST
        alpha = round(0.85 * abs(u.score) / peak, 3)
        parts.append(
            f'<span class="u" title="{u.score:+.4f}" '
            f'style="background:rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha})">'
            f"{html.escape(u.text)}</span>"
        )
        at = u.end
    parts.append(html.escape(ex.text[at:]))
    return "".join(parts)


def _row(ex: Explanation, true_label: str | None) -> str:
    truth = f"<td>{html.escape(true_label)}</td>" if true_label is not None else "<td></td>"
    return (
        f"<tr><td class='t'>{highlight(ex)}</td>{truth}<td>{html.escape(ex.label)} "
        f"({ex.score:.2f})</td><td>{html.escape(ex.method)}</td></tr>"
    )


def write_page(
    path: Path,
    *,
    title: str,
    sections: Sequence[tuple[str, Sequence[tuple[Explanation, str | None]]]],
    metrics: dict[str, float],
) -> Path:
    """explanations.html: a legend, the faithfulness figures, then one table per section."""
    figures = "".join(
        f"<tr><td>{html.escape(k.removeprefix(PREFIX))}</td><td>{v:.4f}</td></tr>"
        for k, v in sorted(metrics.items())
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<p class='legend'><span style='background:rgba(200,60,20,.7)'>toward the predicted label</span> "
        "<span style='background:rgba(25,100,200,.7)'>against it</span> "
        "(the stronger the colour, the larger the word's share; hover for the score). Texts are shown as "
        "the model read them: spacing corrected, personal data masked.</p>",
        f"<h2>Faithfulness (frozen test split)</h2><table>{figures}</table>",
    ]
    for heading, rows in sections:
        body.append(f"<h2>{html.escape(heading)} ({len(rows)})</h2>")
        if not rows:
            body.append("<p>none</p>")
            continue
        body.append("<table><tr><th>text</th><th>true</th><th>predicted</th><th>method</th></tr>")
        body.extend(_row(ex, truth) for ex, truth in rows)
        body.append("</table>")
    page = (
        "<!doctype html><html lang='ko'><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        ".t{font-size:1.1em}.legend span{padding:2px 6px;margin-right:8px}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def explain_test_split(
    explainer: Explainer,
    texts: Sequence[str],
    y_true: Sequence[str],
    y_pred: Sequence[str],
    *,
    danger_labels: Sequence[str],
    out_dir: Path,
    ks: Sequence[int],
    max_texts: int,
    examples: int,
    seed: int,
    measure: bool = True,
) -> tuple[dict[str, float], Path]:
    """Faithfulness on (a sample of) the test split, and explanations.html with the misclassified texts and
    a sample of danger predictions. Returns (metrics, the page)."""
    proba = lambda batch: explainer.p.predict_proba(list(batch), preprocessed=True)  # noqa: E731
    metrics: dict[str, float] = {}
    if measure:
        idx = sample_indices(len(texts), max_texts, seed)
        exps = [explainer.explain(texts[i], granularity="word") for i in idx]
        metrics = faithfulness(exps, proba, explainer.p.labels, ks, seed)
    wrong = [i for i in range(len(texts)) if y_true[i] != y_pred[i]][:examples]
    danger = [i for i in range(len(texts)) if y_pred[i] in set(danger_labels)]
    danger = [danger[i] for i in sample_indices(len(danger), examples, seed)]
    sections = [
        ("Misclassified test texts", [(explainer.explain(texts[i]), y_true[i]) for i in wrong]),
        ("Danger predictions (sample)", [(explainer.explain(texts[i]), y_true[i]) for i in danger]),
    ]
    page = write_page(
        out_dir / "explanations.html", title="Heara: explanations", sections=sections, metrics=metrics
    )
    return metrics, page
