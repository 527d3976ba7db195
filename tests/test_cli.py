"""Bad input: exit status 2, one line on stderr, nothing written; the `unlearnbench` command and its help."""
from __future__ import annotations

import configparser
import errno
import importlib
import re
import shlex
import subprocess
import sys

import pytest

from shown_commands import ROOT, check_call, harness_call, logical_lines
from unlearnbench import cli as console
from unlearnbench.cli.options import cli
from unlearnbench.cli.run import main
from unlearnbench.errors import UsageError, WriteError

BASE = ["--dataset", "mnist", "--model", "resnet18", "--forget-class", "2", "--method", "finetune"]


def _swap(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


@pytest.mark.slow
def test_real_entry_point_reports_one_line():
    proc = subprocess.run([sys.executable, "-m", "unlearnbench.run", *_swap(BASE, "--dataset", "cifar10")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "unlearnbench.run: error: unknown dataset 'cifar10' (did you mean 'cifar100'?); valid: cifar100, "
        "fashion_mnist, food101, mnist"]


def test_list(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "finetune" in out and "retrain" in out


# --------------------------------------------------------------------------------------------------------------------
# the `unlearnbench` command
# --------------------------------------------------------------------------------------------------------------------
SUBCOMMANDS = ("run", "sweep", "report", "perf", "list")


def _console(argv: list[str]) -> int:
    try:
        return console.main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_setup_cfg_declares_the_console_script():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = dict(line.split("=", 1) for line in cfg["options.entry_points"]["console_scripts"].splitlines()
                   if line.strip())
    assert {k.strip(): v.strip() for k, v in scripts.items()} == {"unlearnbench": "unlearnbench.cli:main"}
    module, _, function = "unlearnbench.cli:main".partition(":")
    assert getattr(importlib.import_module(module), function) is console.main


def _fits_a_screen(text: str) -> None:
    lines = text.splitlines()
    assert len(lines) <= 40, f"{len(lines)} lines"
    assert max(map(len, lines)) <= 100, max(lines, key=len)


def test_top_level_help_lists_every_command_with_examples(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert _console(["--help"]) == 0
    out = capsys.readouterr().out
    _fits_a_screen(out)
    assert "example" in out and all(f"  {c} " in out for c in SUBCOMMANDS)
    assert _console([]) == 2 and "commands:" in capsys.readouterr().out  # no command: the help, and a failure


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_each_command_help_fits_a_screen_and_its_examples_parse(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert _console([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: unlearnbench {command}")
    assert "example" in out
    _fits_a_screen(out)
    monkeypatch.chdir(ROOT)
    examples = [line for line in logical_lines(out.split("example", 1)[1])
                if line.strip().startswith(f"unlearnbench {command}")]
    assert examples
    for line in examples:
        call = harness_call(shlex.split(line, comments=True))
        assert call is not None and call[0] == command
        check_call(*call)


def test_python_m_keeps_its_own_name(capsys):
    from unlearnbench import report
    with pytest.raises(SystemExit):
        report.main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m unlearnbench.report") and "python -m unlearnbench.report results/" in out


def test_unknown_command_is_one_line_and_exit_2(capsys):
    assert _console(["frobnicate", "--fast"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        "unlearnbench: error: unknown command 'frobnicate'; valid: list, perf, report, run, sensitivity, sweep "
        "(see unlearnbench --help)"]


def test_list_is_run_list(capsys):
    assert _console(["list"]) == 0
    listed = capsys.readouterr().out
    assert main(["--list"]) == 0
    assert capsys.readouterr().out == listed
    assert "pbu+stop" in listed and "bad_teaching+redraw" in listed


def test_a_command_runs_its_module_and_reports_errors_under_its_name(capsys):
    assert _console(["run", *_swap(BASE, "--dataset", "mnist2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["unlearnbench run: error: unknown dataset 'mnist2' (did you mean 'mnist'?); valid: cifar100, "
                   "fashion_mnist, food101, mnist"]
    assert _console(["sweep", "--config", "benchmarks/none.toml", "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("unlearnbench sweep: error: config file benchmarks/none.toml")
@pytest.mark.parametrize("error, code, line", [
    (WriteError("could not write r/runs.jsonl: No space left on device"), 1,
     "could not write r/runs.jsonl: No space left on device"),
    (PermissionError(errno.EACCES, "Permission denied", "r/runs.jsonl"), 1, "r/runs.jsonl: Permission denied"),
    (OSError(errno.ENOSPC, "No space left on device"), 1, "a write failed: No space left on device"),
    (UsageError("first line\nsecond line"), 2, "first line second line"),
])
def test_failures_are_one_line(error, code, line, capsys):
    @cli
    def failing(argv=None):
        raise error

    assert failing([]) == code
    assert capsys.readouterr().err.splitlines() == [f"{__name__}: error: {line}"]


def test_other_os_errors_keep_their_traceback():
    @cli
    def failing(argv=None):
        raise ConnectionResetError(errno.ECONNRESET, "reset")

    with pytest.raises(ConnectionResetError):
        failing([])


HEAVY = ("torch", "timm", "pandas", "matplotlib")
PROBE = """
import sys
from unlearnbench.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("HEAVY", [m for m in {heavy!r} if m in sys.modules], "CODE", code, file=sys.stderr)
"""


@pytest.mark.parametrize("argv, code, says", [
    (["--help"], 0, "usage: unlearnbench"),
    *[([c, "--help"], 0, f"usage: unlearnbench {c}") for c in ("run", "sweep", "report", "perf", "list",
                                                                 "sensitivity")],
    (["sensitivity", "only/one"], 2, "the following arguments are required: second"),
    (["run", "--dataset", "mnist", "--model", "resnet18", "--forget-class", "2", "--method", "pbuu"], 2,
     "unknown method 'pbuu' (did you mean 'pbu'?)"),
    (["run", "--dataset", "mnist", "--model", "resnet18", "--forget-class", "2", "--method", "pbu", "--hp", "beta"],
     2, "--hp: expected KEY=VALUE"),
    (["run", "--dataset", "mnist"], 2, "missing --model, --forget-class, --method"),
    (["list", "finetun"], 2, "unknown method 'finetun' (did you mean 'finetune'"),
    (["sweep", "--config", "no/such.toml"], 2, "config file no/such.toml does not exist"),
    (["report", "no/such/dir"], 2, "no/such/dir does not exist"),
    (["perf", "--sections", "speed"], 2, "--sections takes loader"),
])
def test_help_and_command_line_errors_answer_before_torch_loads(argv, code, says):
    """What the CLI answers from its command line alone (help, a mistyped name, a missing file) it answers without
    importing torch, timm, pandas or matplotlib: at once, whatever the host."""
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert says in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"HEAVY [] CODE {code}"


def test_a_sweep_files_mistyped_method_answers_before_torch_loads(tmp_path):
    bad = (ROOT / "benchmarks" / "smoke.toml").read_text().replace('"finetune"]', '"finetunee"]')
    (tmp_path / "bad.toml").write_text(bad)
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), "sweep", "--config",
                           str(tmp_path / "bad.toml"), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert "unknown method 'finetunee' (did you mean 'finetune'" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "HEAVY [] CODE 2"


def test_list_method_prints_every_setting_with_default_range_and_source(capsys):
    import dataclasses

    from unlearnbench.registry import get_method
    assert _console(["list", "pbu"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 100 for line in out.splitlines())
    fields = [f.name for f in dataclasses.fields(get_method("pbu").hparams)]
    assert fields and all(re.search(rf"^    {f} +=", out, re.M) for f in fields)
    assert re.search(r"^    beta +  = 100\.0  \(float, >= 0 and <= 1000000\)$", out, re.M)
    assert "source: weight of the Fisher-weighted distance to θ* (official, class 8)" in out


def test_list_lines_wrap_at_100(capsys):
    assert _console(["list"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 100 and "pbu+stop" in out


@pytest.mark.slow
@pytest.mark.parametrize("module", ["unlearnbench.run", "unlearnbench.sweep", "unlearnbench.report", "unlearnbench.perf",
                                    "unlearnbench.sensitivity", "unlearnbench.cli"])
def test_each_documented_python_m_entry_point_answers_under_its_own_name(module):
    """The commands live in unlearnbench/cli/; `python -m unlearnbench.<tool>` stays what the docs show."""
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0 and proc.stderr == ""
    expected = "usage: unlearnbench COMMAND" if module == "unlearnbench.cli" else f"usage: python -m {module}"
    assert proc.stdout.startswith(expected)
