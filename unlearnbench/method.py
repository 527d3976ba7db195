"""The contract between the runner and an unlearning method, and the registry that maps names to methods.

A method is one function `fn(model, task, hp, seed) -> model`, registered with the data it needs:

    @register_method("finetune", hparams=FinetuneHP, needs=("retain",))
    def finetune(model, task, hp, seed): ...

It receives θ* (a copy it may modify), an `UnlearnTask` holding only the sample sets it declared (anything else is a
`Withheld` that raises on use), its resolved hyperparameters and a seed. It never evaluates, times itself or writes
files: the runner does those around the call. `cached=True` marks a method whose output depends on its config alone
(retrain), so the runner trains it once and serves it from the checkpoint cache afterwards.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from torch import nn

from .config import TrainRecipe, build
from .data import SampleSet, Withheld
from .errors import did_you_mean
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

    @property
    def summary(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""

    def resolve(self, values: Mapping[str, Any] | None = None) -> Any:
        """The method's hyperparameters: its defaults, updated strictly by `values`."""
        return build(self.hparams, values, where=f"method.{self.name}")


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, *, hparams: type, needs: Sequence[str] = (), cached: bool = False,
                    cost: CostFn = lambda hp, sizes: 0.0) -> Callable[[MethodFn], MethodFn]:
    bad = set(needs) - set(ROLES)
    if bad:
        raise ValueError(f"method {name}: unknown data roles {sorted(bad)}; roles are {ROLES}")

    def decorate(fn: MethodFn) -> MethodFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"method {name!r} is registered twice")
        _REGISTRY[name] = MethodSpec(name, fn, hparams, frozenset(needs), cached, cost)
        return fn

    return decorate


def _discover() -> None:
    importlib.import_module("methods")  # importing the package registers every module in methods/


def get_method(name: str) -> MethodSpec:
    _discover()
    if name not in _REGISTRY:
        raise did_you_mean("method", name, list(_REGISTRY))
    return _REGISTRY[name]


def list_methods() -> list[str]:
    """Registered names: the paper's column order first (methods.ORDER), then any others."""
    _discover()
    from methods import ORDER
    return [m for m in ORDER if m in _REGISTRY] + sorted(set(_REGISTRY) - set(ORDER))
