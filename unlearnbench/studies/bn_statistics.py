"""Is a method's loss of A_Dr in its BatchNorm running statistics or in its weights?

    python benchmarks/bn_statistics.py benchmarks/mnist_quick.toml --only method=finetune --only forget_class=8
    python benchmarks/bn_statistics.py benchmarks/mnist_retain_free.toml --only method=jit --only forget_class=2 \\
        --only seed=1
    python benchmarks/bn_statistics.py benchmarks/robustness.toml --only dataset=fashion_mnist --only model=resnet18 \\
        --only method=fast_effective --only forget_class=8

For one cell of a sweep file, named by `--only` as in the sweep (each key the file varies; θ* from the checkpoint
cache, trained if missing), it runs the cell's method as the sweep does, then evaluates the one unlearned model on the
test set three ways: as every record does (eval mode, the running statistics), with each BatchNorm layer normalising
by the test batch's own statistics (`predict_batch_statistics`: train mode, on a copy), and after `recalibrate_bn`
recomputes the running statistics from the retain training images at the final weights (a copy again). If the last
two recover A_Dr, the weights are intact and the running statistics are what the method broke. It exists to explain a
number, not to produce one: the recalibration reads the retain set, which a retain-free method never sees.

With `--collapsed RESULTS` it does the same for every collapse RESULTS' records show (a method's A_Dr more than 10
points below θ*'s: the ↓ of report's grid.md), the cells of the sweep file, in one run:

    python benchmarks/bn_statistics.py benchmarks/robustness.toml --collapsed results/robustness
    # → results/robustness/extra/collapse_causes.md and .jsonl; each collapsed cell's unlearning again, plus ~5 s

One JSON line per cell (rewritten after each, so a stopped run goes on where it stopped: cells already in the .jsonl
are kept), and a table whose verdict reads the recalibrated A_Dr against θ*'s:
  statistics  recalibrating the running statistics brings A_Dr back to within 10 points of θ*'s
  weights     recalibration wins back less than a quarter of the points lost (a model without BatchNorm: none)
  both        in between
A rerun that does not reproduce its record (A_Df and A_Dr within 0.01) gets no verdict: the table says so.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Sequence

from unlearnbench.cli.options import add_env_options, cli, env_from_args
from unlearnbench.errors import UsageError
from unlearnbench.files import atomic_write_bytes, atomic_write_jsonl, read_json_lines
from unlearnbench.records import machine
from unlearnbench.plan import one_cell, select_cells, selections, sweep_share
from unlearnbench.aggregate import DATASET_NAMES, MODEL_NAMES, method_label
from unlearnbench.metrics import COLLAPSE, is_collapse
from unlearnbench.store import load_records
from unlearnbench.runtime import deterministic, describe_device
from unlearnbench.sweep import shared_runner
from unlearnbench.train import forget_retain_accuracy, predict, predict_batch_statistics, recalibrate_bn


#: the table's rows, in the order of the evaluations
WAYS = ("theta", "record", "batch_statistics", "recalibrated")


def three_ways(runner, cell, batch: int) -> dict:
    """θ* and the cell's unlearned model, evaluated as the record is, with batch statistics and recalibrated."""
    data = runner.data(cell.setup.data)
    runtime, labels, k = runner.runtime(cell.setup.train), data.test.labels, cell.forget_class
    test = data.sample_set("test")
    original, _, _ = runner.original(cell.setup)
    model, facts = runner.unlearn(cell)
    recalibrated = copy.deepcopy(model)
    recalibrate_bn(recalibrated, data.sample_set("train", "retain", k), runtime, cell.setup.train.batch_size)
    with deterministic(cell.setup.seed):  # dropout, if the model has any, draws from the global RNG in train mode
        batch_statistics = predict_batch_statistics(model, test, runtime, batch)
    logits = {"theta": predict(original.eval(), test, runtime, cell.eval.batch_size),
              "record": predict(model.eval(), test, runtime, cell.eval.batch_size),
              "batch_statistics": batch_statistics,
              "recalibrated": predict(recalibrated.eval(), test, runtime, cell.eval.batch_size)}
    return {"unlearn_seconds": facts["unlearn_seconds"],
            **{way: list(forget_retain_accuracy(x, labels, k)) for way, x in logits.items()}}


