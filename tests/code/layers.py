"""The import graph of Heara's own code, and the checks the layer test runs on it.

Built with the `ast` module rather than import-linter: the rules fit in a page, the project would
need a new locked dependency for import-linter, and `ast` sees what a linter configured by module
patterns would need extra settings for: imports inside functions (a lazy import is still a
dependency, it only moves the failure to run time) and Airflow's DAG folder, whose modules import
each other by bare name (`from heara_common import ...`) because the folder itself is on sys.path.

An edge is recorded for every `import` and `from ... import ...` anywhere in a module, except under
`if TYPE_CHECKING:` (annotations only, never executed). `from training.x import y` is an edge to the
submodule `training.x.y` when `y` is a module and to `training.x` otherwise, so `from training import
env` depends on `training.env`, not on the package. Each edge remembers whether it is made at module
level (run on import) or only inside a function, because the DAG rule differs for the two.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Graph:
    """Modules (dotted names) and the internal modules each imports, with whether at module level."""

    # src -> {dst: imported at module level}; repr=False keeps pytest's failure output readable
    edges: dict[str, dict[str, bool]] = field(default_factory=dict, repr=False)
    files: dict[str, Path] = field(default_factory=dict, repr=False)  # module -> path relative to root
    lines: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)  # (src, dst) -> line

    def add(self, src: str, dst: str, top_level: bool, line: int = 0) -> None:
        targets = self.edges.setdefault(src, {})
        targets[dst] = targets.get(dst, False) or top_level
        self.lines.setdefault((src, dst), line)

    def where(self, src: str, dst: str) -> str:
        """`path:line` of the first import of `dst` in `src`, for failure messages."""
        path = self.files.get(src)
        return f"{path}:{self.lines.get((src, dst), 0)}" if path else src

    def describe_cycle(self, cycle: list[str]) -> str:
        """`a -> b -> a`, then one line per edge saying where it is imported."""
        steps = [f"  {a} -> {b}  ({self.where(a, b)})" for a, b in zip(cycle, cycle[1:])]
        return " -> ".join(cycle) + "\n" + "\n".join(steps)


def module_name(path: Path, root: Path) -> str:
    """`training/data/split.py` -> `training.data.split`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it runs at module level; `if TYPE_CHECKING:` bodies skipped."""

    def walk(node: ast.AST, top_level: bool) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, top_level
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:  # the `else:` branch does run
                    yield from walk(ast.Module(body=[sub], type_ignores=[]), top_level)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, False)
            else:  # classes, try/with/if bodies at module level still run on import
                yield from walk(child, top_level)

    yield from walk(tree, True)


def build_graph(
    root: Path, packages: Iterable[str] = ("training", "serving"), dags: str | None = "dags"
) -> Graph:
    """The import graph of every module under `root/<package>` (and the DAG files), internal edges only."""
    graph = Graph()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            graph.files[module_name(path, root)] = path.relative_to(root)
    dag_names: dict[str, str] = {}  # bare name on Airflow's sys.path -> dotted name here
    if dags and (root / dags).is_dir():
        for path in sorted((root / dags).glob("*.py")):
            name = module_name(path, root)
            graph.files[name] = path.relative_to(root)
            dag_names[path.stem] = name
    known = set(graph.files)

    def resolve(dotted: str, importer: str) -> str | None:
        """The longest known module that `dotted` names or lies in; None for third-party code."""
        if importer in dag_names.values():
            head, _, rest = dotted.partition(".")
            if head in dag_names:
                dotted = dag_names[head] + ("." + rest if rest else "")
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in known:
                return candidate
        return None

    for name, path in graph.files.items():
        graph.edges.setdefault(name, {})
        is_package = path.name == "__init__.py"
        tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
        for node, top_level in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:  # relative: `from . import x` inside package p resolves against p
                    base_parts = name.split(".") if is_package else name.split(".")[:-1]
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from pkg import sub` depends on pkg.sub when that is a module, else on pkg itself
                targets = [f"{base}.{alias.name}" for alias in node.names]
                targets = [t if resolve(t, name) == t else base for t in targets]
            for target in targets:
                resolved = resolve(target, name)
                if resolved and resolved != name:
                    graph.add(name, resolved, top_level, node.lineno)
    return graph


def find_cycles(edges: dict[str, Iterable[str]]) -> list[list[str]]:
    """One cycle path (first module repeated at the end) per strongly connected component.

    Tarjan's algorithm finds the components; a breadth-first search inside each gives its shortest
    cycle through the component's first module, which is the path a reader needs to break it.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    nodes = set(edges) | {d for ds in edges.values() for d in ds}

    def connect(v: str) -> None:  # iterative, so a deep graph cannot hit the recursion limit
        nonlocal counter
        work = [(v, iter(sorted(edges.get(v, ()))))]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1 or node in edges.get(node, ()):
                        components.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            connect(v)

    cycles = []
    for component in sorted(components):
        members, start = set(component), component[0]
        parent: dict[str, str] = {}
        frontier, seen, closing = [start], {start}, None
        while frontier and closing is None:
            next_frontier = []
            for node in frontier:
                for child in sorted(edges.get(node, ())):
                    if child == start:
                        closing = node
                        break
                    if child in members and child not in seen:
                        seen.add(child)
                        parent[child] = node
                        next_frontier.append(child)
                if closing is not None:
                    break
            frontier = next_frontier
        path = [start]
        node = closing
        while node is not None and node != start:
            path.insert(1, node)
            node = parent.get(node)
        cycles.append(path + [start])
    return cycles


