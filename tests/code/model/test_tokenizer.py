"""KoBertTokenizer: KoBERT's layout and ids, the Rust twin's identity, and the tiny model profile.

A SentencePiece model is trained in a temporary folder on the repository's sample utterances plus
numbers written with thousands separators (so that XLNet's digit + comma re-split really runs).
"""

from __future__ import annotations

import csv
import json
import random
import re
import unicodedata
from pathlib import Path

import pytest

from training.model.pieces import is_digit_comma_piece
from training.model.tiny import build_tiny_kobert, train_kobert_spiece
from training.model.tokenizer import (
    SPECIAL_TOKENS,
    KoBertTokenizer,
    find_in_hf_cache,
    load_tokenizer,
    preprocess_text,
    resolve_pretrained,
)
from training.model.tokenizer_fast import build_fast_tokenizer

ROOT = Path(__file__).resolve().parents[3]
SAMPLE_CSV = ROOT / "data" / "sample" / "utterances.csv"
CHATBOT_CSV = ROOT.parent / "shared" / "data" / "chatbot" / "ChatbotData.csv"
KOBERT_HUB_ID = "skt/kobert-base-v1"

# Fullwidth and other look-alike characters are written as escapes so that a reader sees them.
ODD_INPUTS = [
    # empty and whitespace
    "",
    "   ",
    "\t\n",
    "  여러   공백이\u3000있는   문장  ",
    "a\x1cb",
    "\r\n가\r\n",
    "한국어 " * 80,
    # digits with commas (XLNet's re-split), fullwidth digits, superscripts
    "1,000,000원",
    "가격은 1,200,000원, 2,000원 입니다",
    "12, 34,",
    "\uff13,\uff15\uff10\uff10원",
    "\u00b2,",
    # English, accents, quotes, compatibility characters
    "Hello World! KoBERT's test",
    "café naïve",
    "A\u0301\u00b4",
    "``인용''",
    "①②③ \uff46\uff55\uff4c\uff4c \ufb01",
    # emoji, zero-width and control characters
    "😀😀 좋아요 👍🏻",
    "👨\u200d👩\u200d👧 가족",
    "❤\ufe0f",
    "\u200b가\u200d나",
    "\x00\x01가",
    # jamo, NFD Hangul, Hangul tone marks
    "ㅋㅋㅋㅋ ㅎㅎ",
    "ㅎㅏㄴ",
    "ᄀᄀ가",
    "x\u302ey",
    unicodedata.normalize("NFD", "한국어 모델을 공유합니다."),
    # special tokens written in the text, and look-alikes of them
    "[MASK] 가",
    "가 [MASK]",
    "가[MASK]나",
    "[CLS] 안녕 [SEP] 잘가 [SEP]",
    "[UNK]",
    "[PAD][PAD]",
    "\uff3bSEP\uff3d 안녕",
    "[\uff2d\uff21\uff33\uff2b]",
    "제 번호는 [PHONE] 이에요",
]


def _read_column(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


def _number_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(['가격은', '총', '약'])} {rng.randint(1, 10 ** rng.randint(2, 9)):,}원, "
        f"{rng.randint(1, 99)},{rng.randint(100, 999)}명, {rng.randint(1, 9)}, {rng.randint(10, 99)}, "
        f"합계{rng.randint(1000, 10**7):,}, 끝"
        for _ in range(n)
    ]


def _fuzz_texts(n: int, seed: int = 3) -> list[str]:
    """Random strings over the characters where normalisers disagree (jamo, marks, spaces, width...)."""
    special = [
        0x302E,
        0x302F,
        0x0301,
        0x0308,
        0x00A0,
        0x3000,
        0x200B,
        0x200D,
        0xFE0F,
        0x1F600,
        0xFF21,
        0xFF3B,
        0xFF0C,
        0x2460,
        0xFB01,
        0x0A,
        0x09,
        0x1C,
        0x85,
        0xAD,
        0x034F,
        0x00E9,
        0x2F00,
        0x3200,
        0x320E,
        0x00B4,
        0x00A8,
        0x1F1E6,
    ]
    pool = (
        [chr(c) for c in range(32, 127)]
        + [chr(0xAC00 + i) for i in range(0, 11172, 37)]
        + [
            chr(c)
            for c in [
                *range(0x3131, 0x3164),
                *range(0x1100, 0x1113),
                *range(0x1161, 0x1176),
                *range(0x11A8, 0x11C3),
                *special,
            ]
        ]
        + list("[],,[MASK][UNK]0123456789")
    )
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 20))) for _ in range(n)]


