"""Progress on long work, and the planner's estimate that a run announces: measured once per host, so stable."""
from __future__ import annotations

import json

import pytest

from unlearnbench import progress


@pytest.fixture(autouse=True)
def _restore():
    yield
    progress.configure("auto")


def test_lines_mode_says_share_done_and_eta(capsys):
    progress.configure("lines", every=0.0, prefix="[job] ")
    with progress.task("θ* mnist/resnet18 seed 0", 1000):
        progress.advance(250)
        progress.advance(250)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("[job] θ* mnist/resnet18 seed 0: 25% (250 of ~1,000 images), ETA ")
    assert err[1].startswith("[job] θ* mnist/resnet18 seed 0: 50% (500 of ~1,000 images), ETA ")
    progress.advance(10)  # outside a task: nothing, no error
    assert capsys.readouterr().err == ""


def test_quiet_prints_nothing_and_past_the_estimate_no_eta(capsys):
    progress.configure("quiet", every=0.0)
    with progress.task("x", 10):
        progress.advance(5)
    assert capsys.readouterr().err == ""
    progress.configure("lines", every=0.0)
    with progress.task("pbu class 2", 10):  # the estimate was short: no negative ETA, the count instead
        progress.advance(20)
    assert capsys.readouterr().err.startswith("pbu class 2: 20 images in ")
    with pytest.raises(ValueError):
        progress.configure("loud")


def test_the_training_loop_reports_every_step(capsys, mnist_small):
    import torch

    from unlearnbench.runtime import Runtime
    from unlearnbench.train import cross_entropy, make_optimizer, train_steps
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32, 10))
    data = mnist_small.sample_set("train")
    progress.configure("lines", every=0.0)
    with progress.task("steps", len(data)):
        train_steps(model, make_optimizer(model.parameters(), "sgd", 0.01), data.batches(250), cross_entropy(),
                    Runtime(torch.device("cpu")))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("steps: 1,000 images in ")  # 4 steps of 250, the last at 100%
    assert lines[0].startswith("steps: 25% (250 of ~1,000 images)")


@pytest.mark.slow
def test_the_estimate_is_measured_once_per_host_and_reused(tmp_path, data_root):
    from unlearnbench.plan import Overrides, resolve_cell
    from unlearnbench.runner import Env, Runner
    from unlearnbench.sweep import CALIBRATION_FILE, TIMED_STEPS, _sample_seconds
    runner = Runner(Env(data_root, tmp_path / "cache", device="cpu", download=False))
    cell = resolve_cell("mnist", "resnet18", 2, 0, "finetune", Overrides(data={"train_per_class": 70}))
    first = _sample_seconds(runner, cell.setup)
    stored = json.loads((tmp_path / "cache" / CALIBRATION_FILE).read_text())
    (entry,) = stored.values()
    assert entry["seconds_per_sample"] == first > 0 and entry["model"] == "resnet18"
    assert entry["how"].startswith(f"median of {TIMED_STEPS} single training steps of batch 64")
    assert _sample_seconds(runner, cell.setup) == first  # the second plan on this host: the same figure
    other = resolve_cell("mnist", "resnet18", 2, 0, "finetune", Overrides(data={"train_per_class": 70},
                                                                          train={"channels_last": True}))
    _sample_seconds(runner, other.setup)  # another layout is another measurement
    assert len(json.loads((tmp_path / "cache" / CALIBRATION_FILE).read_text())) == 2
