"""Every location under $HEARA_HOME comes from training/paths.py (StatePaths): no other module joins a path
onto the state folder, names `.heara`, or asks for the home folder by another route."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from training.paths import PROJECT_ROOT, StatePaths

SCANNED = ("training", "serving")
OWNER = PROJECT_ROOT / "training" / "paths.py"


def _modules() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (PROJECT_ROOT / folder).rglob("*.py") if p != OWNER)


def state_home_paths(source: str) -> list[tuple[int, str]]:
    """(line, code) of every place `source` builds a path from the state folder itself: `<x>.home / ...`
    (StatePaths.home, or any object's `home` that is a state folder), `heara_home()` at all, or a literal
    `.heara` path."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Div)
            and isinstance(node.left, ast.Attribute)
            and node.left.attr == "home"
        ):
            found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, (ast.Name, ast.Attribute))
            and getattr(node, "id", getattr(node, "attr", "")) == "heara_home"
        ):
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and any(a.name == "heara_home" for a in node.names):
            found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"\.heara(/[\w./-]*)?", node.value)
        ):
            found.append((node.lineno, repr(node.value)))
    return found


def test_no_module_but_paths_builds_a_path_from_the_state_home():
    offenders = [
        f"{p.relative_to(PROJECT_ROOT)}:{line}: {code}"
        for p in _modules()
        for line, code in state_home_paths(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, "use a StatePaths property (training/paths.py) instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "code",
    [
        'state().home / "audit" / "x.jsonl"',
        "st.home / 'models'",
        "heara_home() / 'x'",
        "from training.paths import heara_home",
        "Path('.heara/data')",
    ],
)
def test_the_scan_catches_each_way_of_doing_it(code):
    assert state_home_paths(code)


def test_the_scan_lets_properties_and_other_folders_through():
    assert not state_home_paths(
        "state().audit_ledger; state().task_dir(t) / 'candidate.json'; "
        "str(state().home); tmp / 'home' / 'x'; '.heara/ in the checkout'"
    )


def test_every_location_lies_under_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("HEARA_INCOMING", raising=False)
    st = StatePaths(tmp_path / "h")
    locations = {
        name: getattr(st, name) for name, attr in vars(StatePaths).items() if isinstance(attr, property)
    }
    locations |= {
        "task_dir": st.task_dir("t"),
        "training_runs": st.training_runs("t"),
        "training_run": st.training_run("t", "k"),
        "airflow_run": st.airflow_run("manual__a b:c"),
    }
    assert len(locations) > 25
    for name, path in locations.items():
        assert path.is_relative_to(st.home) and path != st.home, name
    assert len(set(locations.values())) == len(locations)  # no two names for one place
    assert st.airflow_run("manual__2026-11-21T01:02:03+00:00").name == "manual__2026-11-21T01_02_03_00_00"
