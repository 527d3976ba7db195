"""Which of a model's parameter groups holds a method's loss of A_Dr?

    python benchmarks/weight_groups.py benchmarks/convnext_precision.toml --only method=fast_effective
    python benchmarks/weight_groups.py benchmarks/convnext_precision.toml --only method=pbu+stop \\
        --set unlearn.precision=fp32

The counterpart of bn_statistics.py for a model with nothing to recalibrate (ConvNeXt: LayerNorm, no running
statistics). For one cell of a sweep file, named by `--only` as in the sweep (`--set` as in the sweep; θ* from the
checkpoint cache, trained if missing), it runs the cell's method as the sweep does and splits the parameters into
groups by what they are:
  layer_scale    the per-channel scale of each residual branch (timm's `gamma`, LayerScale's `*.gamma`), which a
                 ConvNeXt initialises at 1e-6 and a short training leaves near 1e-3
  norm           the affine weights and biases of normalisation layers
  head           the classifier (`get_classifier()`)
  weights        every other parameter (convolutions, linear layers, their biases)
For each group it prints how far the method moved it (‖θ − θ*‖ / ‖θ*‖, and the median over its elements of
|θ − θ*| / |θ*|), then A_Df / A_Dr on the test set of the unlearned model with that one group set back to θ*'s
(*restored*), and of θ* with that one group's change alone (*alone*). A group whose restoring brings A_Dr back, and
whose change alone collapses θ*, is where the loss is. It explains a number; it produces none for a table.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from unlearnbench.cli.options import add_env_options, cli, env_from_args
from unlearnbench.cli.sweep import set_overrides
from unlearnbench.plan import one_cell, selections, sweep_share
from unlearnbench.files import atomic_write_bytes
from unlearnbench.runtime import describe_device
from unlearnbench.sweep import shared_runner
from unlearnbench.train import forget_retain_accuracy, predict

GROUPS = ("layer_scale", "norm", "head", "weights")
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.modules.normalization.RMSNorm)


def parameter_groups(model: nn.Module) -> dict[str, list[str]]:
    """Each parameter's name under its group (GROUPS); every parameter in exactly one."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_params = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    norm_params = {id(p) for m in model.modules() if isinstance(m, NORMS) for p in m.parameters(recurse=False)}
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for name, p in model.named_parameters():
        if id(p) in head_params:
            groups["head"].append(name)
        elif name.rsplit(".", 1)[-1] == "gamma":
            groups["layer_scale"].append(name)
        elif id(p) in norm_params:
            groups["norm"].append(name)
        else:
            groups["weights"].append(name)
    return groups


def moved(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], names: list[str]) -> tuple[float, float]:
    """(‖after − before‖ / ‖before‖ over the group, and the median over its elements of
    |after − before| / |before|)."""
    if not names:
        return float("nan"), float("nan")
    b = torch.cat([before[n].detach().float().flatten() for n in names])
    a = torch.cat([after[n].detach().float().flatten() for n in names])
    d = (a - b).abs()
    return float(d.norm() / b.norm()), float((d / b.abs().clamp_min(1e-12)).median())


def with_group(model: nn.Module, source: dict[str, torch.Tensor], names: list[str]) -> nn.Module:
    """A copy of `model` whose parameters `names` are `source`'s."""
    out = copy.deepcopy(model)
    params = dict(out.named_parameters())
    with torch.no_grad():
        for n in names:
            params[n].copy_(source[n])
    return out


def measure(runner, cell) -> dict:
    data = runner.data(cell.setup.data)
    runtime, labels, k = runner.runtime(cell.setup.train), data.test.labels, cell.forget_class
    test = data.sample_set("test")
    original, _, _ = runner.original(cell.setup)
    model, facts = runner.unlearn(cell)
    theta = {n: p.detach().clone() for n, p in original.named_parameters()}
    after = {n: p.detach().clone() for n, p in model.named_parameters()}

    def acc(m: nn.Module) -> list[float]:
        return list(forget_retain_accuracy(predict(m.eval(), test, runtime, cell.eval.batch_size), labels, k))

    groups = parameter_groups(model)
    rows = {}
    for g, names in groups.items():
        relative, median = moved(theta, after, names)
        rows[g] = {"parameters": sum(after[n].numel() for n in names), "relative_change": relative,
                   "median_element_change": median,
                   "restored": acc(with_group(model, theta, names)) if names else None,
                   "alone": acc(with_group(original, after, names)) if names else None}
        print(f"  {g}: {json.dumps(rows[g])}", file=sys.stderr, flush=True)
    return {"cell": cell.label, "config_hash": cell.key, "unlearn_seconds": facts["unlearn_seconds"],
            "diagnostics": facts.get("diagnostics", {}), "theta": acc(original), "record": acc(model),
            "groups": rows, "device": describe_device(runner.device)}


def table(found: dict) -> str:
    def pair(x):
        return "—" if x is None else f"{x[0]:.2f} / {x[1]:.2f}"
    lines = [f"{found['cell']}: unlearning {found['unlearn_seconds']:.1f} s",
             f"θ* A_Df / A_Dr {pair(found['theta'])}; unlearned {pair(found['record'])}", "",
             "| group | parameters | ‖Δ‖ / ‖θ*‖ | median element change, relative | restored: A_Df / A_Dr "
             "| alone: A_Df / A_Dr |",
             "|---|---|---|---|---|---|"]
    for g, r in found["groups"].items():
        lines.append(f"| {g} | {r['parameters']:,} | {r['relative_change']:.3g} | {r['median_element_change']:.3g} "
                     f"| {pair(r['restored'])} | {pair(r['alone'])} |")
    return "\n".join(lines)


@cli
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V",
                    help="the cell: method=, and dataset=, model=, forget_class=, seed= where the file has several")
    ap.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE", help="as sweep --set")
    ap.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    add_env_options(ap)
    args = ap.parse_args(argv)
    cell = one_cell(sweep_share(args.config, selections(args.only), set_overrides(args.set),
                                data_root=args.data_root, download=not args.no_download))
    found = measure(shared_runner(env_from_args(args)), cell)
    if args.json:
        atomic_write_bytes(args.json, lambda f: f.write(json.dumps(found, indent=1) + "\n"), mode="w")
    print(table(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
