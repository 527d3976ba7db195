"""SalUn, ℓ1-sparse and random labels: on the real MNIST subset with a small trained model (the fixture of
test_methods.py), and their new math (the saliency mask, the random-label rule, the ℓ1 penalty and its schedule)
against hand-computed values on tiny tensors."""
from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from test_methods import CPU, FORGET, _accuracies, _task, trained  # noqa: F401  (trained: the shared fixture)

import unlearnbench.methods.salun
from unlearnbench.methods.l1_sparse import L1SparseHP, l1_loss, l1_norm, l1_sparse, l1_weight
from unlearnbench.methods.random_label import RandomLabelHP, epoch_batches, random_label, random_labels, resolved_order
from unlearnbench.methods.salun import SalUnHP, mask_hooks, negative_cross_entropy, salun, saliency_mask, top_fraction_mask
from unlearnbench.data import Batch, Tracker, Withheld
from unlearnbench.errors import UsageError
from unlearnbench.registry import get_method
from unlearnbench.runtime import generator
from unlearnbench.train import make_optimizer, summed_gradients, train_steps


def _trackers(data):
    return {"forget": Tracker(len(data.train.labels)), "retain": Tracker(len(data.train.labels))}


# ------------------------------------------------------------------------------------ on MNIST, declared data
@pytest.mark.slow
def test_random_label_forgets_and_reads_forget_and_retain_once_per_epoch(trained):
    model, data = trained
    trackers = _trackers(data)
    out, diag = random_label(copy.deepcopy(model), _task(data, trackers=trackers), RandomLabelHP(epochs=1,
                                                                                               batch_size=32), seed=0)
    acc_f, acc_r = _accuracies(out, data)
    assert acc_f < 40 and acc_r > 70  # from > 90% (θ*): one epoch, official lr 0.01
    assert diag["order"] == "sequential" and diag["steps"] == 4 + 29  # 100 forget, then 900 retain images, batch 32
    assert (trackers["forget"].draws, trackers["forget"].distinct) == (100, 100)
    assert (trackers["retain"].draws, trackers["retain"].distinct) == (900, 900)


@pytest.mark.slow
def test_salun_forgets_and_moves_only_the_salient_weights(trained, monkeypatch):
    model, data = trained
    trackers = _trackers(data)
    task = _task(data, trackers=trackers)
    seen = []
    monkeypatch.setattr(unlearnbench.methods.salun, "saliency_mask", lambda *a: seen.append(saliency_mask(*a)) or seen[-1])
    out, diag = salun(copy.deepcopy(model), task, SalUnHP(epochs=1, batch_size=32), seed=0)
    acc_f, acc_r = _accuracies(out, data)
    assert acc_f < 40 and acc_r > 70
    assert trackers["forget"].draws == 100 + 100  # the saliency pass, then one epoch
    assert trackers["retain"].draws == 900 and trackers["retain"].distinct == 900
    masks = seen[0]
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == int(total * 0.5) and diag["salient_fraction"] == 0.5
    before, after = dict(model.named_parameters()), dict(out.named_parameters())
    for name, keep in masks.items():
        assert torch.equal(after[name][~keep], before[name][~keep]), name  # frozen exactly at θ*
    assert any(not torch.equal(after[n][m], before[n][m]) for n, m in masks.items())


@pytest.mark.slow
def test_l1_sparse_forgets_without_the_forget_set_and_shrinks_the_weights(trained):
    model, data = trained
    trackers = _trackers(data)
    task = _task(data, forget=False, trackers=trackers)
    assert isinstance(task.forget, Withheld)  # any access would raise: the method is blind to D_f
    out, diag = l1_sparse(copy.deepcopy(model), task, L1SparseHP(epochs=2, batch_size=32, lr=0.02), seed=0)
    acc_f, acc_r = _accuracies(out, data)
    # two epochs: after one, how much of the class is gone differs between hosts (their kernels round differently)
    assert acc_f < _accuracies(model, data)[0] - 30 and acc_r > 70
    assert trackers["retain"].draws == 2 * 900 and trackers["forget"].draws == 0
    assert diag["l1_norm_after"] < diag["l1_norm_before"]
    with torch.no_grad():
        assert diag["l1_norm_before"] == pytest.approx(float(l1_norm(model.parameters())), rel=1e-5)


