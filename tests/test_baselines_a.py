"""SSD, LFSSD, SCRUB and NegGrad+ on the real MNIST subset (the fixture of test_methods), and their math by hand."""
from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from unlearnbench.methods.lfssd import LFSSDHP, lfssd, output_norm_loss
from unlearnbench.methods.neggrad_plus import NegGradPlusHP, cycled, neggrad_plus, neggrad_plus_loss
from unlearnbench.methods.scrub import ScrubHP, max_loss, min_loss, schedule, scrub
from unlearnbench.methods.ssd import SSDHP, batch_importance, cross_entropy_loss, dampen_, full_training_set, ssd
from test_methods import CPU, FORGET, _accuracies, _task, trained  # noqa: F401 - `trained` is the shared fixture
from unlearnbench.config import Range
from unlearnbench.data import Batch, SampleSet, TensorSource, Tracker
from unlearnbench.errors import UsageError
from unlearnbench.losses import distill_kl, kl_to_targets
from unlearnbench.registry import get_method, list_methods

METHODS = ("ssd", "lfssd", "scrub", "neggrad_plus")


# ----------------------------------------------------------------------------------------------- registry, config
def test_registered_after_the_retain_free_family_in_order():
    names = list_methods()
    bases = [n for n in names if "+" not in n]
    at = bases.index("ssd")
    assert bases[at:at + 4] == list(METHODS)
    assert bases.index("pbu") < bases.index("delete") < at  # paper's table, retain-free rivals, then these
    assert names[names.index("neggrad_plus") + 1] == "neggrad_plus+released"
    for name in METHODS:
        spec = get_method(name)
        assert spec.needs == {"forget", "retain"}
        assert spec.summary and spec.cost(spec.resolve(), _sizes()) > 0


def _sizes():
    from unlearnbench.config import TrainRecipe
    from unlearnbench.method import Sizes
    return Sizes(forget=6000, retain=54000, num_classes=10, recipe=TrainRecipe())


@pytest.mark.parametrize("name", METHODS)
def test_every_numeric_setting_declares_its_range(name):
    hp = get_method(name).resolve()
    for f in dataclasses.fields(hp):
        if isinstance(getattr(hp, f.name), (int, float)) and not isinstance(getattr(hp, f.name), bool):
            assert isinstance(f.metadata.get("range"), Range), f"{name}.{f.name}"


@pytest.mark.parametrize("name, values, message", [
    ("ssd", {"alpha": 0}, r"method.ssd.alpha: must be > 0 and <= 1000000, got 0"),
    ("ssd", {"lambda": 1}, "unknown key"),
    ("ssd", {"full_order": "shuffled"}, "is not one of"),
    ("lfssd", {"batch_size": 0}, ">= 1"),
    ("scrub", {"msteps": -1}, ">= 0"),
    ("scrub", {"lr_decay_rate": 1.5}, "<= 1"),
    ("scrub", {"lr_decay_epochs": "0,3"}, "epochs count from 1"),
    ("scrub", {"optimizer": "rmsprop"}, "is not one of"),
    ("neggrad_plus", {"alpha": 1.5}, "<= 1"),
    ("neggrad_plus", {"momentum": 1}, "< 1"),
    ("neggrad_plus", {"epochs": "two"}, "expected int"),
])
def test_hyperparameters_parse_strictly(name, values, message):
    with pytest.raises(UsageError, match=message):
        get_method(name).resolve(values)


def test_hyperparameters_parse_from_strings():
    hp = get_method("scrub").resolve({"lr_decay_epochs": "2,4", "lr": "1e-3", "msteps": "1"})
    assert hp.lr_decay_epochs == (2, 4) and hp.lr == 1e-3 and hp.msteps == 1
    assert get_method("neggrad_plus+released").resolve().weight_decay == 0.0
    assert get_method("neggrad_plus").resolve().weight_decay == 5e-4


