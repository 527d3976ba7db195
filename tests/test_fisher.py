from __future__ import annotations

import pytest
import torch

from unlearnbench.config import ModelConfig
import timm

from unlearnbench.fisher import diagonal_fisher, layerwise_coverage, naive_fisher, pairs_per_chunk, rounds_for
from unlearnbench.models import create_model


def _model(name: str, classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "tiny_densenet":  # timm's DenseNet (BatchNormAct2d, concatenations), made small
        model = timm.create_model("densenet121", growth_rate=8, block_config=(1, 1, 1, 1), bn_size=2,
                                  num_classes=classes, in_chans=1)
    elif name == "test_convnext_conv_mlp":  # ConvNeXt's other block form (1x1 convs, LayerNorm2d), as convnext_atto
        model = timm.create_model("test_convnext", conv_mlp=True, num_classes=classes, in_chans=1)
    else:
        model = create_model(ModelConfig(name), classes, 1)
    # move BatchNorm running statistics away from (0, 1) so that eval-mode BN is really exercised, and ConvNeXt's
    # layer scale from its 1e-6 init (which would leave every gradient inside a residual branch below the tolerance)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        for k, p in model.named_parameters():
            if k.endswith("gamma"):
                p.uniform_(0.5, 1.5)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["layerwise", "func"])
@pytest.mark.parametrize("variant", ["true", "empirical", "mc"])
@pytest.mark.parametrize("name", ["test_resnet", "test_convnext", "tiny_densenet"])
def test_vectorised_equals_naive(backend, variant, name, mnist_small):
    model = _model(name)
    batches = [(b.x, b.y) for b in mnist_small.sample_set("train", "forget", 3).batches(7)][:2]  # 14 samples
    fast = diagonal_fisher(model, batches, variant, backend=backend, memory_mb=1,
                           generator=torch.Generator().manual_seed(5))
    slow = naive_fisher(model, batches, variant, generator=torch.Generator().manual_seed(5))
    assert fast.keys() == slow.keys() == {k for k, _ in model.named_parameters()}
    for k in fast:
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-4, atol=1e-9)
    assert sum(float(f.sum()) for f in fast.values()) > 0
    assert model.training  # the caller's mode is restored


