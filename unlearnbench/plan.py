"""From what the user wrote (a TOML file, command-line options) to resolved, validated cells.

The TOML tables shared by the one-cell CLI and sweep files:

    [data]            DataConfig fields        (image_size, train_per_class, ...)
    [model]           ModelConfig fields       (pretrained, pretrained_file)
    [train]           TrainRecipe fields       (over the data set's default recipe)
    [eval]            EvalConfig fields
    [method.<name>]   that method's hyperparameters (a variant, quoted: [method."pbu+stop"], also takes its
                      base method's table, under its own overrides)
    [method.<name>.class.<k>]  hyperparameters for forget class k only (PBU's official α, β differ per class)
    [budget]          BudgetConfig: the rule every method's epochs follow ("epochs" or "steps"; unlearnbench.budget)
    [unlearn]         UnlearnConfig: the precision of the methods' steps ("recipe": θ*'s, the default)

Everything is checked here, before any work: unknown tables or keys, wrong types, unknown names, classes out of range.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .budget import BudgetConfig, rule_epochs, rule_milestones
from .config import (SEED_MAX, Cell, DataConfig, EvalConfig, ModelConfig, Setup, TrainRecipe, UnlearnConfig, build,
                     check_ranges, parse_assignments)
from .errors import UsageError
from .files import check_input_file

# The registries (data sets, methods, timm's models) import torch: each function below imports what it checks against
# when it runs, so a command line or a file with a syntax error is answered before torch loads.

TABLES = ("data", "model", "train", "eval", "method", "budget", "unlearn")
#: the tables that hold one settings dataclass each (all but [method]): an Overrides field each, under the same name
SETTINGS = {"data": DataConfig, "model": ModelConfig, "train": TrainRecipe, "eval": EvalConfig, "budget": BudgetConfig,
            "unlearn": UnlearnConfig}
ORACLE = "retrain"  # the method every cell is measured against
#: (forget, retain) training images of a data config's forget class (`data_sizes`)
Sizes = Callable[[DataConfig, int], "tuple[int, int]"]


def data_sizes(root: Path | None = None, download: bool = False) -> Sizes:
    """The class sizes a "steps" budget rule scales by, read from the data under `root` (default: the default data
    root) only when a cell first asks, once per data config (`data.train_sizes` memoizes), so that a command line that
    needs no sizes answers before torch loads."""
    def sizes(cfg: DataConfig, forget_class: int) -> tuple[int, int]:
        from .data import train_sizes
        from .runtime import default_data_root
        return train_sizes(Path(root) if root else default_data_root(), download=download)(cfg, forget_class)
    return sizes


@dataclass(frozen=True)
class Overrides:
    """Settings the user gave, on top of every default."""

    data: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    eval: Mapping[str, Any] = field(default_factory=dict)
    method: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name → hyperparameters
    per_class: Mapping[str, Mapping[int, Mapping[str, Any]]] = field(default_factory=dict)
    budget: Mapping[str, Any] = field(default_factory=dict)
    unlearn: Mapping[str, Any] = field(default_factory=dict)

    def merged(self, other: "Overrides") -> "Overrides":
        """`other` wins key by key (command line over file)."""
        methods = {k: {**self.method.get(k, {}), **other.method.get(k, {})} for k in {*self.method, *other.method}}
        return Overrides(method=methods, per_class={**self.per_class, **other.per_class},
                         **{t: {**getattr(self, t), **getattr(other, t)} for t in SETTINGS})


def read_text(path: Path) -> str:
    """A config file's text (TOML is UTF-8), or a UsageError saying why it cannot be read."""
    check_input_file(Path(path), "config file", expected="a TOML file")  # a FIFO or /dev/zero would never end
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"config file {path} is a directory, expected a TOML file") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"config file {path} is not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None


def read_toml(path: Path) -> dict[str, Any]:
    return parse_toml(read_text(path), path)