# ------------------------------------------------------------------------------------------------ SSD by hand
def test_ssd_dampening_rule_by_hand():
    """Selected where forget > α · full (strictly); θ ← θ · min((λ · full / forget) ** exponent, clamp)."""
    full = [torch.tensor([1.0, 1.0, 0.0, 2.0, 1.0, 1.0])]
    forget = [torch.tensor([5.0, 20.0, 3.0, 10.0, 0.0, 4.0])]
    theta = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])

    def run(**kw):
        p = [theta.clone()]
        args = {"alpha": 4.0, "lam": 1.0, "exponent": 1.0, "clamp": 1.0, **kw}
        n = dampen_(p, full, forget, **args)
        return p[0].tolist(), n

    # i0: 5 > 4 → ×1/5; i1: 20 > 4 → ×1/20; i2: 3 > 0 → ×0/3 = 0; i3: 10 > 8 → ×2/10; i4: 0 ≯ 4; i5: 4 ≯ 4
    values, n = run()
    assert values == pytest.approx([0.2, 0.1, 0.0, 0.8, 5.0, 6.0]) and n == 4
    values, _ = run(lam=10.0)  # 10/5 = 2 and 20/10 = 2 clamp to 1; 10/20 = 0.5
    assert values == pytest.approx([1.0, 1.0, 0.0, 4.0, 5.0, 6.0])
    values, _ = run(exponent=2.0)  # (1/5)², (1/20)², 0, (2/10)²
    assert values == pytest.approx([0.04, 2 / 400, 0.0, 4 * 0.04, 5.0, 6.0])
    values, _ = run(lam=10.0, clamp=0.25)  # min(2, 0.25), min(0.5, 0.25), 0, min(2, 0.25)
    assert values == pytest.approx([0.25, 0.5, 0.0, 1.0, 5.0, 6.0])
    values, n = run(alpha=1.0)  # i5 (4 > 1) now selected: ×1/4
    assert values[5] == pytest.approx(1.5) and n == 5


def _linear_batches():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4)
    xs = [torch.randn(5, 3), torch.randn(2, 3)]
    ys = [torch.tensor([0, 1, 2, 3, 0]), torch.tensor([3, 1])]
    return model, [Batch(x, y, torch.zeros_like(y)) for x, y in zip(xs, ys)]


def test_ssd_importance_is_the_mean_of_squared_batch_gradients():
    """For z = Wx + b the gradient of a batch's mean cross-entropy is (1/B) Σ (softmax(z) − onehot(y)) xᵀ (and
    (1/B) Σ (softmax(z) − onehot(y)) for b); SSD averages its square over batches, not per-sample squares."""
    model, batches = _linear_batches()
    got_w, got_b = batch_importance(model.train(), batches, cross_entropy_loss, "square", CPU)
    want_w, want_b = torch.zeros(4, 3), torch.zeros(4)
    per_sample_w = torch.zeros(4, 3)
    with torch.no_grad():
        for b in batches:
            delta = model(b.x).softmax(1) - F.one_hot(b.y, 4).float()  # (B, classes)
            want_w += (delta.T @ b.x / len(b.y)) ** 2
            want_b += delta.mean(0) ** 2
            per_sample_w += torch.einsum("nc,nd->cd", delta ** 2, b.x ** 2) / len(b.y)
    assert torch.allclose(got_w, want_w / 2, atol=1e-6) and torch.allclose(got_b, want_b / 2, atol=1e-6)
    assert not torch.allclose(got_w, per_sample_w / 2, atol=1e-3)  # a per-sample Fisher would differ
    assert model.training and model.weight.grad is None  # mode restored, no gradient left behind


def test_lfssd_importance_is_the_mean_abs_gradient_of_the_squared_output_norm():
    """L = (1/B) Σ ‖z‖² gives ∂L/∂W = (2/B) Σ z xᵀ and ∂L/∂b = (2/B) Σ z; LFSSD averages |·| over batches."""
    model, batches = _linear_batches()
    shuffled = [Batch(b.x, b.y.flip(0), b.part) for b in batches]  # labels must not matter
    got_w, got_b = batch_importance(model, shuffled, output_norm_loss, "abs", CPU)
    want_w, want_b = torch.zeros(4, 3), torch.zeros(4)
    with torch.no_grad():
        for b in batches:
            z = model(b.x)
            want_w += (2 * z.T @ b.x / len(b.y)).abs()
            want_b += (2 * z.mean(0)).abs()
    assert torch.allclose(got_w, want_w / 2, atol=1e-6) and torch.allclose(got_b, want_b / 2, atol=1e-6)


@pytest.mark.slow
def test_ssd_full_set_reads_retain_class_by_class_then_forget(trained):
    _, data = trained
    task = _task(data)
    labels = full_training_set(task, "by_class").labels
    retain = [c for c in range(10) if c != FORGET]
    assert labels.tolist() == [c for c in retain for _ in range(100)] + [FORGET] * 100
    stored = full_training_set(task, "stored").labels
    assert stored[:900].tolist() == task.retain.labels.tolist() and stored[:900].tolist() != labels[:900].tolist()


