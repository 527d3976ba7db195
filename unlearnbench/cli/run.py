"""One grid cell from the command line: train (or load) θ*, unlearn one class with one method, evaluate, record.

    python -m unlearnbench.run --dataset mnist --model resnet18 --forget-class 2 --seed 0 --method finetune

prints A_Df / A_Dr before and after and appends one JSON record to --results (default results/scratch/runs.jsonl,
an ignored path: a one-off run is not a result of the repository's).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .. import progress
from ..budget import RULES
from ..config import Cell, parse_assignments
from ..files import check_file
from ..plan import Overrides, data_sizes, overrides_from_file, resolve_cell
from ..records import append_jsonl
from ..registry import check_method_name
from .listing import list_everything
from .options import ArgumentParser, add_env_options, cli, env_from_args, prog, setup_logging

if TYPE_CHECKING:
    from ..runner import Runner

# torch, timm and the registries load when work starts (inside the functions below): `--help` and a mistyped
# command line are answered at once.

#: Where `run` appends its record unless --results says otherwise: git-ignored, so running the README's one-cell
#: command leaves the checkout as it was.
DEFAULT_RESULTS = Path("results/scratch/runs.jsonl")


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


def plan_text(runner: "Runner", cell: Cell) -> str:
    """What a one-cell run will do before it starts: what it trains (θ*, the oracle) or finds in the cache, and the
    planner's rough estimate of how long it takes on this host (the same estimate a sweep prints)."""
    from ..registry import get_method
    from ..sweep import CALIBRATION_FILE, TIMED_STEPS, Job, Plan, estimate, oracle_key
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
    from ..runner import Runner
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
