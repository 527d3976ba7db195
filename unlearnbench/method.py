"""The contract between the runner and an unlearning method, and the registrations that name methods.

A method is one function `fn(model, task, hp, seed) -> model`, registered with the data it needs and how tables show
it (its display name, its group and its place in the group; `unlearnbench.catalog.GROUP_TITLES` names the groups):

    @register_method("finetune", hparams=FinetuneHP, needs=("retain",), display="Fine-tune", group="paper", order=2)
    def finetune(model, task, hp, seed): ...

It receives θ* (a copy it may modify), an `UnlearnTask` holding only the sample sets it declared (anything else is a
`Withheld` that raises on use), its resolved hyperparameters and a seed. It never evaluates, times itself or writes
files: the runner does those around the call. `cached=True` marks a method whose output depends on its config alone
(retrain), so the runner trains it once and serves it from the checkpoint cache afterwards.

A method may return `(model, diagnostics)` instead of the model: a small JSON-able dict of what it did (steps taken,
whether a stopping rule fired, seconds spent on a sub-step). The runner stores it in the record's `diagnostics`.

A method's default hyperparameters are its published recipe. Anything else we offer beside it (a fix, an addition, the
released code's behaviour where it contradicts the paper) is a *variant*: a name, the base method, hyperparameter
overrides and a one-line note, registered in the base method's module and run like any method:

    register_variant("finetune+cosine", "finetune", {"scheduler": "cosine"}, "ours: cosine decay, as θ* trains")

A variant is shown and placed with its base method (its display name is the base's, followed by "+<what>").

This module holds the registrations; it imports no method. `unlearnbench.registry`, above it and the methods package,
loads the methods and looks names up (`get_method`: unknown names are "unknown method 'x'; valid: ...") and lists
them (`list_methods`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from torch import nn

from .budget import Schedule
from .catalog import DEFAULT_GROUP, GROUP_TITLES, VARIANT_SEP
from .config import TrainRecipe, build
from .data import SampleSet, Withheld
from .runtime import Runtime

ROLES = ("forget", "retain")


@dataclass(frozen=True)
class UnlearnTask:
    """Everything a method may use besides θ*, its hyperparameters and its seed."""

    forget: SampleSet | Withheld  # the training images of the forget class, if declared
    retain: SampleSet | Withheld  # the training images of every other class, if declared
    forget_class: int
    num_classes: int
    input_shape: tuple[int, int, int]  # (channels, height, width) of a model input
    recipe: TrainRecipe  # how θ* was trained (retrain reuses it)
    runtime: Runtime
    new_model: Callable[[int], nn.Module]  # a freshly initialised model of θ*'s architecture, seeded, on the device
    # (mean, std) per channel of the inputs' normalisation, x = (pixel - mean) / std with pixels in [0, 1]: what a
    # method that works on images (an attack step of a given pixel size, clamping to valid images) needs
    input_norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None


MethodFn = Callable[[nn.Module, UnlearnTask, Any, int], nn.Module]


@dataclass(frozen=True)
class Sizes:
    """What a cost estimate needs to know about a cell."""

    forget: int  # training images of the forget class
    retain: int  # training images of the other classes
    num_classes: int
    recipe: TrainRecipe


#: A rough cost of a method, in sample-steps (one forward + backward of one training image), for sweep plans.
CostFn = Callable[[Any, Sizes], float]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    fn: MethodFn
    hparams: type
    needs: frozenset[str]
    cached: bool
    cost: CostFn = lambda hp, sizes: 0.0
    schedule: Schedule | None = None  # its epoch counts and the data its published recipe ran on (budget rules)
    base: str | None = None  # a variant: the method it varies (None: a method as published)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # a variant's hyperparameters over the base defaults
    note: str = ""  # a variant: what it changes and why, one line
    display: str = ""  # its name in tables ("PBU"; empty: its registered name); a variant has its base's
    group: str = DEFAULT_GROUP  # one of catalog.GROUP_TITLES; a variant is in its base's
    order: int = 0  # its place in its group, in every listing and table (ties: by name)

    @property
    def is_variant(self) -> bool:
        return self.base is not None

    @property
    def label(self) -> str:
        """Its column title: the display name, a variant's as '<base's display name> +<what it changes>'."""
        title = self.display or (self.base or self.name)
        return f"{title} +{self.name.partition(VARIANT_SEP)[2]}" if self.is_variant else title

    @property
    def summary(self) -> str:
        if self.note:
            return self.note
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""

    def resolve(self, values: Mapping[str, Any] | None = None, base_values: Mapping[str, Any] | None = None) -> Any:
        """The method's hyperparameters: its defaults, then (a variant) the base method's configured values and the
        variant's overrides, then `values`; strictly (unknown keys, wrong types, values out of range are errors)."""
        merged = {**(base_values or {}), **self.overrides, **(values or {})}
        return build(self.hparams, merged, where=f"method.{self.name}")