def overrides_from_mapping(doc: Mapping[str, Any], where: str, extra_keys: tuple[str, ...] = ()) -> Overrides:
    """Split a parsed TOML document into Overrides; keys other than TABLES + `extra_keys` are an error."""
    unknown = sorted(set(doc) - set(TABLES) - set(extra_keys))
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(TABLES + extra_keys)}")
    for name in TABLES:
        if name in doc and not isinstance(doc[name], dict):
            raise UsageError(f"{where}: [{name}] must be a table")
    methods: dict[str, dict[str, Any]] = {}
    per_class: dict[str, dict[int, dict[str, Any]]] = {}
    if doc.get("method"):
        from .registry import get_method
    for name, table in doc.get("method", {}).items():
        spec = get_method(name)
        if not isinstance(table, dict):
            raise UsageError(f"{where}: [method.{name}] must be a table")
        table = dict(table)
        classes = table.pop("class", {})
        if not isinstance(classes, dict):
            raise UsageError(f"{where}: [method.{name}] class = {classes!r}: per-class settings go in tables "
                             f"[method.{name}.class.<k>], one per forget class k")
        spec.resolve(table)  # checks keys, types and ranges now
        methods[name] = table
        per_class[name] = {}
        for k, sub in classes.items():
            if not (isinstance(k, str) and k.isdigit()) or not isinstance(sub, dict):
                raise UsageError(f"{where}: [method.{name}.class.{k}] must be a table under a class number")
            spec.resolve({**table, **sub})
            per_class[name][int(k)] = sub
    for name, cls in SETTINGS.items():
        build(cls, doc.get(name, {}), where=f"{where} [{name}]")
    return Overrides(method=methods, per_class=per_class, **{t: doc.get(t, {}) for t in SETTINGS})


def overrides_from_file(path: Path | None) -> Overrides:
    """A run or sweep file's shared tables (a sweep's grid keys are allowed and ignored); no file: no overrides."""
    if path is None:
        return Overrides()
    return overrides_from_mapping(read_toml(path), str(path), extra_keys=SWEEP_KEYS)


def resolve_setup(dataset: str, model: str, seed: int, ov: Overrides) -> Setup:
    # the names come from --dataset / --model or the grid: a `name` in [data] or [model] would be silently replaced
    for table, given, what, option, key in (("data", ov.data, "data set", "--dataset", "dataset"),
                                            ("model", ov.model, "model", "--model", "models")):
        if "name" in given:
            raise UsageError(f"{table}.name = {given['name']!r}: the {what} is chosen by {option} (a run) or the "
                             f"grid's {key} (a sweep), not here")
    from .data import get_dataset_spec, resolve_image_size
    from .models import check_input_size, check_model_name
    spec = get_dataset_spec(dataset)
    data = build(DataConfig, {**ov.data, "name": dataset}, where="data")
    check_model_name(model)
    model_cfg = build(ModelConfig, {**ov.model, "name": model}, where="model")
    check_input_size(model_cfg, resolve_image_size(spec, data), spec.in_chans)
    recipe = build(TrainRecipe, ov.train, where="train", base=spec.recipe)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise UsageError(f"seed must be an integer from 0 to {SEED_MAX}, got {seed!r}")
    return Setup(data, model_cfg, recipe, seed)


def classes_out_of_range(ov: Overrides, num_classes: int) -> list[tuple[str, int]]:
    """The per-class tables ([method.<name>.class.<k>]) whose class k the data set does not have."""
    return [(name, k) for name, classes in ov.per_class.items() for k in classes if not 0 <= k < num_classes]


def check_unlearn_seed(unlearn_seed: object, method: str) -> int:
    """A valid unlearning seed for `method`: a non-negative integer, and 0 for a cached method (the oracle, retrain,
    is set by the cell's seed alone: it has no unlearning run of its own)."""
    from .registry import get_method
    if not isinstance(unlearn_seed, int) or isinstance(unlearn_seed, bool) or unlearn_seed < 0:
        raise UsageError(f"unlearning seed must be a non-negative integer, got {unlearn_seed!r}")
    if unlearn_seed and get_method(method).cached:
        raise UsageError(f"{method} is set by the cell's seed alone (θ*'s recipe on D_r); it takes no unlearning "
                         f"seed, got {unlearn_seed}")
    return unlearn_seed