# α = 5, not the published 10: with 10 classes the forget class is a tenth of D, and D's importance contains D_f's own,
# so []_Df / []_D stays below about |D| / |D_f| = 10 and α = 10 selects next to nothing (docs/methods_baselines_a.md)
@pytest.mark.slow
@pytest.mark.parametrize("fn, hp", [(ssd, SSDHP(alpha=5.0)), (lfssd, LFSSDHP(alpha=5.0))], ids=["ssd", "lfssd"])
def test_ssd_and_lfssd_forget_in_one_shot_and_read_forget_twice(trained, fn, hp):
    model, data = trained
    trackers = {"forget": Tracker(len(data.train.labels)), "retain": Tracker(len(data.train.labels))}
    before = _accuracies(model, data)
    out, diag = fn(copy.deepcopy(model), _task(data, trackers=trackers), hp, seed=0)
    acc_f, acc_r = _accuracies(out, data)
    assert acc_f < 0.5 * before[0] and acc_r > 0.7 * before[1]
    assert 0 < diag["selected_fraction"] < 0.5
    # D_f for its own importance and again inside D; every retain image once (as part of D)
    assert (trackers["forget"].distinct, trackers["forget"].draws) == (100, 200)
    assert (trackers["retain"].distinct, trackers["retain"].draws) == (900, 900)
    buffers = dict(model.named_buffers())
    assert all(torch.equal(b, buffers[k]) for k, b in out.named_buffers())  # BatchNorm statistics untouched


