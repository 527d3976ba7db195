"""What the registries hold, said to a user: the method names the command line is checked against before torch loads,
and one method's settings (default, valid range, source) as `unlearnbench list METHOD` prints them.

The method modules import torch, so the names the CLI checks a mistyped `--method` against are read from their source
(every `register_method("name", ...)` and `register_variant("name", ...)` call) without importing them; a test keeps
that reading equal to the registry. Methods registered at run time (a user's own module, through the Python API) are
added from the live registry when it is loaded.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import io
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import did_you_mean

#: Names a method or variant went by before, kept as data (as timm keeps its deprecations): `get_method` answers the
#: old name with the new one and why, instead of "unknown method"; the record readers show old records under the new
#: name (`store.named_now`).
RENAMED = {"pbu+fixed5": ("pbu", "the official fixed 5-epoch schedule is PBU's default; its stopping rule is pbu+stop")}

VARIANT_SEP = "+"  # a variant's name is "<base>+<what it changes>"
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


def _literal(node: ast.AST | None, default: Any = None) -> Any:
    try:
        return ast.literal_eval(node) if node is not None else default
    except ValueError:
        return default


def _call_name(node: ast.AST) -> str | None:
    return getattr(node.func, "id", getattr(node.func, "attr", None)) if isinstance(node, ast.Call) else None


@lru_cache(maxsize=1)
def source_registry() -> tuple[Entry, ...]:
    """Every `register_method` (its decorated function's first docstring line) and `register_variant` (its note) of the
    methods folder, without importing it: what `unlearnbench list` prints, at once. A test keeps it equal to the
    live registry."""
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
                        found[name] = Entry(name, frozenset(_literal(kw.get("needs"), ())), doc[0] if doc else "")
            elif _call_name(node) == "register_variant" and len(node.args) >= 2:  # type: ignore[attr-defined]
                args = list(node.args) + [k.value for k in node.keywords]  # type: ignore[attr-defined]
                name, base = _literal(args[0]), _literal(args[1])
                note = _literal(args[3]) if len(args) > 3 else ""
                found[name] = Entry(name, frozenset(), str(note).strip(), base)
    # a variant declares the data its base method declares
    return tuple(Entry(e.name, found[e.base].needs if e.base in found else e.needs, e.summary, e.base)
                 for e in found.values())


def ordered(bases: Sequence[str], variants: Mapping[str, str], order: Sequence[str]) -> list[str]:
    """The registry's order: `order`'s methods first (the report's column order), then the other methods by name, each
    method followed by its variants (`variants`: variant → base) by name."""
    out: list[str] = []
    for m in [m for m in order if m in bases] + sorted(set(bases) - set(order)):
        out += [m, *sorted(v for v, b in variants.items() if b == m)]
    return out


def source_order() -> tuple[str, ...]:
    """`unlearnbench.methods.ORDER`, read from the methods package's GROUPS without importing it."""
    folder = _methods_folder()
    if folder is None:
        return ()
    for node in ast.parse((folder / "__init__.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "GROUPS":
            return tuple(name for _, names in _literal(node.value, ()) for name in names)
    return ()


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


def method_entries() -> list[Entry]:
    """Every method and variant in the registry's order: from the live registry when it is loaded (it may hold a
    user's own), else from the methods' source (no torch)."""
    live = sys.modules.get("unlearnbench.method")
    if live is not None and getattr(live, "_REGISTRY", None):
        return [Entry(n, s.needs, s.summary, s.base) for n in live.list_methods()  # type: ignore[attr-defined]
                for s in [live.get_method(n)]]  # type: ignore[attr-defined]
    entries = {e.name: e for e in source_registry()}
    names = ordered([n for n, e in entries.items() if e.base is None],
                    {n: e.base for n, e in entries.items() if e.base}, source_order())
    return [entries[n] for n in names]


def _source_names() -> tuple[str, ...]:
    return tuple(e.name for e in source_registry())


def method_names() -> list[str]:
    """Every registered method and variant name, without importing torch: the methods folder's registrations, and
    whatever the live registry holds if it is loaded (a user's own method)."""
    live = sys.modules.get("unlearnbench.method")
    return list(dict.fromkeys([*_source_names(), *(getattr(live, "_REGISTRY", {}) if live else {})]))


def check_method_name(name: str) -> None:
    """A UsageError with "did you mean" for a name no method or variant has; nothing for a known one."""
    if name not in method_names():
        raise did_you_mean("method", name, method_names())


def wrap(text: str, indent: str, width: int = WIDTH) -> list[str]:
    """`text` wrapped at `width`, every line after the first indented by `indent` (the first starts the line)."""
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [text]


def _field_comments(cls: type) -> dict[str, str]:
    """The comment on each field's line of a hyperparameter dataclass: where its default comes from."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = " ".join(comments[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                            if n in comments)
            if text:
                out[node.target.id] = text
    return out


def settings(name: str) -> list[dict[str, Any]]:
    """A method's hyperparameters: name, type, default (a variant's own values over its base's), valid range, and
    the source of the default (the comment that declares it), in declaration order."""
    from .method import get_method
    spec = get_method(name)
    hp = spec.resolve()
    base_hp = spec.hparams()
    comments = _field_comments(spec.hparams)
    rows = []
    for f in dataclasses.fields(spec.hparams):
        rng = f.metadata.get("range")
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if kind.startswith("Literal["):  # Literal['a', 'b'] → one of a, b
            kind = "one of " + ", ".join(x.strip(" '\"") for x in kind[len("Literal["):-1].split(","))
        value = getattr(hp, f.name)
        source = comments.get(f.name, "")
        if spec.is_variant and f.name in spec.overrides:
            source = f"this variant (base default {getattr(base_hp, f.name)!r})"
        rows.append({"name": f.name, "type": kind, "default": value,
                     "range": rng.describe() if rng is not None else "", "source": source})
    return rows


def describe_method(name: str, width: int = WIDTH) -> str:
    """`unlearnbench list METHOD`: what it does, the data it declares, and each setting with default, range, source."""
    from .method import get_method
    spec = get_method(name)
    needs = "+".join(sorted(spec.needs)) or "nothing"
    head = [f"{name}" + (f"  (a variant of {spec.base})" if spec.is_variant else ""),
            *wrap(f"  {spec.summary}", "  ", width), f"  needs: {needs}; cached: {'yes' if spec.cached else 'no'}",
            f"  docs: docs/methods.md#{spec.base or name}", "", "  settings (--hp KEY=VALUE, [method.NAME] in a file):"]
    rows = settings(name)
    key_w = max([len(r["name"]) for r in rows] + [4])
    body = []
    for r in rows:
        first = f"    {r['name']:{key_w}s}  = {r['default']!r}  ({r['type']}{', ' + r['range'] if r['range'] else ''})"
        body += wrap(first, " " * (key_w + 8), width)
        if r["source"]:
            body += wrap(" " * (key_w + 8) + "source: " + r["source"], " " * (key_w + 16), width)
    return "\n".join(head + (body or ["    (none)"]))