def resolve_cell(dataset: str, model: str, forget_class: int, seed: int, method: str, ov: Overrides,
                 check_per_class: bool = True, unlearn_seed: int = 0, sizes: Sizes | None = None) -> Cell:
    """One fully resolved cell, or a UsageError naming what is wrong. `check_per_class`: a per-class table for a class
    the data set does not have is an error (a sweep checks that over its whole grid instead). `unlearn_seed`: which
    unlearning run of this θ* (0: the method seeded by `seed`, as before unlearning seeds existed). `sizes`: the
    (forget, retain) training images of a data config's class, which the "steps" budget rule scales epochs by (default:
    read from the data under the default data root)."""
    from .data import check_forget_class, get_dataset_spec
    from .registry import get_method
    setup = resolve_setup(dataset, model, seed, ov)
    if not isinstance(forget_class, int) or isinstance(forget_class, bool):
        raise UsageError(f"forget class must be an integer, got {forget_class!r}")
    spec = get_dataset_spec(dataset)
    check_forget_class(spec, forget_class)
    if check_per_class and (bad := classes_out_of_range(ov, spec.num_classes)):
        name, k = bad[0]
        raise UsageError(f"[method.{name}.class.{k}]: {spec.name} has no class {k} (classes 0..{spec.num_classes - 1})")

    def configured(name: str) -> dict[str, Any]:
        return {**ov.method.get(name, {}), **ov.per_class.get(name, {}).get(forget_class, {})}

    def hparams(name: str) -> Any:
        """A variant takes its base method's configured values too (e.g. PBU's per-class α, β), under its own."""
        spec = get_method(name)
        return spec.resolve(configured(name), configured(spec.base) if spec.base else None)

    budget = build(BudgetConfig, ov.budget, where="budget")
    hp, hand_set = hparams(method), ()
    spec_m = get_method(method)
    if spec_m.schedule is not None and not spec_m.cached:
        fields = spec_m.schedule.fields
        given = {**(configured(spec_m.base) if spec_m.base else {}), **configured(method)}
        hand_set = tuple(f for f in fields if f in given)
        if budget.rule != "epochs":
            def unset(name: str) -> dict[str, Any]:
                return {k: v for k, v in configured(name).items() if k not in fields}
            published = spec_m.resolve(unset(method), unset(spec_m.base) if spec_m.base else None)
            n_forget, n_retain = (sizes or data_sizes())(setup.data, forget_class)
            ruled = rule_epochs(spec_m.schedule, published, budget.rule, n_forget, n_retain, spec.num_classes)
            hp = replace(hp, **{f: v for f, v in ruled.items() if f not in hand_set},
                         **{m: v for m, v in rule_milestones(spec_m.schedule, published, ruled).items()
                            if m not in given})
            check_ranges(hp, f"method.{method} (its epochs under the {budget.rule} rule)")
    # the oracle (a cached method) trains as θ* did, whatever the methods' precision, and a method that reads no data
    # (θ* itself) takes no steps: for both, and at θ*'s own precision, the setting is left unset
    precision = build(UnlearnConfig, ov.unlearn, where="unlearn").precision
    unset = spec_m.cached or not spec_m.needs or precision in ("recipe", setup.train.precision)
    unlearn_precision = "" if unset else precision
    return Cell(setup, forget_class, method, hp, build(EvalConfig, ov.eval, where="eval"),
                oracle=hparams(ORACLE), unlearn_seed=check_unlearn_seed(unlearn_seed, method), budget=budget,
                hand_set=hand_set, unlearn_precision=unlearn_precision)


# --------------------------------------------------------------------------------------------------------------------
# sweeps: a grid file → cells → jobs
# --------------------------------------------------------------------------------------------------------------------
#: A sweep's name: it becomes a directory name (`/` as `_`), so printable, short, and no control character.
NAME_MAX = 100
NAME = re.compile(r"[A-Za-z0-9._+/ -]{1,%d}" % NAME_MAX)
SWEEP_KEYS = ("name", "description", "seeds", "unlearn_seeds", "methods", "grid", "profile")
# seeds, unlearn_seeds, methods: the file's if absent
GRID_KEYS = ("dataset", "models", "forget_classes", "seeds", "unlearn_seeds", "methods", *TABLES)


