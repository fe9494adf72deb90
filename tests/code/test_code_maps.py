"""The code maps in `training/__init__.py` and `serving/__init__.py` stay true.

A map entry is an indented line starting with a module (`config.py`) or a folder (`data/`) followed
by its description. Every core module and subpackage of training/, and every module and folder of
serving/, must have an entry, and every entry must name something that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import serving
import training

ENTRY = re.compile(r"^ {2,}(\w+(?:\.py|/))\s", re.MULTILINE)


def map_entries(package) -> list[str]:
    return ENTRY.findall(package.__doc__ or "")


def present(folder: Path) -> set[str]:
    """`name.py` for each module and `name/` for each subfolder holding code or static files."""
    names = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
    names |= {f"{p.name}/" for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    return names


@pytest.mark.parametrize("package", [training, serving], ids=["training", "serving"])
def test_map_names_every_module_and_nothing_else(package) -> None:
    entries = map_entries(package)
    folder = Path(package.__file__).parent
    assert len(entries) == len(set(entries)), (
        f"named twice: {sorted(e for e in entries if entries.count(e) > 1)}"
    )
    assert sorted(present(folder) - set(entries)) == [], (
        f"missing from the map in {package.__name__}/__init__.py"
    )
    assert sorted(set(entries) - present(folder)) == [], f"in the map but not in {package.__name__}/"


def test_training_map_lists_core_library_steps_adapters_in_that_order() -> None:
    entries = map_entries(training)
    order = ["config.py", "logs.py", "data/", "registry/", "steps/", "cli/", "bench/"]
    assert [entries.index(name) for name in order] == sorted(entries.index(name) for name in order)


def test_entry_pattern_reads_a_map() -> None:
    doc = "Title.\n\nMap:\n  a.py   first\n  b/     second, see c.py\nprose d.py\n"
    assert ENTRY.findall(doc) == ["a.py", "b/"]
