"""PBU's stopping rule and BatchNorm statistics, compared side by side on the same θ*.

    python benchmarks/pbu_stopping.py benchmarks/mnist_cpu.toml --only model=resnet34 --only seed=0 \\
        --only forget_class=2,6,8 --method pbu pbu+stop pbu+holdout pbu+keep_bn

For each PBU cell of a sweep file that the `--only` selections pick (the sweep's keys; θ* from the checkpoint cache,
trained if missing) and each PBU method or variant
named, it runs the method as the sweep would (the file's per-class α, β apply to every variant) and prints A_Df / A_Dr
on the test set, the steps taken, whether the stopping rule fired and the forget draws, all read from what the runner
returns (the method's diagnostics), and the seconds spent outside the Fisher. It exists to choose a default with
evidence, not to produce table numbers: no MIA, no oracle.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

from unlearnbench.cli.options import add_env_options, cli, env_from_args, setup_logging
from unlearnbench.errors import UsageError
from unlearnbench.registry import get_method
from unlearnbench.plan import selections, sweep_share
from unlearnbench.sweep import shared_runner
from unlearnbench.train import forget_retain_accuracy, predict


@cli
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                    help="the PBU cells to run, as sweep --only selects them (dataset, model, forget_class, seed)")
    ap.add_argument("--method", nargs="+", default=["pbu", "pbu+stop"], help="pbu and/or its variants (see --list)")
    add_env_options(ap)
    args = ap.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    for name in args.method:
        if (get_method(name).base or name) != "pbu":
            ap.error(f"{name} is not PBU or one of its variants")
    chosen = selections(args.only)
    if "method" in chosen:
        raise UsageError("--only method=... is not for this script: name PBU's variants with --method")
    cells = sweep_share(args.config, {**chosen, "method": "pbu"}, data_root=args.data_root,
                        download=not args.no_download).cells  # checked before any work
    runner = shared_runner(env_from_args(args))
    print(f"{'model':<12} {'class':>5} {'seed':>4} {'method':<16} {'A_Df':>6} {'A_Dr':>6} {'θ* A_Dr':>7} {'steps':>5} "
          f"{'stopped':>7} {'draws':>6} {'s (no Fisher)':>13}", flush=True)
    for pbu_cell in cells:
        fc, setup = pbu_cell.forget_class, pbu_cell.setup
        # θ* and its accuracy once per cell: every variant starts from the same θ*
        runtime = runner.runtime(setup.train)
        test = runner.data(setup.data).sample_set("test")
        original, _, _ = runner.original(setup)
        _, before = forget_retain_accuracy(predict(original, test, runtime), test.labels, fc)
        for name in args.method:
            # the file's PBU settings (per-class α, β included), then the variant's overrides
            cell = replace(pbu_cell, method=name, hparams=get_method(name).resolve({}, asdict(pbu_cell.hparams)))
            model, facts = runner.unlearn(cell)
            diag = facts["diagnostics"]
            a_df, a_dr = forget_retain_accuracy(predict(model, test, runtime), test.labels, fc)
            print(f"{setup.model.name:<12} {fc:>5} {setup.seed:>4} {name:<16} {a_df:6.2f} {a_dr:6.2f} "
                  f"{before:7.2f} {diag['steps']:>5} {'yes' if diag['stopped_early'] else 'no':>7} "
                  f"{facts['forget_draws']:>6} {facts['unlearn_seconds'] - diag['fisher_seconds']:13.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
