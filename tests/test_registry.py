from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from unlearnbench import method as registry
from unlearnbench.errors import UsageError
from unlearnbench.method import MethodSpec, register_method
from unlearnbench.registry import get_method, list_methods
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


@pytest.mark.slow
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


# ------------------------------------------------------------------------------------------------ variants
def test_variants_are_listed_after_their_base_with_a_note():
    names = list_methods()
    assert names[:7] == ["original", "retrain", "finetune", "finetune+cosine", "fast_effective",
                         "fast_effective+bt_settings", "fast_effective+released"]
    assert names.index("pbu+holdout") == names.index("pbu") + 1
    assert "pbu+stop" not in list_methods(variants=False)
    for name in names:
        spec = get_method(name)
        if spec.is_variant:
            assert name.startswith(spec.base + "+") and spec.summary == spec.note and "\n" not in spec.note
            assert spec.resolve() != get_method(spec.base).resolve()  # a variant changes something
            assert spec.fn is get_method(spec.base).fn and spec.needs == get_method(spec.base).needs
    from unlearnbench.cli.listing import list_everything
    assert "pbu+stop" in list_everything() and "a blind stopping rule" in list_everything()


def test_register_variant_refuses_what_would_confuse_a_table():
    from unlearnbench.method import register_variant
    with pytest.raises(ValueError, match="register its base"):
        register_variant("nope+x", "nope", {}, "a note")
    with pytest.raises(ValueError, match="must be named 'pbu\\+<what it changes>'"):
        register_variant("pbu_fixed", "pbu", {"stop": "none"}, "a note")
    with pytest.raises(ValueError, match="changes nothing"):
        register_variant("pbu+same", "pbu", {"lr": 1e-4}, "a note")
    with pytest.raises(ValueError, match="one-line note"):
        register_variant("pbu+x", "pbu", {"lr": 1e-3}, "")
    with pytest.raises(UsageError, match="unknown key"):
        register_variant("pbu+x", "pbu", {"learning_rate": 1e-3}, "a note")
    with pytest.raises(UsageError, match="must be > 0"):
        register_variant("pbu+x", "pbu", {"lr": -1.0}, "a note")
    assert "pbu+x" not in list_methods()


def test_a_variant_takes_its_base_methods_settings_under_its_own():
    ov = Overrides(method={"pbu": {"stop": "none", "lr": 2e-4}, "pbu+stop": {"epochs": 3}},
                   per_class={"pbu": {2: {"alpha": 631.0}}})
    hp = resolve_cell("mnist", "test_resnet", 2, 0, "pbu+stop", ov).hparams
    assert hp.alpha == 631.0 and hp.lr == 2e-4  # the base's table and its per-class table apply
    assert hp.stop == "forget_acc"  # the variant's override wins over the base's table
    assert hp.epochs == 3  # and the variant's own table wins over everything
    assert resolve_cell("mnist", "test_resnet", 6, 0, "pbu+stop", ov).hparams.alpha == 721.0


def test_zrf_reference_network_is_not_near_uniform(data_root, tmp_path):
    """ZRF compares with a random network initialised as the official code's (live residual branches): its outputs are
    confident and arbitrary, so ZRF is not 1 − JS(one-hot, uniform) ≈ 0.242 for every confident θ*, as it was with
    timm's zero-initialised residual branches (near-uniform outputs)."""
    from unlearnbench.metrics import entropy, js_divergence
    from unlearnbench.train import predict
    ov = Overrides(data={"train_per_class": 20, "test_per_class": 20}, train={"epochs": 1})
    cell = resolve_cell("mnist", "resnet34", 2, 0, "original", ov)  # the CPU grid's model
    runner = Runner(Env(data_root, tmp_path / "cache", device="cpu", download=False))
    test = runner.data(cell.setup.data).sample_set("test")
    official = predict(runner.random_model(cell.setup), test, runner.runtime(cell.setup.train))
    timm_init = predict(runner.random_model(cell.setup, official_init=False), test, runner.runtime(cell.setup.train))
    log_c = torch.log(torch.tensor(10.0)).item()
    assert entropy(timm_init).mean() > 0.99 * log_c  # timm's random ResNet-34: near-uniform (0.9999 of the maximum)
    assert entropy(official).mean() < 0.9 * log_c  # the official init: far from uniform (0.80 of the maximum)
    one_hot = torch.nn.functional.one_hot(torch.zeros(len(test), dtype=torch.long), 10).double()
    against_official = 1 - js_divergence(one_hot, official.softmax(-1)).mean().item()
    against_uniform = 1 - js_divergence(one_hot, torch.full_like(one_hot, 0.1)).mean().item()
    # a model that answers one class with certainty: 0.242 against a uniform reference, 0.03 against this one
    assert against_uniform == pytest.approx(0.2421, abs=1e-3) and abs(against_official - against_uniform) > 0.05


def test_what_list_reads_from_the_source_is_the_registry():
    """`unlearnbench list` and the CLI's name checks read the registrations from the source (no torch): the same
    names, data, one-liners and order as the live registries."""
    from unlearnbench import catalog, registry
    from unlearnbench.data import DATASETS
    from unlearnbench.models import list_models
    source = {e.name: e for e in catalog.source_registry()}
    live = {n: catalog.Entry(n, s.needs, s.summary, s.base, s.display, s.group, s.order)
            for n in list_methods() for s in [get_method(n)]}
    assert source == live
    assert catalog.ordered(source.values()) == list_methods()
    assert catalog.dataset_names() == sorted(DATASETS) and catalog.model_names() == list_models()
    assert set(registry.method_names()) == set(list_methods())


def test_a_registration_carries_its_display_name_group_and_place():
    """What tables show of a method comes from its registration: its display name (a variant's is its base's, with
    '+<what>'), its group (the grid's tables) and its place in the group (every listing's order)."""
    from unlearnbench.catalog import GROUP_TITLES
    from unlearnbench.registry import group_title, method_label
    assert method_label("pbu") == "PBU" and method_label("pbu+fixed5") == "PBU +fixed5"
    assert method_label("original") == "Initial" and get_method("bad_teaching+redraw").label == "Bad Teaching +redraw"
    assert method_label("gone") == "gone" and method_label("gone+x") == "gone +x"  # an old record's name, as it is
    assert group_title("jit+keep_bn") == group_title("jit") == "the retain-free rivals"
    assert group_title("gone") == "other methods"
    groups = [get_method(m).group for m in list_methods(variants=False)]
    assert groups == sorted(groups, key=list(GROUP_TITLES).index)  # the order is by group first
    assert {"paper", "retain-free", "baseline"} <= set(groups) <= set(GROUP_TITLES)
    with pytest.raises(ValueError, match="unknown group 'papers'; groups are paper, retain-free"):
        register_method("bad", hparams=ProbeHP, group="papers")
    assert "bad" not in list_methods()


def test_a_method_registered_without_a_group_comes_after_the_others_under_its_own_name(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_method("aaa_mine", hparams=ProbeHP)(forget_only_probe)
    register_method("head_probe", hparams=ProbeHP, display="Head probe", group="reference")(forget_only_probe)
    from unlearnbench.registry import method_label
    names = list_methods()
    assert names[-1] == "aaa_mine" and method_label("aaa_mine") == "aaa_mine"
    references = [n for n in names if get_method(n).group == "reference"]  # the last group, before the groupless
    assert "head_probe" in references and names[-1 - len(references):-1] == references
    assert method_label("head_probe") == "Head probe"
