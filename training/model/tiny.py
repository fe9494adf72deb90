"""The tiny model profile: a KoBERT-format folder built in seconds from local text.

No hub is reachable from the project's machines, so tests, CI and the demo use a folder laid out
like skt/kobert-base-v1 (spiece.model, tokenizer_config.json, config.json, weights) with a
SentencePiece model trained on the given texts and a small randomly initialised BERT.
"""

from __future__ import annotations

import io
import logging
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import sentencepiece as spm

from training.errors import DataError
from training.model.tokenizer import SPECIAL_TOKENS, SPIECE_FILE, KoBertTokenizer

log = logging.getLogger(__name__)

CHARACTER_COVERAGE = 0.9995  # SentencePiece's recommendation for Korean/CJK
HEAD_DIM = 32  # each attention head's width: the number of heads follows the hidden size


def tiny_bert_shape(hidden_size: int = 64, layers: int = 2) -> dict[str, int]:
    """The BertConfig shape of the tiny profile (model.tiny_hidden_size, model.tiny_layers): heads of 32
    dimensions, a feed-forward layer twice as wide, 128 positions."""
    return {
        "hidden_size": hidden_size,
        "num_hidden_layers": layers,
        "num_attention_heads": max(1, hidden_size // HEAD_DIM),
        "intermediate_size": 2 * hidden_size,
        "max_position_embeddings": 128,
        "type_vocab_size": 2,
    }


TINY_BERT = tiny_bert_shape()  # the default shape (params.yaml's), as the training benchmark uses it


def train_kobert_spiece(texts: Sequence[str], vocab_size: int = 1000, seed: int = 0) -> bytes:
    """A unigram SentencePiece model with KoBERT's special ids: [UNK] 0, [PAD] 1, [CLS] 2, [SEP] 3, [MASK] 4.

    The vocabulary is raised when the corpus needs more single characters than vocab_size allows
    (Korean has thousands of syllables); with a small corpus it may come out smaller (soft limit).
    """
    # One line per sentence: the trainer would otherwise see embedded newlines as sentence breaks.
    lines = [" ".join(t.split()) for t in texts if t and t.strip()]
    if not lines:
        raise DataError("no non-empty text to build the tiny model's tokenizer from", field="text")
    needed = _required_characters(lines) + len(SPECIAL_TOKENS) + 1  # +1: the word-start piece "▁"
    if needed > vocab_size:
        log.warning(
            "tiny tokenizer: vocab_size %d raised to %d to hold the corpus' characters",
            vocab_size,
            needed + 50,
        )
        vocab_size = needed + 50
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=CHARACTER_COVERAGE,
        unk_id=0,
        pad_id=1,
        bos_id=2,
        eos_id=3,
        unk_piece="[UNK]",
        pad_piece="[PAD]",
        bos_piece="[CLS]",
        eos_piece="[SEP]",
        control_symbols=["[MASK]"],
        # One thread: the result then depends only on texts and seed (more threads change the model).
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def _required_characters(lines: list[str]) -> int:
    """How many distinct characters SentencePiece will keep as pieces at CHARACTER_COVERAGE."""
    counts = Counter(c for line in lines for c in unicodedata.normalize("NFKC", line) if not c.isspace())
    total, covered, kept = sum(counts.values()), 0, 0
    for _, n in counts.most_common():
        if covered >= total * CHARACTER_COVERAGE:
            break
        covered += n
        kept += 1
    return kept


def build_tiny_kobert(
    texts: Sequence[str],
    out_dir: Path,
    vocab_size: int = 1000,
    seed: int = 0,
    num_labels: int | None = None,
    *,
    hidden_size: int = 64,
    layers: int = 2,
) -> Path:
    """Write a tiny KoBERT-format model folder to out_dir and return it.

    Contents: spiece.model + tokenizer_config.json (KoBertTokenizer.save_pretrained), config.json and
    weights of a randomly initialised `BertModel` (`tiny_bert_shape(hidden_size, layers)`, pad_token_id
    1). The same texts, sizes and seed give the same folder. num_labels, when given, is recorded in
    config.json for a sequence-classification head loaded from it.
    """
    import torch
    from transformers import BertConfig, BertModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SPIECE_FILE).write_bytes(train_kobert_spiece(texts, vocab_size=vocab_size, seed=seed))
    tokenizer = KoBertTokenizer(out / SPIECE_FILE)
    tokenizer.save_pretrained(out)
    extra = {"num_labels": num_labels} if num_labels is not None else {}
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        **tiny_bert_shape(hidden_size, layers),
        **extra,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out)
    return out
