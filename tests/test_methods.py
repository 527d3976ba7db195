"""The unlearning methods on a real MNIST subset, with a small real timm model (fast) as θ*."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from unlearnbench.config import ModelConfig, TrainRecipe
from unlearnbench.data import Tracker, Withheld
from unlearnbench.method import UnlearnTask
from unlearnbench.methods.bad_teaching import (BadTeachingHP, bad_teacher_loss, bad_teaching, chosen_teacher,
                                               incompetent_teacher, prefers)
from unlearnbench.methods.fast_effective import FastEffectiveHP, impair_set, learn_noise
from unlearnbench.methods.pbu import PBUHP, pbu, pbu_loss
from unlearnbench.models import create_model
from unlearnbench.runtime import Runtime, deterministic, generator
from unlearnbench.train import fit, forget_retain_accuracy, predict

CPU = Runtime(torch.device("cpu"))
FORGET = 3


@pytest.fixture(scope="module")
def trained(mnist_small):
    """A test_resnet trained on the real MNIST subset (100 images per class), and the data."""
    with deterministic(0):
        model = create_model(ModelConfig("test_resnet"), 10, 1)
    fit(model, mnist_small.sample_set("train"), TrainRecipe(epochs=4, batch_size=32, lr=3e-3, scheduler="cosine"),
        CPU, generator(0))
    return model.eval(), mnist_small


def _task(data, forget=True, retain=True, trackers=None) -> UnlearnTask:
    trackers = trackers or {}
    sets = {role: data.sample_set("train", role, FORGET, trackers.get(role)) if wanted else Withheld(role, "test")
            for role, wanted in (("forget", forget), ("retain", retain))}

    def new_model(seed: int):
        with deterministic(seed):
            return create_model(ModelConfig("test_resnet"), 10, 1)

    return UnlearnTask(sets["forget"], sets["retain"], FORGET, 10, (1, 32, 32), TrainRecipe(), CPU, new_model)


def _accuracies(model, data):
    return forget_retain_accuracy(predict(model, data.sample_set("test"), CPU), data.test.labels, FORGET)


@pytest.mark.slow
def test_model_is_competent_before_unlearning(trained):
    model, data = trained
    acc_f, acc_r = _accuracies(model, data)
    assert acc_f > 70 and acc_r > 70


# ------------------------------------------------------------------------------------------------------------ PBU
@pytest.mark.slow
def test_pbu_is_blind_by_construction(trained):
    """PBU runs to completion with a retain set that raises on any access, and forgets."""
    model, data = trained
    tracker = Tracker(len(data.train.labels))
    task = _task(data, retain=False, trackers={"forget": tracker})
    assert isinstance(task.retain, Withheld)
    hp = PBUHP(lr=1e-3, batch_size=16, stop="forget_acc", stop_every=2, epochs=30)  # pbu+stop: quick to forget
    out, _ = pbu(copy.deepcopy(model), task, hp, seed=0)
    acc_f, _ = _accuracies(out, data)
    assert acc_f < 10
    assert tracker.distinct == 100  # every forget sample (the Fisher uses all of S_n), nothing else


@pytest.mark.slow
def test_pbu_stops_by_the_blind_rule_or_runs_the_fixed_schedule(trained, caplog):
    model, data = trained
    hp = PBUHP(lr=1e-3, batch_size=16, stop="forget_acc", stop_every=2, epochs=30, fisher="mc")  # pbu+stop
    caplog.set_level("INFO", logger="unlearnbench")
    _, diag = pbu(copy.deepcopy(model), _task(data, retain=False), hp, seed=0)
    assert any("stopping" in r.message for r in caplog.records)
    # the diagnostics say so too: stopped at a check (a multiple of stop_every), before the 30-epoch ceiling
    assert diag["stopped_early"] and diag["steps"] % 2 == 0 and diag["epochs_run"] < 30 and diag["fisher_seconds"] > 0
    caplog.clear()
    fixed = dataclasses.replace(hp, stop="none", epochs=2)
    tracker = Tracker(len(data.train.labels))
    _, diag = pbu(copy.deepcopy(model), _task(data, retain=False, trackers={"forget": tracker}), fixed, seed=0)
    assert not any("stopping" in r.message for r in caplog.records)
    assert not diag["stopped_early"] and diag["epochs_run"] == 2 and diag["steps"] == 2 * 7  # 100 images, batch 16
    # Fisher (100, batch 512) + 2 epochs over all 100 forget samples
    assert tracker.draws == 100 + 2 * 100


@pytest.mark.slow
def test_pbu_holdout_keeps_the_probe_out_of_the_ascent(trained):
    """stop_holdout: the probe's images are never ascended on, so each epoch draws S_n minus the probe."""
    model, data = trained
    never = PBUHP(lr=1e-3, batch_size=16, epochs=2, fisher="mc", stop="forget_acc", stop_threshold=0.0,
                  stop_every=10_000, stop_probe=20)
    draws = {}
    for holdout in (False, True):
        tracker = Tracker(len(data.train.labels))
        pbu(copy.deepcopy(model), _task(data, retain=False, trackers={"forget": tracker}),
            dataclasses.replace(never, stop_holdout=holdout), seed=0)
        draws[holdout] = tracker.draws
    assert draws[False] == 100 + 2 * 100  # Fisher on all of S_n, then 2 epochs of all of it
    assert draws[True] == 100 + 2 * 80  # Fisher on all of S_n, then 2 epochs without the 20 probe images