def test_declared_data_roles():
    assert get_method("salun").needs == get_method("random_label").needs == {"forget", "retain"}
    assert get_method("l1_sparse").needs == {"retain"}


def test_saliency_uses_eval_mode_and_leaves_no_gradients(trained):
    """generate_mask.py computes the gradient in eval mode: BatchNorm's running statistics must not move."""
    model, data = trained
    m = copy.deepcopy(model).train()
    stats = {k: b.clone() for k, b in m.named_buffers() if "running" in k}
    task = _task(data)
    saliency_mask(m, dataclasses.replace(task, forget=task.forget.subset(torch.arange(16))), SalUnHP(), seed=0)
    assert all(torch.equal(b, stats[k]) for k, b in m.named_buffers() if "running" in k)
    assert m.training and all(p.grad is None for p in m.parameters())


def test_epoch_batches_sequential_then_mixed(trained):
    """Sequential (official for 10 classes): every forget batch, relabelled, before any retain batch. Mixed (official
    for 100 classes): one shuffled pass over forget ∪ retain, only the forget part relabelled."""
    _, data = trained
    trackers = _trackers(data)
    task = _task(data, trackers=trackers)
    hp = RandomLabelHP(batch_size=32, labels="other")
    assert resolved_order(hp, 10) == "sequential" and resolved_order(hp, 100) == "mixed"
    batches = epoch_batches(task, hp, "sequential", generator(0, 1), generator(0, 2))
    first = [next(batches) for _ in range(4)]
    assert trackers["forget"].draws == 100 and trackers["retain"].draws == 0
    assert all((b.y != FORGET).all() for b in first)  # "other": never the true label
    rest = list(batches)
    assert trackers["retain"].draws == 900 and len(rest) == 29
    retain_labels = data.sample_set("train", "retain", FORGET).labels
    assert torch.equal(torch.cat([b.y for b in rest]).sort().values, retain_labels.sort().values)
    mixed = list(epoch_batches(task, hp, "mixed", generator(0, 1), generator(0, 2)))
    part = torch.cat([b.part for b in mixed])
    y = torch.cat([b.y for b in mixed])
    assert int((part == 0).sum()) == 100 and (y[part == 0] != FORGET).all()
    assert torch.equal(y[part == 1].sort().values, retain_labels.sort().values)  # retain labels untouched
    assert any(b.part.unique().numel() == 2 for b in mixed)  # forget and retain images share batches


# ------------------------------------------------------------------------------------ hyperparameters
def test_hyperparameters_parse_strictly():
    salun_spec, rl_spec, l1_spec = get_method("salun"), get_method("random_label"), get_method("l1_sparse")
    for spec, bad in ((salun_spec, {"mask_fraction": 0}), (salun_spec, {"mask_fraction": 1.5}),
                      (salun_spec, {"mask_mode": "soft"}), (salun_spec, {"alpha": 1e-4}),
                      (rl_spec, {"labels": "uniform"}), (rl_spec, {"order": "random"}), (rl_spec, {"momentum": 1.0}),
                      (rl_spec, {"lr": 0}), (rl_spec, {"epochs": 0}), (rl_spec, {"optimizer": "rmsprop"}),
                      (l1_spec, {"alpha": -1e-4}), (l1_spec, {"no_l1_epochs": 11}), (l1_spec, {"labels": "any"}),
                      (l1_spec, {"epochs": "ten"})):
        with pytest.raises(UsageError):
            spec.resolve(bad)
    hp = salun_spec.resolve({"mask_fraction": "0.3", "epochs": "5"})
    assert (hp.mask_fraction, hp.epochs, hp.lr, hp.mask_mode, hp.labels) == (0.3, 5, 0.01, "freeze", "any")
    assert l1_spec.resolve({"alpha": "5e-4", "no_l1_epochs": 10}).alpha == 5e-4
    amnesiac = get_method("random_label+amnesiac").resolve()
    assert (amnesiac.labels, amnesiac.order, amnesiac.optimizer, amnesiac.lr, amnesiac.epochs, amnesiac.batch_size,
            amnesiac.weight_decay) == ("other", "mixed", "adam", 1e-4, 3, 128, 0.0)


