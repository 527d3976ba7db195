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
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import did_you_mean

VARIANT_SEP = "+"  # a variant's name is "<base>+<what it changes>"
#: Lines of `list` output wrap here.
WIDTH = 100


def _methods_folder() -> Path | None:
    spec = importlib.util.find_spec("unlearnbench.methods")  # imports `unlearnbench` only, not the methods
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


@lru_cache(maxsize=1)
def _source_names() -> tuple[str, ...]:
    folder = _methods_folder()
    names: list[str] = []
    for path in sorted(folder.glob("*.py")) if folder else ():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    in ("register_method", "register_variant") and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.append(node.args[0].value)
    return tuple(names)


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
