"""Typed configuration: dataclasses, strict parsing from TOML or `key=value` strings, and the stable hash.

Every number that shapes a result lives in one of these dataclasses; the resolved config (all defaults filled in)
travels with every record and checkpoint, and its hash keys the cache. Parsing is strict on purpose: an unknown key or
a value of the wrong type is a `UsageError` before any work starts, never a silently ignored typo.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence, TypeVar

from .errors import UsageError

T = TypeVar("T")

#: Bumped whenever training or unlearning code changes what a cached checkpoint would contain.
CACHE_VERSION = 1


# --------------------------------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------------------------------
def _parse_scalar(text: str) -> Any:
    """Interpret a command-line value the way TOML would (numbers, booleans, none)."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [_parse_scalar(v) for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is Any:
        return value
    if isinstance(value, str) and hint is not str:
        value = _parse_scalar(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a dataclass field with a type we do not parse is a programming error
        raise TypeError(f"{where}: unsupported field type {hint!r}")
    name = getattr(hint, "__name__", str(hint))
    raise UsageError(f"{where}: expected {name}, got {value!r}")


def build(cls: type[T], values: Mapping[str, Any] | None = None, where: str = "", base: T | None = None) -> T:
    """Build dataclass `cls` from `values`, strictly: unknown keys and wrong types are UsageErrors.

    `base` supplies the values not given (defaults otherwise). The instance's `check()` runs if it has one.
    """
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(names))
    label = where or cls.__name__
    if unknown:
        raise UsageError(f"{label}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{label}.{k}") for k, v in values.items()}
    obj = dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(label)
    return obj


def parse_assignments(items: Sequence[str] | None, where: str) -> dict[str, str]:
    """`["lr=1e-3", "epochs=2"]` → `{"lr": "1e-3", "epochs": "2"}`; anything else is a UsageError."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{where}: expected KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def as_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def since(legacy: Any, default: Any) -> Any:
    """A hyperparameter added after results were recorded: `legacy` is the value that reproduces the behaviour from
    before it existed. Cell hashes leave the field out at that value, so older records and cached models still match
    their cells (a new default that changes behaviour, rightly, changes the hash)."""
    return field(default=default, metadata={"legacy": legacy})


def hash_view(obj: Any) -> dict[str, Any]:
    """`as_dict`, less the fields at their legacy value (see `since`)."""
    out = as_dict(obj)
    for f in dataclasses.fields(obj):
        if "legacy" in f.metadata and out[f.name] == f.metadata["legacy"]:
            del out[f.name]
    return out


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able object, independent of key order; the cache and record key."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# --------------------------------------------------------------------------------------------------------------------
# the configs
# --------------------------------------------------------------------------------------------------------------------
Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class TrainRecipe:
    """How a model is trained from scratch: the original θ*, and the retrained oracle (same recipe, D_r only)."""

    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    epochs: int = 2
    batch_size: int = 128
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    scheduler: Literal["none", "cosine"] = "none"
    augment: Literal["none", "crop", "crop_flip"] = "none"  # tensor data sets; streamed ones use their transforms
    label_smoothing: float = 0.0
    precision: Precision = "fp32"  # autocast dtype; fp16 needs CUDA
    channels_last: bool = False
    compile: bool = False  # torch.compile the model for training loops

    def check(self, where: str) -> None:
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1:
            raise UsageError(f"{where}: lr, epochs and batch_size must be positive")
        if self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise UsageError(f"{where}: weight_decay must be >= 0 and label_smoothing in [0, 1)")


@dataclass(frozen=True)
class DataConfig:
    """Which data set, at what input size, and (for quick runs) how much of it."""

    name: str = "mnist"
    image_size: int = 0  # 0: the data set's default (MNIST 28→32 by zero padding, CIFAR 32, Food-101 224)
    train_per_class: int = 0  # 0: every training image; n: the first n of each class (quick runs, tests)
    test_per_class: int = 0  # likewise for the test split

    def check(self, where: str) -> None:
        if min(self.image_size, self.train_per_class, self.test_per_class) < 0:
            raise UsageError(f"{where}: image_size, train_per_class, test_per_class must be >= 0")


@dataclass(frozen=True)
class ModelConfig:
    """A timm architecture; `pretrained` loads timm weights (hub) or, with `pretrained_file`, a local file."""

    name: str = "resnet18"
    pretrained: bool = False
    pretrained_file: str = ""

    def check(self, where: str) -> None:
        if self.pretrained_file and not self.pretrained:
            raise UsageError(f"{where}: pretrained_file needs pretrained = true")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings that shape the metrics (not the models)."""

    batch_size: int = 1024
    mia: bool = True  # membership inference on the forget set (SSD's entropy attack)
    mia_members: int = 10000  # retain-train samples used as MIA members (0: all); a fixed, seeded subset
    oracle: bool = True  # compare with the retrained model (gaps, KL, MIA gap, speed-up); trains it if missing
    zrf: bool = True  # zero-retrain forgetting score against a random-init model

    def check(self, where: str) -> None:
        if self.batch_size < 1 or self.mia_members < 0:
            raise UsageError(f"{where}: batch_size must be >= 1 and mia_members >= 0")


@dataclass(frozen=True)
class Setup:
    """Everything that defines one original model θ*: trained once, cached, shared by all its cells."""

    data: DataConfig
    model: ModelConfig
    train: TrainRecipe
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"data": as_dict(self.data), "model": as_dict(self.model), "train": as_dict(self.train),
                "seed": self.seed, "cache_version": CACHE_VERSION}

    @property
    def key(self) -> str:
        return "original-" + stable_hash(self.to_dict())


@dataclass(frozen=True)
class Cell:
    """One grid cell: an original model, a class to forget, a method with its resolved hyperparameters."""

    setup: Setup
    forget_class: int
    method: str
    hparams: Any  # the method's hyperparameter dataclass, resolved
    eval: EvalConfig = field(default_factory=EvalConfig)
    oracle: Any = None  # the retrained oracle's hyperparameters (the metrics compare with it)

    def to_dict(self, view: Any = as_dict) -> dict[str, Any]:
        """The full resolved config (what records carry); `view=hash_view` gives what the key hashes."""
        return {**self.setup.to_dict(), "forget_class": self.forget_class,
                "method": {"name": self.method, **view(self.hparams)}, "eval": as_dict(self.eval),
                "oracle": view(self.oracle) if self.oracle is not None else None}

    @property
    def key(self) -> str:
        return stable_hash(self.to_dict(hash_view))

    @property
    def label(self) -> str:
        s = self.setup
        return f"{s.data.name}/{s.model.name}/class {self.forget_class}/seed {s.seed}/{self.method}"
