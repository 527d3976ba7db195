"""One grid cell from the command line: train (or load) θ*, unlearn one class with one method, evaluate, record.

    python -m unlearnbench.run --dataset mnist --model resnet18 --forget-class 2 --seed 0 --method finetune

prints A_Df / A_Dr before and after and appends one JSON record to --results (default results/scratch/runs.jsonl,
an ignored path: a one-off run is not a result of the repository's).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import progress
from .budget import RULES
from .registry import check_method_name
from .config import Cell, parse_assignments
from .errors import ArgumentParser, UsageError, cli, prog
from .files import check_dir, check_file
from .plan import Overrides, data_sizes, overrides_from_file, resolve_cell
from .records import append_jsonl

if TYPE_CHECKING:
    from .runner import Env, Runner

# torch, timm and the registries load when work starts (inside the functions below): `--help` and a mistyped
# command line are answered at once.

#: Where `run` appends its record unless --results says otherwise: git-ignored, so running the README's one-cell
#: command leaves the checkout as it was.
DEFAULT_RESULTS = Path("results/scratch/runs.jsonl")


#: DataLoader worker processes: far above any machine's useful count, low enough that a typo is refused.
MAX_WORKERS = 256


def add_env_options(p: ArgumentParser) -> None:
    """Options shared by the CLIs that compute: where data and checkpoints are, which device."""
    g = p.add_argument_group("where and how to compute")
    g.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help="data ($UNLEARNBENCH_DATA, else ../shared/data if it holds MNIST, else "
                        "~/.cache/unlearnbench/data)")
    g.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="checkpoints: $UNLEARNBENCH_CACHE, else ~/.cache/unlearnbench/checkpoints")
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    g.add_argument("--no-download", action="store_true", help="never download a missing data set")
    g.add_argument("--workers", type=int, default=4, metavar="N", help="DataLoader workers (Food-101)")
    g.add_argument("-v", "--verbose", action="count", default=0, help="per-epoch losses of every term")
    g.add_argument("-q", "--quiet", action="store_true", help="only warnings and the result")


def env_from_args(args: object) -> Env:
    """The environment the options name, checked before any work: a sane worker count, a cache directory that can be
    written, a device this machine has."""
    from .runner import Env
    from .runtime import default_cache_dir, default_data_root, resolve_device
    if not 0 <= getattr(args, "workers") <= MAX_WORKERS:
        raise UsageError(f"--workers must be >= 0 and <= {MAX_WORKERS}, got {getattr(args, 'workers')}")
    env = Env(data_root=getattr(args, "data_root") or default_data_root(),
              cache_dir=getattr(args, "cache_dir") or default_cache_dir(), device=getattr(args, "device"),
              download=not getattr(args, "no_download"), num_workers=getattr(args, "workers"))
    check_dir(env.cache_dir, "--cache-dir" if getattr(args, "cache_dir") else "checkpoint cache")
    resolve_device(env.device)
    return env


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("unlearnbench").setLevel(level)
    logging.getLogger("filelock").setLevel(logging.WARNING)


def parser() -> ArgumentParser:
    me = prog("run")
    p = ArgumentParser(prog=me, description=__doc__.split("\n\n")[0],
                       usage="%(prog)s --dataset NAME --model NAME --forget-class K\n       --method NAME [options]",
                       epilog=f"""examples:
  {me} --dataset mnist --model resnet18 --forget-class 2 --method pbu --budget steps
  {me} --dataset mnist --model resnet34 --forget-class 6 --seed 1 \\
      --method pbu+stop --config benchmarks/mnist_cpu.toml --hp fisher=mc --eval oracle=false
