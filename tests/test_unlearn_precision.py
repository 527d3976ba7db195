"""`[unlearn] precision`: the methods' steps in another precision than θ*'s training, keyed so that today's cells stay
as they were, never applied to the oracle (it trains as θ* did)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unlearnbench.errors import UsageError
from unlearnbench.plan import Overrides, load_sweep, resolve_cell

BF16 = {"precision": "bf16"}


def cell(method: str = "pbu", train: dict | None = None, unlearn: dict | None = None):
    return resolve_cell("mnist", "resnet18", 2, 0, method, Overrides(train=train or {}, unlearn=unlearn or {}))


@pytest.mark.parametrize("unlearn", [{}, {"precision": "recipe"}, {"precision": "bf16"}])
def test_the_recipe_s_precision_leaves_key_and_config_as_before(unlearn):
    """Unset, "recipe", or the recipe's own dtype named: the cell is the one from before the setting existed."""
    before = cell(train=BF16)
    same = cell(train=BF16, unlearn=unlearn)
    assert same.unlearn_precision == "" and same.key == before.key and same.to_dict() == before.to_dict()
    assert "unlearn" not in same.to_dict()


def test_another_precision_is_another_cell_on_the_same_theta_star():
    bf16, fp32 = cell(train=BF16), cell(train=BF16, unlearn={"precision": "fp32"})
    assert fp32.unlearn_precision == "fp32" and fp32.key != bf16.key
    assert fp32.setup.key == bf16.setup.key  # θ* is not retrained for it
    assert fp32.to_dict()["unlearn"] == {"precision": "fp32"} and fp32.to_dict()["train"]["precision"] == "bf16"
    assert fp32.label.endswith("/pbu (fp32 steps)") and bf16.label.endswith("/pbu")


@pytest.mark.parametrize("method", ["retrain", "original"])
def test_the_oracle_trains_as_theta_star_did_and_theta_star_takes_no_steps(method):
    other = cell(method, train=BF16, unlearn={"precision": "fp32"})
    assert other.unlearn_precision == "" and other.key == cell(method, train=BF16).key


def test_a_bad_precision_is_a_usage_error():
    with pytest.raises(UsageError, match="precision"):
        cell(unlearn={"precision": "fp8"})
    with pytest.raises(UsageError, match="unknown"):
        cell(unlearn={"dtype": "fp32"})


def test_a_sweep_file_and_its_grid_entries_take_the_table(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\nseeds = [0]\nmethods = ["retrain", "pbu"]\n[train]\nprecision = "bf16"\n'
                    '[[grid]]\ndataset = "mnist"\nmodels = ["resnet18"]\nforget_classes = [2]\n'
                    '[[grid]]\ndataset = "mnist"\nmodels = ["resnet34"]\nforget_classes = [2]\n'
                    '[grid.unlearn]\nprecision = "fp32"\n')
    got = {(c.setup.model.name, c.method): c.unlearn_precision for c in load_sweep(path).cells}
    assert got == {("resnet18", "retrain"): "", ("resnet18", "pbu"): "",
                   ("resnet34", "retrain"): "", ("resnet34", "pbu"): "fp32"}


def test_the_precision_measurement_shares_theta_star_with_the_cpu_grid():
    """benchmarks/convnext_precision.toml measures the CPU grid's ConvNeXt-L: its θ* key is the grid's, and its fp32
    arm differs from the bf16 arm in the methods' cells only."""
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    grid = {c.setup.key for c in load_sweep(root / "mnist_cpu.toml").cells if c.setup.model.name == "convnext_large"}
    bf16 = {c.method: c for c in load_sweep(root / "convnext_precision.toml").cells}
    fp32 = {c.method: c for c in load_sweep(root / "convnext_precision.toml",
                                             Overrides(unlearn={"precision": "fp32"})).cells}
    assert {c.setup.key for c in bf16.values()} == grid == {c.setup.key for c in fp32.values()}
    assert bf16["original"].key == fp32["original"].key
    assert all(bf16[m].key != fp32[m].key and fp32[m].unlearn_precision == "fp32"
               for m in ("fast_effective", "pbu+stop", "pbu"))


def test_committed_sweeps_keep_their_keys():
    """No committed sweep file sets the table unless its cells were run with it: the files plan with the setting
    unset exactly the cells they planned before (their `unlearn_precision` empty)."""
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    for name in ("mnist_cpu.toml", "robustness.toml"):
        assert all(c.unlearn_precision == "" for c in load_sweep(root / name).cells), name


def test_the_task_runs_the_method_in_the_set_precision(tmp_path, data_root):
    """The runner hands the method a runtime (and a recipe) in `[unlearn] precision`; θ*'s setup is untouched."""
    from unlearnbench.runner import Env, Runner
    runner = Runner(Env(data_root, tmp_path, device="cpu", download=False))
    small = {"train_per_class": 20, "test_per_class": 5}
    fp32 = resolve_cell("mnist", "resnet18", 2, 0, "pbu",
                        Overrides(data=small, train=BF16, unlearn={"precision": "fp32"}))
    task, _ = runner.task(fp32)
    assert task.runtime.precision == "fp32" and task.recipe.precision == "fp32"
    with task.runtime.autocast():
        assert not torch.is_autocast_enabled("cpu")
    assert fp32.setup.train.precision == "bf16" and runner.runtime(fp32.setup.train).precision == "bf16"
    task, _ = runner.task(resolve_cell("mnist", "resnet18", 2, 0, "pbu", Overrides(data=small, train=BF16)))
    assert task.runtime.precision == "bf16"
    with task.runtime.autocast():
        assert torch.is_autocast_enabled("cpu")


def test_every_table_header_says_where_methods_ran_in_another_precision():
    from unlearnbench.aggregate import budget_note
    theta = {"method": "pbu", "budget": {"rule": "steps"}, "config": {"train": {"precision": "bf16"}}}
    other = {**theta, "config": {"train": {"precision": "bf16"}, "unlearn": {"precision": "fp32"}}}
    assert "precision" not in budget_note([theta, theta])  # as every report from before the setting
    note = budget_note([theta, other, other])
    assert note.endswith("; methods' steps in fp32 where θ* trained in bf16 ([unlearn] precision; 2 record(s))")


def test_committed_precision_records_are_their_arms_cells():
    """results/mnist/extra/convnext_precision: each arm's records are cells of the file planned as that arm (the fp32
    arm with `--set unlearn.precision=fp32`), measured from one θ*; the fp32 records say so in their config."""
    from unlearnbench.store import load_records
    root = Path(__file__).resolve().parents[1]
    config, results = root / "benchmarks" / "convnext_precision.toml", root / "results/mnist/extra/convnext_precision"
    thetas = set()
    for arm, extra in (("bf16", Overrides()), ("fp32", Overrides(unlearn={"precision": "fp32"}))):
        planned = {c.key: c for c in load_sweep(config, extra).cells}
        records = load_records(results / arm)
        assert records and all(r["config_hash"] in planned for r in records), arm
        ran = {r["method"]: (r["config"].get("unlearn") or {}).get("precision", "") for r in records}
        assert ran == {r["method"]: planned[r["config_hash"]].unlearn_precision for r in records}
        assert ran["fast_effective"] == ("fp32" if arm == "fp32" else "") and ran["original"] == ""
        thetas |= {r["original_checkpoint"]["sha256"] for r in records}
    assert len(thetas) == 1
