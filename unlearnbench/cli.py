"""`unlearnbench`: one command for the harness's tools, each the same as its `python -m unlearnbench.<tool>`.

    unlearnbench run     one cell: train or load θ*, unlearn one class, evaluate, record   (unlearnbench.run)
    unlearnbench sweep   a grid from a sweep file: planned, resumable, parallel           (unlearnbench.sweep)
    unlearnbench report  tables and plots from a results directory                        (unlearnbench.report)
    unlearnbench perf    speed, measured side by side                                     (unlearnbench.perf)
    unlearnbench list    data sets, models, methods and variants; one method's settings  (unlearnbench.run --list)

The tools are imported only when called, so `unlearnbench --help` answers at once.
"""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

from . import __version__
from .errors import ArgumentParser, cli, did_you_mean, invoked_as

NAME = "unlearnbench"

#: subcommand → (module, one line)
TOOLS = {
    "run": ("unlearnbench.run", "one cell: train or load θ*, unlearn one class with one method, evaluate, record"),
    "sweep": ("unlearnbench.sweep", "a grid of cells from a sweep file: planned, resumable, parallel"),
    "report": ("unlearnbench.report", "tables and plots from a results directory, beside the paper's numbers"),
    "perf": ("unlearnbench.perf", "speed, measured side by side (a benchmark, not a test)"),
    "list": ("unlearnbench.run", "data sets, models, methods and variants; list METHOD: its settings"),
}

HELP = f"""usage: {NAME} COMMAND [options]    ({NAME} COMMAND --help for a command's options)

A benchmark harness for class unlearning in image classifiers.

commands:
{chr(10).join(f"  {name:8s}{line}" for name, (_, line) in TOOLS.items())}

Each is the same as `python -m unlearnbench.<command>` (list: `python -m unlearnbench.run --list`).

examples:
  {NAME} list
  {NAME} list pbu
  {NAME} run --dataset mnist --model resnet18 --forget-class 2 --method pbu
  {NAME} sweep --config benchmarks/mnist_quick.toml --dry-run
  {NAME} report results/mnist_paper --compare-paper
Manual: README.md; every option: docs/cli.md."""


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
def list_main(argv: Sequence[str] | None = None) -> int:
    args = list_parser().parse_args(argv)
    if args.method is not None:
        from .registry import check_method_name, describe_method
        check_method_name(args.method)  # "did you mean", before torch loads
        print(describe_method(args.method))
        return 0
    from .run import list_everything, methods_markdown
    print(methods_markdown().rstrip("\n") if args.markdown else list_everything())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(HELP)
        return 2
    command, rest = args[0], args[1:]
    if command in ("-h", "--help"):
        print(HELP)
        return 0
    if command == "--version":
        print(f"{NAME} {__version__}")
        return 0
    if command not in TOOLS:
        print(f"{NAME}: error: {did_you_mean('command', command, list(TOOLS))} (see {NAME} --help)", file=sys.stderr)
        return 2
    with invoked_as(f"{NAME} {command}"):
        if command == "list":
            return list_main(rest)
        return importlib.import_module(TOOLS[command][0]).main(rest)


if __name__ == "__main__":
    sys.exit(main())
