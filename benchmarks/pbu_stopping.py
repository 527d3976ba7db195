"""PBU's stopping rule and BatchNorm statistics, compared side by side on the same θ* and the same Fisher.

    python benchmarks/pbu_stopping.py benchmarks/mnist_cpu.toml --forget-class 2 6 8 --seed 0 \\
        --variant official-rule= --variant holdout=stop_holdout=true --variant keep-bn=bn_stats=keep

For each PBU cell of a sweep file (θ* from the checkpoint cache, trained if missing) and each variant (a name and
PBU hyperparameter overrides, `key=value` joined by `,`), it runs PBU and prints A_Df / A_Dr on the test set, the
steps taken and the forget draws. It exists to choose a default with evidence, not to produce table numbers: no MIA,
no oracle. The diagonal Fisher depends only on θ*, S_n and the Fisher variant, so it is computed once per cell and
Fisher variant and reused by every variant (the seconds printed therefore leave the Fisher out).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import unlearnbench.methods.pbu as pbu_module
from unlearnbench.config import parse_assignments
from unlearnbench.plan import Overrides, load_sweep, select_cells
from unlearnbench.run import add_env_options, env_from_args, setup_logging
from unlearnbench.sweep import _runner
from unlearnbench.train import forget_retain_accuracy, predict


class _FisherMemo:
    """Wraps `diagonal_fisher`: one computation per (cell, Fisher variant)."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.key, self.store, self.seconds = fn, None, {}, 0.0

    def __call__(self, model: Any, batches: Any, variant: str, **kw: Any) -> Any:
        key = (self.key, variant)
        if key not in self.store:
            start = time.perf_counter()
            self.store[key] = self.fn(model, batches, variant, **kw)
            self.seconds += time.perf_counter() - start
        return self.store[key]


class _Steps(logging.Handler):
    """Reads the step count from PBU's own stop message (the method reports nothing else)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.steps: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("pbu: forget probe"):
            self.steps = int(record.args[1])  # type: ignore[index]


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, assignments = text.partition("=")
    pairs = [a for a in assignments.split(",") if a]
    return name, parse_assignments(pairs, "--variant") if pairs else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--forget-class", type=int, nargs="+", required=True)
    ap.add_argument("--seed", type=int, nargs="+", default=[0])
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=K=V,K=V",
                    help="a named set of PBU overrides; NAME= alone runs the file's settings")
    add_env_options(ap)
    args = ap.parse_args()
    setup_logging(args.verbose, args.quiet)
    memo = _FisherMemo(pbu_module.diagonal_fisher)
    pbu_module.diagonal_fisher = memo
    steps = _Steps()
    logging.getLogger("unlearnbench").addHandler(steps)
    runner = _runner(env_from_args(args))
    variants = [parse_variant(v) for v in args.variant]
    print(f"{'class':>5} {'seed':>4} {'variant':<24} {'A_Df':>6} {'A_Dr':>6} {'θ* A_Dr':>7} {'steps':>5} "
          f"{'draws':>6} {'s (no Fisher)':>13}", flush=True)
    for seed in args.seed:
        for fc in args.forget_class:
            for name, hp in variants:
                sweep = select_cells(load_sweep(args.config, Overrides(method={"pbu": hp})),
                                     {"method": "pbu", "seed": str(seed), "forget_class": str(fc)})
                cell = sweep.cells[0]
                data = runner.data(cell.setup.data)
                runtime = runner.runtime(cell.setup.train)
                original, _, _ = runner.original(cell.setup)
                test = data.sample_set("test")
                _, before = forget_retain_accuracy(predict(original, test, runtime), test.labels, fc)
                memo.key, steps.steps = (cell.setup.key, fc), None
                start, fisher_before = time.perf_counter(), memo.seconds
                model, facts = runner.unlearn(cell)
                seconds = time.perf_counter() - start - (memo.seconds - fisher_before)
                a_df, a_dr = forget_retain_accuracy(predict(model, test, runtime), test.labels, fc)
                print(f"{fc:>5} {seed:>4} {name:<24} {a_df:6.2f} {a_dr:6.2f} {before:7.2f} "
                      f"{steps.steps if steps.steps is not None else 'max':>5} {facts['forget_draws']:>6} "
                      f"{seconds:13.1f}", flush=True)


if __name__ == "__main__":
    main()
