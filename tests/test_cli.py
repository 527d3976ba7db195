"""Bad input: exit status 2, one line on stderr, nothing written."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

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
