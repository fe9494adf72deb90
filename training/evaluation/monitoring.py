"""Drift monitoring: the reference a model version is watched against, and one window's signals.

At registration (`heara register`) the model folder gets `monitoring/`: the validation split as the
model saw it (its probabilities, calibrated by a temperature fitted on those rows; its Korean text
descriptors; its embeddings projected by a truncated SVD fitted on the train split) and the validation
macro-F1. It travels with the version, so every served version is judged against its own data.

A window of served predictions (the prediction log's probabilities and masked texts, and the projection
and descriptors the service logged with each prediction: `Logged`; rows without them are computed from
the masked text by `observe`) is compared with that reference, signal by signal:
- prediction drift: predicted-label shares (chi-squared, Jensen-Shannon distance), confidence and
  entropy (Kolmogorov-Smirnov);
- input drift: every Korean descriptor (KS; PSI reported beside it), the embedding projection (MMD
  with a permutation test; a domain classifier's ROC AUC);
- performance without labels: macro-F1 estimated from calibrated probabilities (the CBPE idea), beside
  the reference's own estimate and its measured validation macro-F1.
A window alarms when a test's p-value is below `monitor.alpha` divided by the number of tests run on it
(Bonferroni: the window's false-alarm rate stays within alpha), or a distance crosses its threshold. An
*alarm* needs persistence: `persistence_k` alarmed windows among the last `persistence_m`.
The statistics themselves are in training/evaluation/drift.py, the descriptors in
training/data/descriptors.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.config import MonitorConfig
from training.data.descriptors import DESCRIPTORS, describe
from training.evaluation import drift
from training.model.projection import REFERENCE_ARRAYS as _ARRAYS
from training.model.projection import REFERENCE_DIR, as_stored, from_text, project
from training.pii import mask_pii

_DESCRIPTORS = "descriptors.parquet"
_META = "reference.json"
# Set in reference.json by references that count unknown pieces by id (training.model.encoding.token_counts).
# Older ones counted the string "[UNK]", which KoBERT's tokenizer never returns: their unk_rate is all zeros,
# so a window's real unk_rate is not compared with it (window_signals).
UNK_BY_ID = "unk_counted_by_id"


@dataclass
class Reference:
    """What a model version is watched against (see the module docstring)."""

    labels: list[str]
    temperature: float
    probs: np.ndarray  # calibrated probabilities of the reference rows [n, labels]
    descriptors: pd.DataFrame  # their Korean text descriptors
    projection: np.ndarray  # their embeddings projected [n, dims]
    components: np.ndarray  # [dims, embedding width]: projection = embedding @ components.T
    val_macro_f1: float
    estimated_macro_f1: float  # the estimate on the reference rows themselves (what "no drift" reads)
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, model_dir: Path) -> Path:
        folder = Path(model_dir) / REFERENCE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            folder / _ARRAYS, probs=self.probs, projection=self.projection, components=self.components
        )
        self.descriptors.to_parquet(folder / _DESCRIPTORS, index=False)
        meta = {
            "labels": self.labels,
            "temperature": self.temperature,
            "val_macro_f1": self.val_macro_f1,
            "estimated_macro_f1": self.estimated_macro_f1,
            "rows": int(len(self.probs)),
            **self.extra,
        }
        (folder / _META).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, model_dir: Path) -> Reference | None:
        """The reference saved with a model folder; None for a folder registered without one."""
        folder = Path(model_dir) / REFERENCE_DIR
        if not (folder / _META).is_file():
            return None
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        arrays = np.load(folder / _ARRAYS)
        known = ("labels", "temperature", "val_macro_f1", "estimated_macro_f1", "rows")
        return cls(
            labels=list(meta["labels"]),
            temperature=float(meta["temperature"]),
            probs=arrays["probs"],
            descriptors=pd.read_parquet(folder / _DESCRIPTORS),
            projection=arrays["projection"],
            components=arrays["components"],
            val_macro_f1=float(meta["val_macro_f1"]),
            estimated_macro_f1=float(meta["estimated_macro_f1"]),
            extra={k: v for k, v in meta.items() if k not in known},
        )


def text_descriptors(predictor, texts: list[str], model_texts: list[str]) -> pd.DataFrame:
    """The descriptors of `texts` (as the caller sent them, personal data masked) given what the model
    read (`model_texts`: preprocessed, re-spaced): the tokenizer's counts where the family has one, as
    the service counts them (training.model.encoding.token_counts)."""
    from training.model.encoding import token_counts  # torch: only where a tokenizer counts

    tok = getattr(predictor, "tokenizer", None)
    if tok is None:
        return describe(texts, respaced=model_texts)
    counts = token_counts(tok, model_texts, predictor.max_length)
    return describe(
        texts,
        respaced=model_texts,
        piece_counts=counts.pieces,
        unk_counts=counts.unknown,
        truncated=counts.truncated,
    )


@dataclass
class Logged:
    """What the service logged with a window's predictions (serving.predlog: `projection`, `descriptors`),
    row by row; rows without it are computed by `observe`."""

    projection: np.ndarray  # [n, dims] float32; zeros where not logged
    has_projection: np.ndarray  # bool [n]
    descriptors: pd.DataFrame  # [n, DESCRIPTORS]; NaN where not logged
    has_descriptors: np.ndarray  # bool [n]

    @classmethod
    def from_rows(cls, projections: list | None, descriptors: list | None, n: int, dims: int) -> Logged:
        """From the prediction log's columns (None: the window has no such column). A projection of other
        dimensions than the reference's components, or descriptors lacking one of DESCRIPTORS, count as
        not logged."""
        projection, has_projection = from_text(projections if projections is not None else [None] * n, dims)
        table = np.full((n, len(DESCRIPTORS)), np.nan)
        has_descriptors = np.zeros(n, dtype=bool)
        for i, row in enumerate(descriptors if descriptors is not None else ()):
            if isinstance(row, dict) and all(name in row for name in DESCRIPTORS):
                table[i] = [np.nan if row[name] is None else float(row[name]) for name in DESCRIPTORS]
                has_descriptors[i] = True
        frame = pd.DataFrame(table, columns=list(DESCRIPTORS))
        return cls(projection, has_projection, frame, has_descriptors)

    @property
    def complete(self) -> bool:
        """Every row has both: the window needs no model."""
        return bool(self.has_projection.all() and self.has_descriptors.all())

    def counts(self, computed: bool = True) -> dict[str, dict[str, int]]:
        """Per feature, how many rows use the logged value and how many `observe` computes (0 when the
        window is not `computed`: too few rows to judge)."""
        out = {}
        for name, has in (("projection", self.has_projection), ("descriptors", self.has_descriptors)):
            logged = int(has.sum())
            out[name] = {"logged": logged, "computed": int(len(has) - logged) if computed else 0}
        return out


def observe(
    predictor,
    ref: Reference,
    texts: list[str],
    probs: np.ndarray | None = None,
    *,
    logged: Logged | None = None,
) -> dict[str, Any]:
    """What a window is judged on, from the texts as sent (masked): the model's probabilities (or the
    ones the service logged, `probs`), the descriptors and the embedding projection.

    `logged`: what the service logged per row; only the rows without it are computed (preprocessed and,
    for the projection, run through the model), so `predictor` may be None when `logged.complete` and
    `probs` is given (`logged.counts()` says how many rows were computed).
    """
    n = len(texts)
    if logged is None:
        logged = Logged.from_rows(None, None, n, ref.components.shape[0])
    need_desc, need_proj = ~logged.has_descriptors, ~logged.has_projection
    need = np.flatnonzero(need_desc | need_proj)
    if (len(need) or probs is None) and predictor is None:
        raise ValueError("observe: rows without logged features (or no probabilities) need the model")
    descriptors, projection = logged.descriptors.copy(), logged.projection.copy()
    read = np.arange(n) if probs is None else need  # the rows the model must read
    clean = predictor.preprocessor([texts[i] for i in read]) if len(read) else []
    at = {int(row): j for j, row in enumerate(read)}  # window row -> its place in `clean`
    rows = np.flatnonzero(need_desc)
    if len(rows):
        computed = text_descriptors(predictor, [texts[i] for i in rows], [clean[at[i]] for i in rows])
        descriptors.iloc[rows] = computed[list(DESCRIPTORS)].to_numpy(dtype=float)
    rows = np.flatnonzero(need_proj)
    if len(rows):
        embedded = predictor.embed([clean[at[i]] for i in rows], preprocessed=True)
        projection[rows] = project(embedded, ref.components)
    if probs is None:
        probs = predictor.predict_proba(clean, preprocessed=True)
    return {
        "probs": np.asarray(probs, dtype=np.float32),
        "descriptors": descriptors,
        "projection": projection,
    }


def _label_index(labels: list[str], y: list[str]) -> np.ndarray:
    position = {lab: i for i, lab in enumerate(labels)}
    return np.array([position[v] for v in y], dtype=int)


def build_reference(
    predictor,
    *,
    train_texts: list[str],
    val_texts: list[str],
    val_labels: list[str],
    val_sent_texts: list[str] | None = None,
    cfg: MonitorConfig,
    seed: int = 0,
) -> Reference:
    """The reference of a trained single-label model: `val_texts` as the model read them (preprocessed),
    their labels, and (`val_sent_texts`) the same rows as they were written, for the descriptors that
    look at spacing; without those, the preprocessed texts stand in (spacing then looks perfect)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.metrics import f1_score

    if getattr(predictor, "multilabel", False):
        raise ValueError("drift monitoring's reference is built for single-label models")
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(val_texts))[: cfg.max_reference_rows])
    val_texts = [val_texts[i] for i in keep]
    y = _label_index(predictor.labels, [val_labels[i] for i in keep])
    # Masked as the prediction log masks what it stores: the windows' descriptors are computed on that.
    sent = [mask_pii(val_sent_texts[i]) for i in keep] if val_sent_texts is not None else val_texts
    raw = predictor.predict_proba(val_texts, preprocessed=True)
    logits = drift.logits_from_probs(raw)
    temperature = drift.fit_temperature(logits, y)
    probs = drift.apply_temperature(logits, temperature)

    fit_rows = [train_texts[i] for i in np.sort(rng.permutation(len(train_texts))[: cfg.max_reference_rows])]
    train_emb = predictor.embed(fit_rows, preprocessed=True)
    dims = max(1, min(cfg.projection_dims, train_emb.shape[1] - 1, len(fit_rows) - 1))
    svd = TruncatedSVD(n_components=dims, random_state=seed).fit(train_emb)
    projection = project(predictor.embed(val_texts, preprocessed=True), svd.components_)
    return Reference(
        labels=list(predictor.labels),
        temperature=float(temperature),
        probs=probs.astype(np.float32),
        descriptors=text_descriptors(predictor, sent, val_texts),
        projection=projection,
        components=svd.components_.astype(np.float32),
        val_macro_f1=float(f1_score(y, raw.argmax(1), average="macro", zero_division=0)),
        estimated_macro_f1=float(drift.estimated_macro_f1(probs)["macro_f1"]),
        extra={
            "projection_dims": int(dims),
            "spacing_from_sent_texts": val_sent_texts is not None,
            UNK_BY_ID: True,
        },
    )


