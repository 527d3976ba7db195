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
- `layerwise` (default): one batched forward with hooks, then per round one backward to the outputs of the
  Conv2d / Linear / BatchNorm2d layers. A per-sample weight gradient of such a layer is a product of the layer's input
  and output gradient, so Σ_n w_n g_n² is formed layer by layer, chunked; where the layer's output is a single
  position (1×1 maps, plain vectors) it is one matrix product with nothing per-sample materialised. Parameters of
  any other kind (LayerNorm, ConvNeXt's layer scale, depthwise convs, ...) go through `func`.

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
# backend "layerwise": closed forms for Conv2d, Linear, BatchNorm2d
# --------------------------------------------------------------------------------------------------------------------
def _supported(module: nn.Module) -> bool:
    if type(module) is nn.Conv2d:
        return module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)
    if type(module) is nn.Linear:
        return True
    if type(module) is nn.BatchNorm2d:
        return not module.training and module.track_running_stats and module.affine
    return False


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


def _layer_accumulate(module: nn.Module, inp: Tensor, delta: Tensor, w: Tensor, fw: Tensor | None,
                      fb: Tensor | None, memory_mb: int) -> None:
    n = len(inp)
    if isinstance(module, nn.BatchNorm2d):
        xhat = (inp - module.running_mean[None, :, None, None]) * torch.rsqrt(
            module.running_var[None, :, None, None] + module.eps)
        if fw is not None:
            fw.add_(w @ (delta * xhat).sum((2, 3)).square())
        if fb is not None:
            fb.add_(w @ delta.sum((2, 3)).square())
        return
    if isinstance(module, nn.Linear):
        d = delta.reshape(n, -1, delta.shape[-1])
        if fw is not None:
            _sq_weight_grads(d, inp.reshape(n, -1, inp.shape[-1]), w, fw, memory_mb)
    else:  # Conv2d
        d = delta.reshape(n, delta.shape[1], -1).transpose(1, 2)  # (n, L, O)
        if fw is not None:
            per_row = d.shape[1] * (fw[0].numel() + d.shape[2])  # unfolded input and output gradient
            step = _chunk(per_row, memory_mb)
            for a in range(0, n, step):  # unfold a chunk at a time: im2col of a large image is large
                u = F.unfold(inp[a:a + step], module.kernel_size, module.dilation, module.padding, module.stride)
                _sq_weight_grads(d[a:a + step], u.transpose(1, 2), w[a:a + step], fw.view(fw.shape[0], -1),
                                 memory_mb)
    if fb is not None:
        fb.add_(w @ d.sum(1).square())


def _layerwise_accumulate(model: nn.Module, x: Tensor, rounds: list[Round], fisher: dict[str, Tensor],
                          memory_mb: int) -> set[str]:
    """Accumulate the parameters of supported layers; return their names (the rest is left to `func`)."""
    params = _trainable(model)
    layers = {name: m for name, m in model.named_modules() if _supported(m)
              and any(p.requires_grad for p in m.parameters(recurse=False))}
    seen: dict[str, tuple[Tensor, Tensor]] = {}

    def hook(name: str):
        def fn(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor:
            seen[name] = (args[0].detach(), output)
            return output.clone()  # later in-place ops (ReLU(inplace), +=) must not touch the tensor we keep
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in layers.items()]
    try:
        with torch.enable_grad():
            log_probs = F.log_softmax(model(x).float(), dim=-1)
    finally:
        for h in handles:
            h.remove()
    names = list(seen)
    outputs = [seen[name][1] for name in names]
    for cls, w in rounds:
        deltas = torch.autograd.grad(log_probs.gather(1, cls[:, None]).sum(), outputs, retain_graph=True,
                                     allow_unused=True)
        for name, delta in zip(names, deltas):
            if delta is None:
                continue
            layer = layers[name]
            fw = fisher.get(f"{name}.weight") if getattr(layer, "weight", None) is not None else None
            fb = fisher.get(f"{name}.bias") if getattr(layer, "bias", None) is not None else None
            _layer_accumulate(layer, seen[name][0].float(), delta.float(), w.float(), fw, fb, memory_mb)
    return {f"{name}.{p}" for name in names for p, t in layers[name].named_parameters(recurse=False)
            if f"{name}.{p}" in params}


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
