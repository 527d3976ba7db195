"""What the method modules and the data and model registries declare, read from their source without importing them:
the names the command line is checked against before torch loads, what `unlearnbench list` prints, and the rule that
orders methods (their registered group, then their place in it) for every listing and table.

The method modules import torch, so their registrations (every `register_method("name", ...)` and
`register_variant("name", ...)` call) are read from their source; a test keeps that reading equal to the live
registry. `unlearnbench.registry` stands above this module and the methods: it loads them and answers for the live
registry (a user's own method registered at run time included).
"""
from __future__ import annotations

import ast
import importlib.util
import sys
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

#: Names a method or variant went by before, kept as data (as timm keeps its deprecations): `get_method` answers the
#: old name with the new one and why, instead of "unknown method"; the record readers show old records under the new
#: name (`store.named_now`).
RENAMED = {"pbu+fixed5": ("pbu", "the official fixed 5-epoch schedule is PBU's default; its stopping rule is pbu+stop")}

VARIANT_SEP = "+"  # a variant's name is "<base>+<what it changes>"
#: The groups a method is registered in (`register_method(..., group=...)`), in the order of every listing and table,
#: each with the title of its table in the report's method × architecture grid. A variant is in its base method's
#: group and follows it.
GROUP_TITLES = {"paper": "the paper's methods", "retain-free": "the retain-free rivals",
                "baseline": "the baselines that use the retain set", "reference": "the reference methods (controls)",
                "other": "other methods"}
#: The group of a method registered without one (a user's own, through the API).
DEFAULT_GROUP = "other"
#: Lines of `list` output wrap here.
WIDTH = 100


def _methods_folder() -> Path | None:
    spec = importlib.util.find_spec("unlearnbench.methods")  # imports `unlearnbench` only, not the methods
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


@dataclass(frozen=True)
class Entry:
    """What `list` prints of a registered method, read from its module's source."""

    name: str
    needs: frozenset[str]
    summary: str
    base: str | None = None
    display: str = ""  # its name in tables ("PBU"); a variant's is its base's
    group: str = DEFAULT_GROUP  # one of GROUP_TITLES; a variant's is its base's
    order: int = 0  # its place in its group (ties: by name)

    def variant(self, name: str, note: str) -> "Entry":
        """A variant of this method: its data, display name, group and place, its own name and note."""
        return Entry(name, self.needs, note, self.name, self.display, self.group, self.order)


def _literal(node: ast.AST | None, default: Any = None) -> Any:
    try:
        return ast.literal_eval(node) if node is not None else default
    except ValueError:
        return default


def _call_name(node: ast.AST) -> str | None:
    return getattr(node.func, "id", getattr(node.func, "attr", None)) if isinstance(node, ast.Call) else None


@lru_cache(maxsize=1)
def source_registry() -> tuple[Entry, ...]:
    """Every `register_method` (its decorated function's first docstring line, its display name, group and order) and
    `register_variant` (its note) of the methods folder, without importing it: what `unlearnbench list` prints, at
    once. A test keeps it equal to the live registry."""
    folder = _methods_folder()
    found: dict[str, Entry] = {}
    for path in sorted(folder.glob("*.py")) if folder else ():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    if _call_name(deco) == "register_method" and deco.args:  # type: ignore[attr-defined]
                        kw = {k.arg: k.value for k in deco.keywords}  # type: ignore[attr-defined]
                        doc = (ast.get_docstring(node) or "").strip().splitlines()
                        name = _literal(deco.args[0])  # type: ignore[attr-defined]
                        found[name] = Entry(name, frozenset(_literal(kw.get("needs"), ())), doc[0] if doc else "",
                                            None, _literal(kw.get("display")) or name,
                                            _literal(kw.get("group"), DEFAULT_GROUP), _literal(kw.get("order"), 0))
            elif _call_name(node) == "register_variant" and len(node.args) >= 2:  # type: ignore[attr-defined]
                args = list(node.args) + [k.value for k in node.keywords]  # type: ignore[attr-defined]
                name, base = _literal(args[0]), _literal(args[1])
                note = _literal(args[3]) if len(args) > 3 else ""
                found[name] = Entry(name, frozenset(), str(note).strip(), base)
    # a variant declares the data its base method declares, and is shown and placed with it
    return tuple(found[e.base].variant(e.name, e.summary) if e.base in found else e for e in found.values())


def ordered(entries: Iterable[Entry]) -> list[str]:
    """The order of every listing and table: the methods by group (GROUP_TITLES' order), then by their place in it,
    then by name, each followed by its variants by name (a variant whose base is not among `entries` is left out)."""
    entries = list(entries)
    rank = {g: i for i, g in enumerate(GROUP_TITLES)}
    bases = sorted((e for e in entries if e.base is None),
                   key=lambda e: (rank.get(e.group, len(rank)), e.order, e.name))
    out: list[str] = []
    for m in bases:
        out += [m.name, *sorted(e.name for e in entries if e.base == m.name)]
    return out


def _package_source(module: str) -> ast.Module:
    return ast.parse((Path(__file__).resolve().parent / f"{module}.py").read_text(encoding="utf-8"))


def dataset_names() -> list[str]:
    """The registered data sets: `register_dataset(DatasetSpec("name", ...))` in data.py, read without importing it
    (torch), and any other registered at run time (a user's own, through the API) when the registry is loaded."""
    names = [_literal(node.args[0].args[0]) for node in ast.walk(_package_source("data"))  # type: ignore[attr-defined]
             if _call_name(node) == "register_dataset" and node.args  # type: ignore[attr-defined]
             and _call_name(node.args[0]) == "DatasetSpec" and node.args[0].args]  # type: ignore[attr-defined]
    live = sys.modules.get("unlearnbench.data")
    return sorted({*names, *(getattr(live, "DATASETS", {}) if live else {})})


def model_names() -> list[str]:
    """The paper's and the quick profile's models (models.py's PAPER_MODELS, QUICK_MODELS), read without timm."""
    found: dict[str, tuple[str, ...]] = {}
    for node in _package_source("models").body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("PAPER_MODELS", "QUICK_MODELS"):
            found[node.targets[0].id] = _literal(node.value, ())  # type: ignore[attr-defined]
    return [*found.get("PAPER_MODELS", ()), *found.get("QUICK_MODELS", ())]


def wrap(text: str, indent: str, width: int = WIDTH) -> list[str]:
    """`text` wrapped at `width`, every line after the first indented by `indent` (the first starts the line)."""
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [text]
