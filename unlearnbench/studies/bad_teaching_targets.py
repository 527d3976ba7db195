"""What Bad Teaching distils toward on the forget class, and what its student ends up predicting.

    python benchmarks/bad_teaching_targets.py benchmarks/mnist_cpu.toml --only model=resnet34 \\
        --only forget_class=2 --only seed=1 [--hp teacher_init=model]
    python benchmarks/bad_teaching_targets.py benchmarks/mnist_cpu.toml --only model=resnet34 \\
        --only forget_class=2 --only seed=0 --teacher-seeds 30
    python benchmarks/bad_teaching_targets.py benchmarks/mnist_cpu.toml --only model=resnet34 \\
        --only forget_class=6 --only seed=0 --teacher-draws 4

For one Bad Teaching cell of a sweep file, named by `--only` as in the sweep (each key the file varies but the
method), (θ* from the checkpoint cache, trained if missing) it prints, on the forget
class's test images, for the incompetent teacher (the random network the student imitates on forget samples), θ* and
the unlearned student: A_Df, mean top probability, mean probability of the forget class, entropy, and where the argmax
lands. It exists to explain a number, not to produce one: a random network's softmax is close to uniform, so the
objective's optimum on forget images is whatever that network prefers. With timm's own init (`teacher_init=model`)
its softmax is close to uniform, "no preference", under which the forget class keeps whatever share of the argmax
the residual leaves it; with the official code's init (`teacher_init=residual`, the default) it is confident and
arbitrary (docs/methods.md, bad_teaching).

`--teacher-seeds N` asks how often that arbitrary preference lands on the class to forget: it draws the incompetent
teachers of seeds 0..N-1 (no θ*, no unlearning), and for every class c of the test set prints how many of the N
teachers send most of class c's test images to c itself. For such a seed the objective asks the student to keep
predicting the forget class, and faithful Bad Teaching cannot forget it.

`--teacher-draws N` describes, for one cell, the random teachers its redraws would try (draws 0..N-1 of the seed's
stream) on the cell's forget training samples, the data the check sees, and which `teacher_check` rejects each.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from typing import Sequence

import torch

from unlearnbench.config import parse_assignments
from unlearnbench.cli.options import add_env_options, cli, env_from_args
from unlearnbench.errors import UsageError
from unlearnbench.methods.bad_teaching import chosen_teacher, incompetent_teacher, prefers
from unlearnbench.plan import Overrides, one_cell, selections, sweep_share
from unlearnbench.sweep import shared_runner
from unlearnbench.train import predict


def describe(name: str, logits: torch.Tensor, forget_class: int) -> str:
    p = logits.float().softmax(1)
    top = p.argmax(1)
    entropy = float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())
    return (f"{name:11s} A_Df {100 * float((top == forget_class).float().mean()):6.2f}  "
            f"mean max p {float(p.max(1).values.mean()):.3f}  mean p(class {forget_class}) "
            f"{float(p[:, forget_class].mean()):.3f}  entropy {entropy:.3f} nats (uniform {math.log(p.shape[1]):.3f})  "
            f"argmax counts {torch.bincount(top, minlength=p.shape[1]).tolist()}")


def teacher_preferences(task, seeds: int, init: str, test, labels: torch.Tensor, runtime, batch: int) -> None:
    """Per class: which class each seed's random teacher sends most of its test images to."""
    num_classes = task.num_classes
    majority = torch.empty(seeds, num_classes, dtype=torch.long)
    for seed in range(seeds):
        top = predict(incompetent_teacher(task, seed, init), test, runtime, batch).argmax(1)
        for c in range(num_classes):
            majority[seed, c] = torch.bincount(top[labels == c], minlength=num_classes).argmax()
        print(f"seed {seed:3d}: majority class per true class {majority[seed].tolist()}", flush=True)
    hits = (majority == torch.arange(num_classes)).sum(0)
    print(f"teachers ({init} init) whose majority on class c is c, out of {seeds}: "
          + ", ".join(f"{c}: {int(h)}" for c, h in enumerate(hits))
          + f"; all classes {int(hits.sum())}/{seeds * num_classes} = {float(hits.sum()) / (seeds * num_classes):.3f}"
          + f" (1/C = {1 / num_classes:.3f})")


@cli
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V", required=True,
                    help="the cell: forget_class=, and dataset=, model=, seed= where the file has several")
    ap.add_argument("--teacher-seeds", type=int, default=0, metavar="N",
                    help="only draw the random teachers of seeds 0..N-1 and count, per class, those that prefer it")
    ap.add_argument("--teacher-images", type=int, default=2000, metavar="N",
                    help="with --teacher-seeds: the first N test images (all classes; default 2000)")
    ap.add_argument("--teacher-draws", type=int, default=0, metavar="N",
                    help="only describe the cell's teachers of draws 0..N-1 and which teacher_check rejects each")
    ap.add_argument("--hp", action="append", metavar="KEY=VALUE", help="a Bad Teaching hyperparameter override")
    add_env_options(ap)
    args = ap.parse_args(argv)
    extra = Overrides(method={"bad_teaching": parse_assignments(args.hp, "--hp")})
    chosen = selections(args.only)
    if chosen.setdefault("method", "bad_teaching") != "bad_teaching":
        raise UsageError(f"--only method={chosen['method']}: this script explains a bad_teaching cell")
    cell = one_cell(sweep_share(args.config, chosen, extra, data_root=args.data_root, download=not args.no_download))
    runner = shared_runner(env_from_args(args))
    data = runner.data(cell.setup.data)
    forget_test = data.test.labels == cell.forget_class
    runtime, batch = runner.runtime(cell.setup.train), cell.eval.batch_size
    task, _ = runner.task(cell)
    if args.teacher_seeds:
        first = torch.arange(min(args.teacher_images, len(data.test.labels)))
        teacher_preferences(task, args.teacher_seeds, cell.hparams.teacher_init, data.sample_set("test").subset(first),
                            data.test.labels[first], runtime, batch)
        return 0
    if args.teacher_draws:
        for draw in range(args.teacher_draws):
            teacher = incompetent_teacher(task, cell.setup.seed, cell.hparams.teacher_init, draw)
            logits = predict(teacher, task.forget, runtime, batch)
            rejected = [check for check in ("majority", "chance")
                        if prefers(logits, cell.forget_class, dataclasses.replace(cell.hparams, teacher_check=check))]
            print(describe(f"draw {draw}", logits, cell.forget_class) + f"  rejected by: {rejected or 'none'}")
        return 0
    incompetent, _ = chosen_teacher(task, cell.setup.seed, cell.hparams, avoid=cell.forget_class)  # the one the cell uses
    original, _, _ = runner.original(cell.setup)
    student, facts = runner.unlearn(cell)
    for name, model in (("random net", incompetent), ("θ*", original), ("student", student)):
        print(describe(name, predict(model, data.sample_set("test"), runtime, batch)[forget_test], cell.forget_class))
    print(f"unlearning {facts['unlearn_seconds']:.1f} s; forget/retain samples seen "
          f"{facts['forget_samples_seen']}/{facts['retain_samples_seen']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
