"""The sweep runner: plan, resume, kill -9, concurrency, failures, Dask."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from unlearnbench import method as registry
from unlearnbench.errors import DataUnavailable, UsageError
from unlearnbench.method import MethodSpec
from unlearnbench.plan import load_sweep, one_cell, selections, sweep_share
from unlearnbench.registry import get_method
from unlearnbench.store import RecordStore
from unlearnbench.cli.sweep import main

pytestmark = pytest.mark.slow  # trains on real MNIST: `make test-fast` leaves these out

GRID = """
name = "tiny"
seeds = [0, 1]
methods = ["original", "retrain", "finetune", "pbu"]
[[grid]]
dataset = "mnist"
models = ["test_resnet"]
forget_classes = [1, 2, 7]
[data]
train_per_class = 30
test_per_class = 10
[train]
epochs = 1
batch_size = 32
[method.finetune]
epochs = 1
[method.pbu]
fisher = "mc"
epochs = 1
stop = "none"
"""
N_CELLS = 2 * 3 * 4


@pytest.fixture()
def grid(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_DATA", str(data_root))
    path = tmp_path / "tiny.toml"
    path.write_text(GRID)
    return path


def _args(grid: Path, results: Path, cache: Path, *extra: str) -> list[str]:
    return ["--config", str(grid), "--results", str(results), "--cache-dir", str(cache), "--no-download",
            "--no-estimate", *extra]


def _summary(results: Path) -> dict[str, tuple[float, float]]:
    """cell key → (A_Df, A_Dr); also checks that every record file is whole and unique."""
    files = sorted((results / "records").glob("*.json"))
    out = {}
    for f in files:
        rec = json.loads(f.read_text())
        assert rec["config_hash"] == f.stem
        out[f.stem] = (rec["acc_forget"], rec["acc_retain"])
    return out


def test_dry_run_prints_the_plan_and_writes_nothing(grid, tmp_path, capsys):
    assert main(_args(grid, tmp_path / "r", tmp_path / "c", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "24 cells" in out and "original models : 2 (0 cached, 2 to train)" in out
    assert "retrained oracles: 6 (0 cached)" in out and "jobs             : 26" in out
    assert not (tmp_path / "r").exists()


def test_a_grid_entry_may_narrow_the_seeds_and_methods(grid):
    """A second entry with its own seeds and methods plans only those; the first keeps the file's."""
    grid.write_text(GRID + '[[grid]]\ndataset = "mnist"\nmodels = ["resnet18"]\nforget_classes = [3]\n'
                           'seeds = [1]\nmethods = ["original", "pbu"]\n')
    cells = load_sweep(grid).cells
    big = [(c.setup.seed, c.forget_class, c.method) for c in cells if c.setup.model.name == "resnet18"]
    assert big == [(1, 3, "original"), (1, 3, "pbu")]
    assert len(cells) == N_CELLS + 2
    grid.write_text(GRID + '[[grid]]\ndataset = "mnist"\nmodels = ["resnet18"]\nforget_classes = [3]\n'
                           'seeds = []\n')
    with pytest.raises(UsageError, match=r"grid\[1\]: seeds must be a non-empty list"):
        load_sweep(grid)