def test_pbu_bn_stats_keep_leaves_running_statistics_at_theta_star(trained):
    model, data = trained
    buffers = {k: b.clone() for k, b in model.named_buffers() if "running" in k}
    assert buffers  # test_resnet has BatchNorm
    hp = PBUHP(lr=1e-3, batch_size=16, epochs=1, stop="none", fisher="mc")
    for mode, same in (("keep", True), ("update", False)):
        out, _ = pbu(copy.deepcopy(model), _task(data, retain=False), dataclasses.replace(hp, bn_stats=mode), seed=0)
        after = dict(out.named_buffers())
        assert all(torch.equal(after[k], b) for k, b in buffers.items()) is same, mode
        assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), out.parameters()))
        assert all(m.momentum == 0.1 for m in out.modules() if isinstance(m, torch.nn.BatchNorm2d))  # restored


def test_pbu_loss_terms_and_frozen_reference(trained):
    model, data = trained
    student = copy.deepcopy(model)
    params = list(student.parameters())
    reference = [p.detach().clone() for p in params]
    fisher = [torch.full_like(p, 2.0) for p in params]
    hp = PBUHP(alpha=3.0, beta=5.0, gamma=7.0)
    batch = next(data.sample_set("train", "forget", FORGET).batches(16))
    loss = pbu_loss(params, reference, fisher, hp)
    total, terms = loss(student.eval(), batch)
    assert terms["fisher"].item() == 0 and terms["l2"].item() == 0  # at θ = θ*
    with torch.no_grad():
        for p in params:
            p.add_(0.01)
    total, terms = loss(student, batch)
    n = sum(p.numel() for p in params)
    assert terms["l2"].item() == pytest.approx(7.0 * n * 1e-4, rel=1e-3)
    assert terms["fisher"].item() == pytest.approx(5.0 * 2.0 * n * 1e-4, rel=1e-3)
    log_lik = F.log_softmax(student(batch.x), -1).gather(1, batch.y[:, None]).mean()
    assert terms["log_lik"].item() == pytest.approx(3.0 * log_lik.item(), rel=1e-4)
    total.backward()
    assert all(r.grad is None and not r.requires_grad for r in reference)  # θ* stays out of the graph


@pytest.mark.slow
@pytest.mark.parametrize("name, classes", [("test_convnext", 10), ("test_resnet", 100), ("test_convnext", 101)])
def test_pbu_any_model_any_class_count(name, classes, mnist_small):
    """LayerNorm models (no BatchNorm) and C = 100 / 101 work (labels of MNIST live in the first 10 classes)."""
    with deterministic(0):
        model = create_model(ModelConfig(name), classes, 1)
    task = dataclasses.replace(_task(mnist_small, retain=False), num_classes=classes)
    before = [p.detach().clone() for p in model.parameters()]
    out, _ = pbu(model, task, PBUHP(epochs=1, stop="none", fisher="true"), seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(before, out.parameters()))