def in_any(module: str, patterns: Iterable[str]) -> bool:
    """Whether `module` is one of `patterns` or lies inside one of them.

    A pattern `training.data` matches the package and every module in it; `=training` matches the
    module `training` alone (the root package's `__init__`, not everything under it).
    """
    for p in patterns:
        if p.startswith("="):
            if module == p[1:]:
                return True
        elif module == p or module.startswith(p + "."):
            return True
    return False


@dataclass(frozen=True)
class Rule:
    """Modules matching `sources` (less `exclude`) may import only modules matching `allowed`.

    `top_level_allowed`, when given, narrows what may be imported at module level: for code that
    must import quickly, like DAG files, which the scheduler parses over and over.
    """

    name: str
    sources: tuple[str, ...]
    allowed: tuple[str, ...]
    top_level_allowed: tuple[str, ...] | None = None
    why: str = ""
    exclude: tuple[str, ...] = ()

    def applies(self, module: str) -> bool:
        return in_any(module, self.sources) and not in_any(module, self.exclude)


def breaches(
    graph: Graph, rules: Iterable[Rule], unclassified: Callable[[str], bool] | None = None
) -> list[str]:
    """A line per edge that a rule forbids, naming the rule and why, sorted.

    Each module is checked against the first rule that applies to it; `unclassified`, when given,
    reports modules no rule covers (so a new top-level module cannot slip past every rule).
    """
    rules = list(rules)
    problems = []
    for src in sorted(graph.edges):
        rule = next((r for r in rules if r.applies(src)), None)
        if rule is None:
            if unclassified and unclassified(src):
                problems.append(f"{src}: no layer rule covers this module (add it to a layer)")
            continue
        why = f" ({rule.why})" if rule.why else ""
        allowed = ", ".join(p.lstrip("=") for p in rule.allowed)
        for dst, top_level in sorted(graph.edges[src].items()):
            at = graph.where(src, dst)
            if not in_any(dst, rule.allowed):
                problems.append(f"{src} imports {dst} ({at}): {rule.name} may import only {allowed}{why}")
            elif top_level and rule.top_level_allowed is not None and not in_any(dst, rule.top_level_allowed):
                problems.append(
                    f"{src} imports {dst} at module level ({at}): {rule.name} may import only "
                    f"{', '.join(p.lstrip('=') for p in rule.top_level_allowed)} there, "
                    f"the rest inside functions{why}"
                )
    return problems
