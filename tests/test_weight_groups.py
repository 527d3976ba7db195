"""weight_groups.py: every parameter in one group by what it is, and the change of a group computed by hand."""
from __future__ import annotations

import math

import pytest
import timm
import torch

from unlearnbench.studies.weight_groups import GROUPS, moved, parameter_groups, with_group


def test_a_convnext_s_parameters_fall_in_one_group_each():
    model = timm.create_model("convnext_atto", num_classes=10, ls_init_value=1e-6)
    groups = parameter_groups(model)
    names = [n for n, _ in model.named_parameters()]
    assert sorted(n for g in GROUPS for n in groups[g]) == sorted(names)  # each once
    assert groups["layer_scale"] and all(n.endswith(".gamma") for n in groups["layer_scale"])
    assert groups["head"] == ["head.fc.weight", "head.fc.bias"]
    assert "head.norm.weight" in groups["norm"] and "stem.1.weight" in groups["norm"]
    assert "stem.0.weight" in groups["weights"] and not any("norm" in n for n in groups["weights"])


def test_a_resnet_s_batchnorm_is_norm_and_it_has_no_layer_scale():
    groups = parameter_groups(timm.create_model("resnet18", num_classes=10))
    assert groups["layer_scale"] == [] and "bn1.weight" in groups["norm"] and groups["head"] == ["fc.weight", "fc.bias"]


def test_the_change_of_a_group_by_hand():
    before = {"a": torch.tensor([1.0, -2.0]), "b": torch.tensor([4.0])}
    after = {"a": torch.tensor([1.5, -2.0]), "b": torch.tensor([2.0])}
    relative, median = moved(before, after, ["a", "b"])
    # ‖(0.5, 0, -2)‖ / ‖(1, -2, 4)‖ = √4.25 / √21; element changes 0.5, 0, 0.5 → median 0.5
    assert relative == pytest.approx(math.sqrt(4.25 / 21)) and median == pytest.approx(0.5)
    assert all(math.isnan(x) for x in moved(before, after, []))


def test_restoring_a_group_touches_that_group_only():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    source = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    out = with_group(model, source, ["1.weight"])
    assert torch.equal(out[1].weight, torch.zeros(2)) and torch.equal(out[0].weight, model[0].weight)
    assert torch.equal(model[1].weight, torch.ones(2))  # the original is left as it was
