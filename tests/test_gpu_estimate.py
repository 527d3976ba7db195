"""benchmarks/gpu_estimate.py (unlearnbench.studies.gpu_estimate): the lease packing, the wall time with several jobs
per GPU, the rescaling of changed method settings and the reading of perf outputs, against hand-computed values."""
from __future__ import annotations

import math

import pytest

from unlearnbench.studies import gpu_estimate as est

# θ* 60 s, each class's oracle 50 s; two classes with a 100 s and a 10 s cell each
WORK = est.SetupWork(theta=60.0, oracle=50.0, cells={2: [100.0, 10.0], 6: [100.0, 10.0]})


def test_leases_pack_cells_and_train_theta_and_oracles_again_in_each():
    # one job: class 2 = 60 + 50 + 100 + 10 = 220 s; class 6 does not fit beside it (370 > 300): a second lease
    assert est.leases(WORK, 1.0, 1.0, 300.0) == (2, 440.0)
    # two jobs at once: after θ*, max(chain 150, (50 + 110 + 50 + 110) / 2 = 160) = 160 → one lease of 220 s
    assert est.leases(WORK, 1.0, 2.0, 300.0) == (1, 220.0)
    # θ* + oracle + the 100 s cell = 210 s > 200: cannot fit any lease
    assert math.isinf(est.leases(WORK, 1.0, 2.0, 200.0)[0])


def test_wall_runs_theta_alone_then_the_rest_at_the_speedup_but_not_below_the_longest_chain():
    assert WORK.total == 60 + 2 * (50 + 110)
    assert est.wall(WORK, 2.0, 2.0) == pytest.approx(2 * (60 + max(150, 320 / 2)))
    assert est.wall(WORK, 1.0, 8.0) == pytest.approx(60 + 150)  # the oracle → 100 s cell chain bounds it


def test_a_method_whose_settings_changed_is_rescaled_by_its_steps():
    from unlearnbench.config import TrainRecipe
    from unlearnbench.method import Sizes
    from unlearnbench.registry import get_method
    sizes = Sizes(6000, 54000, 10, TrainRecipe(batch_size=128))
    current = get_method("finetune").resolve({})  # batch 48 (the official code's)
    ratio, note = est.step_ratio("finetune", {"name": "finetune", "batch_size": 0, "scheduler": "cosine"}, current,
                                 sizes)  # batch 0: θ*'s batch, 128
    assert ratio == pytest.approx(128 / 48) and "batch_size 0→48" in note
    assert est.step_ratio("finetune", {"batch_size": 48}, current, sizes) == (1.0, "")
    assert est.step_ratio("finetune", {"no_such_setting": 1}, current, sizes)[0] == 1.0  # unreadable: kept as is


PERF_OLD = """unlearnbench perf — vm, {'type': 'cuda', 'name': 'NVIDIA H200', 'capability': '9.0'}
(a) training throughput, MNIST, batch 128, 50 steps each; DataLoader with 4 worker(s)
| model       |   harness img/s |   DataLoader img/s | ratio   |
|-------------|-----------------|--------------------|---------|
| resnet34    |          10,106 |              8,851 | 1.14x   |
[4 s]

(d) achieved training FLOP/s, resnet34 on MNIST 32x32 (fp32)
|   MFLOP per training image |   img/s |   achieved GFLOP/s |   peak GFLOP/s | of peak   |
|----------------------------|---------|--------------------|----------------|-----------|
|                      437.4 |  13,287 |               5811 |        51387.5 | 11%       |
"""
PERF_NEW = """(d) achieved training FLOP/s, densenet121 on MNIST 32x32 (fp32)
| MFLOP per training image | img/s | achieved GFLOP/s | best matmul GFLOP/s | theoretical peak GFLOP/s | of peak |
|--------------------------|-------|------------------|---------------------|--------------------------|---------|
| 335.7                    | 2,000 | 671.4            | 52,000.0            | 494,500.0                | 0%      |
"""


def test_perf_outputs_old_and_new_are_read(tmp_path):
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text(PERF_OLD)
    new.write_text(PERF_NEW)
    facts = est.read_perf([old, new])
    assert facts.gpu == "NVIDIA H200" and facts.loop_img_s == {"resnet34": 10106.0}
    assert facts.flops["resnet34"] == {"img_s": 13287.0, "matmul": 51387.5e9, "achieved": 5811e9}  # "peak" = matmul
    assert facts.flops["densenet121"]["img_s"] == 2000.0 and facts.flops["densenet121"]["matmul"] == 52000e9
