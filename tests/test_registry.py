from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from unlearnbench import method as registry
from unlearnbench.errors import UsageError
from unlearnbench.method import MethodSpec, get_method, list_methods, register_method
from unlearnbench.plan import Overrides, resolve_cell
from unlearnbench.runner import Env, Runner


def test_registry_names_and_errors():
    names = list_methods()
    assert {"original", "retrain", "finetune"} <= set(names)
    with pytest.raises(UsageError, match="unknown method 'x'; valid: .*finetune"):
        get_method("x")
    assert get_method("retrain").cached and get_method("retrain").needs == {"retain"}
    assert get_method("original").needs == frozenset()
    with pytest.raises(ValueError, match="unknown data roles"):
        register_method("bad", hparams=object, needs=("test",))


@dataclass(frozen=True)
class ProbeHP:
    batches: int = 2


def forget_only_probe(model, task, hp, seed):
    """Draws `hp.batches` batches of 16 forget samples, and checks that the retain set is withheld."""
    with pytest.raises(PermissionError):
        len(task.retain)
    for i, batch in enumerate(task.forget.batches(16)):
        assert (batch.y == task.forget_class).all()
        if i + 1 == hp.batches:
            break
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.0)  # an "unlearning" that destroys the model, to see the evaluation react
    return model


def test_runner_hands_only_declared_data_and_counts_draws(monkeypatch, tmp_path, data_root):
    monkeypatch.setitem(registry._REGISTRY, "probe",
                        MethodSpec("probe", forget_only_probe, ProbeHP, frozenset({"forget"}), False))
    ov = Overrides(data={"train_per_class": 40, "test_per_class": 20}, train={"epochs": 1, "batch_size": 32})
    cell = resolve_cell("mnist", "test_resnet", 3, 0, "probe", ov)
    runner = Runner(Env(data_root, tmp_path / "cache", device="cpu", download=False))
    rec = runner.run(cell)
    assert rec["forget_samples_seen"] == 32 and rec["forget_draws"] == 32
    assert rec["retain_samples_seen"] == 0 and rec["retain_draws"] == 0
    assert rec["unlearn_seconds"] > 0 and rec["method"] == "probe"
    # all-zero weights predict one class for everything: accuracy is 100% on it or 0%, never what θ* had
    assert rec["acc_forget"] in (0.0, 100.0)
    assert rec["test_forget_samples"] == 20 and rec["test_retain_samples"] == 180
