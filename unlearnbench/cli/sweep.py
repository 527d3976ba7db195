"""Run a grid of cells from a sweep file: planned, resumable, parallel (joblib processes or a Dask cluster).

    python -m unlearnbench.sweep --config benchmarks/mnist_quick.toml [--jobs N] [--jobs-per-gpu N]
                                 [--backend loky|dask] [--scheduler ADDRESS] [--dry-run] [--results DIR]

The command (`unlearnbench sweep`): its options, the checks made before any work (the command line, the sweep file's
method names, the data, the output directories), then the plan and its run by `unlearnbench.sweep`, with a progress
line per finished job.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .. import sweep as engine
from ..config import Cell, parse_assignments
from ..errors import UsageError
from ..files import atomic_write_bytes, atomic_write_json, check_dir, make_dirs, regular_file_problem
from ..plan import SETTINGS, Overrides, Sweep, selections, sweep_share
from ..progress import duration
from ..store import RecordStore
from .options import ArgumentParser, add_env_options, cli, env_from_args, prog, setup_logging

if TYPE_CHECKING:
    from ..runner import Env, Runner
    from ..sweep import Outcome, Plan


def parser() -> ArgumentParser:
    me = prog("sweep")
    p = ArgumentParser(prog=me, description=__doc__.split("\n\n")[0],
                       usage="%(prog)s --config FILE [--dry-run] [--only KEY=V1,V2] [options]",
                       epilog=f"""examples:
  {me} --config benchmarks/mnist_quick.toml --dry-run
  {me} --config benchmarks/mnist_cpu.toml --only seed=0 --only method=pbu
  {me} --config benchmarks/mnist_paper.toml --set method.pbu.fisher=mc \\
      --only model=resnet34 --results results/pbu_mc
The sweep file's format: docs/configuration.md. What it writes: docs/records_and_cache.md.""")
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="sweep file (see benchmarks/)")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="parallel jobs (default: --jobs-per-gpu per visible GPU, else 1; each gets cores/N threads)")
    p.add_argument("--jobs-per-gpu", type=int, default=1, metavar="N",
                   help="jobs sharing one GPU at once (default 1), for models that leave a GPU mostly idle; slot i "
                        "runs on cuda:(i mod GPUs); records say how many shared it. Refused without a GPU")
    p.add_argument("--backend", choices=("loky", "dask"), default="loky",
                   help="loky: local processes (default); dask: a dask.distributed cluster")
    p.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler (default with dask: a local cluster)")
    p.add_argument("--results", type=Path, metavar="DIR", help="results directory (default results/<sweep name>)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its cost estimate, run nothing")
    p.add_argument("--no-estimate", action="store_true", help="skip the cost estimate (it times a few steps)")
    p.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", default=[],
                   help="override the file, e.g. train.epochs=1 or method.pbu.fisher=mc")
    p.add_argument("--only", action="append", metavar="KEY=V1,V2", default=[],
                   help="only the cells with these dataset/model/forget_class/seed/method values")
    add_env_options(p)
    return p


def set_overrides(assignments: list[str]) -> Overrides:
    """`--set TABLE.KEY=VALUE` items as Overrides (the sweep's, and the scripts' that explain its cells)."""
    tables: dict[str, dict[str, Any]] = {t: {} for t in SETTINGS}
    methods: dict[str, dict[str, Any]] = {}
    for key, value in parse_assignments(assignments, "--set").items():
        parts = key.split(".")
        if parts[0] in tables and len(parts) == 2:
            tables[parts[0]][parts[1]] = value
        elif parts[0] == "method" and len(parts) == 3:
            from ..registry import get_method
            get_method(parts[1]).resolve({parts[2]: value})
            methods.setdefault(parts[1], {})[parts[2]] = value
        else:
            raise UsageError(f"--set {key}: expected {'|'.join(SETTINGS)}.KEY or method.NAME.KEY")
    return Overrides(method=methods, **tables)


def _check_method_names(sweep_file: Path) -> None:
    """A mistyped method name in the sweep file's `methods` lists, answered before torch loads."""
    from ..plan import read_toml
    from ..registry import check_method_name
    try:
        doc = read_toml(sweep_file)
    except UsageError:
        return  # load_sweep says what is wrong with the file
    entries = doc.get("grid") if isinstance(doc.get("grid"), list) else []
    for names in [doc.get("methods"), *(e.get("methods") for e in entries if isinstance(e, dict))]:
        for name in names if isinstance(names, list) else ():
            if isinstance(name, str):
                try:
                    check_method_name(name)
                except UsageError as exc:
                    raise UsageError(f"{sweep_file}: {exc}") from None


def _check_data(sweep: Sweep, runner: Runner) -> None:
    """Missing data is a configuration error: report it before any work."""
    for cfg in {c.setup.data for c in sweep.cells}:
        runner.data(cfg)