# --------------------------------------------------------------------------------------------- Fast-Effective
@pytest.mark.slow
def test_learned_noise_raises_the_forget_class_loss(trained):
    model, data = trained
    hp = FastEffectiveHP(noise_batch=32, noise_steps=40)
    noise = learn_noise(copy.deepcopy(model), (1, 32, 32), FORGET, hp, _task(data), seed=0)
    initial = torch.randn(32, 1, 32, 32, generator=generator(0, 51))  # the same initial noise
    target = torch.full((32,), FORGET)
    with torch.no_grad():
        before = F.cross_entropy(model.eval()(initial), target).item()
        after = F.cross_entropy(model.eval()(noise), target).item()
    assert after > before + 1.0
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again


def test_noise_learning_keeps_bn_statistics_unless_released_code(trained):
    model, data = trained
    for released, should_change in ((False, False), (True, True)):
        m = copy.deepcopy(model)
        stats = [b.clone() for n, b in m.named_buffers() if "running_mean" in n]
        learn_noise(m, (1, 32, 32), FORGET, FastEffectiveHP(noise_batch=8, noise_steps=3, released_code=released),
                    _task(data), seed=0)
        after = [b for n, b in m.named_buffers() if "running_mean" in n]
        assert any(not torch.equal(a, b) for a, b in zip(stats, after)) == should_change


def test_released_code_switch_changes_the_impair_set(trained):
    _, data = trained
    noise = torch.randn(256, 1, 32, 32)
    subset = data.sample_set("train", "retain", FORGET).per_class(10)
    fixed = impair_set(noise, subset, FORGET, FastEffectiveHP())
    released = impair_set(noise, subset, FORGET, FastEffectiveHP(released_code=True))

    def noise_part(s):
        batches = list(s.batches(1000))
        y = torch.cat([b.y for b in batches])
        part = torch.cat([b.part for b in batches])
        x = torch.cat([b.x for b in batches])
        return y[part == 0], x[part == 0]

    y, x = noise_part(fixed)
    assert len(y) == 20 * 256 and (y == FORGET).all()
    assert len(torch.unique(x.flatten(1), dim=0)) == 256  # 20 copies of all 256 noise images
    y, x = noise_part(released)
    assert len(y) == 20 * 3 and (y == 0).all()
    assert len(torch.unique(x.flatten(1), dim=0)) == 3  # only the first 3 noise images
    assert len(fixed) - 20 * 256 == len(released) - 20 * 3 == 90  # the same retain subset in both


# ---------------------------------------------------------------------------------------------- Bad Teaching
@pytest.mark.slow
def test_bad_teaching_moves_forget_outputs_toward_the_random_teacher(trained):
    model, data = trained
    task = _task(data)
    incompetent = incompetent_teacher(task, 0)
    forget_x = torch.cat([b.x for b in data.sample_set("train", "forget", FORGET).batches(100)])

    def kl_to_bad(m):
        with torch.no_grad():
            return F.kl_div(F.log_softmax(m.eval()(forget_x), 1), F.softmax(incompetent(forget_x), 1),
                            reduction="batchmean").item()

    student, _ = bad_teaching(copy.deepcopy(model), task, BadTeachingHP(lr=1e-3, epochs=3, batch_size=32), seed=0)
    assert kl_to_bad(student) < 0.5 * kl_to_bad(model)


