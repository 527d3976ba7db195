"""The retain-free rivals of PBU (grad_ascent, boundary_shrink, boundary_expand, jit, delete): blind by construction,
strict settings, and their new math against hand-computed values on tiny tensors."""
from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from test_methods import trained  # noqa: F401  (the shared fixture: a small competent test_resnet and its data)
from torch import nn

from unlearnbench.attacks import PixelSpace, fgsm
from unlearnbench.config import TrainRecipe
from unlearnbench.data import Batch, Tracker, Withheld
from unlearnbench.errors import UsageError
from unlearnbench.method import Sizes, UnlearnTask
from unlearnbench.registry import get_method, list_methods
from unlearnbench.methods.boundary_expand import classifier_name, prune_head, widen_head
from unlearnbench.methods.boundary_shrink import neighbour_labels
from unlearnbench.methods.delete import delete_loss, masked_targets
from unlearnbench.methods.grad_ascent import ascent_loss
from unlearnbench.methods.jit import JiTHP, lipschitz_loss, lipschitz_ratios, neighbours
from unlearnbench.runtime import Runtime, generator
from unlearnbench.train import forget_retain_accuracy, predict

CPU = Runtime(torch.device("cpu"))
FORGET = 3
RIVALS = ("grad_ascent", "boundary_shrink", "boundary_expand", "jit", "delete")
MNIST_NORM = ((0.1307,), (0.3081,))


@pytest.fixture(scope="module")
def competent_resnet(trained):  # noqa: F811
    """θ*: test_methods.py's test_resnet trained on `mnist_small` (eval mode; copy it before changing it)."""
    return trained[0]


def _blind_task(data, tracker: Tracker) -> UnlearnTask:
    """The forget set (counting its draws) and a retain set that raises on any use."""
    return UnlearnTask(data.sample_set("train", "forget", FORGET, tracker), Withheld("retain", "test"), FORGET, 10,
                       (1, 32, 32), TrainRecipe(), CPU, new_model=None, input_norm=MNIST_NORM)


def _accuracies(model, data) -> tuple[float, float]:
    return forget_retain_accuracy(predict(model, data.sample_set("test"), CPU), data.test.labels, FORGET)


# ------------------------------------------------------------------------------------------------ the contract
def test_the_five_are_listed_after_pbu_and_declare_only_the_forget_set():
    names = list_methods(variants=False)
    assert names[names.index("pbu") + 1:names.index("pbu") + 6] == list(RIVALS)
    assert "scar" not in names  # left out: its official code computes class statistics on the retain set
    for name in RIVALS:
        spec = get_method(name)
        assert spec.needs == {"forget"} and not spec.cached
        assert f"{name}+keep_bn" in list_methods()


@pytest.mark.parametrize("name", RIVALS)
def test_settings_parse_strictly(name):
    spec = get_method(name)
    with pytest.raises(UsageError, match="unknown key"):
        spec.resolve({"learning_rate": 0.1})
    for bad in ({"lr": 0}, {"lr": -1e-3}, {"epochs": 0}, {"batch_size": 0}):
        with pytest.raises(UsageError, match="must be"):
            spec.resolve(bad)
    with pytest.raises(UsageError):
        spec.resolve({"bn_stats": "freeze"})
    assert spec.resolve({"lr": "2e-3"}).lr == 2e-3  # command-line strings become numbers
    assert spec.cost(spec.resolve(), _sizes()) > 0


def _sizes() -> Sizes:
    return Sizes(forget=1000, retain=9000, num_classes=10, recipe=TrainRecipe())


@pytest.mark.parametrize("bad", [{"bound": 0}, {"bound": 1.5}, {"momentum": 1.0}])
def test_boundary_shrink_ranges(bad):
    with pytest.raises(UsageError, match="must be"):
        get_method("boundary_shrink").resolve(bad)


def test_jit_ranges():
    for bad in ({"sigma": 0}, {"n_samples": 0}):
        with pytest.raises(UsageError, match="must be"):
            get_method("jit").resolve(bad)


# Settings that make each loss do the forgetting on the small fixture within a few steps (BatchNorm's running
# statistics kept, so that no drift of them does it instead; see test_keep_bn_...). Test settings, not defaults.
FORGETS = {
    "grad_ascent": {"lr": 1e-2, "epochs": 2, "batch_size": 64},
    "boundary_shrink": {"lr": 2e-3, "epochs": 3, "batch_size": 32},
    "boundary_expand": {"lr": 2e-2, "epochs": 2, "batch_size": 64},
    "delete": {"lr": 3e-3, "epochs": 2, "batch_size": 16},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FORGETS))
