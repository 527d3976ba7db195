"""Speed, measured side by side in one run on the same model and data (a benchmark, not a test).

    python -m unlearnbench.perf [--sections loader,methods,fisher,flops,options] [--model resnet34]

loader   training img/s of the harness loop (uint8 tensors on the device, normalised on the fly) against a plain
         PyTorch loop over a torchvision DataLoader (PIL → ToTensor → Normalize per sample), for the chosen model
         and for a small one, where loading rather than arithmetic sets the pace.
methods  the unlearning time of every method against retraining from scratch (speed-up), on full MNIST.
fisher   the exact true Fisher against its bound (a forward and C batched backward passes), per model (--model takes
         several, comma-separated); the torch.func backend and a naive loop of one backward pass per (sample,
         class) beside them, on the same forget images.
flops    achieved training FLOP/s (FLOPs counted by torch's FlopCounterMode) against the theoretical peak (a CPU's
         vector units × clock × cores, a GPU's datasheet; unlearnbench.peak), the best measured matmul beside it.
options  channels_last, bf16 autocast and torch.compile: training img/s, and test accuracy after a short training.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Sequence

from ..errors import UsageError
from ..plan import Overrides, overrides_from_file
from .options import ArgumentParser, add_env_options, cli, env_from_args, prog, setup_logging

#: The sections (unlearnbench.perf_sections measures them; torch loads once the command line is read).
SECTIONS = ("loader", "methods", "fisher", "flops", "options")
#: Section (e)'s variants: name → (label, training-recipe options). fp32 is the baseline the others are divided by.
VARIANTS = {"fp32": ("fp32", {}), "channels_last": ("channels_last", {"channels_last": True}),
            "bf16": ("bf16 autocast", {"precision": "bf16"}),
            "bf16_channels_last": ("bf16 + channels_last", {"precision": "bf16", "channels_last": True}),
            "compile": ("torch.compile", {"compile": True})}


# --------------------------------------------------------------------------------------------------------------------
def parser() -> ArgumentParser:
    me = prog("perf")
    p = ArgumentParser(prog=me, description=__doc__.split("\n\n")[0],
                       usage="%(prog)s [--sections S1,S2] [--model NAME] [--config FILE] [options]",
                       epilog=f"""sections: loader (a), methods (b), fisher (c), flops (d), options (e); see
  docs/performance.md
examples:
  {me} --sections loader,fisher,flops
  {me} --sections methods --config benchmarks/mnist_cpu.toml
  {me} --sections options --variants channels_last,compile --steps 10""")
    p.add_argument("--sections", default=",".join(SECTIONS), metavar="S1,S2", help=f"any of {', '.join(SECTIONS)}")
    p.add_argument("--model", default="resnet34", metavar="NAME", help="the model of sections b-e (default resnet34); section c takes several, comma-separated")
    p.add_argument("--small-model", default="test_resnet", metavar="NAME", help="the small model of section a")
    p.add_argument("--steps", type=int, default=30, metavar="N", help="timed training steps per measurement")
    p.add_argument("--loader-workers", type=int, default=2, metavar="N", help="DataLoader workers of the plain loop")
    p.add_argument("--forget-class", type=int, default=2, metavar="K", help="section b's forget class (default 2)")
    p.add_argument("--fisher-samples", type=int, default=32, metavar="N", help="forget images in section c")
    p.add_argument("--fisher-no-naive", action="store_true", help="section c without the naive loop (slow on big models)")
    p.add_argument("--train-per-class", type=int, default=0, metavar="N", help="section b on a subset (0: all)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="section b's data and method settings from a run or sweep file")
    p.add_argument("--options-per-class", type=int, default=1000, metavar="N", help="images per class in section e")
    p.add_argument("--variants", default=",".join(VARIANTS), metavar="V1,V2",
                   help=f"section e: any of {', '.join(VARIANTS)}")
    add_env_options(p)
    return p


def _method_overrides(args: argparse.Namespace) -> Overrides:
    ov = overrides_from_file(args.config)
    return ov.merged(Overrides(data={"train_per_class": args.train_per_class})) if args.train_per_class else ov


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if not sections or set(sections) - set(SECTIONS):
        raise UsageError(f"--sections takes {', '.join(SECTIONS)}; got {args.sections!r}")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if set(variants) - set(VARIANTS):
        raise UsageError(f"--variants takes {', '.join(VARIANTS)}; got {args.variants!r}")
    setup_logging(args.verbose, True)
    import torch

    from ..config import DataConfig
    from ..perf_sections import section_fisher, section_flops, section_loader, section_methods, section_options
    from ..runner import Runner
    from ..runtime import describe_device
    runner = Runner(env_from_args(args))
    runner.data(DataConfig("mnist"))  # missing data: one clear error before anything runs
    print(f"unlearnbench perf — {platform.node()}, {describe_device(runner.device)}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}\n",
          flush=True)
    started = time.perf_counter()
    for section in sections:
        t0 = time.perf_counter()
        if section == "loader":
            text = section_loader(runner, args.model, args.small_model, args.steps, args.loader_workers)
        elif section == "methods":
            text = section_methods(runner, args.model, args.forget_class, _method_overrides(args))
        elif section == "fisher":
            text = section_fisher(runner, args.model, args.fisher_samples, naive=not args.fisher_no_naive)
        elif section == "flops":
            text = section_flops(runner, args.model, args.steps)
        else:
            chosen = {v: VARIANTS[v] for v in dict.fromkeys(("fp32", *variants))}  # fp32 first, each once
            text = section_options(runner, args.model, args.steps, args.options_per_class, chosen)
        print(text + f"\n[{time.perf_counter() - t0:.0f} s]\n", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0
