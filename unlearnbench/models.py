"""Models by name, through timm.

The paper's architectures (resnet34, resnet50, densenet121, convnext_large) and a small one for quick runs (resnet18)
are listed here, but any timm name works: `create_model` is timm's, with `in_chans`/`num_classes` following the data.

Input size: DenseNet-121 and ConvNeXt reduce their input 32-fold, so 28×28 MNIST collapses to nothing inside them.
The data layer zero-pads MNIST to 32×32 (the LeNet-5 convention; no interpolation, digits untouched), the smallest
size every paper model accepts; `check_input_size` rejects a size a model cannot take, before any training.

`ModelConfig.timm_args` reaches `timm.create_model` as keyword arguments: timm's ViTs are built for 224×224 and
refuse other sizes, so a ViT on MNIST needs e.g. "img_size=32,patch_size=4".
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import timm
import torch
from torch import nn

from .config import ModelConfig, parse_assignments
from .errors import UsageError

#: The architectures of the paper's table, and the quick one. Any other timm name is accepted too.
PAPER_MODELS = ("resnet34", "resnet50", "densenet121", "convnext_large")
QUICK_MODELS = ("resnet18",)


def list_models() -> list[str]:
    return [*PAPER_MODELS, *QUICK_MODELS]


def check_model_name(name: str) -> None:
    if not timm.is_model(name):
        raise UsageError(f"unknown model {name!r}; paper models: {', '.join(PAPER_MODELS)}; quick: "
                         f"{', '.join(QUICK_MODELS)}; or any name in timm.list_models()")


def max_reduction(model: nn.Module) -> int:
    info = getattr(model, "feature_info", None)
    if not info:
        return 1
    return max(int(i.get("reduction", 1)) for i in info)


def fixed_input_size(model: nn.Module) -> tuple[int, int] | None:
    """The one input size a model takes (ViT, Swin, ...: timm's `fixed_input_size`), or None if it takes any."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if not cfg.get("fixed_input_size"):
        return None
    embed = getattr(model, "patch_embed", None)
    if embed is not None and not getattr(embed, "strict_img_size", True):
        return None
    size = getattr(embed, "img_size", None) or tuple(cfg.get("input_size", ())[-2:])
    return (int(size[0]), int(size[1])) if size and len(size) == 2 else None


@lru_cache(maxsize=None)
def _input_needs(name: str, timm_args: str = "") -> tuple[int, tuple[int, int] | None]:
    """(total down-sampling, the fixed input size or None) of timm model `name` built with `timm_args`."""
    kwargs = ModelConfig(name, timm_args=timm_args).timm_kwargs()
    try:
        with torch.device("meta"):  # architecture only: no memory, no initialisation cost
            model = timm.create_model(name, pretrained=False, num_classes=2, in_chans=1, **kwargs)
    except TypeError as exc:  # a keyword the architecture does not take
        raise UsageError(f"model {name} does not take timm_args {timm_args!r}: {str(exc).splitlines()[0][:160]}"
                         ) from None
    except Exception:  # noqa: BLE001 - a model that cannot be built on "meta" is not checked here
        return 1, None
    return max_reduction(model), fixed_input_size(model)


def _meta_error(name: str, kwargs: dict[str, object], size: int, in_chans: int) -> str | None:
    """The error (type and first line) of building `name` with `kwargs` and one training-mode forward pass of a
    size×size batch, on the meta device (shapes only: no memory, no arithmetic), or None when both work."""
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False, num_classes=2, in_chans=in_chans, **kwargs)
            model.train()(torch.zeros(2, in_chans, size, size))
    except Exception as exc:  # noqa: BLE001 - whatever timm raises is reported in one line
        return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or ['-'])[0][:160]}"
    return None


@lru_cache(maxsize=None)
def timm_args_problem(name: str, timm_args: str, size: int, in_chans: int = 1) -> str | None:
    """Why timm cannot build and run `name` with `timm_args` (`drop_rate=5`, `global_pool=xyz`: errors timm raises at
    build or only at the first training step), naming the argument; None if it can. Tried on the meta device at plan
    time. An error the model gives without any timm_args is not blamed on them (such a model is not checked here)."""
    if not timm_args:
        return None
    raw = parse_assignments([a for a in timm_args.split(",") if a.strip()], "model.timm_args")
    kwargs = ModelConfig(name, timm_args=timm_args).timm_kwargs()
    error = _meta_error(name, kwargs, size, in_chans)
    if error is None or _meta_error(name, {}, size, in_chans) is not None:
        return None
    alone = [k for k in kwargs if _meta_error(name, {k: kwargs[k]}, size, in_chans) is not None]
    culprits = ",".join(f"{k}={raw[k]}" for k in alone) if alone else timm_args
    return f"model.timm_args {culprits}: timm cannot build and train {name} with it ({error})"


def check_input_size(cfg: ModelConfig, size: int, in_chans: int = 1) -> None:
    """Reject an input size the model cannot take: not its fixed size (ViT and the like assert it at the first
    forward; timm_args such as img_size change it), or smaller than its total down-sampling (its features would
    vanish); and timm arguments the architecture does not take or cannot run with (`timm_args_problem`)."""
    check_model_name(cfg.name)
    need, fixed = _input_needs(cfg.name, cfg.timm_args)
    how = "under [data] in the config, --data image_size=N for a run, --set data.image_size=N for a sweep"
    if fixed is not None and fixed != (size, size):
        if fixed[0] != fixed[1]:
            raise UsageError(f"model {cfg.name} takes {fixed[0]}×{fixed[1]} inputs only, and image_size makes "
                             f"square ones ({size}×{size}); choose another model")
        raise UsageError(f"model {cfg.name} takes {fixed[0]}×{fixed[0]} inputs only, not {size}×{size}: set "
                         f"image_size = {fixed[0]} ({how}), or build it for this size with timm_args (a ViT: "
                         f"img_size={size})")
    if size < need:
        raise UsageError(f"model {cfg.name} down-samples {need}-fold and cannot take {size}×{size} inputs; "
                         f"set image_size >= {need} ({how})")
    if (problem := timm_args_problem(cfg.name, cfg.timm_args, size, in_chans)) is not None:
        raise UsageError(problem)


def create_model(cfg: ModelConfig, num_classes: int, in_chans: int) -> nn.Module:
    """A timm model; with `pretrained`, timm's weights (hub, or `pretrained_file`), head and stem adapted."""
    check_model_name(cfg.name)
    kwargs: dict[str, object] = {**cfg.timm_kwargs(), "num_classes": num_classes, "in_chans": in_chans}
    if cfg.pretrained and cfg.pretrained_file:
        path = Path(cfg.pretrained_file).expanduser()
        if not path.is_file():
            raise UsageError(f"pretrained_file {path} does not exist")
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
    try:
        return timm.create_model(cfg.name, pretrained=cfg.pretrained, **kwargs)
    except (OSError, RuntimeError) as exc:  # the hub is unreachable, or a file does not match
        if not cfg.pretrained:
            raise
        raise UsageError(f"could not load pretrained weights for {cfg.name}: {str(exc).splitlines()[0][:160]}"
                         ) from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def state_dict_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def live_residual_branches(model: nn.Module) -> nn.Module:
    """Undo timm's `zero_init_last`: BatchNorm layers whose scale is all zero get scale 1 (torchvision's init).

    A random network made this way answers confidently and arbitrarily, as the official code's random networks
    (torchvision models) do; timm's zero-initialised residual branches make a random ResNet nearly uniform instead.
    Bad Teaching's incompetent teacher and ZRF's reference network are both made so."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and not m.weight.any():
                m.weight.fill_(1.0)
    return model
