from __future__ import annotations

import pytest
import torch

from unlearnbench.config import ModelConfig
from unlearnbench.errors import UsageError
from unlearnbench.models import PAPER_MODELS, check_input_size, create_model

CASES = [(name, chans, classes) for name in PAPER_MODELS for chans, classes in ((1, 10), (3, 100), (3, 101))]


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_MODELS)
def test_paper_models_run_on_every_paper_dataset_shape(name):
    """MNIST (1×32×32, 10 classes), CIFAR-100 (3×32×32, 100), Food-101 (3×224 in real runs; 3×32 here suffices
    to show the head and stem follow the data: the size constraint is the 32-fold reduction, checked below)."""
    for chans, classes in ((1, 10), (3, 100), (3, 101)):
        check_input_size(ModelConfig(name), 32)
        with torch.device("meta"):
            model = create_model(ModelConfig(name), classes, chans)
            out = model.eval()(torch.zeros(2, chans, 32, 32))
        assert out.shape == (2, classes)


def test_small_models_really_compute():
    torch.manual_seed(0)
    for name in ("resnet34", "densenet121"):
        model = create_model(ModelConfig(name), 10, 1).eval()
        with torch.no_grad():
            out = model(torch.randn(2, 1, 32, 32))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_28_pixels_are_too_small_for_densenet_and_convnext():
    for name in ("densenet121", "convnext_large"):
        with pytest.raises(UsageError, match="set image_size >= 32"):
            check_input_size(ModelConfig(name), 28)


def test_any_timm_name_works_and_unknown_names_fail():
    model = create_model(ModelConfig("test_convnext"), 7, 1)
    assert model.eval()(torch.zeros(1, 1, 32, 32)).shape == (1, 7)
    with pytest.raises(UsageError, match="unknown model 'no_such_net'.*timm.list_models"):
        create_model(ModelConfig("no_such_net"), 10, 1)


def test_pretrained_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    source = create_model(ModelConfig("test_resnet"), 1000, 3)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = create_model(ModelConfig("test_resnet", pretrained=True, pretrained_file=str(path)), 10, 1)
    # timm adapts the stem to 1 channel (sums the RGB filters) and drops the 1000-class head
    stem = [k for k in source.state_dict() if k.endswith("weight")][0]
    assert torch.allclose(model.state_dict()[stem], source.state_dict()[stem].sum(1, keepdim=True))
    assert model.eval()(torch.zeros(1, 1, 32, 32)).shape == (1, 10)
    with pytest.raises(UsageError, match="does not exist"):
        create_model(ModelConfig("test_resnet", pretrained=True, pretrained_file=str(tmp_path / "no.pth")), 10, 1)


def test_timm_args_reach_timm_and_bad_ones_fail_before_any_work():
    """A ViT at MNIST's 32×32 through timm_args; an argument the architecture does not take, one the harness sets,
    or no `=` is a UsageError; left empty, the setting is not in θ*'s key (`since`)."""
    from unlearnbench.config import DataConfig, Setup, TrainRecipe, build, hash_view

    vit = build(ModelConfig, {"name": "vit_tiny_patch16_224", "timm_args": "img_size=32,patch_size=4"}, "model")
    check_input_size(vit, 32)
    model = create_model(vit, 10, 1).eval()
    assert model.patch_embed.img_size == (32, 32) and model.patch_embed.patch_size == (4, 4)
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(UsageError, match="does not take timm_args 'img_size=32'"):
        check_input_size(build(ModelConfig, {"name": "resnet18", "timm_args": "img_size=32"}), 32)
    with pytest.raises(UsageError, match="num_classes: set by the harness"):
        build(ModelConfig, {"timm_args": "num_classes=3"}, "model")
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        build(ModelConfig, {"timm_args": "img_size"}, "model")
    assert "timm_args" not in hash_view(ModelConfig()) and "timm_args" in hash_view(vit)
    assert Setup(DataConfig(), vit, TrainRecipe(), 0).key != Setup(DataConfig(), ModelConfig(vit.name), TrainRecipe(),
                                                                   0).key
