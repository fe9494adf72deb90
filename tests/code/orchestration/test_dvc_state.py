"""The DVC pipeline follows HEARA_HOME: the vars file dvc.yaml reads is written from StatePaths, and the paths
dvc.yaml declares are StatePaths' locations for that home."""

from __future__ import annotations

import re

import pytest
import yaml

from training.errors import ConfigError
from training.orchestration import dvc_state
from training.paths import PROJECT_ROOT, StatePaths


def render(text: str, values: dict, task: str) -> str:
    """dvc.yaml's ${state.*} and ${task} filled in, as DVC's templating does it."""
    text = re.sub(r"\$\{state\.(\w+)\}", lambda m: values["state"][m.group(1)], text)
    return text.replace("${task}", task)


def test_dvc_yaml_reads_the_vars_file_and_names_only_known_state_paths():
    text = (PROJECT_ROOT / "dvc.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text)["vars"] == [dvc_state.VARS_FILE]
    assert ".heara" not in re.sub(r"#.*", "", text).replace(dvc_state.VARS_FILE, "")  # no hard-coded home
    used = set(re.findall(r"\$\{state\.(\w+)\}", text))
    assert used <= set(dvc_state.dvc_vars(StatePaths(PROJECT_ROOT / "x"))["state"])


def test_the_committed_vars_file_is_the_default_homes(tmp_path, monkeypatch):
    """Committed so that `dvc exp show` can read past commits; it must be what `write()` makes for the
    default HEARA_HOME (.heara/), or every checkout would start with a changed file."""
    monkeypatch.delenv("HEARA_INCOMING", raising=False)
    committed = (PROJECT_ROOT / dvc_state.VARS_FILE).read_text(encoding="utf-8")
    (tmp_path / ".heara").mkdir()
    dvc_state.write(StatePaths(tmp_path / ".heara"), tmp_path, configure_dvc=False)
    assert (tmp_path / dvc_state.VARS_FILE).read_text(encoding="utf-8") == committed
    assert dvc_state.VARS_FILE not in (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8")


def test_the_declared_outputs_are_where_the_steps_write(monkeypatch):
    monkeypatch.delenv("HEARA_INCOMING", raising=False)
    st = StatePaths(PROJECT_ROOT / "elsewhere" / "state")
    values = dvc_state.dvc_vars(st)
    assert values["state"]["raw"] == "elsewhere/state/data/raw.parquet"  # relative: dvc.lock is portable
    stages = yaml.safe_load(render((PROJECT_ROOT / "dvc.yaml").read_text(encoding="utf-8"), values, "t"))[
        "stages"
    ]

    def outs(stage: str) -> set:
        return {
            PROJECT_ROOT / (o if isinstance(o, str) else next(iter(o)))
            for kind in ("outs", "metrics", "plots")
            for o in stages[stage].get(kind, [])
        }

    assert {st.raw, st.quarantine / "ingest.parquet", st.reports / "ingest.json"} == outs("ingest")
    assert {st.valid, st.clean} <= outs("validate") | outs("preprocess")
    assert {st.split_dir / f"{s}.parquet" for s in ("train", "val", "test")} <= outs("split")
    assert st.prepared / "train.parquet" in outs("augment")
    assert st.task_dir("t") / "candidate.json" in outs("train")
    assert st.task_dir("t") / "promote" / "decision.json" in outs("promote")
    for name, spec in stages.items():  # each command runs with the home whose paths DVC tracks
        assert spec["cmd"].startswith(f"HEARA_HOME={values['state']['home']} "), name


def test_a_home_outside_the_repository_is_refused_naming_why(tmp_path):
    with pytest.raises(ConfigError, match=r"outside the repository .*treeverse/dvc#9531"):
        dvc_state.dvc_vars(StatePaths(tmp_path / "home"))


def test_write_creates_the_vars_file_and_the_incoming_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HEARA_INCOMING", raising=False)
    st = StatePaths(tmp_path / "state")
    written = dvc_state.write(st, tmp_path, configure_dvc=False)
    on_disk = yaml.safe_load((tmp_path / dvc_state.VARS_FILE).read_text(encoding="utf-8"))
    assert on_disk == {"state": written["state"]} and on_disk["state"]["home"] == "state"
    assert st.incoming.is_dir()
    assert written["cache.dir"] == str(st.dvc_cache) and written["remote.local.url"] == str(st.dvc_remote)
