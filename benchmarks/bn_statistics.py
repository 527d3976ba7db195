"""Is a method's loss of A_Dr in its BatchNorm running statistics or in its weights?

    python benchmarks/bn_statistics.py benchmarks/mnist_quick.toml --only method=finetune --only forget_class=8
    python benchmarks/bn_statistics.py benchmarks/mnist_retain_free.toml --only method=jit --only forget_class=2 \\
        --only seed=1
    python benchmarks/bn_statistics.py benchmarks/robustness.toml --only dataset=fashion_mnist --only model=resnet18 \\
        --only method=fast_effective --only forget_class=8

For one cell of a sweep file, named by `--only` as in the sweep (each key the file varies), (θ* from the checkpoint cache, trained if missing) it runs the cell's method as the
sweep does, then evaluates the one unlearned model on the test set three ways: as every record does (eval mode, the
running statistics), with each BatchNorm layer normalising by the test batch's own statistics
(`predict_batch_statistics`: train mode, on a copy), and after `recalibrate_bn` recomputes the running statistics
from the retain training images at the final weights (a copy again). If the last two recover A_Dr, the weights are
intact and the running statistics are what the method broke. It exists to explain a number, not to produce one: the
recalibration reads the retain set, which a retain-free method never sees.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Sequence

from unlearnbench.errors import cli
from unlearnbench.plan import load_sweep, one_cell, selections
from unlearnbench.run import add_env_options, env_from_args
from unlearnbench.runtime import deterministic
from unlearnbench.sweep import shared_runner
from unlearnbench.train import forget_retain_accuracy, predict, predict_batch_statistics, recalibrate_bn


@cli
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V", required=True,
                    help="the cell: method=, and dataset=, model=, forget_class=, seed= where the file has several")
    ap.add_argument("--batch", type=int, default=500, help="test batch size of the train-mode evaluation")
    add_env_options(ap)
    args = ap.parse_args(argv)
    cell = one_cell(load_sweep(Path(args.config)), selections(args.only))
    runner = shared_runner(env_from_args(args))
    data = runner.data(cell.setup.data)
    runtime, labels, k = runner.runtime(cell.setup.train), data.test.labels, cell.forget_class
    test = data.sample_set("test")
    original, _, _ = runner.original(cell.setup)
    model, facts = runner.unlearn(cell)
    recalibrated = copy.deepcopy(model)
    recalibrate_bn(recalibrated, data.sample_set("train", "retain", k), runtime, cell.setup.train.batch_size)
    with deterministic(cell.setup.seed):  # dropout, if the model has any, draws from the global RNG in train mode
        batch_statistics = predict_batch_statistics(model, test, runtime, args.batch)
    rows = [("θ*, eval mode", predict(original.eval(), test, runtime, cell.eval.batch_size)),
            ("unlearned, eval mode (the record's)", predict(model.eval(), test, runtime, cell.eval.batch_size)),
            (f"unlearned, batch statistics (test batches of {args.batch})", batch_statistics),
            ("unlearned, running statistics recalibrated on D_r",
             predict(recalibrated.eval(), test, runtime, cell.eval.batch_size))]
    print(f"{cell.setup.data.name}/{cell.setup.model.name} class {k} seed {cell.setup.seed}, {cell.method} "
          f"({facts['unlearn_seconds']:.1f} s)")
    for name, logits in rows:
        a_f, a_r = forget_retain_accuracy(logits, labels, k)
        print(f"  {name:58s} A_Df {a_f:6.2f}  A_Dr {a_r:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
