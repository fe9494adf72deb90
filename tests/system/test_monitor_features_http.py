"""The monitoring features over real HTTP (issue #12, must-have 1), in both topologies: the shared servers
(conftest.py) serve a model folder with a monitoring reference, so each /classify prediction is logged
with its embedding projection and descriptors, while no answer ever carries the model host's private key
(in `split` it crossed the socket between the two services inside the prediction)."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import httpx
import numpy as np
import pytest
from live_service import AUTH

from serving.schemas import FEATURES_KEY
from training.bench.serve import Server
from training.data.descriptors import DESCRIPTORS
from training.evaluation.monitoring import Reference
from training.model.projection import from_text

pytestmark = pytest.mark.slow
TEXTS = ["할머니가 쓰러지셨어요 010-1234-5678로 전화주세요", "오늘점심은맛있었어요 ㅋㅋ"]


def logged_rows(server: Server, request_id: str) -> list[tuple]:
    """(masked_text, projection, descriptors) of the request's rows, once the writer has stored them."""
    db, rows = server.home / "predictions.sqlite", []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(rows) < len(TEXTS):  # the writer flushes every 0.5 s
        try:  # the file may exist before the writer's first batch creates the table (the review queue's)
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                rows = con.execute(
                    "SELECT masked_text, projection, descriptors FROM predictions WHERE request_id = ? "
                    "ORDER BY id",
                    (request_id,),
                ).fetchall()
        except sqlite3.OperationalError:  # no file or no table yet
            rows = []
        time.sleep(0.2)
    return rows


def test_predictions_are_logged_with_their_features_and_answered_without_them(servers) -> None:
    a, b, info = servers
    components = Reference.load(info["model_dir"]).components
    for server, auth in ((a, AUTH), (b, {})):  # a model folder; the registry's champion (its copy)
        rid = os.urandom(16).hex()
        body = {"texts": TEXTS, "top_k": 2, "speaker_id": "spk-features"}  # the copying paths too
        r = httpx.post(f"{server.url}/classify", json=body, headers={**auth, "X-Request-ID": rid}, timeout=30)
        assert r.status_code == 200, r.text
        assert FEATURES_KEY not in r.text and all(
            set(p) == {"label", "score", "scores", "danger", "model_version", "top", "escalation"}
            for p in r.json()["predictions"]
        )
        for path in ("/recent", "/timeline?speaker_id=spk-features"):
            answer = httpx.get(f"{server.url}{path}", headers=auth, timeout=10)
            assert answer.status_code == 200 and FEATURES_KEY not in answer.text, (path, answer.text[:300])

        rows = logged_rows(server, rid)
        assert len(rows) == len(TEXTS), rows
        projection, found = from_text([row[1] for row in rows], len(components))
        assert found.all() and np.isfinite(projection).all() and projection.any()
        for masked, _, stored in rows:
            descriptors = json.loads(stored)
            assert list(descriptors) == list(DESCRIPTORS) and descriptors["chars"] == len(masked)
        assert json.loads(rows[1][2])["spacing_anomaly"] == 1.0  # Kiwi re-spaced what the STT ran together
        assert "010-1234-5678" not in json.dumps(rows, ensure_ascii=False)  # masked, features included
