"""The measurements of `unlearnbench perf` (its command line, SECTIONS and VARIANTS: `unlearnbench.perf`), one
function per section; they import torch, which the command loads only once its command line is read."""
from __future__ import annotations

import copy
import sys
import time
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from .config import ModelConfig
from .registry import list_methods
from .peak import Peak, ceiling, gpu_theoretical_peak, host_cpu_peak
from .plan import Overrides, resolve_cell
from .runner import Runner
from .runtime import deterministic, generator
from .train import accuracy, cross_entropy, fit, forget_retain_accuracy, make_optimizer, predict, train_steps


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
        from .method import split_output
        from .registry import get_method
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
def section_options(runner: Runner, model_name: str, steps: int, per_class: int,
                    variants: Mapping[str, tuple[str, Mapping[str, object]]]) -> str:
    """`variants`: name → (label, training-recipe options), the baseline the others are divided by first."""
    rows = []
    for label, opts in variants.values():
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
