from __future__ import annotations

import pytest

from unlearnbench.config import DataConfig, TrainRecipe, build, parse_assignments, stable_hash
from unlearnbench.errors import UsageError
from unlearnbench.plan import Overrides, overrides_from_mapping, resolve_cell


def test_build_coerces_strings_like_toml():
    r = build(TrainRecipe, {"lr": "1e-4", "epochs": "3", "channels_last": "true", "optimizer": "sgd"})
    assert (r.lr, r.epochs, r.channels_last, r.optimizer) == (1e-4, 3, True, "sgd")
    assert build(TrainRecipe, {"lr": 1}).lr == 1.0  # an int where a float is expected is fine


@pytest.mark.parametrize("values, message", [
    ({"lrr": 1e-3}, "unknown key.*lrr.*valid: optimizer"),
    ({"epochs": "two"}, "epochs: expected int"),
    ({"epochs": 2.5}, "epochs: expected int"),
    ({"epochs": True}, "epochs: expected int"),
    ({"optimizer": "rmsprop"}, "not one of 'adam', 'adamw', 'sgd'"),
    ({"lr": -1}, r"lr: must be > 0 and <= 1000000, got -1"),
    ({"lr": "nan"}, "lr: expected float"),
])
def test_build_rejects_bad_values(values, message):
    with pytest.raises(UsageError, match=message):
        build(TrainRecipe, values)


def test_parse_assignments():
    assert parse_assignments(["lr=1e-3", "batch-size = 64"], "--hp") == {"lr": "1e-3", "batch_size": "64"}
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        parse_assignments(["lr"], "--hp")


def test_hash_is_stable_and_sensitive():
    a = {"x": 1, "y": [1, 2]}
    assert stable_hash(a) == stable_hash({"y": [1, 2], "x": 1})
    assert stable_hash(a) != stable_hash({"x": 1, "y": [2, 1]})


def test_resolve_cell_fills_defaults_and_validates():
    cell = resolve_cell("mnist", "resnet18", 2, 0, "finetune", Overrides(train={"epochs": 1}))
    assert cell.setup.train.epochs == 1 and cell.setup.train.optimizer == "adam"
    assert cell.hparams.lr == 1e-3 and cell.hparams.epochs == 10
    assert cell.key == resolve_cell("mnist", "resnet18", 2, 0, "finetune", Overrides(train={"epochs": 1})).key
    assert cell.setup.key != resolve_cell("mnist", "resnet18", 2, 1, "finetune", Overrides()).setup.key
    # the original does not depend on the method or the class: one θ* serves every cell
    assert cell.setup.key == resolve_cell("mnist", "resnet18", 8, 0, "retrain", Overrides(train={"epochs": 1})
                                          ).setup.key


@pytest.mark.parametrize("args, message", [
    (("mnistt", "resnet18", 2, 0, "finetune"),
     r"unknown dataset 'mnistt' \(did you mean 'mnist'\?\); valid: cifar100, fashion_mnist"),
    (("mnist", "resnet1800", 2, 0, "finetune"), "unknown model 'resnet1800'"),
    (("mnist", "resnet18", 2, 0, "unlearn_all"), "unknown method 'unlearn_all'; valid: .*finetune.*retrain"),
    (("mnist", "resnet18", 10, 0, "finetune"), r"forget class 10 is out of range for mnist \(classes 0..9\)"),
    (("food101", "resnet18", -1, 0, "finetune"), "out of range for food101 .classes 0..100"),
    (("mnist", "resnet18", 2, -3, "finetune"), "seed must be an integer from 0 to 4294967295, got -3"),
])
def test_resolve_cell_errors(args, message):
    with pytest.raises(UsageError, match=message):
        resolve_cell(*args, Overrides())


def test_input_size_a_model_cannot_take():
    with pytest.raises(UsageError, match="densenet121 down-samples 32-fold.*28"):
        resolve_cell("mnist", "densenet121", 2, 0, "finetune", Overrides(data={"image_size": 28}))


def test_config_tables_and_per_class_overrides():
    ov = overrides_from_mapping({"train": {"epochs": 1}, "method": {"finetune": {"lr": 1e-4, "class": {
        "6": {"epochs": 3}}}}}, "test.toml")
    assert resolve_cell("mnist", "resnet18", 6, 0, "finetune", ov).hparams.epochs == 3
    assert resolve_cell("mnist", "resnet18", 2, 0, "finetune", ov).hparams.epochs == 10
    assert resolve_cell("mnist", "resnet18", 2, 0, "finetune", ov).hparams.lr == 1e-4


