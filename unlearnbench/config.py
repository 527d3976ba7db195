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
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, TypeVar

from .budget import BudgetConfig
from .errors import UsageError

T = TypeVar("T")

#: Bumped whenever training or unlearning code changes what a cached checkpoint would contain.
CACHE_VERSION = 1

#: Upper bounds of the numeric settings: far above any real run, low enough that a typo (an extra zero, 10**30) is
#: refused before work instead of training for ever or overflowing. A field declares its own tighter bound where it
#: has one; every other numeric field is capped at SETTING_MAX (see `param`).
EPOCHS_MAX = 1000
BATCH_MAX = 65536
IMAGE_SIZE_MAX = 1024
SETTING_MAX = 1_000_000
#: Seeds: 32 bits (numpy's and most tools' range); `runtime.generator` multiplies a seed by ~10**6 inside int64.
SEED_MAX = 2**32 - 1


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


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric setting, declared where the setting is declared (see `param`)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value: Any) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        parts = [f"{op} {_num(v)}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if v is not None]
        return " and ".join(parts)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


_NO_LEGACY = object()


def param(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, legacy: Any = _NO_LEGACY) -> Any:
    """A dataclass field with its valid range: `lr: float = param(1e-4, gt=0)`, `epochs: int = param(1, ge=1)`.

    `build` refuses a value outside the range (one line naming the key, the range and the value) before any work.
    A `None` value (an optional setting left to its default behaviour) is not range-checked. `legacy`: see `since`.
    A range with a lower bound and no upper bound gets `le=SETTING_MAX`: every numeric setting is bounded both ways.
    """
    if (ge is not None or gt is not None) and le is None and lt is None:
        le = SETTING_MAX
    bounds = Range(ge, gt, le, lt)
    metadata: dict[str, Any] = {"range": bounds} if bounds != Range() else {}
    if legacy is not _NO_LEGACY:
        metadata["legacy"] = legacy
    return field(default=default, metadata=metadata)


def positive(default: Any, **kw: Any) -> Any:
    """> 0 (learning rates, weights that must not vanish)."""
    return param(default, gt=0, **kw)


def at_least(low: float, default: Any, **kw: Any) -> Any:
    """>= `low` (counts: epochs >= 1, batch sizes >= 1; >= 0 where 0 means "the default")."""
    return param(default, ge=low, **kw)


def fraction(default: Any, **kw: Any) -> Any:
    """In [0, 1]."""
    return param(default, ge=0, le=1, **kw)


def check_ranges(obj: Any, label: str) -> None:
    """Every field of dataclass `obj` that declares a `Range` holds a value inside it; else a UsageError."""
    for f in dataclasses.fields(obj):
        rng = f.metadata.get("range")
        value = getattr(obj, f.name)
        if rng is None or value is None or isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)) or value not in rng:
            raise UsageError(f"{label}.{f.name}: must be {rng.describe()}, got {value!r}")


def build(cls: type[T], values: Mapping[str, Any] | None = None, where: str = "", base: T | None = None) -> T:
    """Build dataclass `cls` from `values`, strictly: unknown keys, wrong types and values outside a field's declared
    range (`param`) are UsageErrors.

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
    check_ranges(obj, label)
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
        key = key.strip().replace("-", "_")
        if key in out and out[key] != value.strip():  # the same key twice: which one was meant is not ours to guess
            raise UsageError(f"{where}: {key} given twice ({key}={out[key]} and {key}={value.strip()})")
        out[key] = value.strip()
    return out


def as_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def since(legacy: Any, default: Any, **range_: Any) -> Any:
    """A hyperparameter added after results were recorded: `legacy` is the value that reproduces the behaviour from
    before it existed. Cell hashes leave the field out at that value, so older records and cached models still match
    their cells (a new default that changes behaviour, rightly, changes the hash). `range_`: as `param`'s."""
    return param(default, legacy=legacy, **range_)


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
    lr: float = positive(1e-3)
    epochs: int = at_least(1, 2, le=EPOCHS_MAX)
    batch_size: int = at_least(1, 128, le=BATCH_MAX)
    weight_decay: float = at_least(0, 0.0)
    momentum: float = param(0.9, ge=0, lt=1)  # SGD only
    scheduler: Literal["none", "cosine"] = "none"
    augment: Literal["none", "crop", "crop_flip"] = "none"  # tensor data sets; streamed ones use their transforms
    label_smoothing: float = param(0.0, ge=0, lt=1)
    precision: Precision = "fp32"  # autocast dtype; fp16 needs CUDA
    channels_last: bool = False
    compile: bool = False  # torch.compile the model for training loops
    # Recompute BatchNorm running statistics after the last step (torch.optim.swa_utils.update_bn over the training
    # images, unaugmented): the running averages otherwise trail the weights, which can cost eval-mode accuracy after
    # short training. θ* and the oracle only: methods that build their recipe from θ*'s turn it off explicitly.
    bn_recalibrate: bool = since(False, False)


