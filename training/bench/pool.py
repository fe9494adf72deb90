"""The texts `heara bench serve` sends: a pool of distinct Korean utterances, each sent once per run.

Why a pool: a benchmark that cycles through a few hundred texts measures warm caches (the
tokenizer's, Kiwi's spacing model, the allocator's) as much as the server; real traffic rarely
repeats a sentence. The load tool (training/bench/wrk_pool.lua) walks the pool without repetition,
so the pool needs at least as many texts as a run sends: 20,000 by default, at least 10,000.

The pool is the project's sample data (data/sample/utterances.csv, every distinct text, in file
order) followed by variations made here, deterministic for a seed (`random.Random(seed)`, no other
source of randomness):

- a sample text with a spoken filler in front (아이고, 저기요, ...), a tail after it (좀 와 줘,
  큰일이야, ...) or both: the wording older speakers add around the same content;
- a sentence assembled from parts, who (우리 영감이, 옆집 할머니가, ...) + what happened
  (넘어져서 못 일어나, 약을 두 번 먹은 것 같아, ...) + an ending (빨리 와 줘, 어떡하지, ...).

A text is kept once (a set of the texts already drawn); drawing stops at `size` texts and fails
with the reachable number when the parts cannot make that many.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from training.paths import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "data" / "sample" / "utterances.csv"
DEFAULT_SIZE = 20_000  # a 20 s run at ~1,000 requests/s (a GPU) stays within the pool
MIN_SIZE = 10_000

FILLERS = (
    "아이고",
    "저기요",
    "있잖아",
    "근데",
    "여보세요",
    "음",
    "아니 글쎄",
    "얘야",
    "선생님",
    "잠깐만",
    "내 말 좀 들어 봐",
    "아휴",
)
TAILS = (
    "좀 와 줘",
    "큰일이야",
    "어떡하지",
    "알겠지?",
    "진짜야",
    "무서워",
    "빨리",
    "그냥 그렇다고",
    "누구 없어?",
    "기억이 안 나",
    "답답해 죽겠어",
    "고마워",
)
WHO = (
    "내가",
    "우리 영감이",
    "우리 할멈이",
    "옆집 할머니가",
    "아들이",
    "며느리가",
    "손주가",
    "경비 아저씨가",
    "요양보호사가",
    "친구가",
    "동생이",
    "딸이",
    "간병인이",
    "남편이",
    "앞집 아저씨가",
)
WHAT = (
    "넘어져서 못 일어나",
    "약을 두 번 먹은 것 같아",
    "숨이 차서 말을 못 해",
    "가슴이 답답하대",
    "밥을 안 먹고 누워만 있어",
    "길을 잃어버렸대",
    "어제 다녀갔는데 또 보고 싶어",
    "전화를 안 받아",
    "열이 펄펄 끓어",
    "머리가 깨질 것처럼 아프대",
    "화장실에서 미끄러졌어",
    "오늘 병원 가는 날이래",
    "돈을 자꾸 빌려 달래",
    "나한테 소리를 질렀어",
    "텔레비전을 못 켜",
    "노래 교실에 같이 가재",
    "손이 자꾸 떨린대",
    "집 열쇠를 또 잃어버렸어",
    "김장 하러 온대",
    "밤새 잠을 못 잤대",
)
ENDINGS = (
    "빨리 와 줘",
    "어떡하지",
    "도와줘",
    "걱정이야",
    "좋겠다",
    "정말이야",
    "모르겠어",
    "119 불러 줘",
)


def load_sample_texts(path: Path = SAMPLE) -> list[str]:
    """The distinct non-empty texts of the sample data, in file order."""
    with open(path, encoding="utf-8", newline="") as f:
        texts = (row.get("text", "").strip() for row in csv.DictReader(f))
        return list(dict.fromkeys(t for t in texts if t))


def _variation(rng: random.Random, sample: list[str]) -> str:
    """One generated text: a sample text dressed with a filler and/or a tail (three times in four),
    or a who + what + ending sentence."""
    if rng.random() < 0.75:
        text, dress = rng.choice(sample), rng.randrange(3)
        head = f"{rng.choice(FILLERS)} " if dress in (0, 2) else ""
        tail = f" {rng.choice(TAILS)}" if dress in (1, 2) else ""
        return f"{head}{text}{tail}"
    return f"{rng.choice(WHO)} {rng.choice(WHAT)} {rng.choice(ENDINGS)}"


def capacity(n_sample: int) -> int:
    """How many distinct texts the sample data and the parts can make at most."""
    dressed = n_sample * (len(FILLERS) + len(TAILS) + len(FILLERS) * len(TAILS))
    return n_sample + dressed + len(WHO) * len(WHAT) * len(ENDINGS)


def build_pool(size: int = DEFAULT_SIZE, seed: int = 0, sample: Path = SAMPLE) -> list[str]:
    """`size` distinct Korean utterances: the sample data's texts, then generated variations.

    The same size, seed and sample file give the same list. Raises ValueError for a size below
    MIN_SIZE or above what the parts can make (`capacity`).
    """
    if size < MIN_SIZE:
        raise ValueError(f"a pool of {size} texts is too small: at least {MIN_SIZE}")
    texts = load_sample_texts(sample)
    if size > capacity(len(texts)):
        raise ValueError(f"the parts make at most {capacity(len(texts))} distinct texts, not {size}")
    pool = dict.fromkeys(texts[:size])  # an ordered set
    rng = random.Random(seed)
    while len(pool) < size:  # ends: size is below the capacity (draws slow down only close to it)
        pool.setdefault(_variation(rng, texts))
    return list(pool)


def write_bodies(texts: Iterable[str], path: Path, body: Callable[[str], Any]) -> Path:
    """One JSON request body per line (`body(text)`, UTF-8, no newline inside a line): what the
    load tool's Lua script reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps(body(text), ensure_ascii=False) + "\n")
    return path