def _entropy(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1.0)
    return -(q * np.log(q)).sum(axis=1)


def window_signals(
    ref: Reference,
    *,
    probs: np.ndarray,
    descriptors: pd.DataFrame,
    projection: np.ndarray,
    cfg: MonitorConfig,
    seed: int = 0,
) -> dict[str, Any]:
    """One window's drift signals against `ref`. `probs`: the served probabilities [n, labels] in
    ref.labels order (uncalibrated, as the service answered them). Returns {n, enough, alarm, reasons,
    tests (p-values), signals (every figure), estimated_macro_f1}."""
    n = int(len(probs))
    out: dict[str, Any] = {"n": n, "enough": n >= cfg.min_texts}
    if not out["enough"]:
        return {**out, "alarm": False, "reasons": [f"too few predictions ({n} < monitor.min_texts)"]}
    k = len(ref.labels)
    tests: dict[str, float] = {}
    signals: dict[str, Any] = {}

    ref_counts = np.bincount(ref.probs.argmax(1), minlength=k)
    cur_counts = np.bincount(probs.argmax(1), minlength=k)
    shift = drift.label_shift(ref_counts, cur_counts)
    tests["label_shares"] = shift["p_value"]
    signals["label_js"] = shift["js"]
    signals["label_shares"] = {lab: float(c / n) for lab, c in zip(ref.labels, cur_counts)}
    signals["reference_label_shares"] = {
        lab: float(c / max(ref_counts.sum(), 1)) for lab, c in zip(ref.labels, ref_counts)
    }
    calibrated = drift.apply_temperature(drift.logits_from_probs(probs), ref.temperature)
    for name, ref_v, cur_v in (
        ("confidence", ref.probs.max(1), calibrated.max(1)),
        ("entropy", _entropy(ref.probs), _entropy(calibrated)),
    ):
        stat, p = drift.ks(ref_v, cur_v)
        tests[name] = p
        signals[f"{name}_ks"] = stat
        signals[f"{name}_mean"] = float(np.mean(cur_v))
        signals[f"reference_{name}_mean"] = float(np.mean(ref_v))

    shifts = {}
    for col in DESCRIPTORS:
        if col == "unk_rate" and not ref.extra.get(UNK_BY_ID):
            continue  # the reference counted no unknown piece at all (UNK_BY_ID): nothing to compare with
        a = ref.descriptors[col].to_numpy(dtype=float)
        b = descriptors[col].to_numpy(dtype=float)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if len(a) == 0 or len(b) == 0 or (np.ptp(np.concatenate([a, b])) == 0):
            continue  # not measured on one side, or constant everywhere: nothing to test
        stat, p = drift.ks(a, b)
        tests[f"descriptor:{col}"] = p
        shifts[col] = {
            "ks": stat,
            "p_value": p,
            "psi": drift.psi(a, b),
            "mean": float(b.mean()),
            "reference_mean": float(a.mean()),
        }
    signals["descriptors"] = shifts

    # Both sides at the precision the prediction log stores, whether the rows were logged or computed.
    ref_projection, projection = as_stored(ref.projection), as_stored(projection)
    mmd = drift.mmd_permutation(ref_projection, projection, n_permutations=cfg.mmd_permutations, seed=seed)
    tests["embedding_mmd"] = mmd["p_value"]
    signals["embedding_mmd2"] = mmd["mmd2"]
    domain = drift.domain_classifier_auc(ref_projection, projection, seed=seed)
    signals["domain_auc"] = domain["auc"]
    novelty = np.asarray(domain["novelty"], dtype=float)

    estimate = drift.estimated_macro_f1(calibrated)["macro_f1"]
    signals["estimated_macro_f1"] = estimate
    signals["reference_estimated_macro_f1"] = ref.estimated_macro_f1
    signals["reference_val_macro_f1"] = ref.val_macro_f1

    cut = cfg.alpha / len(tests)
    reasons = [f"{name}: p={p:.2g} < {cut:.2g}" for name, p in sorted(tests.items()) if p < cut]
    if signals["label_js"] > cfg.js_threshold:
        reasons.append(f"label shares: Jensen-Shannon {signals['label_js']:.3f} > {cfg.js_threshold}")
    if signals["domain_auc"] > cfg.auc_threshold:
        reasons.append(f"embeddings: domain classifier AUC {signals['domain_auc']:.3f} > {cfg.auc_threshold}")
    if ref.estimated_macro_f1 - estimate > cfg.f1_drop:
        reasons.append(
            f"estimated macro-F1 {estimate:.3f}, {ref.estimated_macro_f1 - estimate:.3f} below the "
            f"reference's {ref.estimated_macro_f1:.3f}"
        )
    return {
        **out,
        "alarm": bool(reasons),
        "reasons": reasons,
        "tests": tests,
        "bonferroni_cut": cut,
        "signals": signals,
        "novelty": novelty,
    }


def persistence(history: list[bool], cfg: MonitorConfig) -> bool:
    """Whether the newest window raises an alarm: k alarmed windows among the last m (windows with too
    few predictions count as not alarmed)."""
    return drift.persistent_alarm(history, cfg.persistence_k, cfg.persistence_m)
