"""`heara bench monitor` end to end on a small window: every figure it promises (the logged-features path
beside the recomputed one), and the JSON line last."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from training.cli import app

pytestmark = pytest.mark.slow


def test_bench_monitor_prints_its_parts_and_a_json_line(registry_home, one_torch_thread) -> None:
    result = CliRunner().invoke(app, ["bench", "monitor", "--window", "300"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["window"] == line["rows_read"] == 300
    assert set(line["parts_s"]) == {"preprocess", "descriptors", "embed", "statistics"}
    assert 0 < line["monitor_step_s"] <= line["total_s"] and line["target_s"] == 30
    assert 0 < line["computed_monitor_step_s"] <= line["computed_total_s"]
    # Side by side: every row with the features the service logged, and every row computed again.
    both = ("projection", "descriptors")
    assert line["features"] == {f: {"logged": 300, "computed": 0} for f in both}
    assert line["computed_features"] == {f: {"logged": 0, "computed": 300} for f in both}
    assert set(line["capture"]) == {"classify_s", "classify_with_features_s", "write_log_s"}
    assert "monitor_step (all of it)" in result.stdout and "recomputed" in result.stdout