@dataclass(frozen=True)
class Sweep:
    """A grid file, resolved: every cell checked, in a stable order."""

    name: str
    description: str
    profile: str
    text: str  # the file as written, stored beside the results
    cells: tuple[Cell, ...]

    @property
    def setups(self) -> list[Setup]:
        """Each original model once, in first-use order."""
        return list({c.setup.key: c.setup for c in self.cells}.values())


def _list_of(value: Any, kind: type, where: str) -> list[Any]:
    if not isinstance(value, list) or not value or not all(isinstance(v, kind) and not isinstance(v, bool)
                                                          for v in value):
        raise UsageError(f"{where} must be a non-empty list of {kind.__name__}s")
    return value


#: What `--only` can select on, and how to read each from a cell.
SELECTORS = {"dataset": lambda c: c.setup.data.name, "model": lambda c: c.setup.model.name,
             "forget_class": lambda c: str(c.forget_class), "seed": lambda c: str(c.setup.seed),
             "unlearn_seed": lambda c: str(c.unlearn_seed), "method": lambda c: c.method}


def select_cells(sweep: Sweep, selections: Mapping[str, str]) -> Sweep:
    """The sweep cut to the cells matching every `key=v1,v2` selection (e.g. a GPU budget's share of a grid).

    The cells keep their config hashes, so records written by a selected run count for the whole grid later."""
    cells = sweep.cells
    for key, values in selections.items():
        if key not in SELECTORS:
            raise UsageError(f"--only {key}: select on one of {', '.join(SELECTORS)}")
        wanted = {v.strip() for v in values.split(",") if v.strip()}
        cells = tuple(c for c in cells if SELECTORS[key](c) in wanted)
    if not cells:
        raise UsageError(f"--only {', '.join(f'{k}={v}' for k, v in selections.items())}: no cell of "
                         f"{sweep.name!r} matches")
    return replace(sweep, cells=cells)


def selections(items: Sequence[str] | None) -> dict[str, str]:
    """`--only KEY=V1,V2` items as select_cells wants them; a key given twice selects both (`--only seed=0 --only
    seed=1` is `--only seed=0,1`)."""
    out: dict[str, str] = {}
    for item in items or ():
        for key, values in parse_assignments([item], "--only").items():
            out[key] = f"{out[key]},{values}" if key in out else values
    return out


def sweep_share(path: Path, chosen: Mapping[str, str] | None = None, extra: Overrides | None = None, *,
                data_root: Path | None = None, download: bool = False) -> Sweep:
    """The cells of sweep file `path` that the `--only` selections `chosen` pick (all without), `extra` over the
    file, planned as `sweep --only` plans them: a "steps" budget rule reads its class sizes from `data_root` (default:
    the default data root). What the sweep command and every script that explains cells of a sweep start from."""
    sizes = data_sizes(data_root, download=download)  # read only under a "steps" rule
    return select_cells(load_sweep(Path(path), extra, sizes), chosen or {})


def one_cell(sweep: Sweep, chosen: Mapping[str, str] | None = None) -> Cell:
    """The one cell of `sweep` that the selections name (a script that explains one cell); UsageError naming the
    keys still open when several match."""
    cells = select_cells(sweep, chosen or {}).cells
    if len(cells) == 1:
        return cells[0]
    open_keys = {k: list(dict.fromkeys(f(c) for c in cells)) for k, f in SELECTORS.items()}
    pick = " ".join(f"--only {k}={'|'.join(v)}" for k, v in open_keys.items() if len(v) > 1)
    raise UsageError(f"{len(cells)} cells of {sweep.name!r} match; name one: {pick}")


