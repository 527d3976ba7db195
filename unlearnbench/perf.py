"""Speed, measured side by side in one run on the same model and data (a benchmark, not a test).

    python -m unlearnbench.perf [--sections loader,methods,fisher,flops,options] [--model resnet34]

loader   training img/s of the harness loop (uint8 tensors on the device, normalised on the fly) against a plain
         PyTorch loop over a torchvision DataLoader (PIL → ToTensor → Normalize per sample), for the chosen model
         and for a small one, where loading rather than arithmetic sets the pace.
methods  the unlearning time of every method against retraining from scratch (speed-up), on full MNIST.
fisher   the exact true Fisher (layerwise and torch.func backends) and the Monte-Carlo one, against a naive loop of
         one backward pass per (sample, class), on the same forget images.
flops    achieved training FLOP/s (FLOPs counted by torch's FlopCounterMode) against the theoretical peak (a CPU's
         vector units × clock × cores, a GPU's datasheet; unlearnbench.peak), the best measured matmul beside it.
options  channels_last, bf16 autocast and torch.compile: training img/s, and test accuracy after a short training.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .config import DataConfig, ModelConfig
from .errors import ArgumentParser, UsageError, cli, prog
from .method import list_methods
from .peak import Peak, ceiling, gpu_theoretical_peak, host_cpu_peak
from .plan import Overrides, overrides_from_file, resolve_cell
from .run import add_env_options, env_from_args, setup_logging
from .runner import Runner
from .runtime import describe_device, deterministic, generator
from .train import accuracy, cross_entropy, fit, forget_retain_accuracy, make_optimizer, predict, train_steps

SECTIONS = ("loader", "methods", "fisher", "flops", "options")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _table(rows: list[list[str]], header: list[str]) -> str:
    from tabulate import tabulate
    return tabulate(rows, header, tablefmt="github")


# --------------------------------------------------------------------------------------------------------------------
# (a) the training loop
# --------------------------------------------------------------------------------------------------------------------
def harness_img_s(runner: Runner, model_name: str, steps: int, batch: int) -> float:
    setup = resolve_cell("mnist", model_name, 0, 0, "original", Overrides()).setup
    model = runner.new_model(setup, 0).train()
    data = runner.data(setup.data).sample_set("train")
    runtime = runner.runtime(setup.train)
    opt = make_optimizer(model.parameters(), "adam", 1e-3)
    gen = generator(0)

    def run(n: int) -> None:
        batches = data.batches(batch, shuffle=True, generator=gen)
        train_steps(model, opt, (b for _, b in zip(range(n), batches)), cross_entropy(), runtime)

    run(2)  # warm-up
    return steps * batch / _timed(lambda: run(steps), runner.device)


def dataloader_img_s(runner: Runner, model_name: str, steps: int, batch: int, workers: int) -> float:
    """The loop most tutorials write: torchvision's MNIST with per-sample PIL transforms, a DataLoader."""
    from torchvision import datasets, transforms
    tf = transforms.Compose([transforms.Pad(2), transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(str(runner.env.data_root), train=True, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                         pin_memory=runner.device.type == "cuda", persistent_workers=workers > 0)
    with deterministic(0):
        from .models import create_model
        model = create_model(ModelConfig(model_name), 10, 1).to(runner.device).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def run(n: int) -> None:
        for i, (x, y) in enumerate(loader):
            if i == n:
                break
            x, y = x.to(runner.device, non_blocking=True), y.to(runner.device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run(2)
    return steps * batch / _timed(lambda: run(steps), runner.device)


def section_loader(runner: Runner, model: str, small: str, steps: int, workers: int) -> str:
    rows = []
    for name in (model, small):
        h = harness_img_s(runner, name, steps, 128)
        d = dataloader_img_s(runner, name, steps, 128, workers)
        rows.append([name, f"{h:,.0f}", f"{d:,.0f}", f"{h / d:.2f}x"])
    return ("(a) training throughput, MNIST, batch 128, " + f"{steps} steps each; DataLoader with {workers} "
            "worker(s)\n" + _table(rows, ["model", "harness img/s", "DataLoader img/s", "ratio"]))


# --------------------------------------------------------------------------------------------------------------------
# (b) methods against retrain
# --------------------------------------------------------------------------------------------------------------------
def section_methods(runner: Runner, model: str, forget_class: int, ov: Overrides) -> str:
    rows, times = [], {}
    for method in [m for m in list_methods(variants=False) if m != "original"]:
        cell = resolve_cell("mnist", model, forget_class, 0, method, ov)
        original, meta, _ = runner.original(cell.setup)  # trained (and cached) once, not timed here
        task, trackers = runner.task(cell)
        from .method import get_method, split_output
        spec = get_method(method)
        work = copy.deepcopy(original)
        out: list[torch.nn.Module] = []
        with deterministic(0):
            seconds = _timed(lambda: out.append(split_output(spec.fn(work.train(), task, cell.hparams, 0))[0]),
                             runner.device)
        times[method] = seconds
        logits = predict(out[0].eval(), runner.data(cell.setup.data).sample_set("test"), task.runtime)
        acc_f, acc_r = forget_retain_accuracy(logits, runner.data(cell.setup.data).test.labels, forget_class)
        rows.append([method, f"{seconds:.1f}", "", f"{acc_f:.2f}", f"{acc_r:.2f}",
                     f"{trackers['forget'].distinct}/{trackers['retain'].distinct}"])
    for row in rows:
        row[2] = f"{times['retrain'] / times[row[0]]:.1f}x"
    data = runner.data(cell.setup.data)  # the same data for every method
    return (f"(b) unlearning time against retraining, MNIST ({len(data.train.labels):,} training images), {model}, "
            f"forget class {forget_class}, seed 0 (θ* from the cache; every method timed alone, retrain trained "
            f"afresh)\n"
            + _table(rows, ["method", "seconds", "speed-up vs retrain", "A_Df", "A_Dr", "forget/retain seen"]))


# --------------------------------------------------------------------------------------------------------------------
# (c) Fisher
# --------------------------------------------------------------------------------------------------------------------
def fisher_bound(model: torch.nn.Module, x: torch.Tensor) -> None:
    """The arithmetic no exact true Fisher can skip: one forward of the batch, then one batched backward per class
    (the gradients of Σ_n log p(c|x_n), one c at a time), parameter gradients included."""
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        log_probs = F.log_softmax(model(x).float(), dim=-1)
        for c in range(log_probs.shape[1]):
            torch.autograd.grad(log_probs[:, c].sum(), params, retain_graph=True)


def _best(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """The best of `repeats` timed calls after one untimed warm-up (allocator and kernel caches)."""
    fn()
    return min(_timed(fn, device) for _ in range(repeats))


def section_fisher(runner: Runner, model_names: str, samples: int, repeats: int = 2, naive: bool = True) -> str:
    """Per model: the bound (`fisher_bound`), the layerwise true Fisher and their ratio, the figure of merit; the
    torch.func backend and the naive loop beside them. The Monte-Carlo Fisher's bound is one backward."""
    from .fisher import diagonal_fisher, layerwise_coverage, naive_fisher
    rows = []
    for model_name in model_names.split(","):
        cell = resolve_cell("mnist", model_name, 2, 0, "pbu", Overrides())
        model = runner.new_model(cell.setup, 0).eval()  # the cost does not depend on the weights
        forget = runner.data(cell.setup.data).sample_set("train", "forget", 2)
        x, y, _ = next(forget.batches(samples))
        batches = [(x, y)]
        closed, rest = layerwise_coverage(model)
        share = sum(p.numel() for k, p in model.named_parameters() if k in closed) / sum(
            p.numel() for p in model.parameters())
        bound = _best(lambda: fisher_bound(model, x), runner.device, repeats)
        timings = {backend: _best(lambda: diagonal_fisher(model, batches, "true", backend=backend,
                                                          generator=generator(0)), runner.device, repeats)
                   for backend in ("layerwise", "func")}
        slow = _timed(lambda: naive_fisher(model, batches, "true", generator=generator(0)), runner.device) \
            if naive else float("nan")
        rows.append([model_name, f"{len(closed)} / {len(closed) + len(rest)} ({100 * share:.1f}% of θ)",
                     f"{bound:.2f}", f"{timings['layerwise']:.2f}", f"{timings['layerwise'] / bound:.2f}",
                     f"{timings['func']:.2f}", f"{slow:.2f}" if naive else "—"])
    return (f"(c) exact true Fisher on the same {samples} forget images of MNIST 32x32 (fp32, eval mode), best of "
            f"{repeats} after a warm-up; bound = a forward and C = 10 batched backward passes (parameter gradients "
            "included); naive = one backward per sample and class, timed once\n"
            + _table(rows, ["model", "closed-form tensors", "bound s", "layerwise s", "layerwise / bound",
                            "func s", "naive s"]))


# --------------------------------------------------------------------------------------------------------------------
# (d) FLOP/s
# --------------------------------------------------------------------------------------------------------------------
def training_flops_per_sample(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device,
                              batch: int = 8) -> float:
    """FLOPs of one training step's forward and backward per sample (torch's FlopCounterMode: matmuls and
    convolutions). Works on the meta device, where it costs no compute."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.randn(batch, *shape, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def best_matmul(device: torch.device, dtype: torch.dtype = torch.float32) -> tuple[float, str]:
    """The best FLOP rate a square matrix product reaches on this device over a few sizes, and which size."""
    sizes = (4096, 8192) if device.type == "cuda" else (1024, 2048)
    reps = 20 if device.type == "cuda" else 4
    best, label = 0.0, ""
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        rate = 2 * n**3 * reps / _timed(lambda: [a @ b for _ in range(reps)], device)
        if rate > best:
            best, label = rate, f"{n}x{n}"
    return best, (f"best of {' and '.join(f'{n}²' for n in sizes)} {str(dtype).replace('torch.', '')} matmuls: "
                  f"{label}, {torch.get_num_threads()} thread(s)")


def theoretical_peak(device: torch.device) -> tuple[Peak, str]:
    """The device's theoretical fp32 training peak, and the lines naming the hardware it was computed for."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tf32 = torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32
        return gpu_theoretical_peak(name, tf32), (
            f"GPU: {name}; TF32 allowed: cudnn {torch.backends.cudnn.allow_tf32}, "
            f"matmul {torch.backends.cuda.matmul.allow_tf32}")
    cpu, peak = host_cpu_peak()
    if cpu is None:
        return peak, "CPU: unknown"
    return peak, f"CPU: {cpu.describe()}; vector flags: {' '.join(cpu.vector_flags) or 'none'}"


def flops_table(model_name: str, per_sample: float, img_s: float, matmul: float, peak: Peak) -> str:
    """Section (d)'s table: achieved training FLOP/s against the theoretical peak (never above 100%: see
    `unlearnbench.peak.ceiling`), the best measured matmul beside it."""
    achieved = per_sample * img_s
    top, warning = ceiling(peak.flops, matmul, achieved)
    theory = f"{peak.flops / 1e9:,.1f}" if peak.flops else "unknown"
    row = [f"{per_sample / 1e6:,.1f}", f"{img_s:,.0f}", f"{achieved / 1e9:,.1f}", f"{matmul / 1e9:,.1f}", theory,
           f"{100 * achieved / top:.0f}%", f"{100 * matmul / top:.0f}%"]
    text = (f"(d) achieved training FLOP/s, {model_name} on MNIST 32x32 (fp32)\n"
            + _table([row], ["MFLOP per training image", "img/s", "achieved GFLOP/s", "best matmul GFLOP/s",
                             "theoretical peak GFLOP/s", "achieved of peak", "matmul of peak"])
            + f"\ntheoretical peak: {peak.how}")
    return text + (f"\n{warning}" if warning else "")


def section_flops(runner: Runner, model_name: str, steps: int) -> str:
    cell = resolve_cell("mnist", model_name, 2, 0, "original", Overrides())
    model = runner.new_model(cell.setup, 0).train()
    per_sample = training_flops_per_sample(model, (1, 32, 32), runner.device)
    img_s = harness_img_s(runner, model_name, steps, 128)
    matmul, how = best_matmul(runner.device)
    peak, hardware = theoretical_peak(runner.device)
    return flops_table(model_name, per_sample, img_s, matmul, peak) + f"\nbest matmul: {how}\n{hardware}"


# --------------------------------------------------------------------------------------------------------------------
# (e) options
# --------------------------------------------------------------------------------------------------------------------
#: Section (e)'s variants: name → (label, training-recipe options). fp32 is the baseline the others are divided by.
VARIANTS = {"fp32": ("fp32", {}), "channels_last": ("channels_last", {"channels_last": True}),
            "bf16": ("bf16 autocast", {"precision": "bf16"}),
            "bf16_channels_last": ("bf16 + channels_last", {"precision": "bf16", "channels_last": True}),
            "compile": ("torch.compile", {"compile": True})}


def section_options(runner: Runner, model_name: str, steps: int, per_class: int,
                    names: Sequence[str] = tuple(VARIANTS)) -> str:
    rows = []
    for label, opts in [VARIANTS[n] for n in dict.fromkeys(("fp32", *names))]:  # fp32 first, each once
        cell = resolve_cell("mnist", model_name, 2, 0, "original",
                            Overrides(data={"train_per_class": per_class}, train={"epochs": 1, **opts}))
        setup = cell.setup
        runtime = runner.runtime(setup.train)
        model = runner.new_model(setup, 0).train()
        step_model = runtime.for_training(model)
        data = runner.data(setup.data)
        opt = make_optimizer(model.parameters(), "adam", 1e-3)
        train = data.sample_set("train")
        size = min(128, len(train))  # one shape: a partial batch would make torch.compile recompile while timed
        batches = [b for b in train.batches(size, shuffle=True, generator=generator(0)) if len(b.y) == size]
        batches = [batches[i % len(batches)] for i in range(2 + steps)]  # a small subset is cycled
        warm = _timed(lambda: train_steps(step_model, opt, batches[:2], cross_entropy(), runtime), runner.device)
        seconds = _timed(lambda: train_steps(step_model, opt, batches[2:], cross_entropy(), runtime), runner.device)
        img_s = sum(len(b.y) for b in batches[2:]) / seconds
        fresh = runner.new_model(setup, 0)
        fit(fresh, data.sample_set("train"), setup.train, runtime, generator(0))
        acc = accuracy(predict(fresh, data.sample_set("test"), runtime), data.test.labels)
        rows.append([label, f"{img_s:,.0f}", f"{warm:.1f}", f"{acc:.2f}"])
        # progress on stderr: a variant that never finishes (torch.compile on a small CPU) leaves the others' numbers
        print(f"  (e) {label}: {img_s:,.0f} img/s, first 2 steps {warm:.1f} s, test acc {acc:.2f}%", file=sys.stderr,
              flush=True)
    base = float(rows[0][1].replace(",", ""))
    for row in rows:
        row.insert(2, f"{float(row[1].replace(',', '')) / base:.2f}x")
    return (f"(e) options, {model_name}: training img/s, and test accuracy after 1 epoch on {per_class} images per "
            "class (same seed)\n" + _table(rows, ["option", "img/s", "vs fp32", "first 2 steps s", "test acc %"]))


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
            text = section_options(runner, args.model, args.steps, args.options_per_class, variants)
        print(text + f"\n[{time.perf_counter() - t0:.0f} s]\n", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
