"""The GPU time of the paper's MNIST block (benchmarks/mnist_paper.toml), from what one H200 measured.

    PYTHONPATH=. python benchmarks/gpu_estimate.py [--records results/mnist_paper] \
        [--perf results/mnist_paper/perf_h200.txt ...] [--jobs-per-gpu 1,2,3,4] [--lease-seconds 510]

Measured: ResNet-34's θ*, oracle and per-method times, from the committed records made on the GPU (their
original_train_seconds, retrain_seconds, unlearn_seconds; records made beside other jobs, `jobs_per_gpu` > 1, are
kept apart). A method whose defaults changed since its records were made is rescaled by its step count (cost in
samples / batch): at ~10% of the GPU's rate a step costs about the same whatever its batch, so steps, not samples,
set the time. Evaluation per cell: its forward passes (test set, forget set, MIA members; a forward ≈ 1/3 of a
training step) at the training rate of perf section (a).

Scaled: DenseNet-121 and ConvNeXt-L have no records. Their time is ResNet-34's times a ratio of the models' cost at
32×32, counted on the meta device (no compute): training FLOPs per image (torch's FlopCounterMode) — the figure of
record, which assumes the model reaches ResNet-34's achieved FLOP/s — and, beside it, aten operations per training
step (kernel launches: the time of a launch-bound model) and FLOPs at the best measured matmul rate (the time of a
compute-bound one). A perf section (d) for the model in a --perf file (same GPU) replaces all three by its measured
img/s (a later --perf file's wins: pass a lease's perf_flops.txt after perf_h200.txt).

Several jobs per GPU: `--jobs-per-gpu N` is assumed to run N jobs at their solo speed while N × u ≤ 1, u being
ResNet-34's achieved share of the measured matmul rate (perf section (d)): an upper bound on the gain, since CUDA
time-slices the kernels of separate processes (no MPS) and only one job's idle gaps can be filled. A setup's θ* runs
alone (its cells wait for it), the rest at that speed-up. Records made with N > 1 measure the true gain: rerun this
after such a lease and it prints their slowdown against the solo records.

Leases: the checkpoint cache cannot come back from a lease (a ResNet-34 θ* is ~85 MB, over what a call returns), so
every lease trains again the θ* and oracles its cells need. A (model, seed) that does not fit one lease is split by
forget class, each share training θ* again.
"""
from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from unlearnbench.config import Cell, ModelConfig
from unlearnbench.errors import UsageError
from unlearnbench.method import Sizes
from unlearnbench.registry import get_method
from unlearnbench.models import create_model
from unlearnbench.peak import gpu_spec
from unlearnbench.perf_sections import training_flops_per_sample
from unlearnbench.plan import Overrides, load_sweep
from unlearnbench.runner import Env, Runner
from unlearnbench.runtime import default_cache_dir, default_data_root
from unlearnbench.store import RecordStore, load_records

BASE = "resnet34"  # the measured model
FORWARD = 1 / 3  # a forward pass's share of a training step (forward + backward)


# --------------------------------------------------------------------------------------------------------------------
# model cost on the meta device
# --------------------------------------------------------------------------------------------------------------------
class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def model_cost(name: str, in_chans: int = 1, size: int = 32, classes: int = 10) -> tuple[float, int]:
    """Training FLOPs per image and aten operations per training step (forward + backward), on the meta device."""
    meta = torch.device("meta")
    with meta:
        model = create_model(ModelConfig(name), classes, in_chans).train()
    flops = training_flops_per_sample(model, (in_chans, size, size), meta)
    x, y = torch.randn(8, in_chans, size, size, device=meta), torch.zeros(8, dtype=torch.long, device=meta)
    with _CountOps() as counter:
        F.cross_entropy(model(x), y).backward()
    return flops, counter.ops


# --------------------------------------------------------------------------------------------------------------------
# perf files
# --------------------------------------------------------------------------------------------------------------------
def _rows(text: str, start: int) -> list[dict[str, str]]:
    """The github-format table that follows position `start`: one dict per row, keyed by the header."""
    table: list[list[str]] = []
    for ln in text[start:].splitlines()[1:]:
        if not ln.startswith("|"):
            break
        table.append([c.strip() for c in ln.strip().strip("|").split("|")])
    if len(table) < 3:
        return []
    return [dict(zip(table[0], row)) for row in table[2:]]