def verdict(theta_retain: float, record_retain: float, recalibrated_retain: float) -> str:
    """Where a collapse's lost A_Dr is: "statistics" when recalibrating the running statistics brings A_Dr back to
    within COLLAPSE points of θ*'s, "weights" when it wins back under a quarter of the points lost, else "both"."""
    if not is_collapse(recalibrated_retain, theta_retain):
        return "statistics"
    if recalibrated_retain - record_retain < (theta_retain - record_retain) / 4:
        return "weights"
    return "both"


def collapsed(records: list[dict]) -> list[dict]:
    """The records of a method (not θ* itself) whose A_Dr is more than COLLAPSE points below θ*'s."""
    return [r for r in records if r["method"] != "original" and is_collapse(r["acc_retain"], r["original_acc_retain"])]


def explain_collapses(args, runner) -> int:
    # the table keeps every row of the file, not only this run's share
    whole = sweep_share(args.config, data_root=args.data_root, download=not args.no_download)
    sweep = select_cells(whole, selections(args.only))
    cells = {c.key: c for c in sweep.cells}
    found = collapsed(load_records(args.collapsed))
    todo = [cells[r["config_hash"]] for r in found if r["config_hash"] in cells]
    if not todo:
        raise UsageError(f"{args.collapsed}: no record of a collapsed cell of {sweep.name!r}"
                         + (f" ({len(found)} of other sweep files)" if found else ""))
    records = {r["config_hash"]: r for r in found}
    out = args.out or Path(args.collapsed) / "extra" / "collapse_causes.md"
    rows_path = out.with_suffix(".jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    order = list(dict.fromkeys(c.method for c in whole.cells))  # the sweep file's order of methods
    command = " ".join(["python benchmarks/bn_statistics.py", str(args.config), "--collapsed", str(args.collapsed),
                        *[f"--only {o}" for o in args.only]])
    rows = {r["config_hash"]: r for r in read_json_lines(rows_path)
            if r["config_hash"] in records}  # a cell no longer collapsed is dropped

    def save(rows_too: bool) -> int:
        ordered = [rows[c.key] for c in whole.cells if c.key in rows]
        if rows_too:  # rows first, then the table: killed in between, the next run rewrites the table from the rows
            atomic_write_jsonl(rows_path, ordered)
        atomic_write_bytes(out, lambda f: f.write(causes_table(ordered, sweep.name, command, order)), mode="w")
        return len(ordered)

    print(f"{len(todo)} collapsed cell(s) of {sweep.name!r}, {sum(c.key in rows for c in todo)} explained already",
          flush=True)
    for cell in todo:
        if cell.key in rows:
            continue
        rec = records[cell.key]
        measured = three_ways(runner, cell, args.batch)
        reproduced = all(abs(a - b) <= 0.01
                         for a, b in zip(measured["record"], (rec["acc_forget"], rec["acc_retain"])))
        rows[cell.key] = {"config_hash": cell.key, "dataset": cell.setup.data.name, "model": cell.setup.model.name,
                          "forget_class": cell.forget_class, "seed": cell.setup.seed, "method": cell.method,
                          **measured, "reproduced": reproduced,
                          "verdict": verdict(measured["theta"][1], measured["record"][1], measured["recalibrated"][1])
                          if reproduced else None, "device": describe_device(runner.device)}
        print(f"{cell.label}: {rows[cell.key]['verdict'] or 'NOT REPRODUCED'}", flush=True)
        save(rows_too=True)
    print(f"wrote {out} and {rows_path} ({save(rows_too=False)} cell(s))")
    return 0


def causes_table(rows: list[dict], name: str, command: str, order: list[str]) -> str:
    """The Markdown table of explained collapses, with the tally of verdicts, overall and per method (in `order`)."""
    def pair(x):
        return f"{x[0]:.1f} / {x[1]:.1f}"
    lines = ["| data set | architecture | method | θ* | the record's | batch statistics | recalibrated | verdict "
             "| s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {DATASET_NAMES.get(r['dataset'], r['dataset'])} | {MODEL_NAMES.get(r['model'], r['model'])} "
                     f"| {method_label(r['method'])} | {pair(r['theta'])} | {pair(r['record'])} | "
                     f"{pair(r['batch_statistics'])} | {pair(r['recalibrated'])} | "
                     f"{r['verdict'] or '**not reproduced**'} | {r['unlearn_seconds']:.1f} |")
    tally = {v: sum(r["verdict"] == v for r in rows) for v in ("statistics", "both", "weights", None)}
    methods = [m for m in order if any(r["method"] == m for r in rows)]
    per_method = ["| method | collapses | statistics | both | weights | not reproduced |", "|---|---|---|---|---|---|"]
    for m in methods:
        mine = [r["verdict"] for r in rows if r["method"] == m]
        per_method.append(f"| {method_label(m)} | {len(mine)} | "
                          + " | ".join(str(mine.count(v)) for v in ("statistics", "both", "weights", None)) + " |")
    hosts = sorted({machine(r) for r in rows})
    return "\n".join([
        f"# Where the collapses of {name} come from ({len(rows)} cell(s))", "",
        "```bash", command, "```", "",
        f"Every cell whose A_Dr is more than {COLLAPSE:g} points below θ*'s, its method run again and the unlearned "
        "model evaluated three ways on the test set (A_Df / A_Dr, %): as the record is (eval mode, running "
        "statistics), with each BatchNorm layer normalising by the test batch's statistics, and with the running "
        "statistics recomputed from the retain training images at the final weights. Verdict: *statistics* = "
        f"recalibrated A_Dr within {COLLAPSE:g} points of θ*'s; *weights* = recalibration wins back less than a "
        "quarter of the lost points; *both* = in between. s = the rerun's unlearning seconds.", "",
        f"Verdicts: {tally['statistics']} statistics, {tally['both']} both, {tally['weights']} weights"
        + (f", {tally[None]} not reproduced" if tally[None] else "") + f". Host(s): {'; '.join(hosts)}.", "",
        *per_method, "", *lines, ""])


@cli
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V",
                    help="the cell: method=, and dataset=, model=, forget_class=, seed= where the file has several "
                         "(with --collapsed: a share of the cells, as in the sweep)")
    ap.add_argument("--collapsed", type=Path, metavar="RESULTS",
                    help="every collapsed cell of this results directory's records instead of one named cell")
    ap.add_argument("--out", type=Path, help="with --collapsed: the table (default RESULTS/extra/"
                                             "collapse_causes.md; its rows in the .jsonl beside it)")
    ap.add_argument("--batch", type=int, default=500, help="test batch size of the train-mode evaluation")
    add_env_options(ap)
    args = ap.parse_args(argv)
    if args.collapsed is None and not args.only:
        raise UsageError("name a cell with --only KEY=V, or give --collapsed RESULTS")
    if args.out is not None and args.collapsed is None:
        raise UsageError("--out is for --collapsed")
    if args.collapsed is not None:
        if not Path(args.collapsed).is_dir():
            raise UsageError(f"--collapsed {args.collapsed}: not a results directory")
        return explain_collapses(args, shared_runner(env_from_args(args)))
    cell = one_cell(sweep_share(args.config, selections(args.only), data_root=args.data_root,
                                download=not args.no_download))
    found = three_ways(shared_runner(env_from_args(args)), cell, args.batch)
    names = {"theta": "θ*, eval mode", "record": "unlearned, eval mode (the record's)",
             "batch_statistics": f"unlearned, batch statistics (test batches of {args.batch})",
             "recalibrated": "unlearned, running statistics recalibrated on D_r"}
    print(f"{cell.setup.data.name}/{cell.setup.model.name} class {cell.forget_class} seed {cell.setup.seed}, "
          f"{cell.method} ({found['unlearn_seconds']:.1f} s)")
    for way in WAYS:
        a_f, a_r = found[way]
        print(f"  {names[way]:58s} A_Df {a_f:6.2f}  A_Dr {a_r:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