# ------------------------------------------------------------------------------------------------ SCRUB
def test_distill_kl_by_hand():
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) per sample: student uniform over 2 classes, teacher logits (ln 3, 0)."""
    student = torch.zeros(1, 2)
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    for t in (1.0, 2.0):
        p = 3 ** (1 / t) / (3 ** (1 / t) + 1)
        kl = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
        assert distill_kl(student, teacher, t).item() == pytest.approx(t * t * kl, rel=1e-5)
    two = distill_kl(torch.zeros(2, 2), torch.cat([teacher, torch.zeros(1, 2)]), 1.0)  # second sample: KL 0
    assert two.item() == pytest.approx((0.75 * math.log(1.5) + 0.25 * math.log(0.5)) / 2, rel=1e-5)
    targets = torch.tensor([[0.75, 0.25]])
    assert kl_to_targets(student, targets, 1.0, "mean").item() == pytest.approx(
        kl_to_targets(student, targets, 1.0, "batchmean").item() / 2)


def test_scrub_step_losses_by_hand():
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 3, 0, 1])
    batch = Batch(x, y, torch.zeros_like(y))
    hp = ScrubHP(temperature=2.0, gamma=0.7, alpha=0.3)
    with torch.no_grad():
        p_t = (teacher(x) / 2).softmax(1)
        log_p_s = (student(x) / 2).log_softmax(1)
        kl = 4 * (p_t * (p_t.log() - log_p_s)).sum(1).mean()
        ce = -student(x).log_softmax(1)[torch.arange(6), y].mean()
    loss, terms = max_loss(teacher, 2.0)(student, batch)
    assert loss.item() == pytest.approx(-kl.item(), rel=1e-5) and terms["kl_forget"].item() > 0
    loss, terms = min_loss(teacher, hp)(student, batch)
    assert loss.item() == pytest.approx(0.7 * ce.item() + 0.3 * kl.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())  # the teacher is never trained


def test_scrub_schedule_by_hand():
    """Epochs 1..msteps: a max pass then a min pass; later epochs: a min pass. lr × rate per decay epoch passed."""
    hp = ScrubHP(epochs=5, msteps=2, lr=1.0, lr_decay_epochs=(2, 4), lr_decay_rate=0.1)
    got = schedule(hp)
    assert [phases for _, phases in got] == [("max", "min"), ("max", "min"), ("min",), ("min",), ("min",)]
    assert [lr for lr, _ in got] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    official = schedule(ScrubHP())  # 3 epochs, msteps 2, decay at (3, 5, 9): never fires within 3 epochs
    assert official == [(5e-4, ("max", "min")), (5e-4, ("max", "min")), (5e-4, ("min",))]
    assert [p for _, p in schedule(ScrubHP(epochs=2, msteps=4))] == [("max", "min"), ("max", "min")]


@pytest.mark.slow
def test_scrub_forgets_and_runs_its_passes_in_order(trained):
    model, data = trained
    trackers = {"forget": Tracker(len(data.train.labels)), "retain": Tracker(len(data.train.labels))}
    # 10× the official lr, to forget within 3 epochs on 1,000 images; at 20× the run sits on an edge where the host's
    # floating point (AVX2 or AVX-512) decides whether the retained classes survive
    hp = ScrubHP(epochs=3, msteps=2, lr=0.005, forget_batch_size=16, retain_batch_size=64)
    out, diag = scrub(copy.deepcopy(model), _task(data, trackers=trackers), hp, seed=0)
    acc_f, acc_r = _accuracies(out, data)
    assert acc_f < 30 and acc_r > 70
    assert diag["passes"] == "max,min,max,min,min"
    assert diag["max_steps"] == 2 * 7 and diag["min_steps"] == 3 * 15  # ⌈100/16⌉ per max pass, ⌈900/64⌉ per min
    assert trackers["forget"].draws == 2 * 100 and trackers["retain"].draws == 3 * 900


# ------------------------------------------------------------------------------------------------ NegGrad+
def test_neggrad_plus_loss_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4)
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0])
    part = torch.tensor([0, 0, 1, 0, 1])
    loss, terms = neggrad_plus_loss(0.8)(model, Batch(x, y, part))
    with torch.no_grad():
        nll = -model(x).log_softmax(1)[torch.arange(5), y]
    ce_r, ce_f = nll[[0, 1, 3]].mean(), nll[[2, 4]].mean()
    assert loss.item() == pytest.approx(0.8 * ce_r.item() - 0.2 * ce_f.item(), rel=1e-5)
    assert terms["ce_retain"].item() == pytest.approx(ce_r.item()) and terms["ce_forget"].item() == pytest.approx(
        ce_f.item())


def test_forget_batches_cycle_through_the_same_pass():
    """As `itertools.cycle` over a shuffled loader: every replay repeats the first pass's batches; a new cycle (the
    next epoch) is shuffled anew."""
    source = TensorSource(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10), (0.0,), (1.0,))
    data = SampleSet.of(source)
    g = torch.Generator().manual_seed(0)

    def labels(it, n):
        return [next(it).y.tolist() for _ in range(n)]

    first = labels(cycled(data, 4, g), 9)  # 3 batches per pass (4, 4, 2), three passes
    assert first[:3] == first[3:6] == first[6:9] and sorted(sum(first[:3], [])) == list(range(10))
    assert labels(cycled(data, 4, g), 3) != first[:3]


@pytest.mark.slow
def test_neggrad_plus_forgets_and_cycles_the_forget_set(trained):
    model, data = trained
    trackers = {"forget": Tracker(len(data.train.labels)), "retain": Tracker(len(data.train.labels))}
    hp = NegGradPlusHP(alpha=0.5, epochs=1)
    out, diag = neggrad_plus(copy.deepcopy(model), _task(data, trackers=trackers), hp, seed=0)
    acc_f, acc_r = _accuracies(out, data)
    assert acc_f < 30 and acc_r > 70
    assert diag["steps"] == 29  # ⌈900/32⌉ retain batches
    # 29 forget batches of the cycled pass (16 × 6 + 4): four passes (28 batches, 400 images) and one batch of 16
    assert trackers["forget"].draws == 416 and trackers["forget"].distinct == 100
    assert trackers["retain"].draws == 900


# ------------------------------------------------------------------------------------------------ via the runner
@pytest.fixture(scope="module")
def runner(tmp_path_factory, data_root):
    from unlearnbench.runner import Env, Runner
    return Runner(Env(data_root, tmp_path_factory.mktemp("cache"), device="cpu", download=False))


@pytest.mark.slow
def test_each_method_draws_what_it_declared(runner):
    from unlearnbench.plan import Overrides, resolve_cell
    ov = Overrides(data={"train_per_class": 20, "test_per_class": 5}, train={"epochs": 1, "batch_size": 32},
                   eval={"mia": False, "oracle": False, "zrf": False},
                   method={"scrub": {"epochs": 1, "msteps": 1}, "neggrad_plus": {"epochs": 1}})
    seen = {}
    for method in METHODS:
        rec = runner.run(resolve_cell("mnist", "test_resnet", FORGET, 0, method, ov))
        seen[method] = (rec["forget_samples_seen"], rec["retain_samples_seen"])
        assert rec["config"]["method"]["name"] == method and rec["unlearn_seconds"] >= 0
    assert seen == {m: (20, 180) for m in METHODS}