def _num(text: str) -> float:
    return float(text.replace(",", "").rstrip("%x"))


@dataclass
class PerfFacts:
    loop_img_s: dict[str, float]  # section (a): harness training img/s per model
    flops: dict[str, dict[str, float]]  # section (d) per model: img/s, achieved and matmul GFLOP/s
    gpu: str


def read_perf(paths: list[Path]) -> PerfFacts:
    """Sections (a) and (d) of `python -m unlearnbench.perf` outputs; a later file's measurement of a model wins."""
    facts = PerfFacts({}, {}, "")
    for path in paths:
        text = path.read_text()
        if m := re.search(r"'name': '([^']+)'", text):
            facts.gpu = facts.gpu or m.group(1)
        for m in re.finditer(r"^\(a\) training throughput", text, re.M):
            for row in _rows(text, m.start()):
                facts.loop_img_s[row["model"]] = _num(row["harness img/s"])
        for m in re.finditer(r"^\(d\) achieved training FLOP/s, (\S+) on", text, re.M):
            for row in _rows(text, m.start()):
                matmul = row.get("best matmul GFLOP/s") or row.get("peak GFLOP/s")  # older files: "peak" = matmul
                facts.flops[m.group(1)] = {"img_s": _num(row["img/s"]), "matmul": _num(matmul) * 1e9,
                                           "achieved": _num(row["achieved GFLOP/s"]) * 1e9}
    return facts


# --------------------------------------------------------------------------------------------------------------------
# measured unit times
# --------------------------------------------------------------------------------------------------------------------
def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def step_ratio(method: str, recorded: dict[str, Any], current: Any, sizes: Sizes) -> tuple[float, str]:
    """How many more optimiser steps the current settings of `method` take than the recorded ones."""
    spec = get_method(method)
    try:
        old = spec.resolve({k: v for k, v in recorded.items() if k != "name"})
    except UsageError as exc:
        return 1.0, f"recorded settings unreadable now ({exc}); not rescaled"

    def steps(hp: Any) -> float:
        return spec.cost(hp, sizes) / (getattr(hp, "batch_size", 0) or sizes.recipe.batch_size)

    ratio = steps(current) / steps(old)
    changed = {k: (getattr(old, k), v) for k, v in vars(current).items() if getattr(old, k) != v}
    why = ", ".join(f"{k} {a}→{b}" for k, (a, b) in changed.items())
    return ratio, (f"settings changed since the records ({why}): x{ratio:.2f} the steps" if changed else "")


@dataclass
class Units:
    theta: float
    oracle: float
    method: dict[str, float]  # per cell, at the current settings
    notes: list[str]
    counts: dict[str, int]


def measured_units(records: list[dict[str, Any]], cells: list[Cell], sizes: dict[int, Sizes]) -> Units:
    thetas = {(r["seed"], r["original_train_seconds"]) for r in records if r.get("original_train_seconds")}
    oracles = {(r["seed"], r["forget_class"], r["retrain_seconds"]) for r in records if r.get("retrain_seconds")}
    per_method: dict[str, list[float]] = defaultdict(list)
    ratios: dict[str, tuple[float, str]] = {}
    current = {(c.method, c.forget_class): c for c in cells if c.setup.model.name == BASE}
    for r in records:
        m = r["method"]
        if get_method(m).cached or m == "original":  # an oracle's time is counted as the oracle's; θ*'s cell: eval
            continue
        cell = current.get((m, r["forget_class"]))
        ratio = 1.0
        if cell is not None:
            ratio, note = step_ratio(m, r["config"]["method"], cell.hparams, sizes[r["forget_class"]])
            ratios.setdefault(m, (ratio, note))
        per_method[m].append(r["unlearn_seconds"] * ratio)
    notes = [f"{m}: {note}" for m, (_, note) in ratios.items() if note]
    return Units(_mean([t for _, t in thetas]), _mean([t for *_, t in oracles]),
                 {m: _mean(v) for m, v in per_method.items()}, notes,
                 {"θ*": len(thetas), "oracles": len(oracles), **{m: len(v) for m, v in per_method.items()}})


