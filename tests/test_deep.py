"""The deep-forgetting measurements (unlearnbench.deep) on hand-made cases: values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from unlearnbench import deep
from unlearnbench.config import EvalConfig, build
from unlearnbench.errors import UsageError


# --------------------------------------------------------------------------------------------------------------------
# the prototype attack (Spotter's update_fc_with_prototypes)
# --------------------------------------------------------------------------------------------------------------------
def test_prototype_row_cosine_mixes_the_normalised_mean_with_the_row():
    # mean of (3, 4) and (3, 4) is (3, 4); normalised (0.6, 0.8); cosine: (w, b) = (p, 0); α = 0.5 with (2, 0), -10
    w, b = deep.prototype_row(torch.tensor([2.0, 0.0]), torch.tensor(-10.0), torch.tensor([[3.0, 4.0], [3.0, 4.0]]),
                              0.5, "cosine")
    assert torch.allclose(w, torch.tensor([1.3, 0.4], dtype=torch.float64)) and float(b) == pytest.approx(-5.0)


def test_prototype_row_l2_and_alpha_one_replace_the_row():
    # mean of (6, 0) and (0, 8) is (3, 4) → p = (0.6, 0.8); l2: (2p, -|p|²) = ((1.2, 1.6), -1); α = 1: the row is gone
    w, b = deep.prototype_row(torch.tensor([9.0, 9.0]), torch.tensor(7.0), torch.tensor([[6.0, 0.0], [0.0, 8.0]]),
                              1.0, "l2")
    assert torch.allclose(w, torch.tensor([1.2, 1.6], dtype=torch.float64)) and float(b) == pytest.approx(-1.0)
    w, b = deep.prototype_row(torch.tensor([9.0, 9.0]), torch.tensor(7.0), torch.tensor([[6.0, 0.0]]), 0.0, "l2")
    assert w.tolist() == [9.0, 9.0] and float(b) == 7.0  # α = 0: the attack changes nothing


def test_prototype_attack_restores_a_silenced_class_whose_features_are_intact():
    # three classes in 2-D: class 0 at (1, 0), class 1 at (0, 1), class 2 (forgotten) at (1, 1)/√2·2. The head's row 2
    # is silenced (0, bias -5): A_Df 0. The prototype of two class-2 images is (1, 1)/√2; cosine, α = 1: row 2 =
    # (0.707, 0.707), bias 0. Class-2 test features (1.414, 1.414): logit 2 = 2.0 against rows 0 and 1 (identity): 1.414
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    bias = torch.tensor([0.0, 0.0, -5.0])
    test_x = torch.tensor([[1.414, 1.414], [1.414, 1.414], [1.0, 0.0], [0.0, 1.0]])
    test_y = torch.tensor([2, 2, 0, 1])
    silenced = (test_x @ weight.T + bias).argmax(1)
    assert silenced[:2].tolist() != [2, 2]  # A_Df is 0 before the attack
    assert deep.prototype_attack(weight, bias, 2, torch.tensor([[2.0, 2.0], [1.0, 1.0]]), test_x, test_y, 1.0,
                                 "cosine") == 100.0
    # the class's features gone (its test images land on class 0's): the attack finds nothing (A_Df 0)
    gone = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert deep.prototype_attack(weight, bias, 2, torch.tensor([[1.0, 0.0]]), gone, test_y, 1.0, "cosine") == 0.0
    # with α = 0.5 the silenced row's bias -5 survives at half: logit 2 = 0.5·2.0 - 2.5 < 1.414: A_Df 0
    assert deep.prototype_attack(weight, bias, 2, torch.tensor([[1.0, 1.0]]), test_x, test_y, 0.5, "cosine") == 0.0
    assert weight[2].tolist() == [0.0, 0.0] and bias[2] == -5.0  # the head itself is not edited


# --------------------------------------------------------------------------------------------------------------------
# the linear probe
# --------------------------------------------------------------------------------------------------------------------
def _clusters(centres: dict[int, tuple[float, float]], n: int, spread: float = 0.1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for c, centre in centres.items():
        xs.append(torch.tensor(centre) + spread * torch.randn(n, 2, generator=g))
        ys.append(torch.full((n,), c))
    return torch.cat(xs), torch.cat(ys)


def test_linear_probe_finds_a_class_its_features_keep():
    train_x, train_y = _clusters({0: (0.0, 5.0), 1: (5.0, 0.0), 2: (5.0, 5.0)}, 20)
    test_x, test_y = _clusters({0: (0.0, 5.0), 1: (5.0, 0.0), 2: (5.0, 5.0)}, 10, seed=1)
    assert deep.linear_probe(train_x, train_y, test_x, test_y, 2) == (100.0, 100.0)


def test_linear_probe_fails_where_the_forget_class_lands_on_another():
    # the forget class's test images have the features of class 1's: the probe calls them class 1 (0%), and the
    # other classes' are still found (100%)
    train_x, train_y = _clusters({0: (0.0, 5.0), 1: (5.0, 0.0), 2: (5.0, 5.0)}, 20)
    test_x, test_y = _clusters({0: (0.0, 5.0), 1: (5.0, 0.0), 2: (5.0, 0.0)}, 10, seed=1)
    assert deep.linear_probe(train_x, train_y, test_x, test_y, 2) == (0.0, 100.0)


def test_linear_probe_without_forget_test_images_is_nan():
    train_x, train_y = _clusters({0: (0.0, 5.0), 1: (5.0, 0.0)}, 10)
    acc_f, acc_r = deep.linear_probe(train_x, train_y, train_x, train_y, 7)
    assert math.isnan(acc_f) and acc_r == 100.0


# --------------------------------------------------------------------------------------------------------------------
# relearn time and the Anamnesis Index
# --------------------------------------------------------------------------------------------------------------------
class _Counter:
    """A stand-in model whose accuracy is 10 points per step taken."""

    def __init__(self) -> None:
        self.steps = self.checks = 0

    def step(self) -> None:
        self.steps += 1

    def check(self) -> float:
        self.checks += 1
        return 10.0 * self.steps


@pytest.mark.parametrize("target, every, cap, expected", [
    (0.0, 5, 200, (0, False, 0.0)),  # already there: no step
    (35.0, 5, 200, (5, False, 50.0)),  # reached at step 4, first seen at the check after step 5
    (35.0, 2, 200, (4, False, 40.0)),  # checks at 2 (20) and 4 (40)
    (35.0, 1, 200, (4, False, 40.0)),  # every step: the exact step
    (35.0, 2, 3, (3, True, 30.0)),  # the cap is checked too (30 < 35): censored at 3
    (30.0, 2, 3, (3, False, 30.0)),  # reached exactly at the cap: not censored
])
def test_count_steps(target, every, cap, expected):
    c = _Counter()
    assert deep.count_steps(c.step, c.check, target, every, cap) == expected
    assert c.steps == expected[0]


def test_anamnesis_index():
    assert deep.anamnesis_index(10, 40) == 0.25 and deep.anamnesis_index(200, 100) == 2.0
    assert deep.anamnesis_index(10, 0) is None and deep.anamnesis_index(10, None) is None  # undefined


def test_relearn_trains_a_copy_until_the_target():
    """A real relearn on a tiny linear model whose forget row is silenced: it takes steps, reaches the target, and
    leaves the model itself as it was."""
    from unlearnbench.data import SampleSet, TensorSource
    from unlearnbench.runtime import Runtime
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    labels = torch.arange(3).repeat_interleave(40)
    x = (centres[labels] + 0.3 * torch.randn(len(labels), 2, generator=g)).reshape(-1, 1, 1, 2)
    source = TensorSource(x, labels, [0.0], [1.0], torch.device("cpu"))
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0], [0.0, 0.0]]))
        model[1].bias.copy_(torch.tensor([0.0, 0.0, -3.0]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    every = SampleSet.of(source)
    shots = deep.Images(every, every.subset((labels == 2).nonzero().flatten()), every, every, every)
    ev = build(EvalConfig, {"relearn_lr": 0.1, "relearn_every": 1, "relearn_batch_size": 30, "relearn_cap": 200})
    steps, censored, acc = deep.relearn(model, shots, Runtime(torch.device("cpu"), "fp32", False, 0, False), ev,
                                        90.0, seed=0)
    assert 0 < steps < 200 and not censored and acc >= 90.0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    again = deep.relearn(model, shots, Runtime(torch.device("cpu"), "fp32", False, 0, False), ev, 90.0, seed=0)
    assert again == (steps, censored, acc)  # seeded
    ev = build(EvalConfig, {"relearn_lr": 1e-5, "relearn_every": 5, "relearn_batch_size": 30, "relearn_cap": 10})
    assert deep.relearn(model, shots, Runtime(torch.device("cpu"), "fp32", False, 0, False), ev, 90.0, 0)[:2] == \
        (10, True)


# --------------------------------------------------------------------------------------------------------------------
# samples, heads, settings
# --------------------------------------------------------------------------------------------------------------------
def test_per_class_sample_is_balanced_and_seeded():
    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 7)
    from unlearnbench.runtime import generator
    picked = deep.per_class_sample(labels, 4, generator(0, 1))
    assert torch.bincount(labels[picked]).tolist() == [4, 3, 4]  # class 1 has only 3
    assert picked.tolist() == sorted(picked.tolist())
    assert torch.equal(picked, deep.per_class_sample(labels, 4, generator(0, 1)))
    assert not torch.equal(picked, deep.per_class_sample(labels, 4, generator(1, 1)))
    assert len(deep.per_class_sample(labels, 0, generator(0, 1))) == 20  # 0: all


def test_the_attack_does_not_apply_to_a_head_that_is_not_one_linear_layer():
    from unlearnbench.data import SampleSet, TensorSource
    from unlearnbench.runtime import Runtime
    import timm
    runtime = Runtime(torch.device("cpu"), "fp32", False, 0, False)
    source = TensorSource(torch.rand(8, 1, 32, 32), torch.zeros(8, dtype=torch.int64), [0.5], [0.5],
                          torch.device("cpu"))
    data = SampleSet.of(source)
    model = timm.create_model("resnet18", num_classes=3, in_chans=1).eval()
    assert deep.probe_problem(model) is None and deep.head_problem(model, data, runtime) is None
    model.fc = nn.Sequential(nn.Linear(512, 3), nn.Linear(3, 3))
    assert "Sequential, not one linear layer" in deep.head_problem(model, data, runtime)
    model.fc = nn.Linear(512, 3, bias=False)
    assert "not one linear layer with a bias" in deep.head_problem(model, data, runtime)
    assert "not a timm model" in deep.probe_problem(nn.Linear(2, 2))


def test_the_settings_are_checked_and_leave_the_hash_at_their_defaults():
    from unlearnbench.config import hash_view
    assert hash_view(EvalConfig()) == hash_view(build(EvalConfig, {"relearn_k": 50, "proto_alpha": 0.5}))
    assert "deep" in hash_view(build(EvalConfig, {"deep": True}))
    assert "relearn_k" in hash_view(build(EvalConfig, {"relearn_k": 20}))
    with pytest.raises(UsageError, match="proto_alpha: must be >= 0 and <= 1"):
        build(EvalConfig, {"proto_alpha": 1.5})
    with pytest.raises(UsageError, match="relearn_cap: must be >= 1"):
        build(EvalConfig, {"relearn_cap": 0})
    with pytest.raises(UsageError, match="proto_metric"):
        build(EvalConfig, {"proto_metric": "dot"})
