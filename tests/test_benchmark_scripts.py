"""The measurement scripts of benchmarks/ pick their cells as `sweep --only` does, and refuse an ambiguous or empty
choice in one line (exit 2) before any training."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, only, message", [
    # the CPU grid has three models at seed 0: a class and seed alone name three cells
    ("bad_teaching_targets", ["forget_class=2", "seed=0"],
     r"3 cells of 'mnist' match; name one: --only model=resnet34\|densenet121\|convnext_large$"),
    ("bn_statistics", ["forget_class=2", "seed=0", "method=pbu"], r"name one: --only model="),
    ("pbu_stopping", ["method=pbu"], r"--only method=\.\.\. is not for this script"),
    ("pbu_stopping", ["model=resnet34", "seed=7"], r"no cell of 'mnist' matches"),
])
def test_scripts_refuse_a_choice_that_is_not_their_cells(name, only, message, tmp_path, capsys):
    args = [str(ROOT / "benchmarks" / "mnist_cpu.toml"), *[a for o in only for a in ("--only", o)],
            "--cache-dir", str(tmp_path / "cache")]
    assert _script(name).main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and __import__("re").search(message, err), err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