# --------------------------------------------------------------------------------------------------------------------
# the block
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class SetupWork:
    """One (model, seed) in ResNet-34 seconds: θ* (alone: its cells wait for it), the oracle each forget class
    trains (its retrain cell, or the reference of the others: eval.oracle), and each cell's own work."""
    theta: float
    oracle: float
    cells: dict[int, list[float]]  # forget class → its cells' seconds (method + evaluation; a retrain cell: eval)

    @property
    def total(self) -> float:
        return self.theta + sum(self.oracle + sum(c) for c in self.cells.values())


def setup_work(cells: list[Cell], units: Units, eval_s: dict[int, float]) -> SetupWork:
    per_class: dict[int, list[float]] = defaultdict(list)
    for c in cells:
        if c.method not in units.method and c.method != "original" and not get_method(c.method).cached:
            raise SystemExit(f"no record of {c.method} on {BASE}: nothing to scale from")
        per_class[c.forget_class].append(eval_s[c.forget_class] + units.method.get(c.method, 0.0))
    return SetupWork(units.theta, units.oracle, dict(per_class))


def wall(work: SetupWork, scale: float, speedup: float) -> float:
    """One uninterrupted sweep of this (model, seed): θ* alone, then the rest at `speedup`, never shorter than the
    longest chain (an oracle, then a cell that needs it)."""
    chain = max(work.oracle + max(c) for c in work.cells.values())
    return scale * (work.theta + max(chain, (work.total - work.theta) / speedup))


def leases(work: SetupWork, scale: float, speedup: float, usable: float) -> tuple[float, float]:
    """(leases, their seconds) for one (model, seed): cells packed in plan order into leases of `usable` seconds,
    each lease training θ* and the oracle of every class it touches again; inf when one cell cannot fit."""
    theta, oracle = scale * work.theta, scale * work.oracle
    done: list[float] = []
    rest, chain, touched = 0.0, 0.0, set()

    def span(r: float, c: float) -> float:
        return theta + max(c, r / speedup)

    for k, cells in work.cells.items():
        for cell in sorted((scale * c for c in cells), reverse=True):
            extra = cell + (oracle if k not in touched else 0.0)
            if touched and span(rest + extra, max(chain, oracle + cell)) <= usable:
                rest, chain = rest + extra, max(chain, oracle + cell)
                touched.add(k)
                continue
            if touched:
                done.append(span(rest, chain))
            if span(oracle + cell, oracle + cell) > usable:
                return math.inf, math.inf
            rest, chain, touched = oracle + cell, oracle + cell, {k}
    done.append(span(rest, chain))
    return len(done), sum(done)


def _dur(seconds: float) -> str:
    if math.isinf(seconds):
        return "∞"
    return f"{seconds / 60:,.1f} min" if seconds < 5400 else f"{seconds / 3600:,.1f} h"


