"""Runs one cell end to end: original (cached) → unlearning (timed alone) → evaluation → one record.

The runner is the only place that touches the cache, the clock and the test data around a method, so that methods
stay small and comparable: each gets only the sample sets it declared, and what it drew is counted here.
"""
from __future__ import annotations

import copy
import logging
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import progress
from .budget import facts as budget_facts
from .cache import CheckpointCache
from .config import Cell, DataConfig, Setup, TrainRecipe, hash_view, stable_hash
from .data import DataBundle, SampleSet, Tracker, Withheld, load_data
from .deep import deep_metrics
from .method import Sizes, UnlearnTask, split_output
from .metrics import activation_distance, kl_divergence, mia_score, speedup, zrf
from .models import create_model, live_residual_branches
from .plan import ORACLE
from .records import undeclared
from .registry import get_method
from .runtime import (DATA_ORDER, Runtime, describe_device, deterministic, generator, resolve_device, torch_threads,
                      versions)
from .train import accuracy, fit, forget_retain_accuracy, predict, predict_batch_statistics

log = logging.getLogger("unlearnbench")

#: Generator salts: the MIA member subset (the same for every cell of a data set), ZRF's random network, the images
#: of θ*'s sanity check.
MIA_MEMBERS, ZRF_SEED, THETA_CHECK = 71, 72, 73

#: θ*'s sanity check: how many training and test images it looks at, and when it warns (eval-mode test accuracy at
#: most CHANCE_FACTOR × chance, or MODE_GAP points below train-mode accuracy on training images).
CHECK_IMAGES, CHANCE_FACTOR, MODE_GAP = 512, 1.5, 20.0


def near_chance(accuracy: float, num_classes: int) -> bool:
    """An accuracy (%) at most CHANCE_FACTOR × chance: a model that has learned (next to) nothing. θ*'s warning uses
    it, and the report flags the rows whose θ* it holds for (from the records' eval-mode test accuracies)."""
    return accuracy <= CHANCE_FACTOR * 100.0 / num_classes


def theta_warning(train_mode: float, eval_train: float, eval_test: float, num_classes: int,
                  has_bn: bool) -> str | None:
    """The cause and the fix of a θ* that looks broken, in one sentence; None when it looks sound.

    `train_mode`: accuracy (%) on training images in train mode (BatchNorm normalises by each batch's statistics);
    `eval_train`: on the same images in eval mode (by the running statistics); `eval_test`: on test images, eval
    mode, as every metric is measured. The cause is read from where the accuracy is lost: not learned at all (train
    mode near chance), between the modes on the same images, or between training and test images."""
    if not near_chance(eval_test, num_classes) and train_mode - eval_test <= MODE_GAP:
        return None
    if near_chance(train_mode, num_classes):
        return ("likely cause: it has not learned the training images either (too few steps, or a learning rate that "
                "does not suit this model); fix: train more epochs (--train epochs=N) or set the learning rate")
    if train_mode - eval_train >= eval_train - eval_test:  # lost between the modes, on the same images
        if has_bn:
            return ("likely cause: BatchNorm running statistics trailing the weights (too few steps for their "
                    "average to catch up); fix: recompute them after training with --train bn_recalibrate=true "
                    "([train] bn_recalibrate = true in a sweep file), and/or train more epochs")
        return ("likely cause: layers that act differently in eval mode (dropout, running averages) after too few "
                "steps; fix: train more epochs (--train epochs=N)")
    return ("likely cause: it fits the training images but not the test images (too few training images for this "
            "model); fix: train on more images (--data train_per_class=N) or augment (--train augment=crop)")


@dataclass(frozen=True)
class Env:
    """Where things are, and where to compute; none of it changes a result, so none of it is in a config hash."""

    data_root: Path
    cache_dir: Path
    device: str = "auto"
    download: bool = True
    num_workers: int = 4
    # torch's thread count while training a model the cache keeps (θ*, the retrained oracle); 0: the process's own.
    # A sweep sets its main process's count, so that CPU training, whose bits depend on the thread count, gives the
    # same checkpoint under a key whatever --jobs is (the other jobs' threads just share the cores meanwhile).
    train_threads: int = 0


