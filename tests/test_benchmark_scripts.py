"""The measurement scripts of benchmarks/ pick their cells as `sweep --only` does, and refuse an ambiguous or empty
choice in one line (exit 2) before any training; bn_statistics explains every collapse of a results directory."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains on real MNIST: `make test-fast` leaves these out

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    """The code of `python benchmarks/<name>.py`."""
    return importlib.import_module(f"unlearnbench.studies.{name}")


@pytest.mark.parametrize("name, only, message", [
    # the CPU grid has three models at seed 0: a class and seed alone name three cells
    ("bad_teaching_targets", ["forget_class=2", "seed=0"],
     r"3 cells of 'mnist' match; name one: --only model=resnet34\|densenet121\|convnext_large$"),
    ("bn_statistics", ["forget_class=2", "seed=0", "method=pbu"], r"name one: --only model="),
    ("pbu_stopping", ["method=pbu"], r"--only method=\.\.\. is not for this script"),
    ("pbu_stopping", ["model=resnet34", "seed=7"], r"no cell of 'mnist' matches"),
    ("weight_groups", ["forget_class=2", "seed=0", "method=pbu"], r"name one: --only model="),
])
def test_scripts_refuse_a_choice_that_is_not_their_cells(name, only, message, tmp_path, capsys):
    args = [str(ROOT / "benchmarks" / "mnist_cpu.toml"), *[a for o in only for a in ("--only", o)],
            "--cache-dir", str(tmp_path / "cache")]
    assert _script(name).main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and __import__("re").search(message, err), err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_collapse_verdict_reads_the_recalibrated_a_dr_against_theta():
    verdict = _script("bn_statistics").verdict
    assert verdict(90.0, 50.0, 80.0) == "statistics"  # back to exactly 10 below θ*
    assert verdict(90.0, 50.0, 79.9) == "both"
    assert verdict(90.0, 50.0, 60.0) == "both"  # a quarter of the 40 points lost
    assert verdict(90.0, 50.0, 59.9) == "weights"
    assert verdict(90.0, 50.0, 50.0) == "weights"  # no BatchNorm: recalibration changes nothing


def _record(key: str, method: str, retain: float, theta: float = 90.0) -> dict:
    return {"config_hash": key, "dataset": "mnist", "model": "resnet34", "forget_class": 2, "seed": 0,
            "method": method, "acc_forget": 1.0, "acc_retain": retain, "original_acc_retain": theta}


def _store(root: Path, records: list[dict]) -> Path:
    import json
    (root / "records").mkdir(parents=True)
    for r in records:
        (root / "records" / f"{r['config_hash']}.json").write_text(json.dumps(r))
    return root


def test_collapsed_refuses_results_without_a_collapse_of_the_sweep(tmp_path, capsys):
    script, config = _script("bn_statistics"), str(ROOT / "benchmarks" / "mnist_cpu.toml")
    none = _store(tmp_path / "none", [_record("a" * 16, "pbu", 80.0)])  # exactly 10 below θ*: no collapse
    other = _store(tmp_path / "other", [_record("b" * 16, "pbu", 79.9)])  # a collapse, of another sweep file
    for results, message in ((none, "no record of a collapsed cell of 'mnist'$"),
                             (other, r"no record of a collapsed cell of 'mnist' \(1 of other sweep files\)$"),
                             (tmp_path / "missing", "not a results directory$")):
        assert script.main([config, "--collapsed", str(results), "--cache-dir", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and __import__("re").search(message, err), err
    assert script.main([config, "--cache-dir", str(tmp_path / "c")]) == 2
    assert "name a cell with --only" in capsys.readouterr().err
    assert not (tmp_path / "none" / "extra").exists() and not (tmp_path / "c").exists()


def test_collapsed_explains_each_collapse_once_and_resumes(tmp_path, monkeypatch):
    """Every collapsed record of the sweep gets one row (its verdict, or none where the rerun does not reproduce the
    record); a second run measures nothing again; the table tallies the verdicts."""
    from unlearnbench.plan import load_sweep
    script, config = _script("bn_statistics"), ROOT / "benchmarks" / "mnist_cpu.toml"
    cells = load_sweep(config).cells
    fine, lost, drifted, off = cells[1:5]  # four methods' cells (cells[0] is θ* itself)
    results = _store(tmp_path / "res", [_record(fine.key, fine.method, 85.0), _record(lost.key, lost.method, 40.0),
                                        _record(drifted.key, drifted.method, 50.0),
                                        _record(off.key, off.method, 30.0)])
    measured = {lost.key: [40.0, 45.0], drifted.key: [50.0, 88.0], off.key: [31.0, 31.0]}  # record's, recalibrated
    calls = []

    def three_ways(runner, cell, batch):
        calls.append(cell.key)
        record, recal = measured[cell.key]
        return {"unlearn_seconds": 1.5, "theta": [95.0, 90.0], "record": [1.0, record],
                "batch_statistics": [2.0, recal], "recalibrated": [3.0, recal]}

    monkeypatch.setattr(script, "three_ways", three_ways)
    runner = type("Runner", (), {"device": __import__("torch").device("cpu")})
    monkeypatch.setattr(script, "shared_runner", lambda env: runner)
    argv = [str(config), "--collapsed", str(results), "--cache-dir", str(tmp_path / "c")]
    assert script.main(argv) == 0
    assert sorted(calls) == sorted([lost.key, drifted.key, off.key])  # not the cell 10 points below θ*
    rows = {r["config_hash"]: r for r in map(__import__("json").loads,
                                             (results / "extra" / "collapse_causes.jsonl").read_text().splitlines())}
    assert {k: r["verdict"] for k, r in rows.items()} == {lost.key: "weights", drifted.key: "statistics",
                                                          off.key: None}  # off: the rerun's A_Dr 31.0, record's 30.0
    table = (results / "extra" / "collapse_causes.md").read_text()
    assert "Verdicts: 1 statistics, 0 both, 1 weights, 1 not reproduced." in table
    assert table.count("**not reproduced**") == 1
    per_method = [ln for ln in table.splitlines() if ln.startswith("| ") and ln.count("|") == 7][1:]
    assert len(per_method) == 3 and all(ln.split("|")[2].strip() == "1" for ln in per_method)
    calls.clear()
    assert script.main(argv) == 0 and calls == []  # resumed: nothing measured twice

    # a share of the cells (--only) measures only those, and keeps the other cells' rows
    path = results / "extra" / "collapse_causes.jsonl"
    path.write_text("".join(ln + "\n" for ln in path.read_text().splitlines() if drifted.key not in ln))
    assert script.main([*argv, "--only", f"method={drifted.method}"]) == 0 and calls == [drifted.key]
    assert len(path.read_text().splitlines()) == 3
