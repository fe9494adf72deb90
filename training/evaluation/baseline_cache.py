"""The baseline figure the promotion gate holds challengers to, fitted once per split.

`promote.require_beat_baseline` compares every challenger with the TF-IDF + logistic regression
baseline (evaluation/baseline.py) on the same frozen test split. Every promotion scores that same
split, and fitting the baseline takes seconds on the sample and minutes on a large corpus, so its
result is kept in a small JSON file (StatePaths.baseline_cache) keyed by what it depends on: the
content of the train and test splits (data/split.py's `content_hash`, order-independent) and the
baseline's settings. A second promotion on the same split reads the figure; a changed split, a
changed baseline or another scikit-learn version fits it again.

The settings hash covers the fitting function's name, the source of the module that defines it (so
editing the baseline refits without anyone remembering to bump a version here), scikit-learn's
version and any `settings` the caller adds (a config section the baseline reads, say).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from training.data.split import content_hash
from training.evaluation.baseline import tfidf_baseline, tfidf_baseline_multilabel

log = logging.getLogger("heara.pipeline")

MAX_ENTRIES = 32  # one per split the gate has seen; the oldest go first, so the file stays small


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def settings_hash(fit: Callable = tfidf_baseline, settings: dict | None = None) -> str:
    """What the baseline's figure depends on besides the two splits."""
    import sklearn

    from training.config import LinearConfig
    from training.model import linear

    module = sys.modules[fit.__module__]
    name = getattr(fit, "__qualname__", type(fit).__qualname__)  # a function, or a callable object
    return _sha(
        {
            "fit": f"{fit.__module__}.{name}",
            "code": hashlib.sha256(inspect.getsource(module).encode("utf-8")).hexdigest(),
            # the baseline is the linear family with its defaults: its pipeline code and those defaults
            "linear_code": hashlib.sha256(inspect.getsource(linear).encode("utf-8")).hexdigest(),
            "linear_defaults": LinearConfig().model_dump(),
            "sklearn": sklearn.__version__,
            "settings": settings or {},
        }
    )


def _read(cache_file: Path) -> dict:
    if not cache_file.exists():
        return {}
    try:
        entries = json.loads(cache_file.read_text(encoding="utf-8"))
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError) as exc:  # a cache is never worth failing a promotion for: refit
        log.warning("baseline cache %s unreadable (%s): fitting the baseline again", cache_file, exc)
        return {}


def _write(cache_file: Path, entries: dict) -> None:
    """Whole-file replace: a reader never sees half a file; of two promotions writing at once, the
    last one's entries win and the other's split is fitted again next time."""
    keep = dict(sorted(entries.items(), key=lambda kv: kv[1].get("fitted_at", ""))[-MAX_ENTRIES:])
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(keep, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, cache_file)


def cached_baseline(
    train: pd.DataFrame,
    test: pd.DataFrame,
    cache_file: Path,
    *,
    fit: Callable[[pd.DataFrame, pd.DataFrame], dict] | None = None,
    settings: dict | None = None,
    multilabel: bool = False,
    val: pd.DataFrame | None = None,
) -> dict:
    """`fit(train, test)`'s result (`test_macro_f1` and the rest), from `cache_file` when the same
    splits and settings were fitted before. Adds `cached` (whether it was read) and the three hashes.
    `fit` defaults to the TF-IDF baseline of the task type (`multilabel`: one-vs-rest, its thresholds
    tuned on `val`, whose content is then part of the key)."""
    kwargs: dict = {}
    if fit is None and multilabel:
        fit, kwargs = tfidf_baseline_multilabel, {"val": val}
        settings = {**(settings or {}), "val_sha256": content_hash(val) if val is not None else None}
    fit = fit or tfidf_baseline
    keys = {
        "train_sha256": content_hash(train),
        "test_sha256": content_hash(test),
        "settings_sha256": settings_hash(fit, settings),
    }
    key = _sha(keys)
    entries = _read(cache_file)
    if key in entries:
        hit = entries[key]
        log.info(
            "baseline: reusing the cached macro-F1 %.4f of this split (fitted %s; %s)",
            hit["result"]["test_macro_f1"],
            hit["fitted_at"],
            cache_file,
        )
        return {**hit["result"], **keys, "cached": True}
    result = fit(train, test, **kwargs)
    log.info(
        "baseline: fitted on %s train rows, test macro-F1 %.4f (cached in %s)",
        result.get("train_rows", len(train)),
        result["test_macro_f1"],
        cache_file,
    )
    entries[key] = {
        **keys,
        "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "result": result,
    }
    _write(cache_file, entries)
    return {**result, **keys, "cached": False}