def split_output(out: "nn.Module | tuple[nn.Module, Mapping[str, Any]]") -> tuple[nn.Module, dict[str, Any]]:
    """A method's return value as (model, diagnostics): a bare model has none."""
    if isinstance(out, tuple):
        model, diagnostics = out
        return model, dict(diagnostics)
    return out, {}


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, *, hparams: type, needs: Sequence[str] = (), cached: bool = False,
                    cost: CostFn = lambda hp, sizes: 0.0, schedule: Schedule | None = None, display: str | None = None,
                    group: str = DEFAULT_GROUP, order: int = 0) -> Callable[[MethodFn], MethodFn]:
    """Register `fn(model, task, hp, seed)` as method `name` (see the module docstring): `schedule` its epoch counts
    and the data its published recipe ran on (budget rules), `display` its name in tables (default `name`), `group`
    one of catalog.GROUP_TITLES, `order` its place in the group."""
    bad = set(needs) - set(ROLES)
    if bad:
        raise ValueError(f"method {name}: unknown data roles {sorted(bad)}; roles are {ROLES}")
    if group not in GROUP_TITLES:
        raise ValueError(f"method {name}: unknown group {group!r}; groups are {', '.join(GROUP_TITLES)}")

    def decorate(fn: MethodFn) -> MethodFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"method {name!r} is registered twice")
        if schedule is not None:
            missing = [f for f in schedule.fields if f not in {x.name for x in dataclasses.fields(hparams)}]
            if missing:
                raise ValueError(f"method {name}: its schedule counts epochs in {missing}, not hyperparameters")
        _REGISTRY[name] = MethodSpec(name, fn, hparams, frozenset(needs), cached, cost, schedule,
                                     display=display or name, group=group, order=order)
        return fn

    return decorate


def register_variant(name: str, base: str, overrides: Mapping[str, Any], note: str) -> None:
    """Register `name` as `base` with `overrides` over its defaults (see the module docstring). Call it in the base
    method's module, after the base is registered."""
    if base not in _REGISTRY:
        raise ValueError(f"variant {name!r}: register its base method {base!r} first")
    if not name.startswith(base + VARIANT_SEP) or name == base + VARIANT_SEP:
        raise ValueError(f"variant {name!r} must be named '{base}{VARIANT_SEP}<what it changes>'")
    if not note.strip() or "\n" in note.strip():
        raise ValueError(f"variant {name!r} needs a one-line note")
    spec = _REGISTRY[base]
    variant = replace(spec, name=name, base=base, overrides=dict(overrides), note=note.strip())
    hp = variant.resolve()  # the overrides must be valid hyperparameters of the base
    if hp == spec.resolve():
        raise ValueError(f"variant {name!r} changes nothing of {base!r}'s defaults")
    if name in _REGISTRY and (_REGISTRY[name].base, _REGISTRY[name].overrides) != (base, variant.overrides):
        raise ValueError(f"method {name!r} is registered twice")
    _REGISTRY[name] = variant


def registered() -> Mapping[str, MethodSpec]:
    """What has been registered so far, read-only (`unlearnbench.registry` loads the methods first)."""
    return MappingProxyType(_REGISTRY)
