"""θ*'s quality per architecture: train-mode against eval-mode accuracy, without and with `bn_recalibrate`.

    python benchmarks/theta_quality.py benchmarks/robustness.toml [--only model=resnet18,resnet50]
        [--data train_per_class=100] [--train epochs=2] [--verify] [--resume]
        [--out results/robustness/extra/theta_quality.md]

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

Writes a Markdown table (--out) and one JSON line per θ* beside it (.jsonl), after every θ*. `--resume` keeps the
lines of an earlier run whose θ* is one of this run's (same cache key: same recipe, data and model) and measures only
the others, so a run stopped at a session's end goes on in the next; each line names the host that trained its θ*.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from unlearnbench.config import parse_assignments
from unlearnbench.cli.options import add_env_options, cli, env_from_args, setup_logging
from unlearnbench.files import atomic_write_bytes, atomic_write_jsonl, read_json_lines
from unlearnbench.models import count_parameters
from unlearnbench.plan import Overrides, selections, sweep_share
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


@cli
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path, help="a sweep file: its θ*s are measured")
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2", help="dataset=, model=, seed=")
    ap.add_argument("--data", action="append", default=[], metavar="KEY=VALUE", help="over the file's [data]")
    ap.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help="over the file's [train]")
    ap.add_argument("--verify", action="store_true", help="train the first BatchNorm θ* with bn_recalibrate too, "
                                                         "and check it equals the recalibrated copy")
    ap.add_argument("--resume", action="store_true", help="keep the rows of --out's .jsonl whose θ* is one of this "
                                                          "run's, and measure only the others")
    ap.add_argument("--out", type=Path, default=Path("results/robustness/extra/theta_quality.md"))
    add_env_options(ap)
    args = ap.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    extra = Overrides(data=parse_assignments(args.data, "--data"), train=parse_assignments(args.train, "--train"))
    sweep = sweep_share(args.config, selections(args.only), extra, data_root=args.data_root,
                        download=not args.no_download)
    runner = shared_runner(env_from_args(args))
    rows = resumable_rows(args.out.with_suffix(".jsonl"), [s.key for s in sweep.setups]) if args.resume else []
    done, order = {r["key"] for r in rows}, {s.key: i for i, s in enumerate(sweep.setups)}
    verified = next((f"{r['dataset']}/{r['model']}" for r in rows if r.get("verified")), None)
    for setup in sweep.setups:
        if setup.key in done:
            continue
        began = time.perf_counter()
        model, meta, _ = runner.original(setup)
        row = {"dataset": setup.data.name, "model": setup.model.name, "timm_args": setup.model.timm_args,
               "seed": setup.seed, "params": count_parameters(model), "bn": has_bn(model),
               "train_seconds": meta["seconds"], "key": meta["key"], "trained_on": meta.get("device"),
               "without": measure(runner, setup, model)}
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
                row["verified"] = True
            row["with"] = measure(runner, with_setup, recalibrated)
        row["seconds"] = time.perf_counter() - began
        rows.append(row)
        rows.sort(key=lambda r: order[r["key"]])
        print(json.dumps(row), flush=True)
        # after every θ*: an interrupted run keeps what it measured
        write(args.out, sweep, rows, verified, describe_device(runner.device))
    if rows and len(rows) == len(done):  # a resumed run with nothing left still rewrites the table from its rows
        write(args.out, sweep, rows, verified, describe_device(runner.device))


def resumable_rows(path: Path, keys: list[str]) -> list[dict]:
    """The rows of an earlier run's .jsonl whose θ* key is in `keys`, in `keys`' order; a missing file gives none.
    Rows of other θ*s (another recipe, or a key changed since) are dropped, and said so."""
    if not path.is_file():
        return []
    rows = read_json_lines(path)
    kept = sorted((r for r in rows if r["key"] in keys), key=lambda r: keys.index(r["key"]))
    print(f"resuming from {path}: {len(kept)} θ* measured already"
          + (f", {len(rows) - len(kept)} row(s) of other θ*s dropped" if len(rows) > len(kept) else ""), flush=True)
    return kept


def _wall_time(rows: list[dict]) -> str:
    untimed = sum("seconds" not in r for r in rows)
    if untimed:
        return f"Wall time: not recorded for {untimed} of the rows."
    return (f"Wall time {sum(r['seconds'] for r in rows) / 60:.1f} min over these rows (training and measuring; each "
            "row's `seconds` in the .jsonl).")


def _host(device: dict) -> str:
    return (f"{device.get('name')}, {device.get('threads')} thread(s) of {device.get('cores')} cores, vector flags "
            f"{' '.join(device.get('vector_flags', [])) or '-'}")


def _pct(x: float) -> str:
    return f"{x:.1f}"


def write(out: Path, sweep, rows: list[dict], verified: str | None, device: dict) -> None:
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
    hosts = sorted({_host(r["trained_on"]) for r in rows if r.get("trained_on")})
    header = [
        f"# θ* quality per architecture ({sweep.name}: {len(rows)} of {len(sweep.setups)} θ*)", "",
        f"Protocol: the sweep file's θ*s, {s.data.train_per_class or 'all'} training images per class, "
        f"{s.data.test_per_class or 'all'} test images per class, recipe {s.train.optimizer} lr {s.train.lr:g}, "
        f"batch {s.train.batch_size}, {s.train.scheduler} schedule, {s.train.epochs} epoch(s), seed "
        f"{', '.join(sorted({str(x.seed) for x in sweep.setups}))}.",
        f"Host of this run: {_host(device)}; torch {versions()['torch']}, timm {versions()['timm']}, git "
        f"{versions()['git']}. {_wall_time(rows)}"
        + (f" θ*s trained on: {'; '.join(hosts)}." if hosts else ""),
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
    # rows first, then the table: killed in between, --resume rewrites the table from the rows
    atomic_write_jsonl(out.with_suffix(".jsonl"), rows)
    atomic_write_bytes(out, lambda f: f.write("\n".join(header + lines) + "\n"), mode="w")
    print(f"wrote {out} and {out.with_suffix('.jsonl')} ({len(rows)} of {len(sweep.setups)} θ*)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
