"""The diagonal Fisher information of a classifier, exact, from vectorised per-sample gradients.

    true       F_ii = 1/N Σ_n Σ_c p(c|x_n) (∂ log p(c|x_n) / ∂θ_i)²     (nngeometry's FIM, as PBU's code uses)
    empirical  F_ii = 1/N Σ_n (∂ log p(y_n|x_n) / ∂θ_i)²                (the true labels)
    mc         F_ii = 1/N Σ_n (∂ log p(ĉ_n|x_n) / ∂θ_i)²,  ĉ_n ~ p(·|x_n)  (one sampled label: unbiased for `true`)

Each variant is a list of *rounds* — a class per sample and a weight per sample (true: C rounds, class c with weight
p(c|x); empirical/mc: one round, weight 1) — and F is the weighted mean of the squared per-sample gradients of
log p(class|x) over all rounds. BatchNorm runs in eval mode (running statistics), as in the official code; this also
makes every sample independent of the others in its batch, which both backends rely on.

Two backends compute the same numbers:

- `func`: torch.func — `functional_call` + `vmap(grad)` over (sample, class) pairs, a chunk of pairs at a time sized
  to a memory budget. Every per-sample gradient is a full copy of θ, so its cost is memory traffic ∝ pairs × |θ|.
- `layerwise` (default): one batched forward with hooks, then per round one backward to the outputs of the layers
  that own parameters. A per-sample gradient of a Conv2d (grouped and depthwise included), Linear, eval-mode
  BatchNorm2d (timm's BatchNormAct2d too), LayerNorm (timm's LayerNorm2d too) or ConvNeXt layer-scale parameter is a
  product of a forward value and the output gradient, so Σ_n w_n g_n² is formed layer by layer, chunked; where a
  layer's output is a few positions (1×1 maps, plain vectors) it is matrix products with nothing per-sample
  materialised. Every parameter of the paper's four models is covered (`layerwise_coverage`); a parameter of any
  other kind goes through `func`.

`naive_fisher` is the reference: one ordinary backward pass per (sample, class); the tests hold both backends to it.
"""
from __future__ import annotations

from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

Variant = Literal["true", "empirical", "mc"]
Backend = Literal["layerwise", "func"]
Round = tuple[Tensor, Tensor]  # (class of each sample, weight of each sample)


def rounds_for(logits: Tensor, y: Tensor, variant: Variant, generator: torch.Generator | None) -> list[Round]:
    """The rounds whose weighted squared gradients average to the variant's Fisher."""
    n, c = logits.shape
    ones = torch.ones(n, device=logits.device)
    if variant == "true":
        probs = logits.float().softmax(-1)
        return [(torch.full((n,), k, dtype=torch.long, device=logits.device), probs[:, k]) for k in range(c)]
    if variant == "empirical":
        return [(y, ones)]
    if variant == "mc":
        sampled = torch.multinomial(logits.float().softmax(-1).cpu(), 1, generator=generator).flatten()
        return [(sampled.to(logits.device), ones)]
    raise ValueError(f"unknown Fisher variant {variant!r}")


def _trainable(model: nn.Module) -> dict[str, Tensor]:
    return {k: p for k, p in model.named_parameters() if p.requires_grad}