def test_the_loss_forgets_with_the_retain_set_withheld(name, competent_resnet, mnist_small):
    """Each method lowers the forget class's test accuracy by its loss alone (running statistics kept at θ*'s),
    never touching the retain set (any use raises), and draws exactly the forget samples, every one."""
    before_f, _ = _accuracies(competent_resnet, mnist_small)
    tracker = Tracker(len(mnist_small.train.labels))
    hp = get_method(name).resolve({**FORGETS[name], "bn_stats": "keep"})
    out, diag = get_method(name).fn(copy.deepcopy(competent_resnet).train(), _blind_task(mnist_small, tracker), hp, 0)
    after_f, after_r = _accuracies(out.eval(), mnist_small)
    assert before_f > 90 and after_f < before_f - 40, (before_f, after_f, after_r)
    assert tracker.distinct == 100 and tracker.draws == 100 * hp.epochs  # all of S_n, once per epoch, nothing else
    assert diag["steps"] == hp.epochs * math.ceil(100 / hp.batch_size)


def test_jit_at_its_defaults_forgets_blind(competent_resnet, mnist_small):
    """JiT as published (one pass, BatchNorm in train mode) on the fixture: the forget class goes, no label or retain
    sample is used, and its objective falls."""
    tracker = Tracker(len(mnist_small.train.labels))
    task = _blind_task(mnist_small, tracker)
    hp = get_method("jit").resolve()
    out, diag = get_method("jit").fn(copy.deepcopy(competent_resnet).train(), task, hp, 0)
    assert _accuracies(out.eval(), mnist_small)[0] < 20
    assert tracker.distinct == 100 and diag["steps"] == 1  # one batch of 128 holds all 100 forget images


@pytest.mark.slow
def test_jit_lowers_its_lipschitz_objective(competent_resnet, mnist_small):
    """Run with BatchNorm's running statistics kept, the estimate of the local Lipschitz constant around the forget
    samples (eval mode, the same neighbours before and after) falls."""
    x = next(mnist_small.sample_set("train", "forget", FORGET).batches(100)).x
    hp = dataclasses.replace(JiTHP(), n_samples=4, lr=3e-3, batch_size=16, epochs=2, bn_stats="keep")

    def objective(model):
        with torch.no_grad():
            value, _ = lipschitz_loss(hp, generator(7))(model.eval(), Batch(x, x.new_zeros(len(x)).long(), x))
            return value.item()

    out, _ = get_method("jit").fn(copy.deepcopy(competent_resnet).train(),
                                  _blind_task(mnist_small, Tracker(len(mnist_small.train.labels))), hp, 0)
    assert objective(out) < 0.9 * objective(competent_resnet)


@pytest.mark.parametrize("mode, same", [("keep", True), ("update", False)])
def test_keep_bn_leaves_running_statistics_at_theta_star(mode, same, competent_resnet, mnist_small):
    """Official (update): training in train mode on forget-only batches moves BatchNorm's running statistics, which
    alone lowers the forget accuracy (at a learning rate of ~0); keep: they stay θ*'s and nothing moves at lr ~0."""
    running = {k: b.clone() for k, b in competent_resnet.named_buffers() if "running" in k}
    hp = get_method("grad_ascent").resolve({"lr": 1e-12, "epochs": 1, "batch_size": 32, "bn_stats": mode})
    out, _ = get_method("grad_ascent").fn(copy.deepcopy(competent_resnet).train(),
                                          _blind_task(mnist_small, Tracker(len(mnist_small.train.labels))), hp, 0)
    after = dict(out.named_buffers())
    assert all(torch.equal(after[k], b) for k, b in running.items()) is same
    assert all(m.momentum == 0.1 for m in out.modules() if isinstance(m, nn.BatchNorm2d))  # restored
    before_f, _ = _accuracies(competent_resnet, mnist_small)
    assert (_accuracies(out.eval(), mnist_small)[0] == before_f) is same


def test_boundary_expand_restores_the_head(competent_resnet, mnist_small):
    """The shadow class exists only while training: the returned model has θ*'s head module, shape and keys."""
    model = copy.deepcopy(competent_resnet)
    head = model.get_classifier()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    hp = get_method("boundary_expand").resolve({"epochs": 1})
    out, diag = get_method("boundary_expand").fn(model.train(), _blind_task(mnist_small, Tracker(1000)), hp, 0)
    assert diag["head"] == "fc" and out.get_classifier() is head and head.out_features == 10
    assert {k: v.shape for k, v in out.state_dict().items()} == shapes


