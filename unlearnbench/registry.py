"""The method registry, loaded: names to methods, in the order of every listing and table, and what each method says
about itself (its settings with their defaults, ranges and sources; its column title and group).

It stands above `unlearnbench.method` (the contract and the registrations) and the methods package: the first lookup
imports `unlearnbench.methods`, whose modules register themselves. Importing this module loads neither (no torch):
`method_names` and `check_method_name` answer a mistyped name from the methods' source (`catalog.source_registry`)
until the registry is loaded, and from the live registry, a user's own methods included, once it is.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import sys
import textwrap
import tokenize
from typing import TYPE_CHECKING, Any

from .catalog import GROUP_TITLES, RENAMED, VARIANT_SEP, WIDTH, Entry, ordered, source_registry, wrap
from .errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from .method import MethodSpec


def _specs() -> dict[str, MethodSpec]:
    from . import methods  # noqa: F401  (importing the package registers every module in methods/)
    from .method import registered
    return dict(registered())


def _entry(spec: MethodSpec) -> Entry:
    return Entry(spec.name, spec.needs, spec.summary, spec.base, spec.display, spec.group, spec.order)


def get_method(name: str) -> MethodSpec:
    """The registered method or variant `name`; a UsageError with "did you mean" for an unknown name, with the new
    name for a renamed one (`catalog.RENAMED`)."""
    specs = _specs()
    if name in RENAMED and name not in specs:
        new, why = RENAMED[name]
        raise UsageError(f"method {name!r} is now {new!r}: {why}")
    if name not in specs:
        raise did_you_mean("method", name, list(specs))
    return specs[name]


def list_methods(variants: bool = True) -> list[str]:
    """Registered names in the order of every listing and table (`catalog.ordered`: by group, then each method's place
    in it), each method followed by its variants (alphabetically); `variants=False`: the methods as published only."""
    return ordered(_entry(s) for s in _specs().values() if variants or not s.is_variant)


def _loaded() -> bool:
    """Whether the registry is in memory (a method module, or a user's own registration, has been imported)."""
    live = sys.modules.get("unlearnbench.method")
    return live is not None and bool(live.registered())  # type: ignore[attr-defined]


def method_entries() -> list[Entry]:
    """Every method and variant in the registry's order: from the live registry when it is loaded (it may hold a
    user's own), else from the methods' source (no torch)."""
    if _loaded():
        return [_entry(get_method(n)) for n in list_methods()]
    entries = {e.name: e for e in source_registry()}
    return [entries[n] for n in ordered(entries.values())]


def method_names() -> list[str]:
    """Every registered method and variant name, without importing torch: the methods folder's registrations, and
    whatever the live registry holds if it is loaded (a user's own method)."""
    live = list(sys.modules["unlearnbench.method"].registered()) if _loaded() else []  # type: ignore[attr-defined]
    return list(dict.fromkeys([*(e.name for e in source_registry()), *live]))


def check_method_name(name: str) -> None:
    """A UsageError with "did you mean" for a name no method or variant has; nothing for a known one."""
    if name not in method_names():
        raise did_you_mean("method", name, method_names())


def method_label(method: str) -> str:
    """The column title of a method: its registered display name, a variant's as '<base's> +<what>'; a name the
    registry does not know (an old record's) as it is, its variant part likewise."""
    specs = _specs()
    if method in specs:
        return specs[method].label
    base, sep, what = method.partition(VARIANT_SEP)
    name = specs[base].display if base in specs else base
    return f"{name} +{what}" if sep else name


def group_title(method: str) -> str:
    """The title of the group a method (or variant) is registered in; "other methods" for a name the registry does not
    know."""
    specs = _specs()
    spec = specs.get(method) or specs.get(method.partition(VARIANT_SEP)[0])
    return GROUP_TITLES[spec.group if spec is not None else "other"]


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