@pytest.mark.slow
def test_convnext_conv_mlp_form_equals_naive(mnist_small):
    model = _model("test_convnext_conv_mlp")
    assert layerwise_coverage(model.eval())[1] == set()
    batches = [(b.x, b.y) for b in mnist_small.sample_set("train", "forget", 3).batches(5)][:1]
    fast = diagonal_fisher(model, batches, "true", memory_mb=1)
    slow = naive_fisher(model, batches, "true")
    for k in slow:
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-4, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["layerwise", "func"])
def test_chunking_does_not_change_the_result(backend, mnist_small):
    model = _model("test_resnet")
    batches = [(b.x, b.y) for b in mnist_small.sample_set("train", "forget", 1).batches(16)][:1]
    small = diagonal_fisher(model, batches, "true", backend=backend, memory_mb=1)
    large = diagonal_fisher(model, batches, "true", backend=backend, memory_mb=4096)
    assert pairs_per_chunk(model, 1) < 160 <= pairs_per_chunk(model, 4096)
    for k in small:
        torch.testing.assert_close(small[k], large[k], rtol=1e-5, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny_densenet", "test_convnext"])
@pytest.mark.parametrize("backend", ["layerwise", "func"])
def test_a_channels_last_model_has_the_same_fisher(backend, name, mnist_small):
    """A θ* trained in channels_last (`train.channels_last`) keeps its conv weights in that layout; the Fisher of its
    parameters is the contiguous model's, not an error."""
    batches = [(b.x, b.y) for b in mnist_small.sample_set("train", "forget", 3).batches(7)][:1]
    plain = diagonal_fisher(_model(name), batches, "true", backend=backend, memory_mb=1)
    model = _model(name).to(memory_format=torch.channels_last)
    assert any(p.dim() == 4 and not p.is_contiguous() for p in model.parameters())
    cl = diagonal_fisher(model, [(x.to(memory_format=torch.channels_last), y) for x, y in batches], "true",
                         backend=backend, memory_mb=1)
    for k in plain:
        torch.testing.assert_close(cl[k], plain[k], rtol=1e-4, atol=1e-9)


def test_true_fisher_weights_are_the_predicted_probabilities():
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    rounds = rounds_for(logits, torch.tensor([2, 0]), "true", None)
    assert [c.tolist() for c, _ in rounds] == [[0, 0], [1, 1], [2, 2]]
    torch.testing.assert_close(torch.stack([w for _, w in rounds], 1), logits.softmax(-1))
    (cls, weight), = rounds_for(logits, torch.tensor([2, 0]), "empirical", None)
    assert cls.tolist() == [2, 0] and weight.tolist() == [1.0, 1.0]


def test_mc_fisher_is_unbiased_for_the_true_fisher():
    """Averaged over many draws, one sampled label per input gives the true Fisher."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randn(6, 1, 2, 2)
    batches = [(x, torch.zeros(6, dtype=torch.long))]
    true = diagonal_fisher(model, batches, "true")
    g = torch.Generator().manual_seed(0)
    draws = [diagonal_fisher(model, batches, "mc", generator=g) for _ in range(400)]
    assert not torch.equal(draws[0]["1.weight"], draws[1]["1.weight"])  # the draws do differ
    for k in true:
        mean = torch.stack([d[k] for d in draws]).mean(0)
        torch.testing.assert_close(mean, true[k], rtol=0.15, atol=1e-3)


@pytest.mark.parametrize("name", ["resnet34", "resnet50", "densenet121", "convnext_large", "convnext_atto"])
def test_the_layerwise_backend_covers_every_parameter_of_the_paper_models(name):
    """No parameter of the paper's four models (nor of ConvNeXt's conv-MLP form) is left to torch.func, whose
    per-sample forward and backward through the whole network is what made ConvNeXt's Fisher slow."""
    with torch.device("meta"):  # the module types are what counts: no memory, no compute
        model = timm.create_model(name, num_classes=10, in_chans=1).eval()
    closed, rest = layerwise_coverage(model)
    assert rest == set() and closed == {k for k, _ in model.named_parameters()}


def test_only_eval_mode_batchnorm_is_in_closed_form():
    """Train-mode BatchNorm couples the samples of a batch (batch statistics): no per-sample closed form exists."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    assert layerwise_coverage(model.train())[1] == {"1.weight", "1.bias"}
    assert layerwise_coverage(model.eval())[1] == set()


class _Layers(torch.nn.Module):
    """Grouped and dilated strided convolutions, a depthwise one with a channel multiplier, a LayerNorm over the last
    dimension of a 3-D tensor and a timm LayerNorm2d: each closed form against the naive loop."""

    def __init__(self):
        super().__init__()
        from timm.layers import LayerNorm2d
        self.grouped = torch.nn.Conv2d(1, 6, 3, stride=2, padding=1)
        self.groups = torch.nn.Conv2d(6, 4, 3, dilation=2, padding=2, groups=2)
        self.depthwise = torch.nn.Conv2d(4, 8, 5, padding=2, groups=4, bias=False)
        self.norm2d = LayerNorm2d(8)
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        x = self.norm2d(self.depthwise(torch.relu(self.groups(self.grouped(x)))))
        x = self.norm(x.flatten(2).transpose(1, 2))  # (n, positions, channels)
        return self.head(x.mean(1))


def test_grouped_convolutions_and_layer_norms_equal_naive():
    torch.manual_seed(0)
    model = _Layers()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # LayerNorm's affine away from (1, 0)
    x = torch.randn(9, 1, 12, 12)
    batches = [(x[:5], torch.zeros(5, dtype=torch.long)), (x[5:], torch.ones(4, dtype=torch.long))]
    assert layerwise_coverage(model)[1] == set()
    fast = diagonal_fisher(model, batches, "true", memory_mb=1)
    slow = naive_fisher(model, batches, "true")
    for k in slow:
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-4, atol=1e-9)
        assert float(slow[k].sum()) > 0, k