def _record_cells(path: Path, cells: Sequence[Cell]) -> None:
    """Every resolved cell config ever planned into this results directory: runs of shares of a grid (`--only`)
    add to it instead of replacing the earlier shares' cells."""
    try:
        if regular_file_problem(path) is not None:  # none yet, or a FIFO or a device, never read
            raise OSError(path)
        known = {c["config_hash"]: c for c in json.loads(path.read_text())}
    except (OSError, ValueError, TypeError, KeyError):  # none yet, or unreadable: it is rebuilt from this run
        known = {}
    before = list(known.values())
    known.update({c.key: c.to_dict() | {"config_hash": c.key} for c in cells})
    if list(known.values()) != before or not path.exists():  # unchanged: the file is left as it is
        atomic_write_json(path, list(known.values()))


def sweep_from_args(args: Any) -> Sweep:
    """The resolved sweep (its `--only` share) a parsed command line asks for; every cell checked, no data touched."""
    return sweep_share(args.config, selections(args.only), set_overrides(args.set), data_root=args.data_root,
                       download=not args.no_download)


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet or not args.verbose)
    _check_method_names(args.config)
    sweep = sweep_from_args(args)
    if not 0 <= args.jobs <= engine.MAX_JOBS:
        raise UsageError(f"--jobs must be >= 0 and <= {engine.MAX_JOBS}, got {args.jobs}")
    if not 1 <= args.jobs_per_gpu <= engine.MAX_JOBS:
        raise UsageError(f"--jobs-per-gpu must be >= 1 and <= {engine.MAX_JOBS}, got {args.jobs_per_gpu}")
    if args.scheduler and args.backend != "dask":
        raise UsageError("--scheduler goes with --backend dask")
    results = args.results or Path("results") / sweep.name.replace("/", "_")
    what = "--results" if args.results else "results directory"
    for path in (results, results / "records", results / "logs"):  # checked now: nothing is computed in vain
        check_dir(path, what)
    import torch  # work starts here: the command line and the sweep file are checked
    # θ* and the oracles train at this process's thread count in every job, whatever --jobs (see Env.train_threads)
    env = replace(env_from_args(args), train_threads=torch.get_num_threads())
    client = engine.connect_scheduler(args.scheduler) if args.scheduler else None  # reached before anything is written
    runner = engine.shared_runner(env)
    workers = engine.plan_workers(engine.visible_gpus(env, runner.device), args.jobs, args.jobs_per_gpu,
                                  not args.scheduler)
    n_jobs = workers.n_jobs
    _check_data(sweep, runner)
    store = RecordStore(results)
    plan = engine.make_plan(sweep, store, runner.cache, runner)
    for path, problem in plan.corrupt:
        print(f"note: {path}: {problem}; its cell runs again", file=sys.stderr)
    if not args.no_estimate and plan.jobs:
        # jobs sharing a GPU are not counted as faster: how much they gain depends on how idle one job leaves it
        plan.estimate_s = engine.estimate(plan, runner) / (min(n_jobs, workers.n_gpus) if workers.n_gpus else n_jobs)
    print(engine.describe(sweep, plan, results, runner.device, workers), flush=True)
    if args.dry_run:
        if client is not None:
            client.close()
        return 0
    store.create()
    make_dirs(env.cache_dir)  # here, once: a worker whose job fails then never removes it under another's feet
    stored = results / "sweep.toml"
    if not stored.is_file() or stored.read_text(encoding="utf-8") != sweep.text:  # unchanged: left as it is
        # replaced, not opened for writing: whatever was there (a FIFO would block) goes
        atomic_write_bytes(stored, lambda f: f.write(sweep.text.encode("utf-8")))
    _record_cells(results / "cells.json", sweep.cells)
    return _execute(plan, env, results, n_jobs, args.backend, args.scheduler, args.quiet, args.jobs_per_gpu, client)


def _execute(plan: Plan, env: Env, results: Path, n_jobs: int, backend: str, scheduler: str | None,
             quiet: bool, jobs_per_gpu: int = 1, client: Any = None) -> int:
    """Run the plan; a progress bar on a terminal, and one line per finished job (with an ETA) in any case."""
    from tqdm import tqdm
    start = time.perf_counter()
    failed: list[Outcome] = []
    counts: dict[str, int] = {}
    total = len(plan.jobs)
    with tqdm(total=total, unit="job", disable=quiet or not total or not sys.stderr.isatty(), file=sys.stderr,
              dynamic_ncols=True) as bar:
        jobs = engine.run_jobs(plan.jobs, env, results, n_jobs, backend, scheduler, jobs_per_gpu, client,
                        "quiet" if quiet else "lines")
        for k, out in enumerate(jobs, 1):
            counts[out.status] = counts.get(out.status, 0) + 1
            elapsed = time.perf_counter() - start
            eta = f", ETA {duration(elapsed / k * (total - k))}" if k < total else ""
            if out.status == "failed":
                failed.append(out)
                tqdm.write(f"[{k}/{total}] FAILED {out.label}: {out.detail}", file=sys.stderr)
            elif not quiet:
                tqdm.write(f"[{k}/{total}{eta}] {out.status} {out.label} ({out.seconds:.1f} s) {out.detail}",
                           file=sys.stderr)
            bar.update(1)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
    print(f"finished in {duration(time.perf_counter() - start)}: {summary}; records in {results / 'records'}")
    if failed:
        print(f"{len(failed)} job(s) failed; their tracebacks are under {results / 'logs'}", file=sys.stderr)
        return 1
    return 0
