"""Korean text preprocessing: one `Preprocessor` used by training, batch prediction and serving.

Steps (each switchable in params.yaml `preprocess`): NFC -> whitespace/control characters ->
personal-data masking -> repeated-character squeezing -> regex rules -> spacing correction.
The object is built once (the spacing model loads in its constructor) and then called on lists
of texts with no file I/O, so serving can call it on every request.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Sequence

import pandas as pd

from training.config import PreprocessConfig
from training.data.validate import QUARANTINE_COLUMNS
from training.pii import PLACEHOLDERS, mask_pii

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = re.compile(r"\s+")


def normalize_nfc(text: str) -> str:
    """NFC: composes Hangul decomposed into jamo (macOS file names, some exports)."""
    return unicodedata.normalize("NFC", text)


def clean_whitespace(text: str) -> str:
    """Drop control and zero-width characters, turn every whitespace run into one space."""
    text = text.translate(_ZERO_WIDTH)
    text = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
        for c in text
        if unicodedata.category(c) != "Cf"
    )
    return _SPACES.sub(" ", text).strip()


def make_squeezer(max_repeat: int) -> Callable[[str], str]:
    """ㅋㅋㅋㅋㅋ -> ㅋㅋ, !!!!! -> !! (digits are left alone: 1000 stays 1000)."""
    pattern = re.compile(r"([^\d\s])\1{%d,}" % max_repeat)
    return lambda text: pattern.sub(lambda m: m.group(1) * max_repeat, text)


class Spacer:
    """Spacing correction backends: `kiwi` (default), `pykospacing` (if installed), `none`."""

    def __init__(self, backend: str, reset: bool = True) -> None:
        self.backend = backend
        self.reset = reset
        if backend == "kiwi":
            from kiwipiepy import Kiwi

            self._kiwi = Kiwi(num_workers=2)
        elif backend == "pykospacing":
            try:
                from pykospacing import Spacing
            except ImportError:
                raise RuntimeError(
                    "preprocess.spacing is 'pykospacing' but the package is not installed; install it "
                    "from its repository (pip install git+https://github.com/haven-jeon/PyKoSpacing.git) "
                    "or choose 'kiwi'"
                ) from None
            self._pyko = Spacing()
        elif backend != "none":
            raise ValueError(f"unknown spacing backend '{backend}' (kiwi, pykospacing, none)")

    def __call__(self, texts: Sequence[str]) -> list[str]:
        if self.backend == "none" or not texts:
            return list(texts)
        if self.backend == "kiwi":
            if len(texts) == 1:
                return [self._kiwi.space(texts[0], reset_whitespace=self.reset)]
            return list(self._kiwi.space(list(texts), reset_whitespace=self.reset))
        return [self._pyko(t.replace(" ", "") if self.reset else t) for t in texts]


class Preprocessor:
    """Callable: list of raw texts -> list of preprocessed texts, per `PreprocessConfig`."""

    def __init__(self, cfg: PreprocessConfig) -> None:
        self.cfg = cfg
        per_text: list[tuple[str, Callable[[str], str]]] = []
        if cfg.nfc:
            per_text.append(("nfc", normalize_nfc))
        if cfg.clean_whitespace:
            per_text.append(("whitespace", clean_whitespace))
        if cfg.mask_pii:
            per_text.append(("mask_pii", mask_pii))
        if cfg.squeeze_repeats:
            per_text.append(("squeeze_repeats", make_squeezer(cfg.max_repeat)))
        if cfg.regex_rules:
            rules = [(re.compile(r.pattern), r.replace) for r in cfg.regex_rules]

            def apply_rules(text: str) -> str:
                for pattern, repl in rules:
                    text = pattern.sub(repl, text)
                return _SPACES.sub(" ", text).strip()

            per_text.append(("regex_rules", apply_rules))
        self.steps: list[tuple[str, Callable[[list[str]], list[str]]]] = [
            (name, lambda texts, f=f: [f(t) for t in texts]) for name, f in per_text
        ]
        if cfg.spacing != "none":
            self.steps.append((f"spacing_{cfg.spacing}", Spacer(cfg.spacing, cfg.spacing_reset)))

    @property
    def step_names(self) -> list[str]:
        return [name for name, _ in self.steps]

    def __call__(self, texts: Sequence[str]) -> list[str]:
        out = list(texts)
        for _, step in self.steps:
            out = step(out)
        return out

    def run_timed(self, texts: Sequence[str]) -> tuple[list[str], dict[str, float]]:
        """Like __call__, also returning seconds spent per step (for `heara bench preprocess`)."""
        out, timings = list(texts), {}
        for name, step in self.steps:
            t0 = time.perf_counter()
            out = step(out)
            timings[name] = time.perf_counter() - t0
        return out, timings


def preprocess_frame(
    df: pd.DataFrame,
    pre: Preprocessor,
    *,
    dedup: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Preprocess the `text` column of valid rows, then deduplicate exact repeats.

    Returns (clean rows, quarantined rows, report). Same text + same label: the first row is kept,
    later ones are quarantined as duplicates. Same text + different labels (texts that became equal
    only after normalisation): all are quarantined. Texts that become empty are quarantined.
    """
    out = df.copy()
    out["original_text"] = out["text"]
    out["text"] = pre(out["text"].tolist())
    changed = int((out["text"] != out["original_text"]).sum())
    report: dict = {
        "rows_in": int(len(df)),
        "steps": pre.step_names,
        "texts_changed": changed,
        "masked_pii": int(out["text"].str.contains("|".join(map(re.escape, PLACEHOLDERS))).sum()),
    }
    q: list[pd.DataFrame] = []

    def quarantine(rows: pd.DataFrame, reasons: list[str] | str) -> None:
        if len(rows):
            r = rows.assign(text=rows["original_text"]).reindex(columns=QUARANTINE_COLUMNS[:5])
            q.append(r.assign(stage="preprocess", reason=reasons))

    empty = out["text"].str.strip() == ""
    quarantine(out[empty], "empty after preprocessing")
    out = out[~empty]
    report["empty_after_preprocessing"] = int(empty.sum())

    report["duplicates_removed"] = 0
    report["conflicts_after_normalisation"] = 0
    if dedup:
        n_labels = out.groupby("text")["label"].transform("nunique")
        conflict = n_labels > 1
        quarantine(out[conflict], "conflicting labels once normalised (texts equal after preprocessing)")
        report["conflicts_after_normalisation"] = int(conflict.sum())
        out = out[~conflict]
        first_id = out.groupby("text")["id"].transform("first")
        dup = out["text"].duplicated(keep="first")
        quarantine(out[dup], [f"duplicate of {i} after normalisation" for i in first_id[dup]])
        report["duplicates_removed"] = int(dup.sum())
        out = out[~dup]
    report["rows_out"] = int(len(out))
    quarantined = pd.concat(q, ignore_index=True) if q else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return out.drop(columns=["original_text"]).reset_index(drop=True), quarantined, report
