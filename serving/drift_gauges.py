"""Drift gauges on the service's /metrics: the newest `heara monitor` report of the served task.

`heara monitor` (or the heara_monitor DAG) runs in a process of its own and writes
`<HEARA_HOME>/models/<task>/monitoring/report.json` (training.paths.StatePaths.monitoring). The service
looks at that file's modification time every `REFRESH_S` seconds in a daemon thread and, when it
changed, sets these gauges from it, so that Prometheus scrapes the monitor's verdict with the rest of
the service's metrics and Grafana draws it over time (docker/grafana/dashboards/heara-serving.json):

- heara_drift_alarm{kind="window|persistent"}: 1 when the newest window alarmed / when the alarm is
  persistent (k of the last m windows), else 0
- heara_drift_estimated_macro_f1{which="window|reference"}: the macro-F1 estimated without labels from
  calibrated probabilities, for the window and for the reference (the validation split)
- heara_drift_label_js: Jensen-Shannon distance of the window's label shares to the reference's
- heara_drift_domain_auc: ROC AUC of a classifier telling the window's embeddings from the reference's
- heara_drift_p_value{test}: each test's p-value (label shares, confidence, entropy, embedding MMD, one
  per Korean descriptor); a bounded set of names, fixed by the monitor's code
- heara_drift_window_texts: predictions in the newest window
- heara_drift_checked_timestamp_seconds: when the newest window was judged (Unix time)

Nothing here is on the request path: the thread reads a small JSON file at most once per change. A
missing, partial or unreadable report leaves the gauges as they were (and logs why once per change).
The gauges use prometheus_client's `mostrecent` multiprocess mode: several workers read the same file
and agree.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger("heara.serve")

REFRESH_S = 5.0


@cache
def _gauges() -> dict[str, Any]:
    import prometheus_client as prom

    mode = "mostrecent"
    return {
        "alarm": prom.Gauge(
            "heara_drift_alarm",
            "1: the monitor's newest window alarmed (kind=window); the alarm is persistent (kind=persistent)",
            ["kind"],
            multiprocess_mode=mode,
        ),
        "f1": prom.Gauge(
            "heara_drift_estimated_macro_f1",
            "Macro-F1 estimated without labels: the newest window's (which=window), the reference's",
            ["which"],
            multiprocess_mode=mode,
        ),
        "js": prom.Gauge(
            "heara_drift_label_js",
            "Jensen-Shannon distance of the window's label shares to the reference's",
            multiprocess_mode=mode,
        ),
        "auc": prom.Gauge(
            "heara_drift_domain_auc",
            "ROC AUC of a classifier telling the window's embeddings from the reference's",
            multiprocess_mode=mode,
        ),
        "p": prom.Gauge(
            "heara_drift_p_value",
            "p-value of each drift test on the newest window",
            ["test"],
            multiprocess_mode=mode,
        ),
        "n": prom.Gauge(
            "heara_drift_window_texts", "Predictions in the monitor's newest window", multiprocess_mode=mode
        ),
        "checked": prom.Gauge(
            "heara_drift_checked_timestamp_seconds",
            "When the monitor judged its newest window (Unix time)",
            multiprocess_mode=mode,
        ),
    }


def apply(report: dict[str, Any]) -> None:
    """Set the gauges from one report (the record `training.steps.monitor.monitor_step` writes)."""
    g = _gauges()
    signals = report.get("signals") or {}
    g["alarm"].labels(kind="window").set(float(bool(report.get("window_alarm", report.get("alarm")))))
    g["alarm"].labels(kind="persistent").set(float(bool(report.get("persistent_alarm"))))
    g["n"].set(float((report.get("window") or {}).get("n") or 0))
    checked = report.get("checked_at")
    if checked:
        g["checked"].set(datetime.fromisoformat(checked).timestamp())
    for which, key in (("window", "estimated_macro_f1"), ("reference", "reference_estimated_macro_f1")):
        if signals.get(key) is not None:
            g["f1"].labels(which=which).set(float(signals[key]))
    if signals.get("label_js") is not None:
        g["js"].set(float(signals["label_js"]))
    if signals.get("domain_auc") is not None:
        g["auc"].set(float(signals["domain_auc"]))
    for test, p in (report.get("tests") or {}).items():
        g["p"].labels(test=str(test)[:64]).set(float(p))


class DriftGauges:
    """Keeps the gauges in step with `report` (a report.json path), checking every `interval_s`."""

    def __init__(self, report: Path, interval_s: float = REFRESH_S) -> None:
        self.report = report
        self.interval_s = interval_s
        self._seen: tuple[float, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heara-drift-gauges", daemon=True)

    def start(self) -> DriftGauges:
        self.refresh()
        self._thread.start()
        return self

    def refresh(self) -> bool:
        """Re-read the report when it changed; True when the gauges were set from it."""
        try:
            st = self.report.stat()
        except OSError:
            return False  # no window judged yet
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            apply(json.loads(self.report.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("drift gauges: %s not applied (%s)", self.report.name, type(exc).__name__)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
