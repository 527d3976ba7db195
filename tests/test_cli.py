"""Bad input: exit status 2, one line on stderr, nothing written; the `unlearnbench` command and its help."""
from __future__ import annotations

import configparser
import importlib
import re
import shlex
import subprocess
import sys

import pytest

from shown_commands import ROOT, check_call, harness_call, logical_lines
from unlearnbench import cli as console
from unlearnbench.run import main

BASE = ["--dataset", "mnist", "--model", "resnet18", "--forget-class", "2", "--method", "finetune"]


def _swap(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


@pytest.mark.parametrize("argv, message", [
    (_swap(BASE, "--dataset", "mnist2"), "unknown dataset 'mnist2'; valid:"),
    (_swap(BASE, "--model", "resnet_9000"), "unknown model 'resnet_9000'"),
    (_swap(BASE, "--method", "forget_all"), "unknown method 'forget_all'; valid:"),
    (_swap(BASE, "--forget-class", "12"), "forget class 12 is out of range for mnist"),
    (_swap(BASE, "--forget-class", "two"), "invalid int value: 'two'"),
    (BASE + ["--train", "epochs=0"], "epochs: must be >= 1, got 0"),
    (BASE + ["--train", "epochs"], "expected KEY=VALUE"),
    (BASE + ["--hp", "learning_rate=1"], "method.finetune: unknown key"),
    (BASE + ["--device", "cuda:7"], "CUDA is not available"),
    (BASE[:-2], "missing --method"),
])
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    results = tmp_path / "out.jsonl"
    code = _exit_code(argv + ["--results", str(results), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not results.exists() and not (tmp_path / "c").exists()


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_bad_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = 2\nlr = = 3\n")
    assert _exit_code(BASE + ["--config", str(bad), "--results", str(tmp_path / "r.jsonl")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[train]\nepochs = 2\nwarmup = 3\n")
    assert _exit_code(BASE + ["--config", str(unknown), "--results", str(tmp_path / "r.jsonl")]) == 2
    assert "unknown key(s) warmup" in capsys.readouterr().err
    assert _exit_code(BASE + ["--config", str(tmp_path / "none.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def test_missing_data_offline(tmp_path, capsys):
    argv = BASE + ["--data-root", str(tmp_path / "empty"), "--no-download", "--results", str(tmp_path / "r.jsonl"),
                   "--cache-dir", str(tmp_path / "cache")]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mnist not found under" in err and "MNIST/raw" in err
    assert not (tmp_path / "r.jsonl").exists()


def test_real_entry_point_reports_one_line():
    proc = subprocess.run([sys.executable, "-m", "unlearnbench.run", *_swap(BASE, "--dataset", "cifar10")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "unlearnbench.run: error: unknown dataset 'cifar10'; valid: cifar100, fashion_mnist, food101, mnist"]


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
        "unlearnbench: error: unknown command 'frobnicate'; valid: list, perf, report, run, sweep "
        "(see unlearnbench --help)"]


def test_list_is_run_list(capsys):
    assert _console(["list"]) == 0
    listed = capsys.readouterr().out
    assert main(["--list"]) == 0
    assert capsys.readouterr().out == listed
    assert "pbu+fixed5" in listed and "bad_teaching+redraw" in listed


def test_a_command_runs_its_module_and_reports_errors_under_its_name(capsys):
    assert _console(["run", *_swap(BASE, "--dataset", "mnist2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["unlearnbench run: error: unknown dataset 'mnist2'; valid: cifar100, fashion_mnist, food101, mnist"]
    assert _console(["sweep", "--config", "benchmarks/none.toml", "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("unlearnbench sweep: error: config file benchmarks/none.toml")