def test_widen_and_prune_head_by_hand(competent_resnet):
    model = copy.deepcopy(competent_resnet).eval()
    x = torch.randn(4, 1, 32, 32, generator=generator(0))
    with torch.no_grad():
        before = model(x)
    name = classifier_name(model)
    old, wide = widen_head(model, name, generator(1))
    with torch.no_grad():
        widened = model(x)
    assert widened.shape == (4, 11) and torch.allclose(widened[:, :10], before, atol=1e-6)
    assert wide.bias[10] == 0 and wide.weight[10].abs().sum() > 0  # the shadow output: Xavier-normal, bias 0
    bias = old.bias.detach().clone()
    with torch.no_grad():
        wide.weight[:10] *= 2  # what training does to the old rows goes back into the original head
        wide.bias[:10] += 1
    prune_head(model, name, old, wide)
    assert model.get_classifier() is old and old.out_features == 10
    with torch.no_grad():
        pruned = model(x)
    assert torch.allclose(pruned, 2 * (before - bias) + bias + 1, atol=1e-4)
    with pytest.raises(ValueError, match="nn.Linear head"):
        classifier_name(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


# ------------------------------------------------------------------------------------------- math by hand
class _Linear(nn.Module):
    """Flatten, then a fixed weight matrix, no bias: logits = W · x."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight, dtype=torch.float32))

    def forward(self, x):
        return x.flatten(1) @ self.weight.T


def test_fgsm_and_the_nearest_wrong_label_by_hand():
    """Two-pixel images, three classes, logits = W · x with W = [[1, 0], [0, 1], [0, 0]], inputs normalised with mean
    0.5 and std 0.25. Sample 0, pixels (130, 125)/255, label 0: ∂CE/∂x ∝ (p0 − 1, p1) has signs (−, +), so a step of
    10/255 gives pixels (120, 135)/255, normalised (−0.1176, +0.1176): class 1 wins, the nearest wrong class.
    Sample 1, pixels (250, 5)/255, label 1: signs (+, −), the step leaves [0, 1] and is clamped to (1, 0); class 0.
    Sample 2, pixels (140, 100)/255, label 0: signs (−, +), pixels (130, 110)/255: still class 0, the attack fails
    and the label stays."""
    model = _Linear([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    space = PixelSpace((0.5,), (0.25,))
    pixels = torch.tensor([[130.0, 125.0], [250.0, 5.0], [140.0, 100.0]]).view(3, 1, 1, 2) / 255
    x, y = space.from_pixels(pixels), torch.tensor([0, 1, 0])
    expected = torch.tensor([[120.0, 135.0], [255.0, 0.0], [130.0, 110.0]]).view(3, 1, 1, 2) / 255
    adv = fgsm(model, x, y, 10 / 255, space)
    assert torch.allclose(space.to_pixels(adv), expected, atol=1e-6)
    assert model.weight.grad is None  # only the input gradient was taken
    assert neighbour_labels(model, x, y, 10 / 255, space).tolist() == [1, 0, 0]
    # a step that is not a whole number of grey levels: rounded to 1/255 (130 − 12.75 → 117, 125 + 12.75 → 138)
    rounded = space.to_pixels(fgsm(model, x[:1], y[:1], 0.05, space)) * 255
    assert torch.allclose(rounded.flatten(), torch.tensor([117.0, 138.0]), atol=1e-4)
    exact = space.to_pixels(fgsm(model, x[:1], y[:1], 0.05, space, discretize=False)) * 255
    assert torch.allclose(exact.flatten(), torch.tensor([117.25, 137.75]), atol=1e-4)


def test_lipschitz_ratio_and_loss_by_hand():
    """f = diag(1, 3): a step along the first pixel has ratio 1, along the second 3. With f = 2·I every ratio is 2,
    so the loss (Σ over the batch, mean over neighbours) is 2·B whatever the noise."""
    f = _Linear([[1.0, 0.0], [0.0, 3.0]])
    x = torch.zeros(2, 1, 1, 2)
    near = torch.tensor([[0.5, 0.0], [0.0, -0.2]]).view(2, 1, 1, 2)
    ratios = lipschitz_ratios(f(x), x, f(near), near)
    assert torch.allclose(ratios, torch.tensor([1.0, 3.0]))
    double = _Linear([[2.0, 0.0], [0.0, 2.0]])
    batch = Batch(torch.randn(5, 1, 1, 2, generator=generator(3)), torch.zeros(5).long(), torch.zeros(5).long())
    value, terms = lipschitz_loss(JiTHP(n_samples=3, sigma=0.3), generator(4))(double, batch)
    assert value.item() == pytest.approx(2.0 * 5, rel=1e-5) and terms["lipschitz_per_sample"].item() == \
        pytest.approx(2.0, rel=1e-5)


def test_lipschitz_loss_differentiates_the_clean_output_only():
    """One sample, one neighbour x' = x + ξ (ξ from the same seeded stream): L = ‖W x − W₀ x'‖ / ‖x − x'‖ with the
    neighbour's output held fixed, so ∂L/∂W = u xᵀ / ‖x − x'‖, u the unit vector of W (x − x'). (The middle pixel
    lies inside the batch's value range, so the clamped neighbour differs from x.)"""
    w = [[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]]
    f = _Linear(w)
    x = torch.tensor([[-1.0, 0.2, 1.0]]).view(1, 1, 1, 3)
    hp = JiTHP(n_samples=1, sigma=0.1)
    loss, _ = lipschitz_loss(hp, generator(9))(f, Batch(x, torch.zeros(1).long(), torch.zeros(1).long()))
    loss.backward()
    near = neighbours(x, hp.sigma, generator(9))  # the same draw
    d = (x - near).flatten()
    u = torch.tensor(w) @ d
    expected = torch.outer(u / u.norm(), x.flatten()) / d.norm()
    assert torch.allclose(f.weight.grad, expected, atol=1e-5)


def test_neighbours_stay_in_the_batch_value_range():
    x = torch.tensor([[-0.4, 0.0], [1.0, 2.5]]).view(2, 1, 1, 2)
    near = neighbours(x, 10.0, generator(0))
    assert near.min() >= -0.4 and near.max() <= 2.5 and not torch.equal(near, x)
    assert neighbours(x, 0.5, generator(1)).shape == x.shape


def test_delete_target_and_loss_by_hand():
    """θ* logits (0, ln 2, ln 3), the sample's label 2 masked: target (1/3, 2/3, 0). A student with zero logits
    (uniform 1/3) is at KL = 1/3 ln 1 + 2/3 ln 2 = (2/3) ln 2 from it."""
    logits = torch.tensor([[0.0, math.log(2), math.log(3)]])
    target = masked_targets(logits, torch.tensor([2]))
    assert torch.allclose(target, torch.tensor([[1 / 3, 2 / 3, 0.0]]), atol=1e-7)
    teacher = _Linear([[0.0, 0.0], [math.log(2), 0.0], [math.log(3), 0.0]])  # logits (0, ln 2, ln 3) at x = (1, 0)
    student = _Linear([[0.0, 0.0]] * 3)
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(2, 1, 1, 2)
    loss = delete_loss(teacher)(student, Batch(x, torch.tensor([2, 2]), torch.zeros(2).long()))
    assert loss.item() == pytest.approx(2 / 3 * math.log(2), rel=1e-6)  # batchmean: the per-sample KL
    loss.backward()
    assert teacher.weight.grad is None  # the teacher is not trained


def test_ascent_loss_is_negative_cross_entropy():
    f = _Linear([[1.0, 0.0], [0.0, 1.0]])
    x, y = torch.tensor([[2.0, 0.0]]).view(1, 1, 1, 2), torch.tensor([0])
    loss, terms = ascent_loss(f, Batch(x, y, y))
    assert loss.item() == pytest.approx(-math.log(1 + math.exp(-2.0)), rel=1e-6) and terms["ce"] == -loss


# ------------------------------------------------------------------------------------ via the runner
@pytest.fixture(scope="module")
def runner(tmp_path_factory, data_root):
    from unlearnbench.runner import Env, Runner
    return Runner(Env(data_root, tmp_path_factory.mktemp("cache"), device="cpu", download=False))


@pytest.mark.slow
@pytest.mark.parametrize("method", RIVALS)
def test_the_runner_hands_them_the_forget_set_only(method, runner):
    """End to end through the runner (which supplies the input normalisation): every forget sample, no retain one."""
    from unlearnbench.plan import Overrides, resolve_cell
    ov = Overrides(data={"train_per_class": 40, "test_per_class": 10}, train={"epochs": 1, "batch_size": 32},
                   eval={"oracle": False, "mia": False, "zrf": False},
                   method={m: {"epochs": 1} for m in RIVALS} | {"jit": {"n_samples": 2}})
    rec = runner.run(resolve_cell("mnist", "test_resnet", FORGET, 0, method, ov))
    assert (rec["forget_samples_seen"], rec["retain_samples_seen"], rec["retain_draws"]) == (40, 0, 0)
    assert rec["diagnostics"]["steps"] >= 1 and rec["config"]["method"]["name"] == method