class Runner:
    """Runs cells; keeps per-process memos (data on the device, originals, their test logits)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.device = resolve_device(env.device)
        self.cache = CheckpointCache(env.cache_dir)
        self._data: dict[DataConfig, DataBundle] = {}
        self._originals: dict[str, tuple[nn.Module, dict[str, Any], bool]] = {}
        self._logits: dict[str, dict[str, torch.Tensor]] = {}
        self._oracles: dict[str, tuple[nn.Module, dict[str, Any]]] = {}
        self._deep: dict[str, dict[str, Any]] = {}  # θ*'s and oracles' deep measurements (deep.py)

    # ---------------------------------------------------------------------------------------------------- building
    def data(self, cfg: DataConfig) -> DataBundle:
        if cfg not in self._data:
            self._data[cfg] = load_data(cfg, self.env.data_root, download=self.env.download, device=self.device,
                                        num_workers=self.env.num_workers)
        return self._data[cfg]

    def runtime(self, recipe: TrainRecipe) -> Runtime:
        return Runtime(self.device, recipe.precision, recipe.channels_last, self.env.num_workers, recipe.compile)

    def new_model(self, setup: Setup, seed: int) -> nn.Module:
        """A freshly initialised model; the same seed gives the same weights."""
        spec = self.data(setup.data).spec
        with deterministic(seed):
            model = create_model(setup.model, spec.num_classes, spec.in_chans)
        return self.runtime(setup.train).prepare(model)

    def original(self, setup: Setup) -> tuple[nn.Module, dict[str, Any], bool]:
        """θ* for `setup`: from the cache if it is there, else trained now (and cached). Returns (model, meta, hit)."""
        if setup.key not in self._originals:
            data = self.data(setup.data)
            runtime = self.runtime(setup.train)

            def train() -> tuple[nn.Module, dict[str, Any]]:
                log.info("training original %s on %s (seed %d, %d epochs, %d images)", setup.model.name,
                         setup.data.name, setup.seed, setup.train.epochs, len(data.train.labels))
                model = self.new_model(setup, setup.seed)
                n = len(data.train.labels)
                with progress.task(f"θ* {setup.data.name}/{setup.model.name} seed {setup.seed}",
                                   n * setup.train.epochs):
                    fit(model, data.sample_set("train"), setup.train, runtime, generator(setup.seed, DATA_ORDER),
                        what="original")
                return model, {}

            with torch_threads(self.env.train_threads):  # a cached model's bits must not depend on --jobs
                model, meta, hit = self.cache.get_or_build(
                    setup.key, lambda: self.new_model(setup, setup.seed), train,
                    {"kind": "original", "config": setup.to_dict(), "versions": versions(),
                     "device": describe_device(self.device)}, runtime.sync)
            log.info("original %s/%s seed %d: %s (training took %.1f s)", setup.data.name, setup.model.name,
                     setup.seed, "cache hit" if hit else "trained and cached", meta["seconds"])
            model.eval()
            self.check_original(setup, model)
            self._originals[setup.key] = (model, meta, hit)
        return self._originals[setup.key]

    @torch.no_grad()
    def check_original(self, setup: Setup, model: nn.Module) -> dict[str, float]:
        """Warn, in one line, about a θ* that looks broken: eval-mode test accuracy near chance, or far below its
        train-mode accuracy on training images. A few batches of each; θ* itself is not touched (a copy runs in
        train mode, whose BatchNorm layers would otherwise update their running statistics)."""
        data, runtime = self.data(setup.data), self.runtime(setup.train)
        g = generator(setup.seed, THETA_CHECK)
        train, test = data.sample_set("train"), data.sample_set("test")
        train = train.subset(torch.randperm(len(train), generator=g)[:CHECK_IMAGES].sort().values)
        test = test.subset(torch.randperm(len(test), generator=g)[:CHECK_IMAGES].sort().values)
        size = min(max(setup.train.batch_size, 16), len(train))
        with deterministic(setup.seed):  # dropout in train mode draws from the global RNG
            train_mode = predict_batch_statistics(model, train, runtime, size, drop_last=True)
        kept = train.labels[:len(train_mode)].cpu()  # the full batches' images, in order
        found = {"train_mode": accuracy(train_mode, kept) if len(kept) else 0.0,
                 "eval_train": accuracy(predict(model, train, runtime), train.labels.cpu()),
                 "eval_test": accuracy(predict(model, test, runtime), test.labels.cpu())}
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        numbers = (f"{len(train)} training images: train-mode {found['train_mode']:.1f}%, eval-mode "
                   f"{found['eval_train']:.1f}%; {len(test)} test images: eval-mode {found['eval_test']:.1f}%")
        what = f"θ* {setup.data.name}/{setup.model.name} seed {setup.seed}"
        problem = theta_warning(found["train_mode"], found["eval_train"], found["eval_test"],
                                data.spec.num_classes, has_bn)
        if problem:
            log.warning("%s looks broken (%s); %s", what, numbers, problem)
        else:
            log.info("%s: %s", what, numbers)
        return found

    # ---------------------------------------------------------------------------------------------------- one cell
    def method_key(self, cell: Cell) -> str:
        """Cache key of a cached method's output (retrain): its original, its hyperparameters, the class."""
        return f"{cell.method}-" + stable_hash({"original": cell.setup.key, "method": cell.method,
                                                 "hparams": hash_view(cell.hparams), "forget_class": cell.forget_class})

    def task(self, cell: Cell) -> tuple[UnlearnTask, dict[str, Tracker]]:
        """What the cell's method receives: only the sample sets it declared, each counting its draws."""
        setup, spec = cell.setup, get_method(cell.method)
        data = self.data(setup.data)
        trackers = {role: Tracker(len(data.train.labels)) for role in ("forget", "retain")}
        sets = {role: data.sample_set("train", role, cell.forget_class, trackers[role]) if role in spec.needs
                else Withheld(role, cell.method) for role in ("forget", "retain")}
        # the method's steps in `[unlearn] precision` where set; what they build from θ*'s recipe inherits it
        recipe = replace(setup.train, precision=cell.unlearn_precision) if cell.unlearn_precision else setup.train
        task = UnlearnTask(sets["forget"], sets["retain"], cell.forget_class, data.spec.num_classes,
                           (data.spec.in_chans, data.image_size, data.image_size), recipe,
                           self.runtime(recipe), lambda seed: self.new_model(setup, seed),
                           input_norm=(data.spec.mean, data.spec.std))
        return task, trackers

    def sizes(self, cell: Cell) -> Sizes:
        """What a method's cost estimate needs to know about the cell (its sample-steps: planner and progress)."""
        data = self.data(cell.setup.data)
        n_train = len(data.train.labels)
        n_forget = int((data.train.labels == cell.forget_class).sum())
        return Sizes(n_forget, n_train - n_forget, data.spec.num_classes, cell.setup.train)

    def budget(self, cell: Cell) -> dict[str, Any]:
        """The record's budget: its rule, and for a method with a schedule the epochs and steps it ran beside the
        rule's and the published recipe's (unlearnbench.budget)."""
        spec = get_method(cell.method)
        schedule = None if spec.cached else spec.schedule
        if schedule is None:
            return budget_facts(None, cell.budget.rule, cell.hparams, cell.hparams, (), 0, 0, 0)
        defaults = spec.resolve()
        published = replace(cell.hparams, **{f: getattr(defaults, f) for f in schedule.fields})
        n = self.sizes(cell)
        return budget_facts(schedule, cell.budget.rule, cell.hparams, published, cell.hand_set, n.forget, n.retain,
                            n.num_classes)

    def unlearn(self, cell: Cell) -> tuple[nn.Module, dict[str, Any]]:
        """Run the cell's method on a copy of θ*, timed alone. Returns (model, facts for the record)."""
        setup, spec = cell.setup, get_method(cell.method)
        original, _, _ = self.original(setup)
        task, trackers = self.task(cell)
        runtime = task.runtime

        diagnostics: dict[str, Any] = {}

        # the method's own randomness: the unlearning run's seed (a cached method, the oracle, is θ*'s seed's alone)
        seed = setup.seed if spec.cached else cell.method_seed

        def call(model: nn.Module) -> nn.Module:
            with deterministic(seed), progress.task(f"{cell.method} class {cell.forget_class}",
                                                    spec.cost(cell.hparams, self.sizes(cell))):
                out = spec.fn(model.train(), task, cell.hparams, seed)
            out, found = split_output(out)  # what the method did (steps, stopping), for the record
            diagnostics.update(found)
            return out.eval()

        def drawn() -> dict[str, int]:
            return {"forget_samples_seen": trackers["forget"].distinct, "forget_draws": trackers["forget"].draws,
                    "retain_samples_seen": trackers["retain"].distinct, "retain_draws": trackers["retain"].draws}

        if spec.cached:
            with torch_threads(self.env.train_threads):  # as θ*'s: the cached oracle's bits must not depend on --jobs
                info = {"kind": cell.method, "config": cell.to_dict(), "versions": versions(),
                        "device": describe_device(self.device)}
                model, meta, hit = self.cache.get_or_build(
                    self.method_key(cell), lambda: copy.deepcopy(original),
                    lambda: (call(copy.deepcopy(original)), {**drawn(), "diagnostics": diagnostics}), info,
                    runtime.sync)
            log.info("%s: %s (took %.1f s)", cell.method, "cache hit" if hit else "trained and cached",
                     meta["seconds"])
            return model.eval(), {"unlearn_seconds": meta["seconds"], "method_cache_hit": hit,
                                  **{k: meta[k] for k in drawn()}, "diagnostics": meta.get("diagnostics", {}),
                                  "checkpoint": {"key": meta["key"], "sha256": meta["sha256"]}}
        model = copy.deepcopy(original)  # θ* stays intact for the next cell; the copy is not part of the time
        runtime.sync()
        start = time.perf_counter()
        model = call(model)
        runtime.sync()
        seconds = time.perf_counter() - start
        return model, {"unlearn_seconds": seconds, "method_cache_hit": None, **drawn(), "diagnostics": diagnostics}

    # ---------------------------------------------------------------------------------------------------- evaluation
    def outputs(self, model: nn.Module, cell: Cell, parts: tuple[str, ...] | None = None,
                memo: str | None = None) -> dict[str, torch.Tensor]:
        """Logits on `parts` of the data: "test" (the test split), "forget_train" (the forget class's training
        images), "members" (a fixed subset of the retain-train images, the MIA members). By default, what the cell's
        metrics need. Memoised under `memo` for models that many cells share (θ*, the oracle, ZRF's random net)."""
        ev = cell.eval
        if parts is None:
            old_zrf = ev.zrf and ev.zrf_protocol != "published"
            parts = ("test",) + (("forget_train",) if ev.mia or old_zrf else ()) + (("members",) if ev.mia else ())
        key = f"{memo}/{cell.forget_class}/{ev.batch_size}/{ev.mia_members}/{parts}" if memo else None
        if key is not None and key in self._logits:
            return self._logits[key]
        data, runtime = self.data(cell.setup.data), self.runtime(cell.setup.train)
        sets = {"test": lambda: data.sample_set("test"),
                "forget_train": lambda: data.sample_set("train", "forget", cell.forget_class),
                "members": lambda: self._members(data, cell)}
        out = {part: predict(model, sets[part](), runtime, ev.batch_size) for part in parts}
        if key is not None:
            self._logits[key] = out
        return out

    @staticmethod
    def _members(data: DataBundle, cell: Cell) -> SampleSet:
        retain = data.sample_set("train", "retain", cell.forget_class)
        n = min(cell.eval.mia_members or len(retain), len(retain))
        return retain.subset(torch.randperm(len(retain), generator=generator(0, MIA_MEMBERS))[:n].sort().values)

    @staticmethod
    def oracle_cell(cell: Cell) -> Cell:
        """The retrain cell of this cell's class: the oracle it is measured against."""
        return replace(cell, method=ORACLE, hparams=cell.oracle)

    def oracle(self, cell: Cell) -> tuple[nn.Module, dict[str, Any]]:
        """The retrained model this cell is measured against (trained once, then from the cache)."""
        key = self.method_key(self.oracle_cell(cell))
        if key not in self._oracles:
            self._oracles[key] = self.unlearn(self.oracle_cell(cell))
        return self._oracles[key]

    def random_model(self, setup: Setup, official_init: bool = True) -> nn.Module:
        """ZRF's reference: a network of the same architecture that never learned anything, in eval mode, initialised
        as the official code's (torchvision's init, residual branches live: Bad Teaching's incompetent teacher)."""
        seed = int(torch.randint(2**31, (1,), generator=generator(setup.seed, ZRF_SEED)))
        model = self.new_model(setup, seed)
        return (live_residual_branches(model) if official_init else model).eval()

    def metrics(self, cell: Cell, out: dict[str, torch.Tensor], unlearn_seconds: float) -> dict[str, Any]:
        labels = self.data(cell.setup.data).test.labels
        is_forget = labels == cell.forget_class
        found: dict[str, Any] = {}
        if cell.eval.mia:
            found["mia"] = mia_score(out["members"], out["test"], out["forget_train"])
        if cell.eval.zrf and cell.eval.zrf_protocol == "published":  # the forget class's test images
            rnd = self.outputs(self.random_model(cell.setup), cell, ("test",), memo=f"random/{cell.setup.key}")
            found["zrf"] = zrf(out["test"][is_forget], rnd["test"][is_forget])
        elif cell.eval.zrf:
            rnd = self.outputs(self.random_model(cell.setup, official_init=False), cell, ("forget_train",),
                               memo=f"random_model_init/{cell.setup.key}")
            found["zrf"] = zrf(out["forget_train"], rnd["forget_train"])
        if cell.eval.oracle:
            model, facts = self.oracle(cell)
            found["oracle_checkpoint"] = facts["checkpoint"]  # which retrained model every gap is measured against
            ref = self.outputs(model, cell, memo=self.method_key(self.oracle_cell(cell)))
            ref_f, ref_r = forget_retain_accuracy(ref["test"], labels, cell.forget_class)
            acc_f, acc_r = forget_retain_accuracy(out["test"], labels, cell.forget_class)
            found |= {"retrain_acc_forget": ref_f, "retrain_acc_retain": ref_r,
                      "acc_forget_gap": abs(acc_f - ref_f), "acc_retain_gap": abs(acc_r - ref_r),
                      "kl_to_retrain": kl_divergence(ref["test"][is_forget], out["test"][is_forget]),
                      "activation_distance": activation_distance(ref["test"][is_forget], out["test"][is_forget]),
                      "retrain_seconds": facts["unlearn_seconds"],
                      "speedup": speedup(facts["unlearn_seconds"], unlearn_seconds)}
            if cell.eval.mia:
                found["mia_retrain"] = mia_score(ref["members"], ref["test"], ref["forget_train"])
                found["mia_gap"] = abs(found["mia"] - found["mia_retrain"])
        return found

    def run(self, cell: Cell) -> dict[str, Any]:
        """Run one cell and return its record (its fields: `records.SCHEMA`)."""
        setup = cell.setup
        data = self.data(setup.data)
        original, original_meta, original_hit = self.original(setup)
        model, facts = self.unlearn(cell)
        labels = data.test.labels
        orig = self.outputs(original, cell, ("test",), memo=setup.key)
        out = self.outputs(model, cell)
        acc_f, acc_r = forget_retain_accuracy(out["test"], labels, cell.forget_class)
        o_f, o_r = forget_retain_accuracy(orig["test"], labels, cell.forget_class)
        record = {
            "dataset": setup.data.name, "model": setup.model.name, "forget_class": cell.forget_class,
            "seed": setup.seed, "unlearn_seed": cell.unlearn_seed, "method": cell.method,
            "acc_forget": acc_f, "acc_retain": acc_r, "original_acc_forget": o_f, "original_acc_retain": o_r,
            **{k: v for k, v in facts.items() if k != "checkpoint"},
            **self.metrics(cell, out, facts["unlearn_seconds"]),
            **(deep_metrics(self, cell, model) if cell.eval.deep else {}),  # after the timed call
            "original_train_seconds": original_meta["seconds"], "original_cache_hit": original_hit,
            # which θ* this cell started from: its cache key (the recipe's hash) and the checkpoint's sha256
            "original_checkpoint": {"key": original_meta["key"], "sha256": original_meta["sha256"]},
            "test_forget_samples": int((labels == cell.forget_class).sum()),
            "test_retain_samples": int((labels != cell.forget_class).sum()),
            "budget": self.budget(cell),
            "config_hash": cell.key, "config": cell.to_dict(),
            "versions": versions(), "device": describe_device(self.device), "threads": torch.get_num_threads(),
            "host": socket.gethostname(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if bad := undeclared(record):  # a field is added to records.SCHEMA first, with its documentation
            raise RuntimeError(f"record fields {bad} are not defined in unlearnbench.records.SCHEMA")
        return record
