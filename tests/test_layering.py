"""The package's modules stand in layers: no module imports, at its top level, one that imports it back (directly or
through others). Imports inside functions (loaded when first used, to keep `--help` light) are not edges."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = ("unlearnbench", "methods", *parts[1:]) if parts[0] == "methods" else parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, name: str) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from . import stats` imports a module
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    files = [*ROOT.glob("unlearnbench/**/*.py"), *ROOT.glob("methods/*.py")]
    names = {_module_name(p): p for p in files}
    return {n: {t for t in _top_level_imports(p, n) if t in names and t != n} for n, p in names.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "unlearnbench.records" in graph["unlearnbench.runner"]  # the graph is read
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_a_cycle_is_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_engine_and_the_library_never_import_a_command():
    """The commands (unlearnbench.cli) stand on top: nothing below imports them at its top level."""
    graph = import_graph()
    below = {n: deps for n, deps in graph.items() if not n.startswith(("unlearnbench.cli", "unlearnbench.studies"))
             and n not in ("unlearnbench.run", "unlearnbench.perf", "unlearnbench.report")}
    offenders = {n: sorted(d for d in deps if d.startswith("unlearnbench.cli")) for n, deps in below.items()}
    assert not {n: d for n, d in offenders.items() if d}


def _groups() -> dict[str, int]:
    """docs/modules.md: each module's group, in the order of the page (0 = foundations)."""
    import re
    group, found = -1, {}
    for line in (ROOT / "docs" / "modules.md").read_text().splitlines():
        group += line.startswith("## ")
        if line.startswith("| `"):
            for path in re.findall(r"`((?:unlearnbench|methods)/[\w/*]+\.py)`", line.split(" | ")[0]):
                found["unlearnbench.methods" if path == "methods/*.py" else
                      path[:-3].replace("/", ".").removesuffix(".__init__")] = group
    return found


def test_a_module_imports_only_its_own_group_and_those_before_it():
    groups, graph = _groups(), import_graph()
    group = {n: groups.get(n, groups["unlearnbench.methods"] if n.startswith("unlearnbench.methods") else None)
             for n in graph}
    assert None not in group.values(), [n for n, g in group.items() if g is None]
    upward = [f"{n} imports {d}" for n, deps in graph.items() for d in deps if group[d] > group[n]]
    assert not upward, upward


def test_the_module_map_names_every_module_once():
    text = (ROOT / "docs" / "modules.md").read_text()
    listed = [p for row in text.splitlines() if row.startswith("| `") for p in
              __import__("re").findall(r"`((?:unlearnbench|methods)/[\w/*]+\.py)`", row.split(" | ")[0])]
    files = {str(p.relative_to(ROOT)) for p in ROOT.glob("unlearnbench/**/*.py")}
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert set(listed) - {"methods/*.py"} == files, "docs/modules.md and the package differ"
