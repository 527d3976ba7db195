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

from .. import __version__
from ..errors import did_you_mean
from .options import invoked_as

NAME = "unlearnbench"

#: subcommand → (module, one line)
TOOLS = {
    "run": ("unlearnbench.cli.run", "one cell: train or load θ*, unlearn one class with one method, evaluate, record"),
    "sweep": ("unlearnbench.cli.sweep", "a grid of cells from a sweep file: planned, resumable, parallel"),
    "report": ("unlearnbench.cli.report", "tables and plots from a results directory, beside the paper's numbers"),
    "perf": ("unlearnbench.cli.perf", "speed, measured side by side (a benchmark, not a test)"),
    "sensitivity": ("unlearnbench.cli.sensitivity", "one grid under two budget rules, side by side"),
    "list": ("unlearnbench.cli.listing", "data sets, models, methods and variants; list METHOD: its settings"),
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
        return importlib.import_module(TOOLS[command][0]).main(rest)
