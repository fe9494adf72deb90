"""Each DVC stage depends on the code it really runs: every module of `training` that the stage's step
imports, directly or through other modules, is covered by one of the stage's deps (the file itself or a
folder above it), so that changing, say, the optimizer re-runs `train`.

A stage's steps come from its `cmd`: `heara data ingest` runs training.steps.ingest, `heara train`
training.steps.train, `heara register && heara promote` both training.steps.register and .promote.
Left out on purpose: the CLI adapter (training/cli/: it parses options and calls the step; listing it
would re-run every stage on any command's help text) and empty package `__init__.py` files.
Imports are read with `ast`, including those inside functions (the steps import heavy modules lazily).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from training.paths import PROJECT_ROOT

DVC_YAML = PROJECT_ROOT / "dvc.yaml"


def stages() -> dict[str, dict]:
    return yaml.safe_load(DVC_YAML.read_text(encoding="utf-8"))["stages"]


def step_modules(cmd: str) -> list[str]:
    """`HEARA_HOME=... heara data ingest --source X` -> ["training.steps.ingest"]."""
    commands = re.findall(r"(?:^|&&|;)\s*(?:\w+=\S+\s+)*heara\s+(?:data\s+)?([a-z_]+)", cmd)
    return [f"training.steps.{c}" for c in commands]


def module_file(name: str) -> Path | None:
    base = PROJECT_ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def imported(path: Path) -> frozenset[str]:
    """training.* modules `path` imports anywhere (module level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from training import env` imports the module training.env;
            # `from training.x import f` imports training.x.
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return frozenset(n for n in names if n.split(".")[0] == "training")


def closure(modules: list[str]) -> set[Path]:
    """Files of every training module reachable from `modules` by imports (package __init__ files
    left out)."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        path = module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += imported(path)
    return {
        p for p in seen if p.name != "__init__.py" and not p.is_relative_to(PROJECT_ROOT / "training" / "cli")
    }


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(PROJECT_ROOT)
    return any(rel == Path(d) or rel.is_relative_to(Path(d)) for d in deps if "${" not in d)


@pytest.mark.parametrize("stage", sorted(stages()))
def test_stage_depends_on_every_module_its_step_imports(stage):
    spec = stages()[stage]
    steps = step_modules(spec["cmd"])
    assert steps, f"{stage}: cmd {spec['cmd']!r} is not a `heara ...` command"
    for step in steps:
        assert module_file(step), f"{stage}: {spec['cmd']!r} runs {step}, which does not exist"
    code = closure(steps)
    assert len(code) >= len(steps) + 3  # the step, config and its core at least
    missing = sorted(str(p.relative_to(PROJECT_ROOT)) for p in code if not covered(p, spec["deps"]))
    assert not missing, f"dvc.yaml stage {stage!r} runs these modules but does not depend on them: {missing}"


@pytest.mark.parametrize("stage", sorted(stages()))
def test_code_deps_exist(stage):
    """A dep that names code which is gone (a module moved) makes `dvc repro` fail: keep them current."""
    for dep in stages()[stage]["deps"]:
        if dep.startswith("training"):
            assert (PROJECT_ROOT / dep).exists(), f"{stage}: dep {dep} does not exist"


def test_the_mapping_and_the_closure():
    assert step_modules("HEARA_HOME=${state.home} heara data ingest --source x") == ["training.steps.ingest"]
    assert step_modules("HEARA_HOME=h heara register && HEARA_HOME=h heara promote") == [
        "training.steps.register",
        "training.steps.promote",
    ]
    train = {str(p.relative_to(PROJECT_ROOT)) for p in closure(["training.steps.train"])}
    assert {
        "training/steps/train.py",
        "training/trainer/loop.py",
        "training/trainer/checkpoints.py",
        "training/config.py",
    } <= train
    assert not any(p.startswith("training/cli/") for p in train)
    assert covered(PROJECT_ROOT / "training/trainer/loop.py", ["training/trainer"])
    assert not covered(
        PROJECT_ROOT / "training/trainer/loop.py", ["training/train"]
    )  # a prefix of the name only