def test_official_defaults():
    rl, s, l1 = RandomLabelHP(), SalUnHP(), L1SparseHP()
    assert (rl.optimizer, rl.lr, rl.epochs, rl.batch_size, rl.momentum, rl.weight_decay) == ("sgd", 0.01, 10, 256,
                                                                                              0.9, 5e-4)
    assert (rl.labels, rl.order) == ("any", "auto")
    assert (s.mask_fraction, s.mask_mode) == (0.5, "freeze") and s.lr == rl.lr
    assert (l1.alpha, l1.no_l1_epochs, l1.lr, l1.epochs, l1.batch_size) == (1e-4, 0, 0.01, 10, 256)


# ------------------------------------------------------------------------------------ SalUn's mask, by hand
def test_mask_keeps_the_top_fraction_over_all_weights_at_once():
    """|g| = a: [[.1, .5], [.3, 0]], b: [.4, .35]. N = 6. Ranked over both tensors: .5, .4, .35, .3, .1, 0."""
    saliency = {"a": torch.tensor([[0.1, 0.5], [0.3, 0.0]]), "b": torch.tensor([0.4, 0.35])}
    m = top_fraction_mask(saliency, 0.5)  # int(6 · 0.5) = 3: .5, .4, .35
    assert m["a"].tolist() == [[False, True], [False, False]] and m["b"].tolist() == [True, True]
    # per layer, half of each would have kept .5 and .3 in a and only .4 in b: the official ranking is global
    m = top_fraction_mask(saliency, 0.7)  # int(4.2) = 4: + .3
    assert m["a"].tolist() == [[False, True], [True, False]] and m["b"].tolist() == [True, True]
    m = top_fraction_mask(saliency, 0.1)  # int(0.6) = 0: nothing
    assert not any(t.any() for t in m.values())
    assert all(t.all() for t in top_fraction_mask(saliency, 1.0).values())
    tied = top_fraction_mask({"a": torch.tensor([1.0, 2.0, 2.0]), "b": torch.tensor([2.0])}, 0.5)  # k = 2
    assert tied["a"].tolist() == [False, True, True] and tied["b"].tolist() == [False]  # earlier ties first


