"""The Python API, for notebooks and scripts: what the command line does, as functions (docs/api.md).

    import unlearnbench as ub
    record = ub.run_cell(dataset="mnist", model="resnet18", forget_class=2, method="pbu", hp={"beta": 90})
    ub.run_sweep("benchmarks/mnist_quick.toml")
    df = ub.load_results("results/mnist_quick")          # a pandas DataFrame, one row per record
    summary = ub.build_report("results/mnist_quick")     # writes report/ as `unlearnbench report` does
    ub.list_methods(); ub.get_method("pbu").defaults     # each setting's default, range and source

Everything is checked as the command line checks it (the same functions resolve a cell) and a mistake raises
`UsageError` with the command line's one-line message. A user's own method, data set or model is registered from the
user's own module before the call (`register_method`, `register_dataset`, timm's `register_model`; docs/api.md).
Data are found by the package's one rule (`data_root()`), checkpoints in the same cache as the CLI's.

`run_sweep` and `build_report` are not called `sweep` and `report`: those are the command modules
(`unlearnbench.sweep`, `unlearnbench.report`), which an attribute of the package of the same name would shadow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .errors import UsageError

if TYPE_CHECKING:
    import pandas

    from .method import MethodSpec

__all__ = ["run_cell", "run_sweep", "load_results", "build_report", "list_methods", "get_method", "list_datasets",
           "list_models", "data_root", "register_method", "register_variant", "register_dataset", "UsageError"]


def data_root() -> Path:
    """Where data sets are found: $UNLEARNBENCH_DATA, else ../shared/data beside the checkout when it holds MNIST,
    else ~/.cache/unlearnbench/data (the one rule of the CLI and `make` too)."""
    from .runtime import default_data_root
    return default_data_root()


def _env(data_root: str | Path | None, cache_dir: str | Path | None, device: str, download: bool) -> Any:
    from .files import check_dir
    from .runner import Env
    from .runtime import default_cache_dir, default_data_root, resolve_device
    env = Env(data_root=Path(data_root) if data_root else default_data_root(),
              cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(), device=device, download=download)
    check_dir(env.cache_dir, "cache_dir")
    resolve_device(device)
    return env


def run_cell(dataset: str, model: str, forget_class: int, method: str, seed: int = 0, *,
             hp: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None,
             data: Mapping[str, Any] | None = None, eval: Mapping[str, Any] | None = None,  # noqa: A002
             config: str | Path | None = None, results: str | Path | None = None,
             data_root: str | Path | None = None, cache_dir: str | Path | None = None, device: str = "auto",
             download: bool = True, progress: str = "auto") -> dict[str, Any]:
    """One cell, as `unlearnbench run`: train (or load from the cache) θ* and the oracle, unlearn `forget_class`
    with `method` on a copy, evaluate; returns the record (a dict; docs/records_and_cache.md).

    `hp`, `train`, `data`, `eval`: any key of docs/configuration.md (as `--hp KEY=VALUE` ...), over `config` (a run
    or sweep file's shared tables). `results`: a JSON-lines file to append the record to (none by default).
    `progress`: "auto" (a bar on a terminal, else a line every 30 s), "bar", "lines" or "quiet"."""
    from . import progress as progress_
    from .plan import Overrides, overrides_from_file, resolve_cell
    from .records import append_jsonl
    from .runner import Runner
    get_method(method)  # "did you mean" for a typo, before anything loads data
    given = Overrides(dict(data or {}), {}, dict(train or {}), dict(eval or {}), {method: dict(hp or {})})
    cell = resolve_cell(dataset, model, forget_class, seed, method,
                        overrides_from_file(Path(config) if config else None).merged(given))
    if results is not None:
        from .files import check_file
        check_file(Path(results), "results")
    progress_.configure(progress)
    record = Runner(_env(data_root, cache_dir, device, download)).run(cell)
    if results is not None:
        append_jsonl(Path(results), record)
    return record


def run_sweep(config: str | Path, *, results: str | Path | None = None, only: Mapping[str, Any] | None = None,
              set: Mapping[str, Any] | None = None, jobs: int = 1, dry_run: bool = False,  # noqa: A002
              data_root: str | Path | None = None, cache_dir: str | Path | None = None, device: str = "auto",
              quiet: bool = False) -> Path:
    """A sweep file's grid, as `unlearnbench sweep`: planned, resumed from the records already there, run;
    returns the results directory (default results/<sweep name>). `only`: e.g. {"seed": 0, "method": ["pbu",
    "retrain"]} (`--only`); `set`: e.g. {"train.epochs": 1} (`--set`). Raises UsageError for bad input and
    RuntimeError when jobs failed (their tracebacks are under <results>/logs/)."""
    from .plan import load_sweep
    from .cli.sweep import main
    argv = ["--config", str(config), "--jobs", str(jobs)]
    for key, value in (only or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        argv += ["--only", f"{key}={','.join(map(str, values))}"]
    for key, value in (set or {}).items():
        argv += ["--set", f"{key}={_toml_value(value)}"]
    for flag, value in (("--results", results), ("--data-root", data_root), ("--cache-dir", cache_dir)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--device", device] + (["--dry-run"] if dry_run else []) + (["--quiet"] if quiet else [])
    code = main.__wrapped__(argv)  # type: ignore[attr-defined]  # raises UsageError instead of printing it
    if code:
        raise RuntimeError(f"run_sweep({config!s}): some jobs failed (exit status {code}); see the logs/ folder of "
                           "its results directory")
    return Path(results) if results else Path("results") / load_sweep(Path(config)).name.replace("/", "_")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_results(path: str | Path) -> "pandas.DataFrame":
    """The records of a results directory (or a .jsonl file) as a DataFrame: one row per cell and seed (the newest
    record of each), the keys (dataset, model, forget_class, method, seed) and every metric of the report."""
    from .aggregate import latest_per_seed, records_frame
    from .store import load_records
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    records, _ = latest_per_seed(load_records(path))
    return records_frame(records)


def build_report(path: str | Path, *, compare_paper: bool = False, ci: bool = False,
                 methods: Sequence[str] | None = None, metrics: Sequence[str] | None = None,
                 out: str | Path | None = None, formats: Sequence[str] = ("csv", "tex", "md"), plots: bool = True,
                 strict: bool = False, quiet: bool = True) -> "pandas.DataFrame":
    """Tables and plots of a results directory, as `unlearnbench report` writes them (under `out`, default
    <path>/report); returns the tidy summary (one row per data set / model / class / method: mean, std, n of every
    metric). `quiet`: don't print the terminal table."""
    import contextlib
    import io

    from .aggregate import latest_per_seed, records_frame, summarize
    from .cli.report import main
    from .store import load_records
    argv = [str(path), "--format", ",".join(formats)]
    argv += (["--compare-paper"] if compare_paper else []) + (["--ci"] if ci else []) + (["--strict"] if strict else [])
    argv += (["--methods", ",".join(methods)] if methods else []) + (["--metrics", ",".join(metrics)] if metrics
                                                                      else [])
    argv += (["--out", str(out)] if out else []) + ([] if plots else ["--no-plots"])
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        main.__wrapped__(argv)  # type: ignore[attr-defined]
    records, _ = latest_per_seed(load_records(Path(path)))
    if methods:
        records = [r for r in records if r.get("method") in methods]
    return summarize(records_frame(records))


# --------------------------------------------------------------------------------------------------------------------
# the registries
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One hyperparameter of a method: its default, valid range ("" when any value of its type), and source."""

    default: Any
    type: str
    range: str
    source: str


@dataclass(frozen=True)
class MethodInfo:
    """What `get_method` tells about a method or variant."""

    name: str
    summary: str
    needs: frozenset[str]
    base: str | None  # a variant: the method it varies
    cached: bool
    defaults: dict[str, Setting] = field(default_factory=dict)  # name → default, range, source
    spec: "MethodSpec | None" = field(default=None, repr=False)  # the registry's entry (hparams class, function)

    def __str__(self) -> str:
        from .registry import describe_method
        return describe_method(self.name)


def get_method(name: str) -> MethodInfo:
    """A registered method or variant: its one line, the data it needs, and `defaults` (each setting's default,
    valid range and source). UsageError with "did you mean" for an unknown name."""
    from .registry import get_method as spec_of, settings
    spec = spec_of(name)
    defaults = {s["name"]: Setting(s["default"], s["type"], s["range"], s["source"]) for s in settings(name)}
    return MethodInfo(name, spec.summary, spec.needs, spec.base, spec.cached, defaults, spec)


def list_methods(variants: bool = True) -> list[str]:
    """Every registered method (the paper's first) each followed by its variants; `variants=False`: methods only."""
    from .registry import list_methods as names
    return names(variants)


def list_datasets() -> list[str]:
    from .data import list_datasets as names
    return names()


def list_models() -> list[str]:
    """The paper's and the quick profile's models; any timm name (timm.list_models()) works too."""
    from .models import list_models as names
    return names()


def register_method(name: str, **kw: Any) -> Any:
    """`@register_method("name", hparams=HP, needs=("forget",))` on a function `fn(model, task, hp, seed)`: see
    docs/adding_a_method.md (the contract) and docs/api.md (from a module of your own)."""
    from .method import register_method as register
    return register(name, **kw)


def register_variant(name: str, base: str, overrides: Mapping[str, Any], note: str) -> None:
    from .method import register_variant as register
    from .registry import get_method as spec_of
    spec_of(base)  # loads the built-in methods first, so a variant of one of them finds its base
    register(name, base, overrides, note)


def register_dataset(spec: Any) -> Any:
    """Register a `unlearnbench.data.DatasetSpec` (docs/api.md: a data set of your own)."""
    from .data import register_dataset as register
    return register(spec)
