"""Explanations: which words (eojeol) or morphemes of an utterance drove the model's score for a label.

Every family gets an explanation in the same shape (`Explanation`: the text the model read, the
prediction, and per unit its character span, its text and a signed score for the explained label):
- transformers: Layer Integrated Gradients on the input embeddings (`IntegratedGradients`): the path
  from a reference input (every piece replaced by [PAD] or [MASK], [CLS]/[SEP] kept) to the text, in
  `explain.n_steps` midpoint steps batched into few forward/backward passes; a piece's score is its
  embedding difference times the averaged gradient of the label's probability, so the scores add up
  to p(text) - p(reference) (the `convergence_delta` says how closely). Written here rather than taken
  from Captum: the method is twenty lines on `inputs_embeds`, and Captum would add a dependency for
  them;
- `linear`: exact contributions (`LinearContributions`): each TF-IDF feature's value times its
  (class-centred) coefficient, shared among the characters of its n-gram occurrences; they add up to
  the label's centred logit minus its intercept;
- any model: occlusion (`Occlusion`), morpheme by morpheme through Kiwi, within a fixed budget of
  forward passes and deterministic given a seed.

Each method scores characters of the model's text first; a unit's score is the sum over its characters,
so words and morphemes come from the same scores. KoBERT's tokenizer has no offset mapping: the pieces'
characters are found here (`piece_chars`) from SentencePiece's byte offsets, word by word. The text
explained is the preprocessed one (spacing corrected, personal data masked): the spans index it.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.config import ExplainConfig
from training.model.base import to_proba

_WORD = re.compile(r"\S+")


class ExplainError(ValueError):
    """This explainer cannot explain this text (e.g. a tokenizer whose pieces cannot be placed)."""


@dataclass
class Unit:
    """One word or morpheme: its characters [start, end) in the explained text and its signed score
    (positive: toward the explained label)."""

    text: str
    start: int
    end: int
    score: float
    tag: str | None = None  # the morpheme's part of speech (Kiwi's tag); None for words


@dataclass
class Explanation:
    text: str  # what the model read: the preprocessed utterance (spans index it)
    label: str  # the predicted label
    score: float  # its probability
    scores: dict[str, float]
    target: str  # the label explained (the predicted one unless another was asked for)
    method: str
    granularity: str
    units: list[Unit]
    truncated: bool = False  # the text was longer than the model's max_length: the tail scored 0
    convergence_delta: float | None = None  # IG: sum of scores - (p(text) - p(reference))
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["units"] = [{k: v for k, v in u.items() if v is not None or k != "tag"} for u in out["units"]]
        return out


# --- units ---------------------------------------------------------------------------------------------


def word_spans(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, None) of each eojeol (whitespace-separated word)."""
    return [(m.start(), m.end(), None) for m in _WORD.finditer(text)]


_KIWI = None
_KIWI_LOCK = threading.Lock()