Every KEY of --train/--data/--hp/--eval: docs/configuration.md. Methods and variants: --list.""")
    p.add_argument("--dataset", metavar="NAME", help="a data set (`unlearnbench list` names them)")
    p.add_argument("--model", metavar="NAME", help="any timm name (the paper's: `unlearnbench list`)")
    p.add_argument("--forget-class", type=int, metavar="K", help="the class to forget")
    p.add_argument("--seed", type=int, default=0, help="θ*'s init and data order, the oracle (default 0)")
    p.add_argument("--unlearn-seed", type=int, default=0, metavar="J",
                   help="the method's own run of this θ* (default 0: --seed)")
    p.add_argument("--method", metavar="NAME", help="an unlearning method or variant (see --list)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="FILE",
                   help=f"record file (default {DEFAULT_RESULTS})")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML: [data] [model] [train] [eval] [method.NAME]")
    p.add_argument("--train", action="append", metavar="KEY=VALUE", help="θ*'s training recipe, e.g. epochs=3")
    p.add_argument("--data", action="append", metavar="KEY=VALUE", help="data, e.g. train_per_class=500")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="method hyperparameter, e.g. lr=1e-4")
    p.add_argument("--eval", action="append", metavar="KEY=VALUE", help="evaluation, e.g. mia_members=0")
    p.add_argument("--budget", choices=RULES, metavar="RULE",
                   help="epochs or steps (default: the config's, else epochs)")
    p.add_argument("--pretrained", action="store_true", help="start θ* from timm's pretrained weights (hub)")
    p.add_argument("--pretrained-file", metavar="FILE", help="... or from this local weights file")
    p.add_argument("--list", action="store_true", help="list data sets, models, methods and variants")
    add_env_options(p)
    return p


def cell_from_args(args: object) -> Cell:
    """The resolved cell a parsed command line asks for (a UsageError for anything wrong); no data is touched."""
    # a sweep file works too: its shared tables apply, its grid is ignored (so any of its cells can be rerun alone)
    overrides = overrides_from_file(getattr(args, "config"))
    model_opts: dict[str, object] = {}
    pretrained_file = getattr(args, "pretrained_file")
    if getattr(args, "pretrained") or pretrained_file:
        model_opts = {"pretrained": True, **({"pretrained_file": pretrained_file} if pretrained_file else {})}
    method = getattr(args, "method")
    cli_overrides = Overrides(parse_assignments(getattr(args, "data"), "--data"), model_opts,
                              parse_assignments(getattr(args, "train"), "--train"),
                              parse_assignments(getattr(args, "eval"), "--eval"),
                              {method: parse_assignments(getattr(args, "hp"), "--hp")},
                              budget={"rule": args.budget} if getattr(args, "budget", None) else {})
    sizes = data_sizes(getattr(args, "data_root", None), download=not getattr(args, "no_download", False))

    return resolve_cell(getattr(args, "dataset"), getattr(args, "model"), getattr(args, "forget_class"),
                        getattr(args, "seed"), method, overrides.merged(cli_overrides),
                        unlearn_seed=getattr(args, "unlearn_seed"), sizes=sizes)


def list_everything(width: int = 100) -> str:
    """Data sets, models, methods and variants, each method with the data it declares and its one line, wrapped at
    `width` (`unlearnbench list METHOD` gives one method's settings). Read from the source, so without torch: at once."""
    from .catalog import dataset_names, model_names, wrap
    from .registry import method_entries
    lines = [*wrap("datasets: " + ", ".join(dataset_names()), "  ", width),
             *wrap("models: " + ", ".join(model_names()) + " (or any timm name)", "  ", width), "methods:"]
    entries = method_entries()
    name_w = max(len(e.name) for e in entries)
    for e in entries:
        start = f"  {e.name:{name_w}s}  {'+'.join(sorted(e.needs)) or 'nothing':14s} "
        lines += wrap(start + e.summary, " " * len(start), width)
    lines.append("settings of one method, with default, range and source: unlearnbench list METHOD")
    return "\n".join(lines)


#: How the methods table names the data a method declares (`needs`).
NEEDS = {frozenset(): "none", frozenset({"retain"}): "D_r", frozenset({"forget"}): "D_f only",
         frozenset({"forget", "retain"}): "D_f + D_r"}


def methods_markdown(docs: str = "docs/methods.md") -> str:
    """The methods table the README shows: every method and variant in `--list` order, the data it declares, its one
    line, and a link to its section of the methods page (a variant links to its base method's)."""
    from .registry import get_method, list_methods
    rows = ["| method | data | what it does | docs |", "|---|---|---|---|"]
    for name in list_methods():
        spec = get_method(name)
        base = spec.base or name
        line = spec.summary.replace("|", "\\|")
        rows.append(f"| `{name}` | {NEEDS[spec.needs]} | {line} | [docs]({docs}#{base}) |")
    return "\n".join(rows) + "\n"


def plan_text(runner: "Runner", cell: Cell) -> str:
    """What a one-cell run will do before it starts: what it trains (θ*, the oracle) or finds in the cache, and the
    planner's rough estimate of how long it takes on this host (the same estimate a sweep prints)."""
    from .registry import get_method
    from .sweep import CALIBRATION_FILE, TIMED_STEPS, Job, Plan, estimate, oracle_key
    s = cell.setup
    runner.data(s.data)  # missing data: its one-line error comes before any estimate
    have_theta = runner.cache.contains(s.key)
    oracle = oracle_key(runner, cell)
    jobs = ([] if have_theta else [Job("original", s)]) + [Job("cell", s, cell)]
    seconds = estimate(Plan(jobs, 1, int(have_theta), 1, 0, int(bool(oracle)), 0), runner)
    steps = [f"θ* {s.model.name} on {s.data.name} (seed {s.seed}, {s.train.epochs} epoch(s)): "
             + ("in the cache" if have_theta else "trains now")]
    if oracle and not get_method(cell.method).cached:
        steps.append("the retrained oracle (retrain, class "
                     f"{cell.forget_class}): " + ("in the cache" if runner.cache.contains(oracle) else "trains now"))
    steps.append(f"{cell.method} on class {cell.forget_class}" + (
        ": in the cache" if get_method(cell.method).cached and oracle and runner.cache.contains(oracle) else ""))
    return (f"{cell.label}\n  plan: " + "; then ".join(steps) + f"\n  estimated: ~{progress.duration(seconds)} on "
            f"{runner.device} (rough: seconds per training image measured once on this host, median of {TIMED_STEPS} "
            f"steps, kept in {CALIBRATION_FILE}, times the images each step trains on)")


def announce(runner: "Runner", cell: Cell, quiet: bool = False) -> None:
    """Print `plan_text` to stderr unless quiet."""
    if not quiet:
        print(plan_text(runner, cell), file=sys.stderr, flush=True)


def _fmt(x: float | None) -> str:
    return "   n/a" if x is None or x != x else f"{x:6.2f}"


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        print(list_everything())
        return 0
    missing = [f"--{k.replace('_', '-')}" for k in ("dataset", "model", "forget_class", "method")
               if getattr(args, k) is None]
    if missing:
        parser().error(f"missing {', '.join(missing)}")
    check_method_name(args.method)  # a typo is answered before torch loads
    for option in ("train", "data", "hp", "eval"):
        parse_assignments(getattr(args, option), f"--{option}")
    setup_logging(args.verbose, args.quiet)
    progress.configure("quiet" if args.quiet else "auto")
    cell = cell_from_args(args)
    check_file(args.results, "--results")  # before the work: a result that cannot be stored is not computed
    from .runner import Runner
    runner = Runner(env_from_args(args))
    announce(runner, cell, quiet=args.quiet)
    record = runner.run(cell)
    append_jsonl(args.results, record)
    r = record
    print(f"{cell.label}")
    print(f"  original : {'cache hit' if r['original_cache_hit'] else 'trained now'} "
          f"({r['original_train_seconds']:.1f} s of training)")
    print("              A_Df    A_Dr")
    print(f"  original  {_fmt(r['original_acc_forget'])}  {_fmt(r['original_acc_retain'])}")
    print(f"  {cell.method:9s} {_fmt(r['acc_forget'])}  {_fmt(r['acc_retain'])}")
    cached = {True: " (cache hit: time of the cached run)", False: " (trained now and cached)"}.get(
        r["method_cache_hit"], "")
    print(f"  unlearning took {r['unlearn_seconds']:.2f} s{cached}; drew {r['forget_samples_seen']} forget and "
          f"{r['retain_samples_seen']} retain samples ({r['forget_draws']} + {r['retain_draws']} draws)")
    print(f"  record appended to {args.results} (config {r['config_hash']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