def _leases(k: float, seconds: float) -> str:
    return "∞ leases" if math.isinf(k) else f"{int(k)} lease(s), {_dur(seconds)}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    from tabulate import tabulate
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=Path("benchmarks/mnist_paper.toml"))
    p.add_argument("--records", type=Path, default=Path("results/mnist_paper"))
    p.add_argument("--perf", type=Path, nargs="+", default=[Path("results/mnist_paper/perf_h200.txt")])
    p.add_argument("--jobs-per-gpu", default="1,2,3,4", help="comma-separated N to tabulate")
    p.add_argument("--lease-seconds", type=float, default=510,
                   help="a lease's seconds for its sweep (default 510: benchmarks/gpu_lease.sh's LIMIT=540 less its "
                        "setup and packing, with SKIP_PERF=1; its first lease's perf steps take up to ~2 more min)")
    args = p.parse_args(argv)
    ns = [int(n) for n in args.jobs_per_gpu.split(",")]

    sweep = load_sweep(args.config, Overrides())
    runner = Runner(Env(default_data_root(), default_cache_dir(), device="cpu", download=False))
    data_cfg = sweep.cells[0].setup.data
    data = runner.data(data_cfg)
    n_train, n_test = len(data.train.labels), len(data.test.labels)
    recipe = sweep.cells[0].setup.train
    classes = sorted({c.forget_class for c in sweep.cells})
    n_forget = {k: int((data.train.labels == k).sum()) for k in classes}
    sizes = {k: Sizes(n_forget[k], n_train - n_forget[k], data.spec.num_classes, recipe) for k in classes}

    perf = read_perf(args.perf)
    gpu = perf.gpu or "the GPU"
    records = [r for r in load_records(args.records)
               if r["model"] == BASE and r.get("device", {}).get("type") == "cuda"]
    solo = [r for r in records if r.get("jobs_per_gpu", 1) == 1]
    units = measured_units(solo, sweep.cells, sizes)
    loop = perf.loop_img_s.get(BASE) or perf.flops[BASE]["img_s"]
    mia = sweep.cells[0].eval.mia_members or n_train
    eval_s = {k: (n_test + n_forget[k] + min(mia, n_train)) * FORWARD / loop for k in classes}

    base = perf.flops[BASE]
    util = base["achieved"] / base["matmul"]
    spec = gpu_spec(gpu)
    print(f"GPU time of {args.config} ({len(sweep.cells)} cells) on {gpu}, from {len(solo)} {BASE} records "
          f"({args.records}/records) and {', '.join(map(str, args.perf))}\n")
    print(f"measured, {BASE}, one job on the GPU (mean over records):")
    rows = [["θ* (train, 10 epochs)", f"{units.theta:.1f}", str(units.counts["θ*"])],
            ["oracle (retrain)", f"{units.oracle:.1f}", str(units.counts["oracles"])]]
    rows += [[m, f"{t:.1f}", str(units.counts[m])] for m, t in sorted(units.method.items())]
    rows += [["evaluation per cell", f"{_mean(list(eval_s.values())):.1f}",
              f"({n_test:,} test + ~{_mean(list(n_forget.values())):,.0f} forget + {mia:,} MIA) x 1/3 at "
              f"{loop:,.0f} img/s"]]
    print(_table(rows, ["unit", "seconds", "records"]))
    for note in units.notes:
        print(f"  {note}")
    spec_note = (f", {100 * base['achieved'] / (spec.fp32 * 1e12):.1f}% of its fp32 spec ({spec.fp32:g} TFLOP/s)"
                 if spec else "")
    print(f"\n{BASE} trains at {base['achieved'] / 1e12:.2f} TFLOP/s: u = {100 * util:.1f}% of the measured matmul "
          f"({base['matmul'] / 1e12:.1f} TFLOP/s){spec_note}\n")

    models = list(dict.fromkeys(c.setup.model.name for c in sweep.cells))
    cost = {m: model_cost(m) for m in models}
    ratios: dict[str, dict[str, float]] = {}  # model → FLOP, op, matmul-rate and planning time ratios
    rows = []
    for m in models:
        flop_r, op_r = cost[m][0] / cost[BASE][0], cost[m][1] / cost[BASE][1]
        at_matmul = flop_r * util  # the model at the matmul rate instead of ResNet-34's achieved rate
        if m == BASE:
            plan, basis = 1.0, "measured"
        elif m in perf.flops:
            plan, basis = perf.flops[BASE]["img_s"] / perf.flops[m]["img_s"], "measured img/s (perf d)"
        else:
            plan, basis = max(flop_r, op_r), "op ratio (> FLOP ratio)" if op_r > flop_r else "FLOP ratio"
        ratios[m] = {"flop": flop_r, "op": op_r, "matmul": at_matmul, "plan": plan}
        rows.append([m, f"{cost[m][0] / 1e6:,.0f}", f"{flop_r:.2f}", f"{cost[m][1]:,}", f"{op_r:.2f}",
                     f"{at_matmul:.2f}", f"{plan:.2f}", basis])
    print("scaling to ResNet-34 at 32x32 (meta device: FLOPs by FlopCounterMode, aten ops of one training step):")
    print(_table(rows, ["model", "train MFLOP/img", "FLOP ratio", "ops/step", "op ratio", "at matmul rate",
                        "planning ratio", "basis"]))

    store = RecordStore(args.records)
    setups: dict[str, list[tuple[SetupWork, SetupWork | None]]] = defaultdict(list)
    for s in sweep.setups:
        cells = [c for c in sweep.cells if c.setup.key == s.key]
        todo = [c for c in cells if not store.has(c.key)]
        setups[s.model.name].append((setup_work(cells, units, eval_s),
                                     setup_work(todo, units, eval_s) if todo else None))
    recorded = sum(store.has(c.key) for c in sweep.cells)
    print(f"\n{recorded} of the {len(sweep.cells)} cells are recorded under the current settings (the others' "
          "config hashes changed, or they never ran)\n")

    usable = args.lease_seconds
    rows, totals = [], defaultdict(float)
    for m, works in setups.items():
        r = ratios[m]
        plan = r["plan"]
        whole = sum(w.total for w, _ in works)
        row = [m, _dur(plan * works[0][0].theta)] + [_dur(r[k] * whole) for k in ("flop", "op", "matmul", "plan")]
        todo = [t for _, t in works if t is not None]
        for n in ns:
            sp = min(n, 1 / util)
            t = sum(wall(w, plan, sp) for w in todo)
            k, lt = map(sum, zip(*(leases(w, plan, sp, usable) for w in todo))) if todo else (0, 0.0)
            totals[f"wall{n}"] += t
            totals[f"leases{n}"] += k
            totals[f"lease_s{n}"] += lt
            row.append(f"{_dur(t)}; {_leases(k, lt)}")
        for key in ("flop", "op", "matmul", "plan"):
            totals[key] += r[key] * whole
        rows.append(row)
    rows.append(["total", ""] + [_dur(totals[k]) for k in ("flop", "op", "matmul", "plan")]
                + [f"{_dur(totals[f'wall{n}'])}; {_leases(totals[f'leases{n}'], totals[f'lease_s{n}'])}" for n in ns])
    print(f"the block on one {gpu}; the whole block with one job per GPU under each scaling, and what is to run (the "
          f"cells not recorded) under the planning ratio: one sweep per (model, seed), and split into leases of "
          f"{usable:.0f} s of sweep, each training θ* and its oracles again:")
    print(_table(rows, ["model", "θ* each", "block: FLOP-scaled", "op-scaled", "at matmul rate", "planning"]
                 + [f"to run, {n}/GPU" for n in ns]))
    print(f"\nFLOP-scaled: the model reaches ResNet-34's achieved FLOP/s; op-scaled: its time per aten op (launch-"
          f"bound); at matmul rate: its FLOPs at the best measured matmul (compute-bound, a floor); planning: the "
          f"larger of the first two, or measured. N jobs per GPU: speed-up min(N, 1/u) = min(N, {1 / util:.1f}) "
          f"after θ*, an upper bound (see the docstring). \"∞ leases\": θ*, an oracle and one cell do not fit one "
          f"lease.")

    contended = [r for r in records if r.get("jobs_per_gpu", 1) > 1]
    if contended:
        print("\nmeasured under several jobs per GPU (mean seconds against the solo records):")
        rows = []
        for (n, m), rs in sorted(_group(contended).items()):
            ref = [r["unlearn_seconds"] for r in solo if r["method"] == m]
            if ref and m != "original":
                slow = _mean([r["unlearn_seconds"] for r in rs]) / _mean(ref)
                rows.append([str(n), m, str(len(rs)), f"{slow:.2f}x", f"{n / slow:.2f}x"])
        print(_table(rows, ["jobs/GPU", "method", "records", "slower per job", "throughput gain"]))
    return 0


def _group(records: list[dict[str, Any]]) -> dict[tuple[int, str], list[dict[str, Any]]]:
    out: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        out[(r["jobs_per_gpu"], r["method"])].append(r)
    return out


if __name__ == "__main__":
    sys.exit(main())