@pytest.mark.parametrize("doc, message", [
    ({"trian": {}}, "unknown key.*trian"),
    ({"train": {"epoch": 1}}, r"\[train\].*unknown key.*epoch"),
    ({"method": {"finetune": {"lrate": 1}}}, "method.finetune: unknown key.*lrate"),
    ({"method": {"nope": {}}}, "unknown method 'nope'"),
    ({"data": 3}, r"\[data\] must be a table"),
    ({"method": {"finetune": {"class": {"two": {}}}}}, "class number"),
])
def test_config_errors(doc, message):
    with pytest.raises(UsageError, match=message):
        overrides_from_mapping(doc, "test.toml")


def test_data_config_defaults():
    assert DataConfig().name == "mnist" and DataConfig().train_per_class == 0


def test_committed_records_keep_matching_their_cells():
    """Every committed record of the CPU grid is a cell its sweep file plans today (so a resumed sweep skips it and a
    changed default cannot silently mix with old records), and every row of it shares one θ* and one oracle."""
    from pathlib import Path

    from unlearnbench.plan import load_sweep
    from unlearnbench.aggregate import mixed_cells
    from unlearnbench.store import load_records

    root = Path(__file__).resolve().parents[1]
    config, results = root / "benchmarks" / "mnist_cpu.toml", root / "results" / "mnist"
    current = {c.key for c in load_sweep(config).cells}
    records = load_records(results)
    assert records and all(r["config_hash"] in current for r in records)
    assert all(r.get("original_checkpoint") and r.get("oracle_checkpoint") for r in records)
    assert mixed_cells(records) == {}


def test_bn_recalibrate_off_keeps_recorded_theta_keys():
    """`bn_recalibrate` came after results were recorded: off, every committed record's θ* key is still its setup's
    key; on, θ* is another model (another key, and so another oracle and other cells)."""
    from pathlib import Path

    from unlearnbench.plan import load_sweep
    from unlearnbench.store import load_records

    root = Path(__file__).resolve().parents[1]
    sweep = load_sweep(root / "benchmarks" / "mnist_cpu.toml")
    records = load_records(root / "results" / "mnist")
    assert records and {r["original_checkpoint"]["key"] for r in records} <= {s.key for s in sweep.setups}
    assert all(r["config"]["train"].get("bn_recalibrate") in (None, False) for r in records)
    on = load_sweep(root / "benchmarks" / "mnist_cpu.toml", Overrides(train={"bn_recalibrate": True}))
    assert not {s.key for s in on.setups} & {s.key for s in sweep.setups}
    assert not {c.key for c in on.cells} & {c.key for c in sweep.cells}
    assert all(c.to_dict()["train"]["bn_recalibrate"] is True for c in on.cells)


def test_the_cpu_protocol_files_share_theta_and_oracles():
    """mnist_retain_free and mnist_baselines promise the CPU grid's ResNet-34 θ*s and oracles through the cache key:
    the same setups, and for every (setup, class) the same original and retrain cells (so the same checkpoints). Both
    run the budget rule "epochs", so their PBU column is one set of cells; the CPU grid runs "steps", so its PBU is
    another (29 epochs where theirs run 5)."""
    from pathlib import Path

    from unlearnbench.plan import load_sweep

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    grid = load_sweep(root / "mnist_cpu.toml")

    def shared(sweep, methods=("original", "retrain")):
        return {(c.setup.key, c.forget_class, c.method): c.key for c in sweep.cells if c.method in methods}

    resnet34 = {s.key for s in grid.setups if s.model.name == "resnet34"}
    for name in ("mnist_retain_free.toml", "mnist_baselines.toml"):
        other = load_sweep(root / name)
        assert {s.key for s in other.setups} == resnet34, name
        mine = {k: v for k, v in shared(grid).items() if k[0] in resnet34}
        assert shared(other) == mine and len(mine) == 3 * 3 * 2, name
        assert other.cells[0].budget.rule == "epochs" and grid.cells[0].budget.rule == "steps"
    free, baselines = (shared(load_sweep(root / n), ("pbu",)) for n in ("mnist_retain_free.toml", "mnist_baselines.toml"))
    assert free == baselines and len(free) == 9
    assert not set(free.values()) & set(shared(grid, ("pbu",)).values())
    assert {c.hparams.epochs for c in load_sweep(root / "mnist_retain_free.toml").cells if c.method == "pbu"} == {5}
    assert {c.hparams.epochs for c in grid.cells if c.method == "pbu"} == {29}
