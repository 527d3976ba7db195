"""Commands as the docs and the help texts show them, checked without running them.

Each call of a harness tool is parsed by that tool's own argparse parser, and what the tool resolves before any work
is resolved too (a run's cell, a sweep's grid and its `--only` share, a report's metrics and formats, perf's sections):
an unknown option, key, method or class fails here as it would for a user. Nothing is loaded or trained.
"""
from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = {"python", "python3"}
ENV_ASSIGNMENT = re.compile(r"[A-Z_][A-Z0-9_]*=\S*")


def logical_lines(text: str) -> list[str]:
    """The lines of a shell snippet, backslash continuations joined."""
    out, pending = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def tokens_of(line: str) -> list[str]:
    """Shell words of one line, comments dropped and leading `VAR=value` assignments skipped."""
    tokens = shlex.split(line, comments=True)
    while tokens and ENV_ASSIGNMENT.fullmatch(tokens[0]):
        tokens = tokens[1:]
    return tokens


def harness_call(tokens: list[str]) -> tuple[str, list[str]] | None:
    """(tool, its arguments) when `tokens` call `python -m unlearnbench.<tool>` or `unlearnbench <tool>`, else None.
    `python -m unlearnbench.cli` is the `unlearnbench` command; a bare `unlearnbench` (or `--help`) gives tool ""."""
    if len(tokens) >= 3 and Path(tokens[0]).name in PYTHONS and tokens[1] == "-m" \
            and tokens[2].startswith("unlearnbench."):
        module = tokens[2].split(".", 1)[1]
        if module != "cli":
            return module, tokens[3:]
        tokens = ["unlearnbench", *tokens[3:]]
    if tokens and Path(tokens[0]).name == "unlearnbench":
        if len(tokens) == 1 or tokens[1].startswith("-"):
            return "", tokens[1:]
        return tokens[1], tokens[2:]
    return None


def check_call(tool: str, args: list[str]) -> None:
    """Raise AssertionError with the tool's own message if `tool args` would be refused before any work."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            _resolve(tool, args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise AssertionError(f"{tool} {shlex.join(args)}: {err.getvalue().strip()}") from None
    except Exception as exc:  # noqa: BLE001 - a UsageError or any other refusal is the failure being tested
        raise AssertionError(f"{tool} {shlex.join(args)}: {type(exc).__name__}: {exc}") from None


def _resolve(tool: str, args: list[str]) -> None:
    from unlearnbench.cli import listing
    if tool == "":
        assert not args or args[0] in ("-h", "--help", "--version"), f"unknown option {args[0]}"
    elif tool == "list":
        listing.list_parser().parse_args(args)
    elif tool == "run":
        from unlearnbench.cli import run
        ns = run.parser().parse_args(args)
        if not ns.list:
            run.cell_from_args(ns)
    elif tool == "sweep":
        from unlearnbench.cli import sweep
        sweep.sweep_from_args(sweep.parser().parse_args(args))
    elif tool == "report":
        from unlearnbench.aggregate import METRICS
        from unlearnbench.cli import report
        ns = report.parser().parse_args(args)
        assert {f.strip() for f in ns.format.split(",")} <= {"csv", "tex", "md"}, f"--format {ns.format}"
        unknown = [m for m in ns.metrics.split(",") if m.strip() not in METRICS]
        assert not unknown, f"unknown metric(s) {unknown}"
    elif tool == "perf":
        from unlearnbench.cli import perf
        ns = perf.parser().parse_args(args)
        assert set(ns.sections.split(",")) <= set(perf.SECTIONS), f"--sections {ns.sections}"
        assert set(ns.variants.split(",")) <= set(perf.VARIANTS), f"--variants {ns.variants}"
    elif tool == "sensitivity":
        from unlearnbench.cli import sensitivity
        ns = sensitivity.parser().parse_args(args)
        missing = [str(p) for p in (ns.first, ns.second) if not (ROOT / p).is_dir()]
        assert not missing, f"no results directory {missing}"
    else:
        raise AssertionError(f"unknown tool {tool!r}")


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*):", text, flags=re.M))


def check_make(args: list[str]) -> None:
    """A `make` line: its targets exist; `make bench` names a sweep file that exists."""
    variables = dict(a.split("=", 1) for a in args if "=" in a)
    targets = [a for a in args if "=" not in a and not a.startswith("-")]
    missing = set(targets) - makefile_targets()
    assert not missing, f"make: no target(s) {sorted(missing)}"
    if "bench" in targets:
        sweep_file = ROOT / "benchmarks" / f"{variables.get('DATASET', 'mnist')}_{variables.get('PROFILE', 'quick')}.toml"
        assert sweep_file.exists(), f"make bench: {sweep_file.relative_to(ROOT)} does not exist"
