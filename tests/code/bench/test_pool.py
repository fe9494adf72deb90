"""The benchmark's text pool: at least 10,000 distinct, non-empty Korean utterances, the same ones for
the same seed, written one JSON body per line."""

from __future__ import annotations

import json
import re

import pytest

from training.bench.pool import MIN_SIZE, build_pool, capacity, load_sample_texts, write_bodies

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def pool() -> list[str]:
    return build_pool()


def test_the_pool_holds_enough_distinct_korean_texts(pool) -> None:
    assert len(pool) >= MIN_SIZE == 10_000
    assert len(set(pool)) == len(pool)
    assert all(t.strip() == t and t and "\n" not in t for t in pool)
    assert all(HANGUL.search(t) for t in pool)
    assert max(len(t) for t in pool) <= 500  # params.yaml's serve.max_chars: no request is refused


def test_the_sample_data_comes_first_then_variations(pool) -> None:
    sample = load_sample_texts()
    assert pool[: len(sample)] == sample
    assert len(pool) - len(sample) > 5_000  # most of the pool is generated
    assert capacity(len(sample)) > 5 * len(pool)  # far from what the parts can make: draws stay fast


def test_the_same_seed_gives_the_same_pool(pool) -> None:
    assert build_pool(seed=0) == pool
    other = build_pool(seed=1)
    assert other != pool and len(set(other)) == len(other) == len(pool)


def test_a_pool_below_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10000"):
        build_pool(MIN_SIZE - 1)


def test_bodies_are_one_json_object_per_line(tmp_path) -> None:
    texts = ["살려 주세요", '따옴표 "와" 역슬래시 \\ 도']
    path = write_bodies(texts, tmp_path / "b.jsonl", lambda t: {"texts": [t]})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"texts": [t]} for t in texts]
    assert "살려" in lines[0]  # UTF-8 as is, not \u escapes: what the server receives is unchanged