@pytest.mark.parametrize("edit, message", [
    (("forget_classes = [1, 2, 7]", "forget_classes = [1, 12]"), "forget class 12 is out of range"),
    (('methods = ["original", "retrain", "finetune", "pbu"]', 'methods = ["original", "unlearn"]'),
     "unknown method 'unlearn'"),
    (("[train]", "[trian]"), "unknown key.*trian"),
    (("epochs = 1\nbatch_size", "epochz = 1\nbatch_size"), "unknown key.*epochz"),
    (('models = ["test_resnet"]', 'models = ["resnet_nope"]'), "unknown model 'resnet_nope'"),
    (("seeds = [0, 1]", "seeds = 0"), "seeds must be a non-empty list"),
])
def test_config_errors_are_reported_before_any_work(edit, message, grid, tmp_path, capsys):
    grid.write_text(GRID.replace(*edit))
    assert main(_args(grid, tmp_path / "r", tmp_path / "c")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and __import__("re").search(message, err), err
    assert not (tmp_path / "r").exists() and not list((tmp_path / "c").glob("*.pt"))


def test_only_runs_a_share_whose_records_count_for_the_whole_grid(grid, tmp_path, capsys):
    r, c = tmp_path / "r", tmp_path / "c"
    assert main(_args(grid, r, c, "--dry-run", "--only", "seed=1", "--only", "forget-class=2,7")) == 0
    out = capsys.readouterr().out
    assert "8 cells" in out and "original models : 1 (0 cached" in out and "retrained oracles: 2 (0 cached)" in out
    # a share without retrain cells still trains the oracles its cells are measured against: the plan says so
    assert main(_args(grid, r, c, "--dry-run", "--only", "seed=1", "--only", "method=pbu")) == 0
    assert "retrained oracles: 3 (0 cached)" in capsys.readouterr().out
    assert main(_args(grid, r, c, "--dry-run", "--only", "seed=1", "--only", "method=pbu", "--set",
                      "eval.oracle=false")) == 0
    assert "retrained oracles: 0 (0 cached)" in capsys.readouterr().out
    assert main(_args(grid, r, c, "--only", "seed=0", "--only", "forget_class=1", "--only", "method=original")) == 0
    assert len(_summary(r)) == 1
    # a second share: a key given twice selects both values, and cells.json keeps the first share's cell too
    assert main(_args(grid, r, c, "--only", "seed=0", "--only", "forget_class=2", "--only", "method=original",
                      "--only", "method=retrain")) == 0
    assert len(_summary(r)) == 3 and len(json.loads((r / "cells.json").read_text())) == 3
    # the same share resumed: nothing to run, and cells.json and sweep.toml are left as they are (a committed
    # results directory stays clean)
    before = {f: ((r / f).stat().st_mtime_ns, (r / f).stat().st_ino) for f in ("cells.json", "sweep.toml")}
    assert main(_args(grid, r, c, "--only", "seed=0", "--only", "forget_class=2", "--only", "method=original",
                      "--only", "method=retrain")) == 0
    assert before == {f: ((r / f).stat().st_mtime_ns, (r / f).stat().st_ino) for f in ("cells.json", "sweep.toml")}
    capsys.readouterr()
    assert main(_args(grid, r, c, "--dry-run")) == 0  # the whole grid: that record and θ* are already there
    out = capsys.readouterr().out
    assert "24 cells" in out and "(3 recorded, 21 to run)" in out and "original models : 2 (1 cached" in out
    # the records moved to a machine with an empty cache: a θ* whose cells are all recorded is not trained again
    assert main(_args(grid, r, tmp_path / "empty", "--dry-run", "--only", "seed=0", "--only", "forget_class=1",
                      "--only", "method=original")) == 0
    out = capsys.readouterr().out
    assert "jobs             : 0" in out and "original models : 1 (0 cached, 0 to train)" in out


@pytest.mark.parametrize("only, message", [("colour=red", "--only colour: select on one of"),
                                           ("method=pbu,nope", None), ("seed=5", "no cell of 'tiny' matches")])
def test_only_rejects_unknown_keys_and_empty_selections(only, message, grid, tmp_path, capsys):
    rc = main(_args(grid, tmp_path / "r", tmp_path / "c", "--dry-run", "--only", only))
    if message is None:  # an unknown value among known ones selects what exists
        assert rc == 0 and "6 cells" in capsys.readouterr().out
    else:
        assert rc == 2 and message in capsys.readouterr().err


def test_one_cell_needs_every_varying_key_but_the_fixed_ones(grid):
    sweep = load_sweep(grid)
    cell = one_cell(sweep, selections(["method=pbu", "forget_class=7", "seed=1"]))  # dataset, model: one each
    assert (cell.method, cell.forget_class, cell.setup.seed) == ("pbu", 7, 1)
    with pytest.raises(UsageError, match=r"^6 cells of 'tiny' match; name one: --only forget_class=1\|2\|7 "
                                         r"--only seed=0\|1$"):
        one_cell(sweep, selections(["method=pbu"]))
    with pytest.raises(UsageError, match="no cell of 'tiny' matches"):
        one_cell(sweep, selections(["method=pbu", "forget_class=3", "seed=0"]))


def test_a_share_of_a_steps_file_is_planned_from_the_data_root_given(data_root, tmp_path):
    """What the sweep command and the measurement scripts start from: the file's share, a "steps" rule's class
    sizes read from the data root given, the very cells the committed sweep planned (their keys)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "mnist_retain_free_steps.toml"
    share = sweep_share(path, selections(["forget_class=8", "method=pbu,grad_ascent"]), data_root=data_root)
    assert {c.method: c.hparams.epochs for c in share.cells} == {"pbu": 29, "grad_ascent": 25}  # 464 and 100 steps
    planned = json.loads((path.parents[1] / "results" / "mnist_retain_free_steps" / "cells.json").read_text())
    assert {c.key for c in share.cells} <= {c["config_hash"] for c in planned}
    assert one_cell(share, selections(["method=pbu"])).hparams.epochs == 29
    with pytest.raises(DataUnavailable):  # the sizes come from this root, not from the default one
        sweep_share(path, selections(["method=pbu"]), data_root=tmp_path / "nodata")


def test_missing_data_is_reported_before_any_work(grid, tmp_path, capsys, monkeypatch):
    args = _args(grid, tmp_path / "r", tmp_path / "c") + ["--data-root", str(tmp_path / "nodata")]
    assert main(args) == 2
    assert "mnist not found under" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_sweep_records_every_cell_then_resumes_with_nothing_to_do(grid, tmp_path, capsys):
    results, cache = tmp_path / "r", tmp_path / "c"
    assert main(_args(grid, results, cache)) == 0
    first = _summary(results)
    assert len(first) == N_CELLS
    assert (results / "sweep.toml").read_text() == GRID and len(json.loads((results / "cells.json").read_text())) == 24
    pts = sorted(p.name for p in cache.glob("*.pt"))
    assert len(pts) == 2 + 6  # two originals, six retrained oracles
    capsys.readouterr()
    mtimes = {p: p.stat().st_mtime_ns for p in cache.glob("*.pt")}
    assert main(_args(grid, results, cache)) == 0
    out = capsys.readouterr().out
    assert "jobs             : 0" in out and "nothing to do" in out
    assert _summary(results) == first and {p: p.stat().st_mtime_ns for p in cache.glob("*.pt")} == mtimes


def _sweep_process(grid: Path, results: Path, cache: Path, *extra: str) -> subprocess.Popen:
    # two CPU-bound processes on 2 cores: OpenMP threads that spin while they wait would slow both ~10x
    return subprocess.Popen([sys.executable, "-m", "unlearnbench.sweep", *_args(grid, results, cache, *extra), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


def _records(results: Path) -> int:
    return len(list((results / "records").glob("*.json")))


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300.0) -> None:
    """SIGKILL the sweep the moment `ready()` holds: kill points chosen by progress, not by wall-clock guesses."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the sweep ended before the kill: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the sweep made no progress before the kill"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def test_kill_9_at_several_points_loses_nothing(grid, tmp_path):
    """Kill the sweep three times (while the first original trains, just after a record lands, a few records
    later), rerun each time: the end state equals an uninterrupted run."""
    reference = tmp_path / "reference"
    assert subprocess.run([sys.executable, "-m", "unlearnbench.sweep", *_args(grid, reference, tmp_path / "c0"),
                           "-q"], capture_output=True, timeout=600).returncode == 0
    results, cache = tmp_path / "r", tmp_path / "c"
    started = time.monotonic()
    proc = _sweep_process(grid, results, cache)
    _kill_when(proc, lambda: time.monotonic() - started > 3.0)  # imports done, first original in training
    progress = [_records(results) if (results / "records").exists() else 0]
    for more in (1, 3):
        proc = _sweep_process(grid, results, cache)
        target = progress[-1] + more
        _kill_when(proc, lambda: (results / "records").exists() and _records(results) >= target)
        progress.append(_records(results))
    assert all(0 < p < N_CELLS for p in progress[1:]), f"a kill missed the middle of the sweep: {progress}"
    final = subprocess.run([sys.executable, "-m", "unlearnbench.sweep", *_args(grid, results, cache), "-q"],
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert _summary(results) == _summary(reference)  # same cells, same numbers: nothing lost, nothing duplicated


def test_two_sweeps_on_one_directory(grid, tmp_path):
    results, cache = tmp_path / "r", tmp_path / "c"
    procs = [_sweep_process(grid, results, cache) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()
    assert len(_summary(results)) == N_CELLS
    assert not list((results / "records").glob(".*.tmp"))


def _failing(model, task, hp, seed):
    if task.forget_class == 7:
        raise RuntimeError("this method cannot forget 7")
    return model


def test_a_failed_job_is_one_line_and_the_sweep_goes_on(grid, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "fragile",
                        MethodSpec("fragile", _failing, get_method("original").hparams, frozenset(), False))
    grid.write_text(GRID.replace('"finetune", "pbu"]', '"fragile"]'))
    results = tmp_path / "r"
    assert main(_args(grid, results, tmp_path / "c")) == 1
    err = capsys.readouterr().err
    failures = [line for line in err.splitlines() if "FAILED" in line]
    assert len(failures) == 2 and all("this method cannot forget 7" in f for f in failures)
    assert len(_summary(results)) == 2 * 3 * 3 - 2  # every other cell was recorded
    assert len(list((results / "logs").glob("*.log"))) == 2


def test_sweep_on_a_real_dask_cluster(grid, tmp_path, data_root):
    from dask.distributed import Client, LocalCluster
    grid.write_text(GRID.replace("forget_classes = [1, 2, 7]", "forget_classes = [4]"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(lambda: os.environ.__setitem__("UNLEARNBENCH_DATA", str(data_root)))
        code = main(_args(grid, tmp_path / "r", tmp_path / "c", "--backend", "dask", "--scheduler",
                          cluster.scheduler_address, "--jobs", "2"))
        workers = client.run(lambda: os.getpid())
    assert code == 0
    records = RecordStore(tmp_path / "r").records()
    assert len(records) == 2 * 4 and {r["seed"] for r in records} == {0, 1}
    assert len(workers) == 2


def test_estimate_counts_the_oracles_that_a_share_without_retrain_cells_trains(grid, tmp_path, data_root,
                                                                                  monkeypatch):
    """Hand count with a fixed 1 ms per training sample: the tiny grid's seed 1 has 3 classes of 30 training images
    each (270 retain images per class), and each oracle is 1 epoch over them."""
    from unlearnbench import sweep as sweep_mod
    from unlearnbench.plan import Overrides, load_sweep, select_cells
    from unlearnbench.runner import Env
    monkeypatch.setattr(sweep_mod, "_sample_seconds", lambda runner, setup: 1e-3)
    runner = sweep_mod.shared_runner(Env(data_root, tmp_path / "c", device="cpu", download=False))

    def cost(extra: Overrides) -> float:
        share = select_cells(load_sweep(grid, extra), {"seed": "1", "method": "pbu"})
        return sweep_mod.estimate(sweep_mod.make_plan(share, RecordStore(tmp_path / "r"), runner.cache, runner),
                                  runner)

    assert cost(Overrides()) - cost(Overrides(eval={"oracle": False})) == pytest.approx(3 * 270 * 1e-3)


def test_an_empty_partial_or_foreign_record_is_corrupt_and_its_cell_runs_again(grid, tmp_path, capsys):
    from unlearnbench.plan import load_sweep
    cells = {(c.forget_class, c.setup.seed, c.method): c for c in load_sweep(grid).cells}
    results, cache = tmp_path / "r", tmp_path / "c"
    records = results / "records"
    records.mkdir(parents=True)
    planted = {cells[(1, 0, "original")].key: "{}", cells[(2, 0, "original")].key: '{"config_hash": "x"}',
               cells[(7, 0, "original")].key: json.dumps({"config_hash": "another", "dataset": "mnist",
                                                          "model": "m", "forget_class": 7, "seed": 0,
                                                          "method": "original", "acc_forget": 1, "acc_retain": 1})}
    for key, text in planted.items():
        (records / f"{key}.json").write_text(text)
    assert main(_args(grid, results, cache, "--dry-run")) == 0
    out, err = capsys.readouterr()
    assert "(0 recorded, 24 to run)" in out
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 3 and all("its cell runs again" in n for n in notes)
    assert any("an empty record {}" in n for n in notes) and any("the record of another cell" in n for n in notes)
    empty = cells[(1, 0, "original")].key
    assert main(_args(grid, results, cache, "--only", "seed=0", "--only", "method=original", "--only",
                      "forget_class=1")) == 0
    assert RecordStore(results).get(empty)["acc_forget"] is not None  # rerun: now a whole record of its own cell
    assert not RecordStore(results).has(cells[(2, 0, "original")].key)  # not selected: still corrupt, still to run


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_workers_end_when_the_sweep_is_killed(grid, tmp_path):
    """kill -9 of the sweep's main process while its two workers train: they end within seconds, before they finish
    their jobs (θ* for 60 epochs) and write anything."""
    results, cache = tmp_path / "r", tmp_path / "c"
    proc = _sweep_process(grid, results, cache, "--jobs", "2", "--set", "train.epochs=60")
    workers: set[int] = set()
    _kill_when(proc, lambda: bool(list(cache.glob("*.lock"))) and len(workers.update(_children(proc.pid))
                                                                      or workers) >= 2)
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "workers outlived their sweep"
    assert not list(cache.glob("*.pt")) and not list((results / "records").glob("*.json"))


# --------------------------------------------------------------------------------------------------------------------
# several jobs per GPU: the slot assignment is pure and tested here; the CLI's plan says how many workers go where
# --------------------------------------------------------------------------------------------------------------------
def test_gpu_slots_are_round_robin_over_the_gpus():
    from unlearnbench.sweep import assign_devices
    assert assign_devices(2, 2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert assign_devices(1, 3) == ["cuda:0"] * 3
    assert assign_devices(3, 1) == ["cuda:0", "cuda:1", "cuda:2"]
    assert assign_devices(0, 4) == []
    with pytest.raises(ValueError):
        assign_devices(1, 0)


def test_worker_plan_from_jobs_and_jobs_per_gpu():
    from unlearnbench.errors import DataUnavailable, UsageError
    from unlearnbench.sweep import plan_workers
    assert plan_workers(0, 0, 1).n_jobs == 1 and plan_workers(0, 3, 1).n_jobs == 3  # a CPU: --jobs as before
    assert plan_workers(2, 0, 1).n_jobs == 2  # one per GPU by default, as before
    w = plan_workers(2, 0, 3)
    assert w.n_jobs == 6 and w.slots == ["cuda:0", "cuda:1"] * 3
    assert plan_workers(1, 1, 2).n_jobs == 1  # fewer workers than slots: allowed
    with pytest.raises(UsageError, match="no GPU here"):
        plan_workers(0, 0, 2)
    assert plan_workers(0, 4, 2, local=False).n_jobs == 4  # a remote Dask cluster's GPUs are not visible here
    with pytest.raises(UsageError, match="more than 2 job"):
        plan_workers(1, 3, 2)
    with pytest.raises(UsageError, match="--jobs-per-gpu >= 1"):
        plan_workers(1, 0, 0)


def test_gpu_slots_are_lock_files_shared_by_every_worker(tmp_path, monkeypatch):
    from unlearnbench import sweep as sweep_mod
    from unlearnbench.runner import Env
    held = [sweep_mod.take_slot(tmp_path, 2, 2) for _ in range(4)]
    assert [d for d, _ in held] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]  # a second job per GPU only when full
    assert sweep_mod.take_slot(tmp_path, 2, 2) is None
    held[1][1].release()
    again = sweep_mod.take_slot(tmp_path, 2, 2)
    assert again is not None and again[0] == "cuda:1"
    for _, lock in held[:1] + held[2:] + [again]:
        lock.release()
    # the context a job runs in: on one GPU with 2 slots, two jobs at once, and the slots freed after; on two GPUs,
    # the slot's device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    env = Env(tmp_path, tmp_path / "cache")
    with sweep_mod._device_slot(env, 2) as a, sweep_mod._device_slot(env, 2) as b:
        assert a == b == env and sweep_mod.take_slot(tmp_path / "cache", 1, 2) is None  # "auto" is the one GPU
    free = sweep_mod.take_slot(tmp_path / "cache", 1, 2)
    assert free is not None
    free[1].release()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with sweep_mod._device_slot(env, 1) as a, sweep_mod._device_slot(env, 1) as b:
        assert (a.device, b.device) == ("cuda:0", "cuda:1")
    with sweep_mod._device_slot(Env(tmp_path, tmp_path / "c", device="cuda:1"), 2) as explicit:
        assert explicit.device == "cuda:1" and not (tmp_path / "c").exists()  # an explicit device takes every job


def test_jobs_per_gpu_on_the_command_line(grid, tmp_path, capsys, monkeypatch):
    from unlearnbench import sweep as sweep_mod
    assert main(_args(grid, tmp_path / "r", tmp_path / "c", "--dry-run")) == 0
    assert "workers          : 1 on the CPU" in capsys.readouterr().out
    assert main(_args(grid, tmp_path / "r", tmp_path / "c", "--dry-run", "--jobs-per-gpu", "2")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--jobs-per-gpu 2: no GPU here" in err
    monkeypatch.setattr(sweep_mod, "visible_gpus", lambda env, device: 2)  # the plan as a 2-GPU host would print it
    assert main(_args(grid, tmp_path / "r", tmp_path / "c", "--dry-run", "--jobs-per-gpu", "3")) == 0
    assert ("workers          : 6 (3 per GPU on 2 GPU(s); GPU slots cuda:0, cuda:1, cuda:0, cuda:1, cuda:0, cuda:1)"
            in capsys.readouterr().out)
    assert main(_args(grid, tmp_path / "r", tmp_path / "c", "--dry-run", "--jobs-per-gpu", "3", "--jobs", "7")) == 2
    assert "--jobs 7 is more than 3 job(s) per GPU x 2 GPU(s)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_theta_star_is_the_same_bits_whatever_jobs(grid, tmp_path, capsys):
    """CPU training's bits depend on torch's thread count, and a `--jobs 2` worker runs its cells on half the cores:
    θ* (and the oracles) train at the sweep process's own count in every job, so the checkpoint cached under a key is
    the same with --jobs 1 and --jobs 2, and a sweep resumed under another --jobs mixes nothing."""
    grid.write_text(GRID.replace("seeds = [0, 1]", "seeds = [0]").replace(
        'methods = ["original", "retrain", "finetune", "pbu"]', 'methods = ["original"]').replace(
        "forget_classes = [1, 2, 7]", "forget_classes = [1]") + "[eval]\noracle = false\nmia = false\nzrf = false\n")
    sums = {}
    for jobs in ("1", "2"):
        results = tmp_path / f"r{jobs}"
        assert main(_args(grid, results, tmp_path / f"c{jobs}", "--jobs", jobs, "-q")) == 0
        sums[jobs] = [r["original_checkpoint"]["sha256"] for r in RecordStore(results).records()]
    capsys.readouterr()
    assert len(sums["1"]) == 1 and sums["1"] == sums["2"]
    # resumed under the other --jobs on the first cache: θ* comes from it, nothing is retrained
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "c1").glob("*.pt")}
    assert main(_args(grid, tmp_path / "r3", tmp_path / "c1", "--jobs", "2", "-q")) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "c1").glob("*.pt")} == mtimes
    assert [r["original_checkpoint"]["sha256"] for r in RecordStore(tmp_path / "r3").records()] == sums["1"]