def load_sweep(path: Path, extra: Overrides | None = None, sizes: Sizes | None = None) -> Sweep:
    """Read and resolve a sweep file; `extra` (command line) wins over the file. Raises UsageError on any problem.
    `sizes`: as `resolve_cell`'s (a "steps" budget rule reads the data's class sizes)."""
    text = read_text(path)
    doc = parse_toml(text, path)
    where = str(path)
    unknown = sorted(set(doc) - set(SWEEP_KEYS) - set(TABLES))
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(SWEEP_KEYS + TABLES)}")
    for key in ("name", "seeds", "methods", "grid"):
        if key not in doc:
            raise UsageError(f"{where}: missing {key!r}")
    if not isinstance(doc["name"], str) or not doc["name"].strip(". "):  # it names results/<name>
        raise UsageError(f"{where}: name must be a non-empty string (results go to results/<name>), "
                         f"got {doc['name']!r}")
    if not NAME.fullmatch(doc["name"]):
        shown = doc["name"][:40] + ("..." if len(doc["name"]) > 40 else "")
        raise UsageError(f"{where}: name must be at most {NAME_MAX} letters, digits, spaces and . _ + - / (it names "
                         f"the directory results/<name>), got {shown!r}")
    seeds = _list_of(doc["seeds"], int, f"{where}: seeds")
    # J unlearning runs per θ*: [0] (the default) is one run, seeded as before unlearning seeds existed
    unlearn_seeds = _list_of(doc.get("unlearn_seeds", [0]), int, f"{where}: unlearn_seeds")
    methods = _list_of(doc["methods"], str, f"{where}: methods")
    base = overrides_from_mapping({k: doc[k] for k in TABLES if k in doc}, where)
    if not isinstance(doc["grid"], list) or not doc["grid"]:
        raise UsageError(f"{where}: grid must be a list of [[grid]] tables")
    cells: list[Cell] = []
    per_class: dict[tuple[str, int], list[str]] = {}  # (method, class) → the data sets of the entries it applies to
    for i, entry in enumerate(doc["grid"]):
        at = f"{where} grid[{i}]"
        if not isinstance(entry, dict):
            raise UsageError(f"{at}: must be a [[grid]] table (dataset, models, forget_classes), got {entry!r}")
        bad = sorted(set(entry) - set(GRID_KEYS))
        if bad or "dataset" not in entry:
            raise UsageError(f"{at}: needs dataset, models, forget_classes (seeds, methods optional); unknown key(s) "
                             f"{', '.join(bad) or '-'}")
        if not isinstance(entry["dataset"], str):
            raise UsageError(f"{at}: dataset must be one name (a string), got {entry['dataset']!r}")
        local = overrides_from_mapping({k: entry[k] for k in TABLES if k in entry}, at)
        ov = base.merged(local).merged(extra or Overrides())
        for name, classes in ov.per_class.items():
            for k in classes:
                per_class.setdefault((name, k), []).append(entry["dataset"])
        # an entry may narrow the file's seeds or methods (a big model at fewer seeds, the paper's methods alone)
        entry_seeds = _list_of(entry["seeds"], int, f"{at}: seeds") if "seeds" in entry else seeds
        entry_methods = _list_of(entry["methods"], str, f"{at}: methods") if "methods" in entry else methods
        entry_runs = _list_of(entry["unlearn_seeds"], int, f"{at}: unlearn_seeds") if "unlearn_seeds" in entry \
            else unlearn_seeds
        from .registry import get_method
        for model in _list_of(entry.get("models"), str, f"{at}: models"):
            for fc in _list_of(entry.get("forget_classes"), int, f"{at}: forget_classes"):
                for seed in entry_seeds:
                    # a cached method (the oracle) has one run per θ*, whatever the unlearning seeds
                    cells += [resolve_cell(entry["dataset"], model, fc, seed, m, ov, check_per_class=False,
                                           unlearn_seed=0 if get_method(m).cached else j, sizes=sizes)
                              for i, j in enumerate(entry_runs) for m in entry_methods
                              if i == 0 or not get_method(m).cached]
    # a per-class table must name a class of at least one data set it applies to (a file may serve several)
    from .data import get_dataset_spec
    for (name, k), datasets in per_class.items():
        specs = [get_dataset_spec(d) for d in dict.fromkeys(datasets)]
        if not any(0 <= k < s.num_classes for s in specs):
            have = "; ".join(f"{s.name} has classes 0..{s.num_classes - 1}" for s in specs)
            raise UsageError(f"{where}: [method.{name}.class.{k}]: no data set of the grid has class {k} ({have})")
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise UsageError(f"{where}: the grid lists some cells twice")
    return Sweep(doc["name"], str(doc.get("description", "")), str(doc.get("profile", "")), text, tuple(cells))