def morpheme_spans(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, tag) of each morpheme Kiwi finds (one Kiwi per process, built on first use)."""
    global _KIWI
    with _KIWI_LOCK:
        if _KIWI is None:
            from kiwipiepy import Kiwi

            _KIWI = Kiwi(num_workers=-1)  # analyse in the calling thread
        tokens = _KIWI.tokenize(text)
    # Kiwi's morphemes can share a syllable (넘어졌 = 넘어지/VV + 었/EP, both covering 졌): each character
    # goes to one unit, and a morpheme left with none joins the one before (넘어졌, VV+EP).
    spans: list[tuple[int, int, str | None]] = []
    for t in tokens:
        start, end = int(t.start), int(t.start + t.len)
        if spans:
            start = max(start, spans[-1][1])
        if end > start and text[start:end].strip():
            spans.append((start, end, str(t.tag)))
        elif spans and end > spans[-1][0] and int(t.start) < spans[-1][1]:
            s0, e0, tag0 = spans[-1]
            spans[-1] = (s0, max(e0, end), f"{tag0}+{t.tag}")
    return spans


def spans_for(text: str, granularity: str) -> list[tuple[int, int, str | None]]:
    if granularity == "word":
        return word_spans(text)
    if granularity == "morpheme":
        return morpheme_spans(text)
    raise ValueError(f"granularity must be 'word' or 'morpheme' (got {granularity!r})")


def units_from_chars(
    text: str, chars: np.ndarray, spans: Sequence[tuple[int, int, str | None]]
) -> list[Unit]:
    """Sum per-character scores into units."""
    return [Unit(text[s:e], s, e, float(chars[s:e].sum()), tag) for s, e, tag in spans]


def spread(chars: np.ndarray, positions: Sequence[int], value: float) -> None:
    """Add `value` to `chars`, shared evenly among `positions`."""
    if len(positions):
        chars[np.asarray(positions, dtype=np.int64)] += value / len(positions)


# --- where a KoBERT (or fast Hugging Face) tokenizer's pieces lie in the text --------------------------


def _kobert_word_pieces(tok, word: str) -> tuple[list[int], list[list[int]]]:
    """Piece ids of one whitespace-free word and, per piece, the word's character positions it covers."""
    from training.model.tokenizer import preprocess_text

    ids = tok.piece_ids([word])[0]
    options = tok.options
    processed, owner = [], []
    for i, ch in enumerate(word):  # what XLNet's preprocessing makes of each character (NFKD, no marks)
        out = preprocess_text(
            ch, remove_space=False, **{k: v for k, v in options.items() if k != "remove_space"}
        )
        processed.append(out)
        owner.extend([i] * len(out))
    joined = "".join(processed)
    everywhere = [list(range(len(word)))] * len(ids)
    if joined != preprocess_text(word, **options):  # `` -> " and the like: place pieces by word only
        return ids, everywhere
    proto = tok.sp.encode(joined, return_type="proto")  # pieces with byte offsets into `joined`
    if len(proto.pieces) != len(ids):  # digit-comma re-splitting changed the pieces: word only
        return ids, everywhere
    byte_to_char = []
    for j, ch in enumerate(joined):
        byte_to_char.extend([j] * len(ch.encode("utf-8")))
    spans: list[list[int]] = []
    for piece in proto.pieces:
        chars = sorted({owner[byte_to_char[b]] for b in range(piece.begin, piece.end)})
        spans.append(chars or list(range(len(word))))  # a lone "▁" stands for the whole word
    return ids, spans