@dataclass(frozen=True)
class DataConfig:
    """Which data set, at what input size, and (for quick runs) how much of it."""

    name: str = "mnist"
    # 0: the data set's default (MNIST 28→32 by zero padding, CIFAR 32, Food-101 224)
    image_size: int = at_least(0, 0, le=IMAGE_SIZE_MAX)
    train_per_class: int = at_least(0, 0)  # 0: every training image; n: the first n of each class (quick runs, tests)
    test_per_class: int = at_least(0, 0)  # likewise for the test split


@dataclass(frozen=True)
class ModelConfig:
    """A timm architecture; `pretrained` loads timm weights (hub) or, with `pretrained_file`, a local file."""

    name: str = "resnet18"
    pretrained: bool = False
    pretrained_file: str = ""
    # further timm.create_model keyword arguments, "key=value,key=value": e.g. a ViT at MNIST's 32×32 input,
    # "img_size=32,patch_size=4" (timm's ViTs are built for 224×224 and refuse another size otherwise)
    timm_args: str = since("", "")

    def check(self, where: str) -> None:
        if self.pretrained_file and not self.pretrained:
            raise UsageError(f"{where}: pretrained_file needs pretrained = true")
        if self.pretrained_file and not Path(self.pretrained_file).expanduser().is_file():
            raise UsageError(f"{where}.pretrained_file: {self.pretrained_file} is not a file")
        self.timm_kwargs(where)

    def timm_kwargs(self, where: str = "model") -> dict[str, Any]:
        """`timm_args` as keyword arguments (values read as TOML would: numbers, booleans, none)."""
        kwargs = {k: _parse_scalar(v) for k, v in parse_assignments(
            [a for a in self.timm_args.split(",") if a.strip()], f"{where}.timm_args").items()}
        reserved = sorted(set(kwargs) & {"num_classes", "in_chans", "pretrained", "pretrained_cfg_overlay"})
        if reserved:
            raise UsageError(f"{where}.timm_args: {', '.join(reserved)}: set by the harness, not here")
        return kwargs


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings that shape the metrics (not the models)."""

    batch_size: int = at_least(1, 1024, le=BATCH_MAX)
    mia: bool = True  # membership inference on the forget set (SSD's entropy attack)
    mia_members: int = at_least(0, 10000)  # retain-train samples used as MIA members (0: all); a fixed, seeded subset
    oracle: bool = True  # compare with the retrained model (gaps, KL, MIA gap, speed-up); trains it if missing
    zrf: bool = True  # zero-retrain forgetting score against a random-init model
    # "published": on the forget class's test images against a random network with the official code's init (Bad
    # Teaching's notebook, SSD's metrics.py); "forget_train_model_init": forget-train images against the model
    # library's own init, what records made before this field existed measured
    zrf_protocol: Literal["published", "forget_train_model_init"] = since("forget_train_model_init", "published")
    # Deep forgetting (unlearnbench.deep, docs/deep_forgetting.md): does the class leave the representation, or is it
    # only hidden at the output? Off by default: on, it is in the cell's hash (existing records keep their keys). Each
    # setting below enters the hash only away from its first default (`since`), so turning `deep` on is one key.
    deep: bool = since(False, False)
    deep_test_per_class: int = since(100, 100, ge=0)  # seeded test images per class the three measure on (0: all)
    probe_per_class: int = since(100, 100, ge=2)  # seeded training images per class the linear probe is fitted on
    proto_images: int = since(5, 5, ge=1)  # Spotter proto_utils.py: num_samples_per_class=5
    proto_alpha: float = since(0.5, 0.5, ge=0, le=1)  # Spotter proto_utils.py: alpha=0.5
    proto_metric: Literal["cosine", "l2"] = since("cosine", "cosine")  # Spotter proto_utils.py: metric='cosine'
    relearn_k: int = since(50, 50, ge=1)  # the relearn set: k forget-class and k retain training images
    relearn_lr: float = since(1e-3, 1e-3, gt=0, le=1)  # Adam; zero-shot-unlearning metrics.py: lr=0.001
    relearn_batch_size: int = since(32, 32, ge=1, le=BATCH_MAX)
    relearn_target: float = since(0.95, 0.95, gt=0, le=1)  # × θ*'s A_Df; metrics.py: 1 - error_range (0.05)
    relearn_every: int = since(1, 1, ge=1)  # steps between two A_Df checks (metrics.py: every step)
    relearn_cap: int = since(200, 200, ge=1)  # steps; a model not there by then is censored


UnlearnPrecision = Literal["recipe", "fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class UnlearnConfig:
    """The `[unlearn]` table: how the methods' own steps run on θ* (θ*'s and the oracle's training follow
    `[train]`)."""

    # "recipe": θ*'s training precision (train.precision), as every record before this setting existed; else the
    # autocast dtype of every method's steps, e.g. "fp32" where θ* trains in bf16 but the official code runs in fp32
    precision: UnlearnPrecision = "recipe"


@dataclass(frozen=True)
class Setup:
    """Everything that defines one original model θ*: trained once, cached, shared by all its cells."""

    data: DataConfig
    model: ModelConfig
    train: TrainRecipe
    seed: int

    def to_dict(self, view: Any = as_dict) -> dict[str, Any]:
        """The full resolved config; `view=hash_view` gives what the key hashes (settings at their legacy value left
        out, so a setting added later leaves existing θ* keys unchanged)."""
        return {"data": view(self.data), "model": view(self.model), "train": view(self.train),
                "seed": self.seed, "cache_version": CACHE_VERSION}

    @property
    def key(self) -> str:
        return "original-" + stable_hash(self.to_dict(hash_view))


@dataclass(frozen=True)
class Cell:
    """One grid cell: an original model, a class to forget, a method with its resolved hyperparameters."""

    setup: Setup
    forget_class: int
    method: str
    hparams: Any  # the method's hyperparameter dataclass, resolved
    eval: EvalConfig = field(default_factory=EvalConfig)
    oracle: Any = None  # the retrained oracle's hyperparameters (the metrics compare with it)
    # Which unlearning run of this θ*: the method's own randomness (data order, noise, random teachers). 0 seeds the
    # method with the cell's `seed`, as every record made before this field existed did; j >= 1 with a number drawn
    # from (seed, j) (`method_seed`). θ*, the oracle and the data sample stay set by `seed` alone.
    unlearn_seed: int = 0
    # The table's budget rule (unlearnbench.budget), already applied to `hparams`; and which of the method's epoch
    # counts the user set by hand. Neither is hashed: the key is what runs, and `hparams` holds the epochs that run.
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    hand_set: tuple[str, ...] = ()
    # The precision of the method's steps where it is not θ*'s (`[unlearn] precision`, resolved); "" for θ*'s, and
    # always for the oracle (it trains as θ* did) and for a method that reads no data (no steps). Hashed only when set.
    unlearn_precision: str = ""

    def to_dict(self, view: Any = as_dict) -> dict[str, Any]:
        """The full resolved config (what records carry); `view=hash_view` gives what the key hashes. An unlearning
        seed of 0 and the methods' precision at θ*'s are left out of both, so the keys and configs of cells from before
        either existed stay as they were; the budget rule is in the record's config, not in the key (the epochs it
        gives are in `method`)."""
        return {**self.setup.to_dict(view), "forget_class": self.forget_class,
                "method": {"name": self.method, **view(self.hparams)}, "eval": view(self.eval),
                "oracle": view(self.oracle) if self.oracle is not None else None,
                **({"unlearn_seed": self.unlearn_seed} if self.unlearn_seed else {}),
                **({"unlearn": {"precision": self.unlearn_precision}} if self.unlearn_precision else {}),
                **({} if view is hash_view else {"budget": {**as_dict(self.budget),
                                                            "hand_set": list(self.hand_set)}})}

    @property
    def method_seed(self) -> int:
        """The seed the method gets: the cell's seed for unlearning seed 0, else one derived from (seed, j)."""
        return method_seed(self.setup.seed, self.unlearn_seed)

    @property
    def key(self) -> str:
        return stable_hash(self.to_dict(hash_view))

    @property
    def label(self) -> str:
        s = self.setup
        run = f"/unlearn seed {self.unlearn_seed}" if self.unlearn_seed else ""
        steps = f" ({self.unlearn_precision} steps)" if self.unlearn_precision else ""
        return f"{s.data.name}/{s.model.name}/class {self.forget_class}/seed {s.seed}{run}/{self.method}{steps}"


def method_seed(seed: int, unlearn_seed: int) -> int:
    """The method's seed for θ* seed `seed`, unlearning run `unlearn_seed`: `seed` itself for run 0 (what every record
    before unlearning seeds existed used), else 31 bits of a hash of both, so that no two runs of any θ* share one."""
    if unlearn_seed == 0:
        return seed
    return int(stable_hash({"seed": seed, "unlearn_seed": unlearn_seed}, 8), 16) % 2**31
