"""The embedding projection the service logs (training/model/projection.py) and the token counts it logs
with it (training/model/encoding.py `token_counts`), on the tiny model: stored and read back, loaded from a
model folder, and counted as the monitor counts them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from training.model.encoding import encode, special_tokens, token_counts
from training.model.predictor import Predictor
from training.model.projection import REFERENCE_DIR, as_stored, from_text, load_components, project, to_text


def test_a_projection_is_stored_as_float16_text_and_read_back() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(scale=5, size=(3, 64)).astype(np.float32)
    stored = to_text(x)
    assert len(stored) == 3 and all(isinstance(v, str) and len(v) == 172 for v in stored)  # 128 bytes
    back, found = from_text(stored, 64)
    assert found.all() and back.dtype == np.float32
    np.testing.assert_allclose(back, x, rtol=1e-3, atol=1e-3)  # float16: about 3 significant digits
    np.testing.assert_array_equal(back, as_stored(x))  # what the monitor rounds the reference to
    assert to_text(np.zeros((0, 64), np.float32)) == []
    # Missing, unreadable or other-sized values (another version's components): not found, zero rows.
    back, found = from_text([stored[0], None, "", "not base64!", to_text(x[:, :32])[0]], 64)
    assert found.tolist() == [True, False, False, False, False]
    assert not back[1:].any()


def test_the_components_are_read_from_the_reference_only(tiny_model_folder: Path, tmp_path: Path) -> None:
    assert load_components(tiny_model_folder) is None  # registered without a reference
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_folder, folder)
    (folder / REFERENCE_DIR).mkdir()
    components = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.savez_compressed(folder / REFERENCE_DIR / "reference.npz", probs=np.zeros(2), components=components)
    loaded = load_components(folder)
    assert loaded.dtype == np.float32 and loaded.tolist() == components.tolist()
    assert project(np.ones((2, 4), np.float32), loaded).tolist() == [[6.0, 22.0, 38.0]] * 2


@pytest.fixture(scope="module")
def predictor(tiny_model_folder: Path) -> Predictor:
    return Predictor.load(tiny_model_folder, device="cpu")


# Unknown characters (Hanja, emoji, a Latin letter the tiny vocabulary lacks), a long text that the model's
# 64 tokens cut, and an empty one.
LONG = " ".join(f"{i}번째 말씀드릴게요" for i in range(40))
TEXTS = ["할머니 괜찮으세요? 도와주세요", "漢字 😀 emoji ñ", LONG, ""]


def test_token_counts_count_unknown_pieces_by_id(predictor: Predictor) -> None:
    tok = predictor.tokenizer
    counts = token_counts(tok, TEXTS, predictor.max_length)
    pieces = [tok.tokenize(t) for t in TEXTS]
    assert counts.pieces.tolist() == [len(p) for p in pieces]  # the whole text, never the cut one
    ids = [tok([t], padding=False, truncation=False)["input_ids"][0][1:-1] for t in TEXTS]
    assert counts.unknown.tolist() == [row.count(tok.unk_token_id) for row in ids]
    assert counts.unknown[1] > 0  # KoBERT's tokenize() returns an unknown piece's own characters, not "[UNK]"
    assert not any("[UNK]" in p for p in pieces[1])
    assert counts.truncated.tolist() == [False, False, True, False]
    assert special_tokens(tok) == 2


def test_counts_from_the_encoding_match_counts_from_scratch(predictor: Predictor) -> None:
    """The service counts from the ids it encoded for the model (cut at max_length), tokenising again only
    the rows that reached max_length: the same counts."""
    tok = predictor.tokenizer
    fits = "가" + " 나" * (predictor.max_length - 3)  # one piece per word: exactly max_length with 2 specials
    over = fits + " 나"  # one piece too many
    texts = [*TEXTS, fits, over]
    enc = encode(tok, texts, None, predictor.labels, predictor.max_length)
    assert enc.lengths[-2:].tolist() == [predictor.max_length] * 2  # both reach max_length ...
    a = token_counts(tok, texts, predictor.max_length, encoded=enc, specials=2)
    b = token_counts(tok, texts, predictor.max_length)
    assert b.truncated[-2:].tolist() == [False, True]  # ... only the second was cut
    for field in ("pieces", "unknown", "truncated"):
        assert getattr(a, field).tolist() == getattr(b, field).tolist(), field
    with pytest.raises(ValueError, match="encoded rows"):
        token_counts(tok, texts[:2], predictor.max_length, encoded=enc)
