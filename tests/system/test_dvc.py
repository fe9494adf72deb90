"""The DVC pipeline, really run: `dvc repro` in a throw-away copy of the project, re-running only
the stages whose inputs (data, params, code) changed, keeping the frozen test split, and `dvc push` to the
local remote. The state folder is not `.heara/`: the pipeline follows HEARA_HOME (the vars file that
training.orchestration.dvc_state writes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _stale(root: Path, env: dict) -> set[str]:
    proc = subprocess.run(
        ["dvc", "status", "--json"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("dvcproj")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    shutil.copytree(REPO / "training", root / "training", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "data" / "sample").mkdir(parents=True)
    # A smaller sample keeps the test quick; the pipeline is the same.
    sample = pd.read_csv(REPO / "data" / "sample" / "utterances.csv", dtype=str)
    sample.groupby("label").head(40).to_csv(root / "data" / "sample" / "utterances.csv", index=False)
    # Not the default .heara/: every path of the pipeline, MLflow's store included, follows HEARA_HOME.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "HEARA_INCOMING", "HEARA_PARAMS")
    }
    env |= {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HEARA_HOME": str(root / "state" / "home"),
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": str(root),
    }
    _run(["git", "init", "-q"], root, env)
    _run([sys.executable, "-m", "training.orchestration.dvc_state"], root, env)
    return root, env


DATA_STAGES = {"ingest", "validate", "preprocess", "split", "augment"}
ALL_STAGES = DATA_STAGES | {"train", "evaluate", "promote"}


def _set_param(root: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params[section][key] = value
    (root / "params.yaml").write_text(
        yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def test_repro_runs_all_stages_then_only_what_changed(project: tuple[Path, dict]) -> None:
    root, env = project
    _set_param(root, "train", "epochs", 2)  # the pipeline, not the model quality, is under test here
    _set_param(root, "promote", "min_f1", 0.0)
    _set_param(root, "promote", "latency_budget_ms", 5000.0)
    _set_param(root, "promote", "bootstrap_samples", 200)
    _set_param(root, "evaluate", "latency_samples", 10)
    assert _ran(_run(["dvc", "repro"], root, env)) == ALL_STAGES
    home = root / "state" / "home"
    assert not (root / ".heara").exists()
    data = home / "data"
    assert (home / "mlflow" / "mlflow.db").exists() and (
        home / "models" / "danger" / "candidate.json"
    ).exists()
    train = pd.read_parquet(data / "prepared" / "train.parquet")
    assert (train["aug_method"] != "original").any()
    test_before = pd.read_parquet(data / "split" / "test.parquet")
    assert "test_macro_f1" in _run(["dvc", "metrics", "show"], root, env)
    _run(["dvc", "plots", "show", "-o", str(root / "plots")], root, env)
    assert (root / "plots" / "index.html").exists()

    assert _ran(_run(["dvc", "repro"], root, env)) == set()

    # Only the gate's parameters changed: only the gate runs again.
    _set_param(root, "promote", "min_delta", 0.01)
    assert _ran(_run(["dvc", "repro"], root, env)) == {"promote"}

    # Code the trainer runs changed (its checkpoints module, not listed by name): `train` is stale (and
    # what follows it once it has run), the data stages are not.
    with open(root / "training" / "trainer" / "checkpoints.py", "a", encoding="utf-8") as f:
        f.write("\n# changed\n")
    assert _stale(root, env) == {"train"}

    _set_param(root, "augment", "seed", 99)
    assert _ran(_run(["dvc", "repro", "augment"], root, env)) == {"augment"}

    # A new labeled batch lands: ingest and everything after it re-run, the test split stays frozen.
    new = pd.DataFrame(
        {
            "id": [f"new-{i}" for i in range(8)],
            "text": [f"새로 들어온 일상 대화 문장 {i}번" for i in range(8)],
            "label": ["normal"] * 8,
        }
    )
    new.to_csv(home / "incoming" / "batch-001.csv", index=False)
    assert _ran(_run(["dvc", "repro", "augment"], root, env)) == DATA_STAGES
    pd.testing.assert_frame_equal(pd.read_parquet(data / "split" / "test.parquet"), test_before)
    clean = pd.read_parquet(data / "clean.parquet")
    assert clean["id"].str.startswith("new-").sum() == 8

    _run(["dvc", "push"], root, env)
    remote = home / "dvc-remote"
    assert remote.exists() and any(p.is_file() for p in remote.rglob("*"))

    # DVC experiments, what DVC users try first: a changed value without editing params.yaml. Only the
    # stages that read `train` run again, and `dvc exp show` reads the experiment's params and metrics
    # from its commit (which needs the committed vars file, training/orchestration/dvc_state.py).
    # As the project's .gitignore does for .heara/: the state stays out of git but for the test metrics.
    keep = ["/state/*", "!/state/home/", "/state/home/*", "!/state/home/models/", "/state/home/models/*/*"]
    keep += [
        "!/state/home/models/*/eval/",
        "/state/home/models/*/eval/*",
        "!/state/home/models/*/eval/metrics.json",
    ]
    (root / ".gitignore").write_text("\n".join([*keep, "/plots/", ""]), encoding="utf-8")
    git = ["git", "-c", "user.email=ci@heara.invalid", "-c", "user.name=ci"]
    _run(["git", "add", "-A"], root, env)
    _run([*git, "commit", "-qm", "baseline"], root, env)
    out = _run(
        ["dvc", "exp", "run", "-n", "lr-1e-3", "-S", "train.lr=0.001", "-S", "train.epochs=1"], root, env
    )
    assert _ran(out) == {"train", "evaluate", "promote"}
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], root, env))
    [exp] = [
        r for e in shown for x in e.get("experiments") or [] for r in x["revs"] if r["name"] == "lr-1e-3"
    ]
    assert exp["error"] is None, exp["error"]
    assert exp["data"]["params"]["params.yaml"]["data"]["train"]["lr"] == 0.001
    assert "test_macro_f1" in json.dumps(exp["data"]["metrics"])
