"""θ*'s quality per architecture: train-mode against eval-mode accuracy, without and with `bn_recalibrate`.

    python benchmarks/theta_quality.py benchmarks/robustness.toml [--only model=resnet18,resnet50]
        [--data train_per_class=100] [--train epochs=2] [--verify] [--out results/robustness/theta_quality.md]

For every θ* of the sweep file (each data set × model × seed; the file's recipe, data and model settings, then the
overrides given here), trained by the harness (`Runner.original`: from the checkpoint cache, trained if missing), it
measures, as the runner's θ* check does (`Runner.check_original`: 512 training images, 512 test images), accuracy in
train mode (BatchNorm normalises by each batch's statistics) and in eval mode (by the running statistics, as every
metric is measured), eval-mode accuracy on the whole evaluated test split, and whether the runner warns.

The same θ* with `bn_recalibrate = true` is the same training followed by `recalibrate_bn`, the call `fit` ends with:
recalibration touches no weight and draws nothing from the data-order generator, so its weights are this θ*'s, bit for
bit (tests/test_train.py). It is made so here, from a copy, at the cost of one pass over the training images instead of
a second training; `--verify` trains the first BatchNorm architecture's through `Runner.original` with
`bn_recalibrate = true` as well and checks that every tensor is identical. Models without BatchNorm (ConvNeXt, ViT)
have nothing to recalibrate.

Writes a Markdown table (--out) and one JSON line per θ* beside it (.jsonl).
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from unlearnbench.config import parse_assignments
from unlearnbench.models import count_parameters
from unlearnbench.plan import Overrides, load_sweep, select_cells
from unlearnbench.run import add_env_options, env_from_args, setup_logging
from unlearnbench.runner import theta_warning
from unlearnbench.runtime import describe_device, versions
from unlearnbench.sweep import shared_runner
from unlearnbench.train import accuracy, predict, recalibrate_bn

COLUMNS = ["data set", "model", "params (M)", "BN", "train s", "train-mode (train)", "eval-mode (train)",
           "eval-mode test", "warns", "recal: eval-mode (train)", "recal: eval-mode test", "Δ test", "recal warns"]


def has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def measure(runner, setup, model: nn.Module) -> dict[str, float]:
    """The runner's θ* check numbers, and eval-mode accuracy on the whole evaluated test split."""
    data, runtime = runner.data(setup.data), runner.runtime(setup.train)
    found = runner.check_original(setup, model)
    test = data.sample_set("test")
    found["test"] = accuracy(predict(model, test, runtime), test.labels)
    found["warns"] = theta_warning(found["train_mode"], found["eval_train"], found["eval_test"],
                                   data.spec.num_classes, has_bn(model)) is not None
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path, help="a sweep file: its θ*s are measured")
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2", help="dataset=, model=, seed=")
    ap.add_argument("--data", action="append", default=[], metavar="KEY=VALUE", help="over the file's [data]")
    ap.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help="over the file's [train]")
    ap.add_argument("--verify", action="store_true", help="train the first BatchNorm θ* with bn_recalibrate too, "
                                                         "and check it equals the recalibrated copy")
    ap.add_argument("--out", type=Path, default=Path("results/robustness/theta_quality.md"))
    add_env_options(ap)
    args = ap.parse_args()
    setup_logging(args.verbose, args.quiet)
    extra = Overrides(data=parse_assignments(args.data, "--data"), train=parse_assignments(args.train, "--train"))
    sweep = load_sweep(args.config, extra)
    sweep = select_cells(sweep, parse_assignments(args.only, "--only")) if args.only else sweep
    runner = shared_runner(env_from_args(args))
    rows, start, verified = [], time.perf_counter(), None
    for setup in sweep.setups:
        model, meta, _ = runner.original(setup)
        row = {"dataset": setup.data.name, "model": setup.model.name, "timm_args": setup.model.timm_args,
               "seed": setup.seed, "params": count_parameters(model), "bn": has_bn(model),
               "train_seconds": meta["seconds"], "key": meta["key"], "without": measure(runner, setup, model)}
        if row["bn"]:
            with_setup = replace(setup, train=replace(setup.train, bn_recalibrate=True))
            recalibrated = copy.deepcopy(model)
            recalibrate_bn(recalibrated, runner.data(setup.data).sample_set("train"), runner.runtime(setup.train),
                           setup.train.batch_size)
            recalibrated.eval()
            if args.verify and verified is None:
                trained, _, _ = runner.original(with_setup)
                a, b = trained.state_dict(), recalibrated.state_dict()
                verified = f"{setup.data.name}/{setup.model.name}"
                if not all(torch.equal(a[k], b[k]) for k in a):
                    raise SystemExit(f"{verified}: bn_recalibrate through Runner.original differs from the "
                                     "recalibrated copy")
            row["with"] = measure(runner, with_setup, recalibrated)
        rows.append(row)
        print(json.dumps(row), flush=True)
        # after every θ*: an interrupted run keeps what it measured
        write(args.out, sweep, rows, time.perf_counter() - start, verified, describe_device(runner.device))