def piece_chars(tokenizer, text: str) -> tuple[list[int], list[list[int]]]:
    """Piece ids of `text` without special tokens and, per piece, the positions of `text`'s characters it
    covers. KoBERT: word by word (SentencePiece pieces never cross a space), checked against the whole
    text's pieces; a fast Hugging Face tokenizer: its offset mapping. ExplainError when neither fits."""
    from training.model.tokenizer import KoBertTokenizer

    if isinstance(tokenizer, KoBertTokenizer):
        ids: list[int] = []
        chars: list[list[int]] = []
        for start, end, _ in word_spans(text):
            word_ids, word_chars = _kobert_word_pieces(tokenizer, text[start:end])
            ids.extend(word_ids)
            chars.extend([[start + c for c in cs] for cs in word_chars])
        if ids != tokenizer.piece_ids([text])[0]:
            raise ExplainError("the tokenizer's pieces of the whole text differ from its pieces word by word")
        return ids, chars
    inner = getattr(tokenizer, "tokenizer", tokenizer)  # HFTokenizer wraps the transformers tokenizer
    if not getattr(inner, "is_fast", False):
        raise ExplainError("a slow Hugging Face tokenizer has no offset mapping")
    enc = inner(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = [[i for i in range(s, e) if not text[i].isspace()] for s, e in enc["offset_mapping"]]
    return list(enc["input_ids"]), spans


# --- the explainers ----------------------------------------------------------------------------------


ProbaFn = Callable[[list[str]], np.ndarray]  # preprocessed texts -> probabilities [n, labels]


class IntegratedGradients:
    """Layer Integrated Gradients on the input embeddings of a Hugging Face sequence classifier."""

    method = "integrated_gradients"

    def __init__(self, predictor, cfg: ExplainConfig) -> None:
        self.p = predictor
        self.cfg = cfg
        tok = predictor.tokenizer
        ref = tok.pad_token_id if cfg.baseline == "pad" else getattr(tok, "mask_token_id", None)
        if ref is None:
            raise ExplainError(f"the tokenizer has no {cfg.baseline} token for the reference input")
        self.reference_id = int(ref)

    def char_scores(self, text: str, target: int) -> tuple[np.ndarray, dict[str, Any]]:
        import torch

        tok, model = self.p.tokenizer, self.p.model
        ids, chars = piece_chars(tok, text)
        enc = tok([text], max_length=self.p.max_length, truncation=True)
        full = list(enc["input_ids"][0])
        kept = min(len(ids), max(0, self.p.max_length - 2))
        if full[1 : 1 + kept] != ids[:kept]:
            raise ExplainError("the model input does not hold the text's pieces in place")
        device = self.p.device
        input_ids = torch.tensor([full], device=device)
        reference = input_ids.clone()
        reference[0, 1 : 1 + kept] = self.reference_id
        extra = {"attention_mask": torch.ones_like(input_ids)}
        if "token_type_ids" in enc:
            extra["token_type_ids"] = torch.zeros_like(input_ids)
        embed = model.get_input_embeddings()
        n, length = self.cfg.n_steps, len(full)
        per_pass = max(1, self.cfg.max_tokens_per_pass // length)
        with torch.no_grad():
            x, x0 = embed(input_ids), embed(reference)
            ends = model(inputs_embeds=torch.cat([x, x0]), **{k: v.expand(2, -1) for k, v in extra.items()})
            p_text, p_ref = to_proba(ends.logits.float(), self.p.multilabel)[:, target].tolist()
        diff = x - x0
        grad_sum = torch.zeros_like(x, dtype=torch.float32)
        alphas = (torch.arange(n, dtype=torch.float32, device=device) + 0.5) / n  # midpoint rule
        with torch.enable_grad():
            for lo in range(0, n, per_pass):
                a = alphas[lo : lo + per_pass].to(x.dtype).view(-1, 1, 1)
                path = (x0 + a * diff).detach().requires_grad_(True)
                b = path.shape[0]
                logits = model(inputs_embeds=path, **{k: v.expand(b, -1) for k, v in extra.items()}).logits
                prob = to_proba(logits.float(), self.p.multilabel)[:, target].sum()
                (grad,) = torch.autograd.grad(prob, path)
                grad_sum += grad.float().sum(0, keepdim=True)
        per_token = (diff.float() * grad_sum / n).sum(-1)[0].cpu().numpy()
        scores = np.zeros(len(text), dtype=np.float64)
        for j in range(kept):
            spread(scores, chars[j], float(per_token[1 + j]))
        total = float(per_token[1 : 1 + kept].sum())
        info = {
            "truncated": kept < len(ids),
            "convergence_delta": total - (p_text - p_ref),
            "reference_score": p_ref,
        }
        return scores, info


class LinearContributions:
    """Exact contributions of the linear family: TF-IDF value x centred coefficient, per character."""

    method = "linear"

    def __init__(self, predictor) -> None:
        self.p = predictor
        pipe = predictor.pipe
        self.vec = pipe.named_steps["tfidf"]
        lr = pipe.named_steps["logreg"]
        self.vocab = self.vec.vocabulary_
        if getattr(predictor, "multilabel", False):
            # One-vs-rest: each label has its own logit (a sigmoid, no shared softmax), so its own
            # coefficients, uncentred; a label constant in training has none (all zero).
            width = len(self.vocab)
            self.coef = np.vstack(
                [
                    np.ravel(est.coef_).astype(np.float64) if hasattr(est, "coef_") else np.zeros(width)
                    for est in lr.estimators_
                ]
            )
            self.row = {str(lab): j for j, lab in enumerate(pipe.heara_labels_)}
        else:
            coef = np.asarray(lr.coef_, dtype=np.float64)
            if coef.shape[0] == 1:  # binary: scikit-learn keeps the second class's logit only
                coef = np.vstack([np.zeros_like(coef), coef])
            self.coef = coef - coef.mean(axis=0, keepdims=True)  # softmax is unchanged by a shared shift
            self.row = {str(c): j for j, c in enumerate(lr.classes_)}
        self.analyzer = self.vec.build_analyzer()

    def occurrences(self, text: str) -> list[tuple[str, list[int]]]:
        """Every n-gram the vectorizer counts in `text`, with the text's character positions it covers."""
        v = self.vec
        low = text.lower() if v.lowercase else text
        if len(low) != len(text):
            raise ExplainError("lower-casing changed the text's length")
        n_min, n_max = v.ngram_range
        out: list[tuple[str, list[int]]] = []
        if v.analyzer == "char_wb":
            for start, end, _ in word_spans(low):
                padded = " " + low[start:end] + " "
                for n in range(n_min, n_max + 1):
                    last = max(0, len(padded) - n)
                    for off in range(0, last + 1):
                        covered = [start + i - 1 for i in range(off, off + n) if 0 < i < len(padded) - 1]
                        out.append((padded[off : off + n], covered or list(range(start, end))))
                    if last == 0:  # scikit-learn counts a word shorter than n once, then stops
                        break
        elif v.analyzer == "char":
            squeezed = re.sub(r"\s\s+", " ", low)
            if squeezed != low:
                raise ExplainError("the text has runs of whitespace")
            for n in range(n_min, n_max + 1):
                for off in range(0, len(low) - n + 1):
                    covered = [i for i in range(off, off + n) if not low[i].isspace()]
                    if not covered:  # the n-gram " " (a space): its neighbours carry it
                        covered = [
                            j for j in (off - 1, off + n) if 0 <= j < len(low) and not low[j].isspace()
                        ]
                    out.append((low[off : off + n], covered or list(range(len(low)))))
        elif v.analyzer == "word" and v.tokenizer is None and v.stop_words is None:
            tokens = [(m.group(), m.start(), m.end()) for m in re.finditer(v.token_pattern, low)]
            for n in range(n_min, n_max + 1):
                for i in range(0, len(tokens) - n + 1):
                    gram = tokens[i : i + n]
                    covered = [c for _, s, e in gram for c in range(s, e)]
                    out.append((" ".join(t for t, _, _ in gram), covered))
        else:
            raise ExplainError(f"analyzer {v.analyzer!r} is not supported for exact contributions")
        if Counter(g for g, _ in out) != Counter(self.analyzer(text)):
            raise ExplainError("the n-grams found here differ from the vectorizer's")
        return out

    def char_scores(self, text: str, target: int) -> tuple[np.ndarray, dict[str, Any]]:
        label = self.p.labels[target]
        scores = np.zeros(len(text), dtype=np.float64)
        if label not in self.row:  # a label the pipeline never saw: probability 0 whatever the words
            return scores, {}
        x = self.vec.transform([text]).tocsr()
        value = dict(zip(x.indices.tolist(), x.data.tolist()))
        occ = self.occurrences(text)
        counts = Counter(g for g, _ in occ)
        w = self.coef[self.row[label]]
        for gram, covered in occ:
            j = self.vocab.get(gram)
            if j is None or j not in value:
                continue
            spread(scores, covered, w[j] * value[j] / counts[gram])
        return scores, {}


class Occlusion:
    """Model-agnostic: how much the label's probability falls when morphemes are removed.

    Leave-one-out when every morpheme fits in `occlusion_budget` forward passes; otherwise that many
    random masks (each morpheme removed with probability 1/2, drawn from `seed`), a morpheme's score
    being the mean drop when it is removed minus the mean drop when it is kept."""

    method = "occlusion"

    def __init__(self, proba: ProbaFn, cfg: ExplainConfig) -> None:
        self.proba = proba
        self.cfg = cfg

    def char_scores(self, text: str, target: int) -> tuple[np.ndarray, dict[str, Any]]:
        spans = morpheme_spans(text) or word_spans(text)
        scores = np.zeros(len(text), dtype=np.float64)
        if not spans:
            return scores, {}
        budget = self.cfg.occlusion_budget - 1
        if len(spans) <= budget:
            masks = np.eye(len(spans), dtype=bool)
        else:
            rng = np.random.default_rng(self.cfg.seed)
            masks = rng.random((budget, len(spans))) < 0.5
        variants = [_without(text, [sp for sp, m in zip(spans, row) if m]) for row in masks]
        probs = self.proba([text, *variants])[:, target]
        drop = probs[0] - probs[1:]
        for k, (s, e, _) in enumerate(spans):
            removed = masks[:, k]
            if len(spans) <= budget:
                unit = float(drop[k])
            else:
                kept = ~removed
                unit = float(drop[removed].mean() if removed.any() else 0.0) - float(
                    drop[kept].mean() if kept.any() else 0.0
                )
            spread(scores, [i for i in range(s, e) if not text[i].isspace()], unit)
        return scores, {"forward_passes": int(len(variants) + 1)}


def _without(text: str, spans: Sequence[tuple[int, int, Any]]) -> str:
    """`text` with the characters of `spans` removed and the spaces tidied."""
    keep = np.ones(len(text), dtype=bool)
    for s, e, _ in spans:
        keep[s:e] = False
    return " ".join("".join(ch for ch, k in zip(text, keep) if k).split())


def _proba(predictor) -> ProbaFn:
    return lambda texts: predictor.predict_proba(texts, preprocessed=True)


def make_explainer(predictor, cfg: ExplainConfig, method: str | None = None):
    """The explainer for a predictor: `explain.method` auto -> exact for linear, IG for transformers."""
    method = method or cfg.method
    if method == "occlusion":
        return Occlusion(_proba(predictor), cfg)
    if predictor.family == "linear":
        return LinearContributions(predictor)
    model = getattr(predictor, "model", None)
    if model is None or not hasattr(model, "get_input_embeddings"):
        return Occlusion(_proba(predictor), cfg)
    return IntegratedGradients(predictor, cfg)


class Explainer:
    """Explain raw utterances with one predictor: preprocess, predict, score characters, sum into units.
    Falls back to occlusion for a text the configured method cannot place (logged in `extra`)."""

    def __init__(
        self,
        predictor,
        cfg: ExplainConfig,
        method: str | None = None,
        preprocess: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        """`preprocess`: raw texts -> the model's texts (default: the predictor's own preprocessor; the
        service passes a second one, so that its Kiwi is never called from two threads at once)."""
        self.p = predictor
        self.cfg = cfg
        self.impl = make_explainer(predictor, cfg, method)
        self.preprocess = preprocess or (lambda texts: predictor.preprocessor(texts))
        self._fallback = None

    @property
    def method(self) -> str:
        return self.impl.method

    def target_index(self, label: str | None, probs: np.ndarray) -> int:
        if label is None:
            return int(probs.argmax())
        if label not in self.p.labels:
            raise ValueError(f"label {label!r} is not one of the model's labels {self.p.labels}")
        return self.p.labels.index(label)

    def char_scores(self, text: str, target: int) -> tuple[np.ndarray, dict[str, Any], str]:
        try:
            scores, info = self.impl.char_scores(text, target)
            return scores, info, self.impl.method
        except ExplainError as exc:
            if self._fallback is None:
                self._fallback = Occlusion(_proba(self.p), self.cfg)
            scores, info = self._fallback.char_scores(text, target)
            return scores, {**info, "fallback_reason": str(exc)}, "occlusion"

    def explain(
        self,
        text: str,
        label: str | None = None,
        granularity: str | None = None,
        *,
        preprocessed: bool = False,
    ) -> Explanation:
        granularity = granularity or self.cfg.granularity
        clean = text if preprocessed else self.preprocess([text])[0]
        probs = self.p.predict_proba([clean], preprocessed=True)[0]
        target = self.target_index(label, probs)
        scores, info, method = self.char_scores(clean, target)
        top = int(probs.argmax())
        delta = info.pop("convergence_delta", None)
        return Explanation(
            text=clean,
            label=self.p.labels[top],
            score=float(probs[top]),
            scores={lab: float(v) for lab, v in zip(self.p.labels, probs)},
            target=self.p.labels[target],
            method=method,
            granularity=granularity,
            units=units_from_chars(clean, scores, spans_for(clean, granularity)),
            truncated=bool(info.pop("truncated", False)),
            convergence_delta=None if delta is None or math.isnan(delta) else round(float(delta), 6),
            extra=info,
        )