def _chunk(numbers_per_item: int, memory_mb: int) -> int:
    """How many items of `numbers_per_item` float32 values (×3 for temporaries) fit in `memory_mb`."""
    return max(1, int(memory_mb * 2**20) // (12 * max(numbers_per_item, 1)))


def pairs_per_chunk(model: nn.Module, memory_mb: int) -> int:
    return _chunk(sum(p.numel() for p in _trainable(model).values()), memory_mb)


# --------------------------------------------------------------------------------------------------------------------
# backend "func": torch.func over (sample, class) pairs
# --------------------------------------------------------------------------------------------------------------------
def _func_accumulate(model: nn.Module, names: list[str], x: Tensor, rounds: list[Round],
                     fisher: dict[str, Tensor], memory_mb: int) -> None:
    """Add Σ_pairs w g² for the parameters `names` to `fisher`, with vmap(grad) over chunks of pairs."""
    if not names:
        return
    everything = dict(model.named_parameters())
    params = {k: everything[k].detach() for k in names}
    constants = {k: v.detach() for k, v in everything.items() if k not in params}
    constants.update({k: b.detach() for k, b in model.named_buffers()})

    def log_prob(p: dict[str, Tensor], xi: Tensor, c: Tensor) -> Tensor:
        out = functional_call(model, ({**constants, **p},), (xi.unsqueeze(0),))
        return F.log_softmax(out.float(), dim=-1)[0].gather(0, c.reshape(1))[0]  # gather: c is batched by vmap

    per_sample_grad = vmap(grad(log_prob), in_dims=(None, 0, 0))
    n = len(x)
    sample = torch.arange(n, device=x.device).repeat(len(rounds))
    cls = torch.cat([c for c, _ in rounds])
    weight = torch.cat([w for _, w in rounds])
    chunk = _chunk(sum(p.numel() for p in params.values()), memory_mb)
    for s, c, w in zip(sample.split(chunk), cls.split(chunk), weight.split(chunk)):
        for k, g in per_sample_grad(params, x[s], c).items():
            fisher[k].add_(torch.tensordot(w, g.float().square_(), dims=1))


# --------------------------------------------------------------------------------------------------------------------
# backend "layerwise": closed forms per layer type
# --------------------------------------------------------------------------------------------------------------------
# Each supported parameter owner is a *tap*: the tensor whose gradient (∂ log p / ∂ output, "delta") is taken in the
# backward pass, and the forward value that, with delta, gives the per-sample parameter gradient in closed form.
#   Conv2d (any groups), Linear       weight: delta ⊗ input (unfolded for convs), bias: Σ delta
#   BatchNorm2d, timm BatchNormAct2d  weight: Σ delta ⊙ x̂ with running statistics (eval mode), bias: Σ delta
#   LayerNorm (last dim), LayerNorm2d weight: Σ delta ⊙ x̂ with the sample's own statistics, bias: Σ delta
#   timm ConvNeXtBlock's layer scale  gamma: Σ delta(gamma ⊙ mlp(x)) ⊙ mlp(x)
# where Σ runs over a sample's positions. BatchNormAct2d's delta is taken before its activation (at its `drop`, an
# identity in eval mode), the layer scale's at the block's `drop_path` (an identity in eval mode).


def _is_eval_bn(module: nn.Module) -> bool:
    return not module.training and module.track_running_stats and module.affine


def _is_identity(module: nn.Module) -> bool:
    """An identity in eval mode: what the taps below read their delta from."""
    from timm.layers import DropPath
    return type(module) is nn.Identity or (type(module) in (nn.Dropout, DropPath) and not module.training)


Tap = tuple[str, nn.Module, nn.Module, nn.Module, str]


def _taps(model: nn.Module) -> dict[str, Tap]:
    """{owner name: (kind, owner, module whose forward value is kept, module whose output's delta is taken, 'input'
    or 'output': which forward value)} for every supported owner of trainable parameters."""
    from timm.layers import BatchNormAct2d, LayerNorm, LayerNorm2d
    from timm.models.convnext import ConvNeXtBlock
    taps = {}
    for name, m in model.named_modules():
        own = [k for k, p in m.named_parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        kind = type(m)
        if kind is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str):
            taps[name] = ("conv", m, m, m, "input")
        elif kind is nn.Linear:
            taps[name] = ("linear", m, m, m, "input")
        elif kind is nn.BatchNorm2d and _is_eval_bn(m):
            taps[name] = ("bn", m, m, m, "input")
        elif kind is BatchNormAct2d and _is_eval_bn(m) and _is_identity(m.drop):
            taps[name] = ("bn", m, m, m.drop, "input")
        elif kind in (nn.LayerNorm, LayerNorm) and len(m.normalized_shape) == 1 and m.elementwise_affine:
            taps[name] = ("ln", m, m, m, "input")
        elif kind is LayerNorm2d and m.elementwise_affine:
            taps[name] = ("ln2d", m, m, m, "input")
        elif kind is ConvNeXtBlock and own == ["gamma"] and _is_identity(m.drop_path):
            taps[name] = ("gamma_cl" if not m.use_conv_mlp else "gamma", m, m.mlp, m.drop_path, "output")
    return taps


#: Up to this many output positions, Σ_n w_n g_n² is expanded into L(L+1)/2 matrix products (compute-bound);
#: beyond it, per-sample gradients are materialised a chunk at a time (memory-bound, but fewer operations).
GRAM_MAX_POSITIONS = 4


def _sq_weight_grads(d: Tensor, u: Tensor, w: Tensor, out: Tensor, memory_mb: int) -> None:
    """out += Σ_n w_n g_n² where g_n = Σ_l d_nl u_nlᵀ, for d: (n, L, O), u: (n, L, I).

    With g_n² = Σ_l Σ_l' (d_nl ⊙ d_nl')(u_nl ⊙ u_nl')ᵀ, the sum over n is a matrix product per pair (l, l'):
    nothing per sample is materialised (for L = 1 it is the familiar (w d²)ᵀ u²).
    """
    n, positions, o = d.shape
    i = u.shape[2]
    if positions <= GRAM_MAX_POSITIONS:
        for a in range(positions):
            for b in range(a, positions):
                out.addmm_((d[:, a] * d[:, b] * w[:, None]).T, u[:, a] * u[:, b], alpha=1.0 if a == b else 2.0)
        return
    step = _chunk(o * i, memory_mb)
    for a in range(0, n, step):
        g = torch.bmm(d[a:a + step].transpose(1, 2), u[a:a + step])  # (s, O, I) per-sample gradients
        out.add_(torch.tensordot(w[a:a + step], g.square_(), dims=1))


def _conv_weight(module: nn.Conv2d, inp: Tensor, d: Tensor, w: Tensor, fw: Tensor, memory_mb: int) -> None:
    """fw += Σ_n w_n g_n² for a Conv2d's weight, d: (n, L, O). Grouped (and depthwise) convolutions: per group, the
    group's output channels against its own slice of the unfolded input (im2col orders it channel by channel)."""
    groups = module.groups
    per_sample = d.shape[1] * (fw[0].numel() * groups + d.shape[2])  # unfolded input and output gradient
    step = _chunk(per_sample + (fw.numel() if groups > 1 else 0), memory_mb)  # + the per-sample gradient
    for a in range(0, len(inp), step):  # unfold a chunk at a time: im2col of a large image is large
        u = F.unfold(inp[a:a + step], module.kernel_size, module.dilation, module.padding, module.stride)
        if groups == 1:
            _sq_weight_grads(d[a:a + step], u.transpose(1, 2), w[a:a + step], fw.view(fw.shape[0], -1), memory_mb)
            continue
        s, positions = len(u), u.shape[2]
        ug = u.view(s, groups, -1, positions)                                           # (s, G, I/G·k², L)
        dg = d[a:a + step].reshape(s, positions, groups, -1).permute(0, 2, 1, 3).contiguous()  # (s, G, L, O/G)
        g = torch.matmul(ug, dg).transpose(2, 3).reshape(s, *fw.shape)               # per-sample gradients
        fw.add_(torch.tensordot(w[a:a + step], g.square_(), dims=1))


def _normalised(kind: str, module: nn.Module, inp: Tensor) -> Tensor:
    """x̂ as the layer computes it: running statistics (BatchNorm, eval), the sample's own (LayerNorm)."""
    if kind == "bn":
        shape = (1, -1, 1, 1)
        return (inp - module.running_mean.view(shape)) * torch.rsqrt(module.running_var.view(shape) + module.eps)
    dim = 1 if kind == "ln2d" else -1
    var, mean = torch.var_mean(inp, dim=dim, keepdim=True, correction=0)
    return (inp - mean) * torch.rsqrt(var + module.eps)


def _per_channel(kind: str, t: Tensor) -> Tensor:
    """(n, C): a sample's sum over positions, for channels on dim 1 (NCHW) or last (LayerNorm, channels-last)."""
    if kind in ("ln", "linear", "gamma_cl"):
        return t.reshape(len(t), -1, t.shape[-1]).sum(1)
    return t.reshape(len(t), t.shape[1], -1).sum(2)


def _tap_accumulate(kind: str, module: nn.Module, value: Tensor, delta: Tensor, w: Tensor, fisher: dict[str, Tensor],
                    name: str, memory_mb: int) -> None:
    fw, fb = fisher.get(f"{name}.weight"), fisher.get(f"{name}.bias")
    if kind in ("gamma", "gamma_cl"):  # value: the mlp's output; delta: at gamma ⊙ value, in NCHW
        if kind == "gamma_cl":
            delta = delta.permute(0, 2, 3, 1)
        fisher[f"{name}.gamma"].add_(w @ _per_channel(kind, delta * value).square())
        return
    if kind in ("bn", "ln", "ln2d"):
        if fw is not None:
            fw.add_(w @ _per_channel(kind, delta * _normalised(kind, module, value)).square())
        if fb is not None:
            fb.add_(w @ _per_channel(kind, delta).square())
        return
    n = len(value)
    if kind == "linear":
        d = delta.reshape(n, -1, delta.shape[-1])
        if fw is not None:
            _sq_weight_grads(d, value.reshape(n, -1, value.shape[-1]), w, fw, memory_mb)
    else:  # conv
        d = delta.reshape(n, delta.shape[1], -1).transpose(1, 2)  # (n, L, O)
        if fw is not None:
            _conv_weight(module, value, d, w, fw, memory_mb)
    if fb is not None:
        fb.add_(w @ d.sum(1).square())


def _layerwise_accumulate(model: nn.Module, x: Tensor, rounds: list[Round], fisher: dict[str, Tensor],
                          memory_mb: int) -> set[str]:
    """Accumulate the parameters of supported owners; return their names (the rest is left to `func`)."""
    params = _trainable(model)
    taps = _taps(model)
    values: dict[str, Tensor] = {}
    outputs: dict[str, Tensor] = {}

    def keep_value(name: str, which: str):
        def fn(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
            values[name] = (args[0] if which == "input" else output).detach()
        return fn

    def keep_output(name: str):
        def fn(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor:
            outputs[name] = output
            return output.clone()  # later in-place ops (ReLU(inplace), +=) must not touch the tensor we keep
        return fn

    handles = []
    for name, (_, _, value_module, delta_module, which) in taps.items():
        # the value is kept before the output is cloned: a tap whose value is an output (the layer scale's mlp)
        # keeps the tensor its consumers see
        handles.append(value_module.register_forward_hook(keep_value(name, which)))
        handles.append(delta_module.register_forward_hook(keep_output(name)))
    try:
        with torch.enable_grad():
            log_probs = F.log_softmax(model(x).float(), dim=-1)
    finally:
        for h in handles:
            h.remove()
    names = [name for name in taps if name in outputs and name in values]
    for cls, w in rounds:
        deltas = torch.autograd.grad(log_probs.gather(1, cls[:, None]).sum(), [outputs[k] for k in names],
                                     retain_graph=True, allow_unused=True)
        for name, delta in zip(names, deltas):
            if delta is not None:
                kind, owner = taps[name][:2]
                _tap_accumulate(kind, owner, values[name].float(), delta.float(), w.float(), fisher, name, memory_mb)
    return _owned(taps, names) & params.keys()


def _owned(taps: dict[str, Tap], names: Iterable[str]) -> set[str]:
    """The full names of the parameters the taps `names` own."""
    return {f"{name}.{p}" for name in names for p, _ in taps[name][1].named_parameters(recurse=False)}


def layerwise_coverage(model: nn.Module) -> tuple[set[str], set[str]]:
    """(trainable parameters the layerwise backend computes in closed form, those it leaves to torch.func)."""
    params = _trainable(model)
    taps = _taps(model)
    closed = _owned(taps, taps)
    return closed & params.keys(), params.keys() - closed


# --------------------------------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def _eval_logits(model: nn.Module, x: Tensor) -> Tensor:
    return model(x)


def diagonal_fisher(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], variant: Variant = "true", *,
                    backend: Backend = "layerwise", memory_mb: int = 1024,
                    generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """{parameter name: diagonal Fisher}, averaged over every sample of `batches` (float32, θ's device)."""
    was_training = model.training
    model.eval()
    params = _trainable(model)
    fisher = {k: torch.zeros(p.shape, dtype=torch.float32, device=p.device) for k, p in params.items()}
    n = 0
    try:
        for x, y in batches:
            rounds = rounds_for(_eval_logits(model, x), y, variant, generator)
            done = _layerwise_accumulate(model, x, rounds, fisher, memory_mb) if backend == "layerwise" else set()
            _func_accumulate(model, [k for k in params if k not in done], x, rounds, fisher, memory_mb)
            n += len(y)
    finally:
        model.train(was_training)
    return {k: f / max(n, 1) for k, f in fisher.items()}


def naive_fisher(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], variant: Variant = "true", *,
                 generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """The same quantity with one ordinary backward pass per (sample, class): slow, obviously right."""
    was_training = model.training
    model.eval()
    params = _trainable(model)
    fisher = {k: torch.zeros(p.shape, dtype=torch.float32, device=p.device) for k, p in params.items()}
    n = 0
    for x, y in batches:
        for cls, weight in rounds_for(_eval_logits(model, x), y, variant, generator):
            for s, c, w in zip(range(len(y)), cls.tolist(), weight.tolist()):
                model.zero_grad(set_to_none=True)
                F.log_softmax(model(x[s:s + 1]).float(), dim=-1)[0, c].backward()
                for k, p in params.items():
                    fisher[k].add_(p.grad.float().square(), alpha=w)
        n += len(y)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {k: f / max(n, 1) for k, f in fisher.items()}