def _pct(x: float) -> str:
    return f"{x:.1f}"


def write(out: Path, sweep, rows: list[dict], seconds: float, verified: str | None, device: dict) -> None:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        w, b = r["without"], r.get("with")
        name = r["model"] + (f" ({r['timm_args']})" if r["timm_args"] else "")
        cells = [r["dataset"], name, f"{r['params'] / 1e6:.2f}", "yes" if r["bn"] else "no",
                 f"{r['train_seconds']:.0f}", _pct(w["train_mode"]), _pct(w["eval_train"]), _pct(w["test"]),
                 "**yes**" if w["warns"] else "no"]
        if b is not None:
            cells += [_pct(b["eval_train"]), _pct(b["test"]), f"{b['test'] - w['test']:+.1f}",
                      "**yes**" if b["warns"] else "no"]
        else:
            cells += ["—", "—", "—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    s = sweep.setups[0]
    header = [
        f"# θ* quality per architecture ({sweep.name}: {len(rows)} of {len(sweep.setups)} θ*)", "",
        f"Protocol: the sweep file's θ*s, {s.data.train_per_class or 'all'} training images per class, "
        f"{s.data.test_per_class or 'all'} test images per class, recipe {s.train.optimizer} lr {s.train.lr:g}, "
        f"batch {s.train.batch_size}, {s.train.scheduler} schedule, {s.train.epochs} epoch(s), seed "
        f"{', '.join(sorted({str(x.seed) for x in sweep.setups}))}.",
        f"Host: {platform.node()}, {device.get('name')}, {device.get('threads')} thread(s) of {device.get('cores')} "
        f"cores, vector flags {' '.join(device.get('vector_flags', [])) or '-'}; torch {versions()['torch']}, timm "
        f"{versions()['timm']}, git {versions()['git']}. Wall time {seconds / 60:.1f} min (training included).",
        "",
        "Accuracies in %. *train-mode (train)* / *eval-mode (train)*: the same 512 training images, BatchNorm "
        "normalising by each batch's statistics / by the running statistics; *eval-mode test*: the whole evaluated "
        "test split; *warns*: the runner's θ* check (eval-mode test accuracy on 512 images at most 1.5 × chance, or "
        "more than 20 points below train mode). *recal*: the same θ* with `bn_recalibrate = true` (update_bn over the "
        "training images after the last step). — : no BatchNorm, nothing to recalibrate.",
        "",
    ]
    if verified:
        header += [f"Checked (`--verify`): {verified} trained through Runner.original with bn_recalibrate = true is "
                   "bit-identical to the recalibrated copy.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + lines) + "\n")
    out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {out} and {out.with_suffix('.jsonl')} ({len(rows)} of {len(sweep.setups)} θ*)", flush=True)


if __name__ == "__main__":
    main()