@pytest.mark.slow
@pytest.mark.parametrize("mode, same", [("keep", True), ("update", False)])
def test_bad_teaching_keep_bn_leaves_running_statistics_at_theta_star(mode, same, trained):
    """Official (update): the student's train-mode batches move BatchNorm's running statistics; keep (variant
    bad_teaching+keep_bn): they stay θ*'s while the weights still train, and the momentum is restored afterwards."""
    model, data = trained
    running = {k: b.clone() for k, b in model.named_buffers() if "running" in k}
    weights = {k: p.detach().clone() for k, p in model.named_parameters()}
    hp = BadTeachingHP(lr=1e-3, epochs=1, batch_size=32, bn_stats=mode)
    student, _ = bad_teaching(copy.deepcopy(model), _task(data), hp, seed=0)
    after = dict(student.named_buffers())
    assert running and all(torch.equal(after[k], b) for k, b in running.items()) is same
    assert any(not torch.equal(p, weights[k]) for k, p in student.named_parameters())
    assert all(m.momentum == 0.1 for m in student.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.slow
def test_bad_teaching_recal_bn_recomputes_the_statistics_from_its_retain_subset(trained):
    """The variant trains exactly as the default, then replaces the running statistics by those of its retain subset
    at the final weights: same weights as the default's student, other running statistics."""
    model, data = trained
    hp = BadTeachingHP(lr=1e-3, epochs=1, batch_size=32)
    default, _ = bad_teaching(copy.deepcopy(model), _task(data), hp, seed=0)
    recal, _ = bad_teaching(copy.deepcopy(model), _task(data), dataclasses.replace(hp, bn_stats="recalibrate"), seed=0)
    assert all(torch.equal(p, q) for p, q in zip(default.parameters(), recal.parameters()))
    bn = [(m, n) for m, n in zip(default.modules(), recal.modules()) if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and not all(torch.equal(m.running_mean, n.running_mean) for m, n in bn)
    assert all(n.momentum == 0.1 for _, n in bn)


def test_bad_teaching_keep_bn_is_a_variant_that_leaves_the_defaults_hash():
    from unlearnbench.config import hash_view
    from unlearnbench.registry import get_method
    assert "bn_stats" not in hash_view(get_method("bad_teaching").resolve({}))  # older records keep their keys
    assert get_method("bad_teaching+keep_bn").resolve({}).bn_stats == "keep"


def test_incompetent_teacher_has_the_official_codes_init(trained):
    """timm zero-initialises each residual block's last BatchNorm; the official code's torchvision teacher does not.
    "residual" undoes it (a more confident random net), "model" keeps timm's (nearly uniform)."""
    _, data = trained
    task = _task(data)
    x = next(data.sample_set("test").batches(256)).x
    entropy, zeroed = {}, {}
    for init in ("model", "residual"):
        teacher = incompetent_teacher(task, 0, init)
        zeroed[init] = sum(not m.weight.any() for m in teacher.modules() if isinstance(m, torch.nn.BatchNorm2d))
        with torch.no_grad():
            p = teacher(x).softmax(1)
        entropy[init] = float(-(p * p.log()).sum(1).mean())
    assert zeroed["model"] > 0 and zeroed["residual"] == 0
    assert not teacher.training
    assert entropy["residual"] < entropy["model"]
    same = [incompetent_teacher(task, 0, "model"), incompetent_teacher(task, 0, "residual")]
    convs = [[m.weight for m in t.modules() if isinstance(m, torch.nn.Conv2d)] for t in same]
    assert all(torch.equal(a, b) for a, b in zip(*convs))  # the same random draw; only the BatchNorm scales differ


def test_teacher_redraws_reject_a_teacher_that_prefers_the_class_to_forget(trained):
    """A random teacher sends most inputs to one class; when that is the forget class the student is taught to keep
    it. With redraws, such a teacher is replaced by the next draw; without, the official single draw is kept."""
    _, data = trained
    task = _task(data)
    forget = data.sample_set("train", "forget", FORGET)

    def majority(teacher):
        return int(torch.bincount(predict(teacher, forget, CPU).argmax(1), minlength=10).argmax())

    def convs(teacher):
        return [m.weight for m in teacher.modules() if isinstance(m, torch.nn.Conv2d)]

    first = incompetent_teacher(task, 0)
    preferred = majority(first)
    kept, _ = chosen_teacher(task, 0, BadTeachingHP(teacher_redraws=0), avoid=preferred)
    assert all(torch.equal(a, b) for a, b in zip(convs(kept), convs(first)))  # official: no look, no redraw
    other, _ = chosen_teacher(task, 0, BadTeachingHP(teacher_redraws=5, teacher_check="majority"),
                           avoid=(preferred + 1) % 10)
    assert all(torch.equal(a, b) for a, b in zip(convs(other), convs(first)))  # not rejected: the same network
    redrawn, draw = chosen_teacher(task, 0, BadTeachingHP(teacher_redraws=5), avoid=preferred)
    assert draw >= 1
    assert not all(torch.equal(a, b) for a, b in zip(convs(redrawn), convs(first)))
    assert majority(redrawn) != preferred and not redrawn.training


def test_teacher_check_chance_also_rejects_a_runner_up_forget_class():
    """"majority" rejects a teacher whose argmax is mostly the forget class; "chance" also one that gives the forget
    class a mean probability above 1/C while another class is its argmax (hand-made softmax outputs, C = 4)."""
    def logits(*rows):
        return torch.tensor(rows).log()

    majority, chance = BadTeachingHP(teacher_check="majority"), BadTeachingHP(teacher_check="chance")
    mostly_forget = logits([0.1, 0.7, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.5, 0.3, 0.1, 0.1])  # argmax 1, 1, 0
    runner_up = logits([0.5, 0.4, 0.05, 0.05], [0.6, 0.3, 0.05, 0.05])  # argmax 0; mean p(1) = 0.35 > 1/4
    below_chance = logits([0.5, 0.2, 0.2, 0.1], [0.6, 0.25, 0.1, 0.05])  # mean p(1) = 0.225 < 1/4
    assert prefers(mostly_forget, 1, majority) and prefers(mostly_forget, 1, chance)
    assert not prefers(runner_up, 1, majority) and prefers(runner_up, 1, chance)
    assert not prefers(below_chance, 1, majority) and not prefers(below_chance, 1, chance)
    assert not prefers(runner_up, 2, chance)  # mean p(2) = 0.05
    assert BadTeachingHP().teacher_check == "chance"


def test_bad_teacher_loss_picks_the_teacher_by_part():
    torch.manual_seed(0)
    student, good, bad = (torch.nn.Linear(4, 3) for _ in range(3))
    x = torch.randn(6, 4)
    part = torch.tensor([0, 1, 0, 1, 1, 0])
    from unlearnbench.data import Batch
    per_sample = bad_teacher_loss(good, bad, BadTeachingHP(kl_reduction="batchmean"))
    loss = per_sample(student, Batch(x, torch.zeros(6).long(), part))
    target = torch.where((part == 0)[:, None], bad(x).softmax(1), good(x).softmax(1)).detach()
    expected = (target * (target.log() - student(x).log_softmax(1))).sum(1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    official = bad_teacher_loss(good, bad, BadTeachingHP())(student, Batch(x, x[:, 0].long(), part))
    assert official.item() == pytest.approx(expected.item() / 3, rel=1e-5)  # the released code's ÷ classes


# ------------------------------------------------------------------------------------ declared data, via the runner
EXPECTED_DRAWS = {  # (forget samples seen, retain samples seen) with 40 training images per class
    "original": (0, 0),
    "retrain": (0, 360),
    "finetune": (0, 360),
    "fast_effective": (0, 9 * 40),  # a per-class retain subset, capped here by the 40 available
    "bad_teaching": (40, round(0.3 * 360)),
    "pbu": (40, 0),
}


@pytest.fixture(scope="module")
def runner(tmp_path_factory, data_root):
    from unlearnbench.runner import Env, Runner
    return Runner(Env(data_root, tmp_path_factory.mktemp("cache"), device="cpu", download=False))


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(EXPECTED_DRAWS))
def test_each_method_draws_only_what_it_declared(method, runner):
    from unlearnbench.registry import list_methods
    from unlearnbench.plan import Overrides, resolve_cell
    assert set(EXPECTED_DRAWS) <= set(list_methods())
    ov = Overrides(data={"train_per_class": 40, "test_per_class": 10}, train={"epochs": 1, "batch_size": 32},
                   method={"finetune": {"epochs": 1}, "fast_effective": {"noise_batch": 16, "noise_steps": 2},
                           "pbu": {"epochs": 1, "stop": "none", "fisher": "mc"}})
    rec = runner.run(resolve_cell("mnist", "test_resnet", FORGET, 0, method, ov))
    assert (rec["forget_samples_seen"], rec["retain_samples_seen"]) == EXPECTED_DRAWS[method]
    assert rec["unlearn_seconds"] >= 0 and rec["config"]["method"]["name"] == method
