"""`bentoml build` with the project's bentofile.yaml: the bento holds the service, training's
preprocessing code, params.yaml and the try-it page (nothing from the state folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_bentoml_build_packages_the_service(tmp_path, repo_root):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
    bentoml = Path(sys.executable).with_name("bentoml")
    result = subprocess.run(
        [str(bentoml), "build", "--output", "tag"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "heara").glob("*/bento.yaml"))
    assert len(bentos) == 1
    src = bentos[0].parent / "src"
    for path in (
        "serving/service.py",
        "serving/static/try.html",
        "training/data/preprocess.py",
        "params.yaml",
    ):
        assert (src / path).is_file(), path
    assert not (src / ".heara").exists() and not list(src.rglob("__pycache__"))
