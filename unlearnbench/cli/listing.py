"""`unlearnbench list`: data sets, models, methods and variants (each with the data it declares and one line), read
from the source without torch; `list METHOD`: one method's settings (default, range, source); `list --markdown`:
the README's methods table.
"""
from __future__ import annotations

from typing import Sequence

from .options import ArgumentParser, cli

NAME = "unlearnbench"


def list_parser() -> ArgumentParser:
    me = f"{NAME} list"
    p = ArgumentParser(prog=me, description="Data sets, models, methods and variants (each with the data it "
                       "declares and one line); the same as `python -m unlearnbench.run --list`. With a METHOD: "
                       "what it does and each of its settings with its default, valid range and source.",
                       epilog=f"""examples:
  {me}
  {me} pbu           # PBU's settings: default, range, source
  {me} --markdown    # the methods table of the README, with links to docs/methods.md""")
    p.add_argument("method", nargs="?", metavar="METHOD", help="a method or variant: show its settings")
    p.add_argument("--markdown", action="store_true", help="the methods and variants as a Markdown table")
    return p


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = list_parser().parse_args(argv)
    if args.method is not None:
        from ..registry import check_method_name, describe_method
        check_method_name(args.method)  # "did you mean", before torch loads
        print(describe_method(args.method))
        return 0
    print(methods_table().rstrip("\n") if args.markdown else list_everything())
    return 0


def list_everything(width: int = 100) -> str:
    """Data sets, models, methods and variants, each method with the data it declares and its one line, wrapped at
    `width` (`unlearnbench list METHOD` gives one method's settings). Read from the source, so without torch: at once."""
    from ..catalog import dataset_names, model_names, wrap
    from ..registry import method_entries
    lines = [*wrap("datasets: " + ", ".join(dataset_names()), "  ", width),
             *wrap("models: " + ", ".join(model_names()) + " (or any timm name)", "  ", width), "methods:"]
    entries = method_entries()
    name_w = max(len(e.name) for e in entries)
    for e in entries:
        start = f"  {e.name:{name_w}s}  {'+'.join(sorted(e.needs)) or 'nothing':14s} "
        lines += wrap(start + e.summary, " " * len(start), width)
    lines.append("settings of one method, with default, range and source: unlearnbench list METHOD")
    return "\n".join(lines)


#: How the methods table names the data a method declares (`needs`).
NEEDS = {frozenset(): "none", frozenset({"retain"}): "D_r", frozenset({"forget"}): "D_f only",
         frozenset({"forget", "retain"}): "D_f + D_r"}


def methods_table(docs: str = "docs/methods.md") -> str:
    """The methods table the README shows: every method and variant in `--list` order, the data it declares, its one
    line, and a link to its section of the methods page (a variant links to its base method's)."""
    from ..registry import get_method, list_methods
    rows = ["| method | data | what it does | docs |", "|---|---|---|---|"]
    for name in list_methods():
        spec = get_method(name)
        base = spec.base or name
        line = spec.summary.replace("|", "\\|")
        rows.append(f"| `{name}` | {NEEDS[spec.needs]} | {line} | [docs]({docs}#{base}) |")
    return "\n".join(rows) + "\n"
