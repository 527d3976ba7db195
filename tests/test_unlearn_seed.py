"""The unlearning seed: a method's own randomness apart from θ*'s seed, keyed so that today's records stay valid."""
from __future__ import annotations

import pytest

from unlearnbench.config import method_seed
from unlearnbench.errors import UsageError
from unlearnbench.plan import Overrides, load_sweep, resolve_cell, select_cells

TINY = Overrides(data={"train_per_class": 40, "test_per_class": 10}, train={"epochs": 1, "batch_size": 32},
                 eval={"oracle": False, "mia": False, "zrf": False},
                 method={"bad_teaching": {"epochs": 1}})


def test_run_zero_is_the_cell_as_before_and_another_run_is_another_cell():
    cell = resolve_cell("mnist", "resnet18", 2, 3, "pbu", Overrides())
    zero = resolve_cell("mnist", "resnet18", 2, 3, "pbu", Overrides(), unlearn_seed=0)
    one = resolve_cell("mnist", "resnet18", 2, 3, "pbu", Overrides(), unlearn_seed=1)
    assert cell.key == zero.key and "unlearn_seed" not in zero.to_dict() and cell.method_seed == 3
    assert one.key != zero.key and one.to_dict()["unlearn_seed"] == 1 and one.setup.key == zero.setup.key
    assert one.method_seed == method_seed(3, 1) != 3 and "unlearn seed 1" in one.label
    assert len({method_seed(s, j) for s in range(5) for j in range(4)}) == 20  # no two runs share a seed


@pytest.mark.parametrize("value, message", [(-1, "non-negative"), (True, "non-negative"), ("1", "non-negative")])
def test_a_bad_unlearning_seed_is_a_usage_error(value, message):
    with pytest.raises(UsageError, match=message):
        resolve_cell("mnist", "resnet18", 2, 0, "pbu", Overrides(), unlearn_seed=value)


def test_the_oracle_has_no_unlearning_seed():
    with pytest.raises(UsageError, match="retrain is set by the cell's seed alone"):
        resolve_cell("mnist", "resnet18", 2, 0, "retrain", Overrides(), unlearn_seed=1)


def test_committed_sweeps_plan_the_same_cells_as_before(tmp_path):
    """A sweep without unlearn_seeds and one with unlearn_seeds = [0] plan the same cells, keys and configs."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    text = (root / "benchmarks" / "mnist_retain_free.toml").read_text()
    before = load_sweep(root / "benchmarks" / "mnist_retain_free.toml")
    path = tmp_path / "same.toml"
    path.write_text(text.replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2]\nunlearn_seeds = [0]", 1))
    assert "unlearn_seeds" in path.read_text()
    after = load_sweep(path)
    assert [c.key for c in after.cells] == [c.key for c in before.cells]
    assert [c.to_dict() for c in after.cells] == [c.to_dict() for c in before.cells]


def test_a_sweep_runs_each_method_j_times_per_theta_star_and_the_oracle_once(tmp_path):
    path = tmp_path / "runs.toml"
    path.write_text('name = "runs"\nseeds = [0, 1]\nunlearn_seeds = [0, 1, 2]\n'
                    'methods = ["original", "retrain", "pbu"]\n'
                    '[[grid]]\ndataset = "mnist"\nmodels = ["resnet18"]\nforget_classes = [2]\n'
                    '[[grid]]\ndataset = "mnist"\nmodels = ["resnet34"]\nforget_classes = [2]\nunlearn_seeds = [1]\n')
    sweep = load_sweep(path)
    runs = [(c.setup.model.name, c.setup.seed, c.method, c.unlearn_seed) for c in sweep.cells]
    r18 = [r for r in runs if r[0] == "resnet18"]
    assert sum(m == "pbu" for _, _, m, _ in r18) == 2 * 3 and sum(m == "retrain" for _, _, m, _ in r18) == 2
    assert {j for _, _, m, j in r18 if m == "retrain"} == {0}
    # an entry's own unlearn_seeds; the oracle still runs once, at 0
    assert {(m, j) for mo, _, m, j in runs if mo == "resnet34"} == {("original", 1), ("pbu", 1), ("retrain", 0)}
    share = select_cells(sweep, {"unlearn_seed": "2"})
    assert {c.unlearn_seed for c in share.cells} == {2} and len(share.cells) == 4  # original and pbu, 2 θ*s
    path.write_text(path.read_text().replace("unlearn_seeds = [0, 1, 2]", "unlearn_seeds = [0, 0]"))
    with pytest.raises(UsageError, match="twice"):
        load_sweep(path)


@pytest.mark.slow
def test_another_run_changes_the_method_only(tmp_path_factory, data_root):
    """Real MNIST, the runner: run 1 of Bad Teaching (random teacher, random retain subset) differs from run 0 while
    θ* is the same checkpoint; run 0 again gives run 0's numbers; the record names its run."""
    from unlearnbench.runner import Env, Runner
    runner = Runner(Env(data_root, tmp_path_factory.mktemp("cache"), device="cpu", download=False))
    a, b, a2 = (runner.run(resolve_cell("mnist", "test_resnet", 2, 0, "bad_teaching", TINY, unlearn_seed=j))
                for j in (0, 1, 0))
    assert a["original_checkpoint"] == b["original_checkpoint"] and a["unlearn_seed"] == 0 and b["unlearn_seed"] == 1
    assert (a["acc_forget"], a["acc_retain"]) == (a2["acc_forget"], a2["acc_retain"])
    assert (a["acc_forget"], a["acc_retain"]) != (b["acc_forget"], b["acc_retain"])
    assert a["config_hash"] != b["config_hash"] and "unlearn_seed" not in a["config"]
