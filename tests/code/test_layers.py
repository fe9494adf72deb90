"""The layer rule (CONVENTIONS.md, point 2) as a test: imports go one way and never in a circle.

Layers, lowest first; a module may import its own layer and the layers below it:

  core        training.{config, paths, env, errors, pii, logs}: core only
  library     data -> model -> {trainer, evaluation} -> registry (each may import core and the
              library packages to its left; none imports steps, adapters or serving)
  steps       training.steps: core, library and other steps
  adapters    training.{cli, orchestration, bench}: anything in training and serving
  serving     the service: serving itself and training's model, preprocessing and registry surface
              (training.model, training.data.preprocess, training.registry) plus core, and the text
              descriptors its prediction log stores (training.data.descriptors); never the trainer,
              evaluation, steps or adapters, so a serving image needs none of them
  dags        Airflow wiring: at module level only training.config, training.env and the trigger form's
              table (training.orchestration.form, itself light: the scheduler parses these files every
              few seconds); inside task functions also training.errors,
              training.orchestration, training.data.incoming and training.steps

The graph and the checks are in tests/code/layers.py; the last tests here run them on small made-up
packages, so the checker is known to fail when a breach or a cycle is there.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from layers import Graph, Rule, breaches, build_graph, find_cycles  # this folder: pytest puts it on sys.path

REPO_ROOT = Path(__file__).resolve().parents[2]

CORE = (
    "=training",
    "training.config",
    "training.paths",
    "training.env",
    "training.errors",
    "training.pii",
    "training.logs",
)
DATA, MODEL, TRAINER, EVALUATION, REGISTRY = (
    f"training.{p}" for p in ("data", "model", "trainer", "evaluation", "registry")
)
LIBRARY = (DATA, MODEL, TRAINER, EVALUATION, REGISTRY)
STEPS = ("training.steps",)
ADAPTERS = ("training.cli", "training.orchestration", "training.bench")
SERVING_SURFACE = (MODEL, "training.data.preprocess", "training.data.descriptors", REGISTRY, *CORE)

RULES = (
    Rule("core", CORE, CORE, why="core is what everything else stands on"),
    Rule("training.data", (DATA,), (*CORE, DATA)),
    Rule("training.model", (MODEL,), (*CORE, DATA, MODEL), why="a model carries its preprocessing"),
    Rule("training.trainer", (TRAINER,), (*CORE, DATA, MODEL, TRAINER)),
    Rule("training.evaluation", (EVALUATION,), (*CORE, DATA, MODEL, EVALUATION)),
    Rule(
        "training.registry",
        (REGISTRY,),
        (*CORE, DATA, MODEL, EVALUATION, REGISTRY),
        why="the registry stores and judges models; it never trains one",
    ),
    Rule("steps", STEPS, (*CORE, *LIBRARY, *STEPS), why="adapters call steps, never the reverse"),
    Rule("adapters", ADAPTERS, ("training", "serving")),
    Rule(
        "serving",
        ("serving",),
        ("serving", *SERVING_SURFACE),
        why="serving uses the model, preprocessing, descriptors and registry surface only",
    ),
    Rule(
        "dags",
        ("dags",),
        (
            "dags",
            "training.config",
            "training.env",
            "training.errors",
            "training.orchestration",
            "training.data.incoming",
            "training.steps",
        ),
        top_level_allowed=("dags", "training.config", "training.env", "training.orchestration.form"),
        why="DAG files hold wiring; the scheduler re-parses them often",
    ),
)

# Breaches that exist today, each with its fix. The test fails when one is fixed and still listed,
# so this list can only shrink.
KNOWN_BREACHES: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph(REPO_ROOT)


def _known(line: str) -> bool:
    return any(line.startswith(f"{src} imports {dst} ") for src, dst in KNOWN_BREACHES)


def test_graph_is_built_from_the_code(graph: Graph) -> None:
    """A parser that found nothing would pass every rule: check a few edges it must see."""
    assert len(graph.files) > 80
    assert "training.trainer.loop" in graph.edges["training.steps.train"]  # a lazy import
    assert "training.env" in graph.edges["serving.guard"]  # `from training import env`
    assert "dags.heara_common" in graph.edges["dags.heara_retrain"]  # Airflow's bare-name import


def test_every_module_is_in_a_layer(graph: Graph) -> None:
    covered = [m for m in graph.files if any(r.applies(m) for r in RULES)]
    assert sorted(set(graph.files) - set(covered)) == []


def test_imports_follow_the_layers(graph: Graph) -> None:
    problems = [line for line in breaches(graph, RULES) if not _known(line)]
    assert not problems, "layer breaches:\n" + "\n".join(problems)


def test_known_breaches_are_still_there(graph: Graph) -> None:
    """A fixed breach must leave KNOWN_BREACHES, or it could silently come back."""
    stale = [(src, dst) for src, dst in sorted(KNOWN_BREACHES) if dst not in graph.edges.get(src, {})]
    assert not stale, f"fixed, remove from KNOWN_BREACHES: {stale}"


def test_no_import_cycles(graph: Graph) -> None:
    cycles = find_cycles(graph.edges)
    assert not cycles, "import cycles:\n" + "\n".join(graph.describe_cycle(c) for c in cycles)


# --- the checker itself, on made-up packages ------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """pkg.core <- pkg.lib <- pkg.app, with a lazy import, a relative one and a TYPE_CHECKING one."""
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/core.py": """
            from typing import TYPE_CHECKING
            import json
            if TYPE_CHECKING:
                from pkg.app import main  # annotations only: not an edge
        """,
            "pkg/lib/__init__.py": "",
            "pkg/lib/a.py": """
            from pkg import core
            from . import b
        """,
            "pkg/lib/b.py": """
            def later():
                from pkg.core import json  # a name in core, so the edge is to pkg.core
        """,
            "pkg/app.py": """
            import pkg.lib.a
            def main():
                from pkg.lib import b
        """,
        },
    )
    return tmp_path


TOY_RULES = (
    Rule("core", ("pkg.core",), ("pkg.core",)),
    Rule("lib", ("pkg.lib",), ("pkg.core", "pkg.lib")),
    Rule("app", ("pkg.app",), ("pkg",), top_level_allowed=("pkg.lib.a",)),
)


def test_checker_reads_every_kind_of_import(toy: Path) -> None:
    graph = build_graph(toy, packages=("pkg",), dags=None)
    assert graph.edges["pkg.core"] == {}
    assert graph.edges["pkg.lib.a"] == {"pkg.core": True, "pkg.lib.b": True}
    assert graph.edges["pkg.lib.b"] == {"pkg.core": False}
    assert graph.edges["pkg.app"] == {"pkg.lib.a": True, "pkg.lib.b": False}
    assert breaches(graph, TOY_RULES) == []
    assert find_cycles(graph.edges) == []


def test_checker_reports_a_layer_breach(toy: Path) -> None:
    _write(
        toy,
        {
            "pkg/lib/b.py": """
        def later():
            from pkg.app import main  # the library reaching up into the app
    """
        },
    )
    graph = build_graph(toy, packages=("pkg",), dags=None)
    assert breaches(graph, TOY_RULES) == [
        f"pkg.lib.b imports pkg.app ({Path('pkg/lib/b.py')}:3): lib may import only pkg.core, pkg.lib"
    ]


def test_checker_reports_a_top_level_import_that_must_be_lazy(toy: Path) -> None:
    _write(toy, {"pkg/app.py": "from pkg.lib import b\n"})
    graph = build_graph(toy, packages=("pkg",), dags=None)
    [line] = breaches(graph, TOY_RULES)
    assert line.startswith("pkg.app imports pkg.lib.b at module level")


def test_checker_reports_a_cycle_with_its_path(toy: Path) -> None:
    _write(
        toy,
        {
            "pkg/core.py": """
        def helper():
            import pkg.app
    """
        },
    )
    graph = build_graph(toy, packages=("pkg",), dags=None)
    cycles = find_cycles(graph.edges)
    assert cycles == [["pkg.app", "pkg.lib.a", "pkg.core", "pkg.app"]]
    message = graph.describe_cycle(cycles[0])
    assert message.startswith("pkg.app -> pkg.lib.a -> pkg.core -> pkg.app\n")
    assert f"pkg.core -> pkg.app  ({Path('pkg/core.py')}:3)" in message


def test_find_cycles_on_a_synthetic_graph() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"a"}}
    assert find_cycles(edges) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_rule_breach_on_a_synthetic_graph() -> None:
    graph = Graph(
        edges={"lib.x": {"core.y": True, "app.z": False}, "core.y": {}, "stray": {"core.y": True}}, files={}
    )
    rules = (Rule("core", ("core",), ("core",)), Rule("lib", ("lib",), ("core", "lib")))
    assert breaches(graph, rules, unclassified=lambda m: True) == [
        "lib.x imports app.z (lib.x): lib may import only core, lib",
        "stray: no layer rule covers this module (add it to a layer)",
    ]
