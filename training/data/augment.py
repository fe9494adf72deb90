"""Augment the train split: EDA over Korean morphemes and AEDA punctuation insertion.

Our own implementation rather than koeda's augmenters: koeda tokenises through KoNLPy (Java) and
joins morphemes with spaces, which produces text no speaker would say ("할머니 가 밥 을"). Here Kiwi
analyses the text and `Kiwi.join` rebuilds it, so particles agree with a replaced noun
(할머니가 -> 할아버지가, 물을 -> 음료를). Synonyms come from the Korean WordNet that koeda ships
(`koeda/corpora/wordnet.json`, MIT), read as data; without it SR and RI are skipped.

- eda_sr: replace nouns with WordNet synonyms;  eda_ri: insert a synonym of a noun as a new word;
- eda_rs: swap two words;  eda_rd: delete each word with probability p;  aeda: insert punctuation.

Deterministic: each augmented row draws from a generator seeded by (seed, source id, index).
Augmented rows carry `source_id` and `aug_method`; only the train split is ever augmented.

An augmented text is new: it never equals a train text, another augmented text, or a val or test
text. The last matters most: EDA on a train row can rebuild a held-out sentence word for word
(deleting 빨리 from "빨리 와 주세요" when "와 주세요" is in test), and the model would then be scored on
a sentence it was trained on. "Equal" ignores spaces, case and Unicode composition (`same_text_key`),
because the preprocessor re-spaces text anyway. A candidate that collides is regenerated with the
next method; a row with no new candidate left is counted in `could_not_augment`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import pandas as pd

from training.config import AugmentConfig
from training.data.labels import label_counts, row_labels

AEDA_PUNCT = (".", ",", "!", "?", ";", ":")
_NOUN_TAGS = {"NNG"}


@lru_cache(maxsize=1)
def load_synonyms() -> dict[str, tuple[str, ...]]:
    """Noun -> single-word synonyms from the Korean WordNet shipped in the koeda package."""
    spec = importlib.util.find_spec("koeda")  # locate the data without importing koeda (and KoNLPy)
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "corpora" / "wordnet.json"
    if not path.exists():
        return {}
    wn = json.loads(path.read_text(encoding="utf-8"))
    synsets = wn["synsets"]
    table: dict[str, tuple[str, ...]] = {}
    for lemma, ids in wn["lemmas"].items():
        syns: set[str] = set()
        for sid in ids:
            # Very broad synsets (dozens of lemmas) are mostly noise for a short utterance.
            if sid.endswith("-n") and sid in synsets and len(synsets[sid]["lemmas"]) <= 8:
                syns.update(w for w in synsets[sid]["lemmas"] if w != lemma and " " not in w and "_" not in w)
        if syns:
            table[lemma] = tuple(sorted(syns))
    return table


class Augmenter:
    """Text-level augmentation operations; `augment(text, method, rng)` returns the new text."""

    def __init__(self, cfg: AugmentConfig, synonyms: dict[str, tuple[str, ...]] | None = None) -> None:
        from kiwipiepy import Kiwi

        self.cfg = cfg
        self.kiwi = Kiwi(num_workers=1)
        self.synonyms = load_synonyms() if synonyms is None else synonyms

    def _nouns_with_synonyms(self, tokens) -> list[int]:
        return [i for i, t in enumerate(tokens) if t.tag in _NOUN_TAGS and t.form in self.synonyms]

    def eda_sr(self, text: str, rng: random.Random) -> str:
        tokens = self.kiwi.tokenize(text)
        cands = self._nouns_with_synonyms(tokens)
        if not cands:
            return text
        n = max(1, round(self.cfg.eda.alpha_sr * len(tokens)))
        morphs: list = list(tokens)
        for i in rng.sample(cands, min(n, len(cands))):
            morphs[i] = (rng.choice(self.synonyms[tokens[i].form]), tokens[i].tag)
        return self.kiwi.join(morphs)

    def eda_ri(self, text: str, rng: random.Random) -> str:
        tokens = self.kiwi.tokenize(text)
        cands = self._nouns_with_synonyms(tokens)
        words = text.split()
        if not cands:
            return text
        for _ in range(max(1, round(self.cfg.eda.alpha_ri * len(words)))):
            word = rng.choice(self.synonyms[tokens[rng.choice(cands)].form])
            words.insert(rng.randint(0, len(words)), word)
        return " ".join(words)

    def eda_rs(self, text: str, rng: random.Random) -> str:
        words = text.split()
        if len(words) < 2:
            return text
        for _ in range(max(1, round(self.cfg.eda.alpha_rs * len(words)))):
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
        return " ".join(words)

    def eda_rd(self, text: str, rng: random.Random) -> str:
        words = text.split()
        if len(words) < 2:
            return text
        kept = [w for w in words if rng.random() >= self.cfg.eda.p_rd]
        if len(kept) == len(words):  # delete at least one word, or the row would be a copy
            kept.pop(rng.randrange(len(kept)))
        return " ".join(kept or [rng.choice(words)])

    def aeda(self, text: str, rng: random.Random) -> str:
        words = text.split()
        for _ in range(rng.randint(1, max(1, len(words) // 3))):
            words.insert(rng.randint(0, len(words)), rng.choice(AEDA_PUNCT))
        return " ".join(words)

    def augment(self, text: str, method: str, rng: random.Random) -> str:
        return getattr(self, method)(text, rng)


def plan_targets(counts: dict[str, int], cfg: AugmentConfig, multilabel: bool = False) -> dict[str, int]:
    """Final row count per class: per-class multipliers, or a target balance against the largest class.

    Multi-label rows are grouped by their label set ("기쁨|놀람"): an augmented row keeps every label of
    its source, and a set's multiplier is the largest of its labels' multipliers."""
    if cfg.target_balance is not None:
        top = max(counts.values())
        return {lab: max(n, math.ceil(top * cfg.target_balance)) for lab, n in counts.items()}
    return {
        lab: max(n, round(n * max(cfg.multipliers.get(x, 1.0) for x in row_labels(lab, multilabel))))
        for lab, n in counts.items()
    }


def augment_plan(n_rows: int, extra: int, seed: int, label: str) -> list[tuple[int, int]]:
    """How `extra` augmented rows of one class are spread over its `n_rows` rows (sorted by id): (row
    position, rows made from it), in the order they are made. A seeded shuffle picks which rows get one
    more when `extra` does not divide evenly."""
    order = random.Random(f"{seed}:{label}").sample(range(n_rows), n_rows)
    return [(pos, extra // n_rows + (1 if rank < extra % n_rows else 0)) for rank, pos in enumerate(order)]


def fewer_augmented(train: pd.DataFrame, cfg: AugmentConfig, multilabel: bool = False) -> pd.DataFrame:
    """The train rows that augmenting with `cfg` would give, taken from a train split augmented with
    larger multipliers (what a sweep trial trains on when it samples smaller ones, without running
    Kiwi again): the original rows and, of each source row's augmented rows `<id>#aug0`, `#aug1`, ...,
    as many as `cfg`'s plan gives it. Each augmented text comes from a generator seeded by (seed, source
    id, index), so these are the rows `augment_frame` would make with `cfg` (unless a collision with an
    earlier text changed one). A class asking for more rows than were prepared keeps all it has."""
    if "aug_method" not in train:
        return train
    is_original = train["aug_method"] == "original"
    original = train[is_original]
    counts = {lab: int(n) for lab, n in original["label"].value_counts().items()}
    quota: dict[str, int] = {}
    for label, target in (plan_targets(counts, cfg, multilabel) if cfg.enabled else counts).items():
        rows = original[original["label"] == label].sort_values("id")
        for pos, n in augment_plan(len(rows), target - counts[label], cfg.seed, label):
            quota[str(rows.iloc[pos]["id"])] = n
    index = pd.to_numeric(train["id"].astype(str).str.rsplit("#aug", n=1).str[-1], errors="coerce")
    allowed = train["source_id"].astype(str).map(quota).fillna(0)
    return train[is_original | (index < allowed)]


def same_text_key(text: str) -> str:
    """What two texts share when they are the same sentence: NFC, case-folded, no whitespace."""
    return "".join(unicodedata.normalize("NFC", text).casefold().split())


def augment_frame(
    train: pd.DataFrame,
    cfg: AugmentConfig,
    augmenter: Augmenter | None = None,
    held_out: Iterable[str] = (),
    *,
    multilabel: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Train rows -> train rows plus augmented rows (with `source_id`, `aug_method`), and a report.

    `held_out`: the val and test texts, which no augmented text may equal (see the module docstring).
    `multilabel`: the label column holds label sets; each set is a group (see `plan_targets`).
    """
    out = train.copy()
    out["source_id"] = out["id"]
    out["aug_method"] = "original"
    counts = {lab: int(n) for lab, n in train["label"].value_counts().sort_index().items()}
    report: dict = {
        "enabled": cfg.enabled,
        "seed": cfg.seed,
        "methods": list(cfg.methods),
        "per_class_before": counts,
    }
    if not cfg.enabled or not len(train):
        report.update(per_class_after=counts, added=0, by_method={}, rows_after=int(len(out)))
        if multilabel:
            report["per_class_before"] = report["per_class_after"] = dict(
                sorted(label_counts(train["label"], True).items())
            )
        return out, report
    augmenter = augmenter or Augmenter(cfg)
    methods = [m for m in cfg.methods if augmenter.synonyms or m not in ("eda_sr", "eda_ri")]
    if len(methods) < len(cfg.methods):
        report["skipped_methods"] = sorted(set(cfg.methods) - set(methods)) + ["(no Korean WordNet found)"]
    targets = plan_targets(counts, cfg, multilabel)
    seen = {same_text_key(t) for t in train["text"]}
    held = {same_text_key(t) for t in held_out}
    report["held_out_texts"] = len(held)
    new_rows, failed, held_out_hits = [], 0, 0
    for label, target in targets.items():
        extra = target - counts[label]
        if extra <= 0:
            continue
        rows = train[train["label"] == label].sort_values("id")
        for pos, count in augment_plan(len(rows), extra, cfg.seed, label):
            src = rows.iloc[pos]
            for k in range(count):
                rng = random.Random(f"{cfg.seed}:{src['id']}:{k}")
                start = rng.randrange(len(methods))
                for attempt in range(len(methods)):
                    method = methods[(start + attempt) % len(methods)]
                    text = augmenter.augment(src["text"], method, rng).strip()
                    key = same_text_key(text)
                    if key in held:
                        held_out_hits += 1
                    elif text and key not in seen:
                        break
                else:
                    failed += 1
                    continue
                seen.add(key)
                new_rows.append(
                    {
                        **src.to_dict(),
                        "id": f"{src['id']}#aug{k}",
                        "text": text,
                        "source_id": src["id"],
                        "aug_method": method,
                    }
                )
    aug = pd.DataFrame(new_rows, columns=out.columns)
    if "text_hash" in aug and len(aug):
        from training.data.split import text_hash

        aug["text_hash"] = aug["text"].map(text_hash)
    result = pd.concat([out, aug], ignore_index=True)
    after = result["label"].value_counts()
    report.update(
        targets=targets,
        added=int(len(aug)),
        could_not_augment=failed,
        rejected_as_held_out=held_out_hits,
        by_method={k: int(v) for k, v in aug["aug_method"].value_counts().items()} if len(aug) else {},
        per_class_after={lab: int(after.get(lab, 0)) for lab in counts},
    )
    report["rows_after"] = int(len(result))
    if multilabel:  # per label, as every other report counts them; the label sets (the groups) beside
        report["per_label_set_before"] = report["per_class_before"]
        report["per_label_set_after"] = report["per_class_after"]
        report["per_class_before"] = dict(sorted(label_counts(train["label"], True).items()))
        report["per_class_after"] = dict(sorted(label_counts(result["label"], True).items()))
    return result, report