def test_saliency_gradient_is_the_forget_loss_gradient_summed_over_batches():
    """For a linear model, ∂ mean CE / ∂W = (softmax(Wx) − onehot(y))ᵀ x / n per batch (here by hand, no autograd)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4)
    x, y = torch.randn(10, 3), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    batches = [Batch(x[:6], y[:6], torch.zeros(6).long()), Batch(x[6:], y[6:], torch.zeros(4).long())]
    grads = summed_gradients(model, batches, negative_cross_entropy, CPU)
    w_expected = torch.zeros(4, 3)
    b_expected = torch.zeros(4)
    with torch.no_grad():
        for b in batches:
            delta = (model(b.x).softmax(1) - F.one_hot(b.y, 4).float()) / len(b.y)
            w_expected -= delta.T @ b.x  # −CE: the negated gradient
            b_expected -= delta.sum(0)
    assert torch.allclose(grads["weight"], w_expected, atol=1e-6)
    assert torch.allclose(grads["bias"], b_expected, atol=1e-6)
    assert model.weight.grad is None


@pytest.mark.parametrize("mode, expected", [("grad", [0.85, 1.9, -1.05, 3.8]), ("freeze", [0.85, 2.0, -1.05, 4.0])])
def test_mask_hooks_in_the_shared_loop(mode, expected):
    """θ = [1, 2, −1, 4], loss Σθ (gradient 1 each), mask keeps entries 0 and 2; SGD lr 0.1, momentum 0.9, weight
    decay 0.5. One step: the direction is g·m + 0.5·θ = [1.5, 1.0, 0.5, 2.0], θ − 0.1 · that = [.85, 1.9, −1.05, 3.8]
    ("grad", RL.py before PR #33: weight decay still moves masked weights); "freeze" puts entries 1 and 3 back."""
    module = torch.nn.Module()
    module.w = torch.nn.Parameter(torch.tensor([1.0, 2.0, -1.0, 4.0]))
    after_backward, after_step = mask_hooks(module, {"w": torch.tensor([True, False, True, False])}, mode)
    optimizer = make_optimizer(module.parameters(), "sgd", 0.1, weight_decay=0.5, momentum=0.9)
    batch = Batch(torch.zeros(1, 1), torch.zeros(1).long(), torch.zeros(1).long())
    train_steps(module, optimizer, [batch], lambda m, b: m.w.sum(), CPU, after_backward=after_backward,
                after_step=after_step)
    assert module.w.detach().tolist() == pytest.approx(expected)
    train_steps(module, optimizer, [batch, batch], lambda m, b: m.w.sum(), CPU, after_backward=after_backward,
                after_step=after_step)
    if mode == "freeze":
        assert module.w.detach()[[1, 3]].tolist() == [2.0, 4.0]  # still exactly θ*, momentum or not
    else:
        assert module.w.detach()[1].item() < 1.9


# ------------------------------------------------------------------------------------ the random-label rule
def test_random_label_rule():
    y = torch.tensor([0, 1, 1, 0, 1])
    assert random_labels(y, 2, "other", generator(0)).tolist() == [1, 0, 0, 1, 0]  # C = 2: the other class
    n, c = 30_000, 3
    y = torch.ones(n, dtype=torch.long)
    other = torch.bincount(random_labels(y, c, "other", generator(1)), minlength=c)
    anything = torch.bincount(random_labels(y, c, "any", generator(1)), minlength=c)
    assert other[1] == 0 and all(abs(int(k) - n / 2) < 4 * math.sqrt(n / 4) for k in other[[0, 2]])
    assert all(abs(int(k) - n / 3) < 4 * math.sqrt(n * 2 / 9) for k in anything)  # the true class 1 included
    y = torch.tensor([3] * 1000 + [0] * 1000)
    other = random_labels(y, 4, "other", generator(2))
    assert set(other[:1000].tolist()) == {0, 1, 2} and set(other[1000:].tolist()) == {1, 2, 3}


# ------------------------------------------------------------------------------------ the ℓ1 penalty and schedule
def test_l1_schedule_decays_linearly_per_epoch():
    def schedule(**kw):
        hp = L1SparseHP(alpha=1.0, **kw)
        return [round(l1_weight(e, hp), 10) for e in range(hp.epochs)]

    assert schedule(epochs=10) == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert schedule(epochs=10, no_l1_epochs=5) == [1.0, 0.8, 0.6, 0.4, 0.2, 0, 0, 0, 0, 0]
    assert schedule(epochs=4, no_l1_epochs=4) == [1.0] * 4  # the official code keeps α when every epoch is "non-ℓ1"
    assert schedule(epochs=1) == [1.0]


def test_l1_penalty_by_hand():
    """Linear(2, 2) with W = [[1, −2], [0, 3]], b = [−0.5, 0.25]: ‖θ‖₁ = 6.75; the penalty's gradient is α·sign(θ)."""
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 3.0]]))
        model.bias.copy_(torch.tensor([-0.5, 0.25]))
    params = list(model.parameters())
    assert float(l1_norm(params).detach()) == 6.75
    batch = Batch(torch.tensor([[1.0, 2.0]]), torch.tensor([1]), torch.zeros(1).long())
    total, terms = l1_loss(params, 0.1)(model, batch)
    assert float(terms["l1"]) == pytest.approx(0.675)
    assert float((total - terms["ce"]).detach()) == pytest.approx(0.675)
    total.backward()
    with_penalty = [p.grad.clone() for p in params]
    model.zero_grad()
    F.cross_entropy(model(batch.x), batch.y).backward()
    assert torch.allclose(with_penalty[0] - params[0].grad, 0.1 * torch.tensor([[1.0, -1.0], [0.0, 1.0]]))
    assert torch.allclose(with_penalty[1] - params[1].grad, 0.1 * torch.tensor([-1.0, 1.0]))
    _, terms = l1_loss(params, 0.0)(model, batch)
    assert float(terms["l1"]) == 0.0
