"""The one-cell CLI's entry point: one line for every error (the bad-input cases are tests/test_bad_input.py)."""
from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from unlearnbench.errors import UsageError, WriteError, cli
from unlearnbench.run import main

BASE = ["--dataset", "mnist", "--model", "resnet18", "--forget-class", "2", "--method", "finetune"]


def _swap(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


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