def _reference_ids(tok: KoBertTokenizer, text: str) -> list[int]:
    """SKTBrain's KoBERTTokenizer (transformers 4 slow path) transcribed step by step, as the oracle."""
    sp, ids = tok.sp, []
    parts = re.split(r"(\[UNK\]|\[PAD\]|\[CLS\]|\[SEP\]|\[MASK\])", text)
    for i, part in enumerate(parts):
        if i % 2:
            ids.append(sp.piece_to_id(part))
            continue
        if i + 1 < len(parts) and parts[i + 1] == "[MASK]":
            part = part.rstrip()
        clean = " ".join(part.strip().split()).replace("``", '"').replace("''", '"')
        clean = "".join(c for c in unicodedata.normalize("NFKD", clean) if not unicodedata.combining(c))
        for piece in sp.encode(clean, out_type=str) if part else []:
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                sub = sp.encode(piece[:-1].replace("▁", ""), out_type=str)
                if piece[0] != "▁" and sub[0][0] == "▁":
                    sub = sub[1:] if len(sub[0]) == 1 else [sub[0][1:], *sub[1:]]
                ids += [sp.piece_to_id(p) for p in [*sub, ","]]
            else:
                ids.append(sp.piece_to_id(piece))
    return ids


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    return _read_column(SAMPLE_CSV, "text")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, sample_texts) -> Path:
    out = tmp_path_factory.mktemp("spiece")
    spiece = train_kobert_spiece(sample_texts + _number_texts(1500), vocab_size=1200, seed=0)
    (out / "spiece.model").write_bytes(spiece)
    KoBertTokenizer(out / "spiece.model").save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def slow(model_dir) -> KoBertTokenizer:
    return KoBertTokenizer.from_pretrained(model_dir, fast=False)


@pytest.fixture(scope="module")
def fast(model_dir) -> KoBertTokenizer:
    return KoBertTokenizer.from_pretrained(model_dir, fast=True)


@pytest.fixture(scope="module")
def chatbot_texts() -> list[str]:
    if not CHATBOT_CSV.is_file():
        pytest.skip(f"{CHATBOT_CSV} not present (shared data folder missing)")
    return random.Random(0).sample(_read_column(CHATBOT_CSV, "Q"), 3000)


