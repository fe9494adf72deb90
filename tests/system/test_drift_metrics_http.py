"""The monitor's verdict on the service's /metrics, over real HTTP: `heara monitor` writes report.json in
the served task's monitoring folder; the service's drift gauges (serving/drift_gauges.py) pick it up
within seconds, with no restart and no request in between."""

from __future__ import annotations

import json
import re
import time

import httpx
from live_service import METRICS_AUTH

from training.bench.serve import Server
from training.config import load_params


def drift_samples(server: Server) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", headers=METRICS_AUTH, timeout=10).text
    return {
        m[0]: float(m[1]) for m in re.findall(r"^(heara_drift_[a-z0-9_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)
    }


def test_a_new_monitor_report_shows_on_metrics(server: Server) -> None:
    folder = server.home / "models" / load_params().task / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "checked_at": "2026-11-28T10:00:00+00:00",
        "window": {"n": 321},
        "window_alarm": True,
        "persistent_alarm": True,
        "tests": {"label_shares": 1e-7, "descriptor:spacing_anomaly": 0.5},
        "signals": {
            "label_js": 0.34,
            "domain_auc": 0.91,
            "estimated_macro_f1": 0.56,
            "reference_estimated_macro_f1": 0.62,
        },
    }
    (folder / "report.json").write_text(json.dumps(report), "utf-8")
    deadline, seen = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        seen = drift_samples(server)
        if seen.get("heara_drift_window_texts") == 321:
            break
        time.sleep(0.5)
    assert seen.get("heara_drift_window_texts") == 321, seen
    assert seen.get('heara_drift_alarm{kind="persistent"}') == 1.0, seen
    assert seen.get('heara_drift_estimated_macro_f1{which="window"}') == 0.56, seen
    assert seen.get('heara_drift_p_value{test="label_shares"}') == 1e-7, seen
    assert seen.get("heara_drift_domain_auc") == 0.91, seen
    assert abs(seen.get("heara_drift_checked_timestamp_seconds", 0) - 1795860000) < 1e4, seen

    report["persistent_alarm"], report["window"]["n"] = False, 400  # the next window: calm again
    (folder / "report.json").write_text(json.dumps(report), "utf-8")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and drift_samples(server).get("heara_drift_window_texts") != 400:
        time.sleep(0.5)
    assert drift_samples(server)['heara_drift_alarm{kind="persistent"}'] == 0.0
