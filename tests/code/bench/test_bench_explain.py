"""`heara bench explain --no-http`: the in-process cost of each method prints one JSON line last."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_the_benchmark_prints_its_figures(capsys) -> None:
    from training.bench.explain import main

    main(["--texts", "3", "--base-texts", "1", "--no-http"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["bench"] == "explain" and result["torch_threads"] == 1
    figures = result["in_process"]
    assert set(figures) == {
        "tiny_integrated_gradients",
        "tiny_occlusion",
        "base_integrated_gradients",
        "base_occlusion",
        "linear_linear",
    }
    for name, f in figures.items():
        assert 0 < f["p50_ms"] <= f["p95_ms"], name
    assert figures["tiny_integrated_gradients"]["texts"] == 3 and figures["base_occlusion"]["texts"] == 1
    assert "http" not in result