# --- layout ------------------------------------------------------------------------------------------
def test_special_ids_match_kobert(slow):
    assert [slow.special_ids[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (
        slow.unk_token_id,
        slow.pad_token_id,
        slow.cls_token_id,
        slow.sep_token_id,
        slow.mask_token_id,
    ) == (0, 1, 2, 3, 4)
    assert slow.convert_ids_to_tokens([0, 1, 2, 3, 4]) == list(SPECIAL_TOKENS)


def test_single_layout_is_cls_text_sep(slow):
    text = "화장실이 어디에 있어요?"
    ids = slow.encode(text)
    assert ids[0] == 2 and ids[-1] == 3
    assert ids[1:-1] == slow.piece_ids([text])[0] and 2 not in ids[1:-1] and 3 not in ids[1:-1]
    assert slow.encode("") == [2, 3]


def test_pair_layout_and_type_ids(slow):
    a, b = slow.piece_ids(["오늘 기분이 좋아", "밥 먹었어"])
    enc = slow(["오늘 기분이 좋아"], text_pair=["밥 먹었어"])
    assert enc["input_ids"] == [[2, *a, 3, *b, 3]]
    assert enc["token_type_ids"] == [[0] * (len(a) + 2) + [1] * (len(b) + 1)]
    assert slow.encode("오늘 기분이 좋아", "밥 먹었어") == enc["input_ids"][0]


def test_right_padding_with_pad_id_1_and_mask_from_lengths(slow):
    texts = ["응", "😀 이모지는 모르는 글자라서 [UNK] 가 된다", "어지러워서 누워 있어"]
    enc = slow(texts)
    lengths = [len(slow.encode(t)) for t in texts]
    width = max(lengths)
    for row, types, mask, n in zip(
        enc["input_ids"], enc["token_type_ids"], enc["attention_mask"], lengths, strict=True
    ):
        assert len(row) == width and row[n:] == [1] * (width - n) and row[n - 1] == 3
        assert mask == [1] * n + [0] * (width - n)
        assert types == [0] * width
    assert 0 in enc["input_ids"][1][: lengths[1]], "the emoji should be [UNK] (id 0) under a real mask of 1"


def test_padding_modes_and_tensors(slow):
    import torch

    texts = ["짧은 말", "조금 더 긴 문장입니다"]
    assert {len(r) for r in slow(texts, padding="max_length", max_length=32)["input_ids"]} == {32}
    ragged = slow(texts, padding=False)["input_ids"]
    assert [len(r) for r in ragged] == [len(slow.encode(t)) for t in texts]
    pt = slow(texts, return_tensors="pt")
    assert pt["input_ids"].dtype == torch.long and tuple(pt["input_ids"].shape) == (2, len(ragged[1]))
    assert pt["attention_mask"].sum().item() == sum(len(r) for r in ragged)
    with pytest.raises(ValueError):
        slow(texts, padding=False, return_tensors="pt")
    with pytest.raises(TypeError):
        slow("a single string")


def test_truncation_keeps_sep_last(slow):
    text = "가족들이 나를 버리고 떠난 것 같아서 너무 무섭고 외로워 " * 5
    pieces = slow.piece_ids([text])[0]
    enc = slow([text], max_length=10)
    assert enc["input_ids"] == [[2, *pieces[:8], 3]]
    assert len(slow([text], max_length=10, truncation=False)["input_ids"][0]) == len(pieces) + 2
    pair = slow([text], text_pair=["짧게"], max_length=12)["input_ids"][0]
    b = slow.piece_ids(["짧게"])[0]
    assert pair == [2, *pieces[: 12 - 3 - len(b)], 3, *b, 3]  # the longer text loses tokens first
    with pytest.raises(ValueError):
        slow([text], max_length=2)


# --- preprocessing and reference semantics ----------------------------------------------------------
def test_xlnet_preprocessing():
    assert preprocess_text("  a\t\tb \u3000 c  ") == "a b c"
    assert preprocess_text("``인용''") == '"' + unicodedata.normalize("NFKD", "인용") + '"'
    assert preprocess_text("café") == "cafe"
    assert preprocess_text("한") == "\u1112\u1161\u11ab"  # NFKD jamo; SentencePiece's charsmap recomposes
    assert preprocess_text("ABC") == "ABC"  # KoBERT does not lowercase


def test_digit_comma_pieces_are_resplit(slow):
    assert any(is_digit_comma_piece(slow.sp.id_to_piece(i)) for i in range(slow.vocab_size)), (
        "the test model should contain pieces like '0,' for this test to mean anything"
    )
    for text in _number_texts(50, seed=11):
        pieces = slow.tokenize(text)
        assert not any(is_digit_comma_piece(p) for p in pieces)
        # the re-split loses no character (SentencePiece's NFKC aside)
        expected = unicodedata.normalize("NFKC", " ".join(text.split()))
        assert "".join(pieces).replace("▁", " ").strip() == expected
    raw = slow.sp.encode(preprocess_text("1,000,000원"), out_type=str)
    assert any(is_digit_comma_piece(p) for p in raw) and "," in slow.tokenize("1,000,000원")


def test_slow_path_matches_reference(slow, sample_texts):
    texts = sample_texts + _number_texts(300, seed=5) + ODD_INPUTS + _fuzz_texts(1000, seed=9)
    assert slow.piece_ids(texts) == [_reference_ids(slow, t) for t in texts]


def test_decode_inverts_encode(slow, sample_texts):
    known = [t for t in sample_texts[:300] if slow.unk_token_id not in slow.piece_ids([t])[0]]
    assert len(known) > 100
    for text in known:
        assert slow.decode(slow.encode(text), skip_special_tokens=True) == " ".join(text.split())
    ids = slow.encode(known[0])
    assert slow.decode(ids) == "[CLS]" + " ".join(known[0].split()) + "[SEP]"


def test_special_tokens_written_in_text_stay_whole(slow):
    assert slow.piece_ids(["가 [MASK] 나"])[0] == [*slow.piece_ids(["가"])[0], 4, *slow.piece_ids(["나"])[0]]
    # Fullwidth brackets become "[" only after the split; with "SEP" unknown too, the unknown run's
    # surface "[SEP]" is looked up as a piece (id 3), exactly as KoBERTTokenizer does.
    fullwidth = "\uff3bSEP\uff3d"
    assert slow.piece_ids([fullwidth])[0] == _reference_ids(slow, fullwidth)


# --- fast (Rust) path --------------------------------------------------------------------------------
def _assert_fast_equals_slow(fast, slow, texts, min_fast_share):
    assert fast.fast and not slow.fast
    assert fast.piece_ids(texts) == slow.piece_ids(texts)
    handled = sum(ids is not None for ids in fast._fast.encode(texts))
    assert handled >= min_fast_share * len(texts), f"only {handled}/{len(texts)} texts stayed in Rust"
    batch = texts[:200]
    assert fast(batch, max_length=64) == slow(batch, max_length=64)


def test_fast_equals_slow_on_sample_and_odd_inputs(fast, slow, sample_texts):
    _assert_fast_equals_slow(fast, slow, sample_texts + _number_texts(300, seed=5) + ODD_INPUTS, 0.7)


@pytest.mark.realdata
def test_fast_equals_slow_on_chatbot_corpus(fast, slow, chatbot_texts):
    _assert_fast_equals_slow(fast, slow, chatbot_texts, 0.9)


def test_fast_equals_slow_on_random_unicode(fast, slow):
    _assert_fast_equals_slow(fast, slow, _fuzz_texts(5000), 0.5)


def test_rust_tokenizer_alone_has_bert_layout_and_right_padding(fast, slow, sample_texts):
    rust = build_fast_tokenizer(slow.model_proto(), slow.special_ids, padding=True)
    texts = [
        t
        for t, ids in zip(sample_texts[:300], fast._fast.encode(sample_texts[:300]), strict=True)
        if ids is not None
    ]
    encs = rust.encode_batch(texts)
    ours = slow(texts, max_length=10_000)
    assert [e.ids for e in encs] == ours["input_ids"]
    assert [e.attention_mask for e in encs] == ours["attention_mask"]
    pair = rust.encode(texts[0], texts[1])
    assert pair.ids == slow.encode(texts[0], texts[1])
    assert pair.type_ids == slow([texts[0]], text_pair=[texts[1]])["token_type_ids"][0]


def test_unicode_scan_limit_covers_this_python():
    import training.model.tokenizer_fast as tf

    beyond = [
        cp
        for cp in range(tf._SCAN_LIMIT, 0x110000)
        if unicodedata.combining(chr(cp)) or unicodedata.decomposition(chr(cp)) or chr(cp).isspace()
    ]
    assert beyond == [], "characters past _SCAN_LIMIT would escape the Rust normalizer's tables"


def test_fast_is_refused_when_it_cannot_be_exact(model_dir):
    with pytest.raises(ValueError, match="keep_accents"):
        KoBertTokenizer(model_dir / "spiece.model", keep_accents=True, fast=True)
    assert not KoBertTokenizer(model_dir / "spiece.model", keep_accents=True, fast=None).fast


# --- the original package and the published vectors ---------------------------------------------------
def test_matches_kobert_tokenizer_package(model_dir, slow, sample_texts):
    kobert = pytest.importorskip(
        "kobert_tokenizer",
        reason="kobert_tokenizer (SKTBrain/KoBERT kobert_hf) "
        "is not installed: it is not on PyPI, only in the KoBERT git repository",
    )
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        pytest.skip(
            f"kobert_tokenizer subclasses transformers 4's slow XLNetTokenizer, which transformers "
            f"{transformers.__version__} no longer has"
        )
    original = kobert.KoBERTTokenizer.from_pretrained(str(model_dir))
    texts = sample_texts[:200] + _number_texts(50) + ODD_INPUTS
    for text in texts:
        assert original.encode(text) == slow.encode(text)
    theirs = original(texts[:20], text_pair=texts[20:40], padding=True, truncation=True, max_length=48)
    ours = slow(texts[:20], text_pair=texts[20:40], max_length=48)
    assert {k: theirs[k] for k in ours} == ours


def test_published_kobert_vectors():
    if find_in_hf_cache(KOBERT_HUB_ID) is None:
        pytest.skip(f"{KOBERT_HUB_ID} is not in the local Hugging Face cache (no hub access here)")
    for fast in (False, None):
        tok = KoBertTokenizer.from_pretrained(KOBERT_HUB_ID, fast=fast)
        assert tok.vocab_size == 8002
        assert tok.encode("한국어 모델을 공유합니다.") == [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3]
        # SKTBrain/KoBERT issue #59, after its fix
        enc = tok(["나 보기가 역겨워"], text_pair=["김소월"])
        assert enc["input_ids"] == [[2, 1370, 2362, 5330, 3322, 5411, 7018, 3, 1316, 6607, 7028, 3]]
        assert enc["token_type_ids"] == [[0] * 8 + [1] * 4]


# --- loading and saving ------------------------------------------------------------------------------
def test_save_and_load_round_trip(tmp_path, slow):
    slow.save_pretrained(tmp_path / "copy")
    config = json.loads((tmp_path / "copy" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "KoBertTokenizer" and config["padding_side"] == "right"
    assert config["special_token_ids"] == {"[UNK]": 0, "[PAD]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    again = load_tokenizer(tmp_path / "copy", family="kobert")
    assert isinstance(again, KoBertTokenizer)
    assert again(["문이 안 열려요", "도와줘"]) == slow(["문이 안 열려요", "도와줘"])


def test_missing_models_fail_with_the_name(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no tokenizer folder"):
        resolve_pretrained(tmp_path / "nowhere")

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("huggingface_hub.snapshot_download", offline)
    with pytest.raises(FileNotFoundError, match="heara-test/not-cached"):
        KoBertTokenizer.from_pretrained("heara-test/not-cached")
    with pytest.raises(ValueError, match="unknown tokenizer family"):
        load_tokenizer(tmp_path, family="sentencepiece")


def test_hf_family_wraps_autotokenizer_and_refuses_the_kobert_trap(tmp_path, model_dir):
    from transformers import BertTokenizer

    vocab = tmp_path / "bert" / "vocab.txt"
    vocab.parent.mkdir()
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n")
    BertTokenizer(str(vocab)).save_pretrained(str(vocab.parent))
    hf = load_tokenizer(vocab.parent, family="hf")
    enc = hf(["hello world", "hello"], max_length=8)
    assert enc["input_ids"] == [[2, 5, 6, 3], [2, 5, 3, 0]] and enc["attention_mask"][1] == [1, 1, 1, 0]
    # AutoTokenizer on a KoBERT folder whose config names XLNetTokenizer (as the hub's does)
    trap = tmp_path / "trap"
    trap.mkdir()
    (trap / "spiece.model").write_bytes((model_dir / "spiece.model").read_bytes())
    (trap / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "XLNetTokenizer",
                "cls_token": "[CLS]",
                "sep_token": "[SEP]",
                "unk_token": "[UNK]",
                "pad_token": "[PAD]",
                "mask_token": "[MASK]",
                "bos_token": "[CLS]",
                "eos_token": "[SEP]",
            }
        )
    )
    with pytest.raises(ValueError, match="family 'kobert'"):
        load_tokenizer(trap, family="hf")


# --- tiny model profile ------------------------------------------------------------------------------
def test_build_tiny_kobert_loads_like_kobert_base(tmp_path, sample_texts):
    import torch
    from transformers import BertModel

    out = build_tiny_kobert(sample_texts, tmp_path / "tiny", vocab_size=1000, seed=0, num_labels=4)
    assert {"spiece.model", "tokenizer_config.json", "config.json"} <= {p.name for p in out.iterdir()}
    tok = KoBertTokenizer.from_pretrained(out)
    assert [tok.special_ids[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    model = BertModel.from_pretrained(out).eval()
    assert model.config.vocab_size == tok.vocab_size and model.config.pad_token_id == 1
    assert model.config.num_labels == 4 and model.config.hidden_size == 64
    enc = tok(sample_texts[:4], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    assert tuple(hidden.shape) == (4, enc["input_ids"].shape[1], 64)

    again = build_tiny_kobert(sample_texts, tmp_path / "again", vocab_size=1000, seed=0)
    assert (again / "spiece.model").read_bytes() == (out / "spiece.model").read_bytes()
    other = BertModel.from_pretrained(again)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True)
    )
