"""Is a method's loss of A_Dr in its BatchNorm running statistics or in its weights?

    python benchmarks/bn_statistics.py benchmarks/mnist_quick.toml --method finetune --forget-class 8
    python benchmarks/bn_statistics.py benchmarks/mnist_retain_free.toml --method jit --forget-class 2 --seed 1
    python benchmarks/bn_statistics.py benchmarks/robustness.toml --dataset fashion_mnist --model resnet18 \\
        --method fast_effective --forget-class 8

For one cell of a sweep file (θ* from the checkpoint cache, trained if missing) it runs the cell's method as the
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
from pathlib import Path

from unlearnbench.plan import load_sweep, select_cells
from unlearnbench.run import add_env_options, env_from_args
from unlearnbench.runtime import deterministic
from unlearnbench.sweep import shared_runner
from unlearnbench.train import forget_retain_accuracy, predict, predict_batch_statistics, recalibrate_bn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--method", required=True, help="a method or variant of the sweep file's grid")
    ap.add_argument("--forget-class", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=500, help="test batch size of the train-mode evaluation")
    ap.add_argument("--dataset", help="the cell's data set, where the sweep file has several (default: its first)")
    ap.add_argument("--model", help="the cell's model, where the sweep file has several (default: its first)")
    add_env_options(ap)
    args = ap.parse_args()
    sweep = select_cells(load_sweep(Path(args.config)), {"method": args.method, "seed": str(args.seed),
                                                         "forget_class": str(args.forget_class)}
                         | {k: v for k, v in (("dataset", args.dataset), ("model", args.model)) if v})
    cell = sweep.cells[0]
    runner = shared_runner(env_from_args(args))
    data = runner.data(cell.setup.data)
    runtime, labels, k = runner.runtime(cell.setup.train), data.test.labels, cell.forget_class
    test = data.sample_set("test")
    original, _, _ = runner.original(cell.setup)
    model, facts = runner.unlearn(cell)
    recalibrated = copy.deepcopy(model)
    recalibrate_bn(recalibrated, data.sample_set("train", "retain", k), runtime, cell.setup.train.batch_size)
    with deterministic(args.seed):  # dropout, if the model has any, draws from the global RNG in train mode
        batch_statistics = predict_batch_statistics(model, test, runtime, args.batch)
    rows = [("θ*, eval mode", predict(original.eval(), test, runtime, cell.eval.batch_size)),
            ("unlearned, eval mode (the record's)", predict(model.eval(), test, runtime, cell.eval.batch_size)),
            (f"unlearned, batch statistics (test batches of {args.batch})", batch_statistics),
            ("unlearned, running statistics recalibrated on D_r",
             predict(recalibrated.eval(), test, runtime, cell.eval.batch_size))]
    print(f"{cell.setup.data.name}/{cell.setup.model.name} class {k} seed {args.seed}, {cell.method} "
          f"({facts['unlearn_seconds']:.1f} s)")
    for name, logits in rows:
        a_f, a_r = forget_retain_accuracy(logits, labels, k)
        print(f"  {name:58s} A_Df {a_f:6.2f}  A_Dr {a_r:6.2f}")


if __name__ == "__main__":
    main()
