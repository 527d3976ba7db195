"""Bad input is refused before any work: one line on stderr, exit status 2, nothing written.

One table row per case, across the three CLIs (`run`, `sweep`, `report`): the arguments, the files the case needs in a
fresh working directory, and a pattern the one stderr line must match. Every case runs in-process with the training
and the sweep's job runner replaced by a tripwire, so a case that slips past the checks fails at once instead of
training; the working directory (results, cache, everything) must be exactly as the case left it.

Below the table: every numeric setting of every registered method (variants included) and of the recipe, data and
evaluation tables declares a valid range with both ends, and a value outside each bound is refused the same way;
and a `methods` package in the working directory does not change the methods the CLI lists.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from unlearnbench import report, runner, sweep
from unlearnbench.cli import listing, run, sweep as sweep_cli
from unlearnbench.config import DataConfig, EvalConfig, ModelConfig, Range, TrainRecipe, param
from unlearnbench.registry import get_method, list_methods

REPO = Path(__file__).resolve().parent.parent
DIR = object()  # a file table entry that is a directory
FIFO = object()  # ... a named pipe: reading or appending to it would block for ever


@dataclass(frozen=True)
class Link:
    """A file table entry that is a symbolic link to `target` (itself: a loop)."""
    target: str

GRID = """
name = "tiny"
seeds = [0]
methods = ["original", "finetune", "pbu"]
[[grid]]
dataset = "mnist"
models = ["test_resnet"]
forget_classes = [1, 2]
[data]
train_per_class = 20
test_per_class = 10
[train]
epochs = 1
[method.finetune]
epochs = 1
"""
RECORD = ('{"config_hash": "abc", "dataset": "mnist", "model": "resnet18", "forget_class": 2, "seed": 0, '
          '"method": "pbu", "acc_forget": 0.5, "acc_retain": 97.0}')


def record(**fields: Any) -> str:
    """RECORD with some fields changed (a value of None removes the field)."""
    import json
    rec = {**json.loads(RECORD), **fields}
    return json.dumps({k: v for k, v in rec.items() if v is not None})


def sealed(**fields: Any) -> str:
    """A record as this version writes it (record_version 2, digest: sha256 of the canonical JSON of the other
    fields), with `fields` changed after sealing."""
    import hashlib
    import json
    rec = {**json.loads(record()), "record_version": 2}
    rec["digest"] = hashlib.sha256(json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return json.dumps({**rec, **fields})


def idx_files(root: str = "d", split: str = "train", n: int = 10, **corrupt: bytes) -> dict[str, bytes]:
    """MNIST idx files of `n` blank 28×28 images (both splits), `corrupt` replacing a file's first bytes
    (images=..., labels=...) or, as truncate_images=k, cutting the images file to k bytes."""
    def images(m: int) -> bytes:
        return b"\0\0\x08\x03" + m.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(m * 784)

    def labels(m: int) -> bytes:
        return b"\0\0\x08\x01" + m.to_bytes(4, "big") + bytes(i % 10 for i in range(m))

    out = {}
    for part, m in (("train", n), ("t10k", n)):
        img, lab = images(m), labels(m)
        if part == ("train" if split == "train" else "t10k"):
            if "images" in corrupt:
                img = corrupt["images"] + img[len(corrupt["images"]):]
            if "labels" in corrupt:
                lab = corrupt["labels"] + lab[len(corrupt["labels"]):]
            if "truncate_images" in corrupt:
                img = img[:int.from_bytes(corrupt["truncate_images"], "big")]
        out[f"{root}/MNIST/raw/{part}-images-idx3-ubyte"] = img
        out[f"{root}/MNIST/raw/{part}-labels-idx1-ubyte"] = lab
    return out

RUN = ["--dataset", "mnist", "--model", "test_resnet", "--forget-class", "2", "--method", "finetune",
       "--results", "out/runs.jsonl", "--cache-dir", "cache", "--no-download", "--data", "train_per_class=20"]
SWEEP = ["--config", "grid.toml", "--results", "out/sweep", "--cache-dir", "cache", "--no-download", "--no-estimate"]


def swap(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


def grid(*edits: tuple[str, str]) -> dict[str, Any]:
    text = GRID
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return {"grid.toml": text}


@dataclass(frozen=True)
class Case:
    cli: str  # run, sweep, report
    argv: list[str]
    message: str  # a regex the one stderr line must match
    files: dict[str, Any] = dataclasses.field(default_factory=dict)  # path → text, bytes, DIR, FIFO or a Link

    def __str__(self) -> str:
        return f"{self.cli} {' '.join(self.argv)}"


R, S, P = "run", "sweep", "report"
CASES: list[Case] = [
    # ---- run: names, classes, seeds
    Case(R, swap(RUN, "--dataset", "mnist2"),
         r"unknown dataset 'mnist2' \(did you mean 'mnist'\?\); valid: cifar100, fashion_mnist"),
    Case(R, swap(RUN, "--model", "resnet_9000"), r"unknown model 'resnet_9000'"),
    Case(R, swap(RUN, "--method", "forget_all"), r"unknown method 'forget_all'; valid: .*finetune"),
    Case(R, swap(RUN, "--forget-class", "12"), r"forget class 12 is out of range for mnist \(classes 0..9\)"),
    Case(R, swap(RUN, "--forget-class", "-1"), r"forget class -1 is out of range for mnist"),
    Case(R, swap(RUN, "--forget-class", "two"), r"argument --forget-class: invalid int value: 'two'"),
    Case(R, RUN + ["--seed", "-3"], r"seed must be an integer from 0 to 4294967295, got -3"),
    Case(R, RUN[:6] + RUN[8:], r"missing --method"),
    # ---- run: settings out of range, of the wrong type, unknown
    Case(R, RUN + ["--hp", "epochs=-1"],
         r"^unlearnbench.run: error: method.finetune.epochs: must be >= 1 and <= 1000, got -1$"),
    Case(R, RUN + ["--hp", "epochs=0"], r"method.finetune.epochs: must be >= 1 and <= 1000, got 0"),
    Case(R, RUN + ["--hp", "lr=-1"], r"method.finetune.lr: must be > 0 and <= 1000000, got -1.0"),
    Case(R, RUN + ["--hp", "batch_size=-5"], r"method.finetune.batch_size: must be >= 0 and <= 65536, got -5"),
    Case(R, RUN + ["--hp", "lr=nan"], r"method.finetune.lr: expected float, got nan"),
    Case(R, RUN + ["--hp", "learning_rate=1"], r"method.finetune: unknown key\(s\) learning_rate; valid: epochs"),
    Case(R, swap(RUN, "--method", "pbu") + ["--hp", "stop_threshold=101"],
         r"method.pbu.stop_threshold: must be >= 0 and <= 100, got 101"),
    Case(R, swap(RUN, "--method", "pbu+stop") + ["--hp", "alpha=0"], r"method.pbu\+stop.alpha: must be > 0"),
    Case(R, swap(RUN, "--method", "bad_teaching") + ["--hp", "retain_fraction=1.5"],
         r"method.bad_teaching.retain_fraction: must be >= 0 and <= 1, got 1.5"),
    Case(R, RUN + ["--train", "epochs=0"], r"train.epochs: must be >= 1 and <= 1000, got 0"),
    Case(R, RUN + ["--train", "momentum=1"], r"train.momentum: must be >= 0 and < 1, got 1.0"),
    Case(R, RUN + ["--train", "optimizer=rmsprop"], r"train.optimizer: 'rmsprop' is not one of 'adam', 'adamw'"),
    Case(R, RUN + ["--train", "epochs"], r"--train: expected KEY=VALUE, got 'epochs'"),
    Case(R, RUN + ["--data", "image_size=-1"], r"data.image_size: must be >= 0 and <= 1024, got -1"),
    Case(R, swap(RUN, "--data", "train_per_class=many"), r"data.train_per_class: expected int, got 'many'"),
    Case(R, RUN + ["--eval", "batch_size=0"], r"eval.batch_size: must be >= 1 and <= 65536, got 0"),
    Case(R, RUN + ["--eval", "mia=maybe"], r"eval.mia: expected bool, got 'maybe'"),
    Case(R, RUN + ["--pretrained-file", "weights.pth"], r"model.pretrained_file: weights.pth is not a file"),
    # ---- run: model × input size, device, workers
    Case(R, swap(RUN, "--model", "vit_tiny_patch16_224"),
         r"model vit_tiny_patch16_224 takes 224×224 inputs only, not 32×32: set image_size = 224 \(.*--data "
         r"image_size=N for a run"),
    Case(R, swap(RUN, "--model", "densenet121") + ["--data", "image_size=28"],
         r"model densenet121 down-samples 32-fold and cannot take 28×28 inputs; set image_size >= 32"),
    Case(R, RUN + ["--device", "cuda:7"], r"device 'cuda:7' asked for, but (CUDA is not available|this machine has)"),
    Case(R, RUN + ["--device", "mps"], r"device 'mps' asked for, but MPS \(Apple's GPU\) is not available here"),
    Case(R, RUN + ["--device", "tpu"], r"bad device 'tpu'; use auto, cpu, cuda, cuda:N or mps$"),
    Case(R, RUN + ["--device", "meta"], r"device 'meta' is not one this benchmark runs on; use auto, cpu, cuda"),
    Case(R, RUN + ["--workers", "-1"], r"--workers must be >= 0 and <= 256, got -1"),
    # ---- run: config files
    Case(R, RUN + ["--config", "none.toml"], r"config file none.toml does not exist"),
    Case(R, RUN + ["--config", "conf"], r"config file conf is a directory, expected a TOML file", {"conf": DIR}),
    Case(R, RUN + ["--config", "latin1.toml"], r"config file latin1.toml is not UTF-8 text \(byte 13\)",
         {"latin1.toml": "[train]\n# caf\xe9\nepochs = 1\n".encode("latin-1")}),
    Case(R, RUN + ["--config", "bad.toml"], r"config file bad.toml is not valid TOML: ",
         {"bad.toml": "[train]\nlr = = 3\n"}),
    Case(R, RUN + ["--config", "c.toml"], r"c.toml \[train\]: unknown key\(s\) warmup",
         {"c.toml": "[train]\nwarmup = 3\n"}),
    Case(R, RUN + ["--config", "c.toml"], r"method.finetune.epochs: must be >= 1 and <= 1000, got -3",
         {"c.toml": "[method.finetune]\nepochs = -3\n"}),
    Case(R, RUN + ["--config", "c.toml"], r"c.toml: \[data\] must be a table", {"c.toml": "data = 3\n"}),
    Case(R, swap(RUN, "--method", "pbu") + ["--config", "c.toml"],
         r"c.toml: \[method.pbu\] class = 5: per-class settings go in tables \[method.pbu.class.<k>\]",
         {"c.toml": "[method.pbu]\nclass = 5\n"}),
    Case(R, swap(RUN, "--method", "pbu") + ["--config", "c.toml"],
         r"\[method.pbu.class.12\]: mnist has no class 12 \(classes 0..9\)",
         {"c.toml": "[method.pbu.class.12]\nalpha = 3.0\n"}),
    # ---- run: output paths
    Case(R, swap(RUN, "--results", "out"), r"--results out: is a directory, expected a file", {"out": DIR}),
    Case(R, swap(RUN, "--results", "afile/runs.jsonl"),
         r"--results afile/runs.jsonl: cannot be created, afile is not a directory", {"afile": "x"}),
    Case(R, swap(RUN, "--results", "/proc/sys/runs.jsonl"),
         r"--results /proc/sys/runs.jsonl: cannot be created, /proc/sys is not writable"),
    Case(R, swap(RUN, "--cache-dir", "cachefile"), r"--cache-dir cachefile: is a file, expected a directory",
         {"cachefile": "x"}),
    Case(R, swap(RUN, "--cache-dir", "afile/cache"), r"--cache-dir afile/cache: cannot be created, afile is not a "
         r"directory", {"afile": "x"}),
    Case(R, RUN + ["--data-root", "nodata"], r"mnist not found under nodata \(downloads are off\): put MNIST/raw"),
    # ---- sweep
    Case(S, SWEEP, r"forget class 12 is out of range for mnist", grid(("forget_classes = [1, 2]",
                                                                       "forget_classes = [1, 12]"))),
    Case(S, SWEEP, r"unknown method 'unlearn'", grid(('methods = ["original", "finetune", "pbu"]',
                                                      'methods = ["original", "unlearn"]'))),
    Case(S, SWEEP, r"grid.toml: unknown key\(s\) trian", grid(("[train]", "[trian]"))),
    Case(S, SWEEP, r"grid.toml: seeds must be a non-empty list of ints", grid(("seeds = [0]", "seeds = 0"))),
    Case(S, SWEEP, r"grid.toml: missing 'grid'", {"grid.toml": 'name = "x"\nseeds = [0]\nmethods = ["pbu"]\n'}),
    Case(S, SWEEP, r"grid.toml grid\[0\]: must be a \[\[grid\]\] table .*, got 1",
         {"grid.toml": 'name = "x"\nseeds = [0]\nmethods = ["pbu"]\ngrid = [1]\n'}),
    Case(S, SWEEP, r"grid.toml: grid must be a list of \[\[grid\]\] tables",
         {"grid.toml": 'name = "x"\nseeds = [0]\nmethods = ["pbu"]\n[grid]\ndataset = "mnist"\n'}),
    Case(S, SWEEP, r"grid\[0\]: dataset must be one name \(a string\), got \['mnist'\]",
         grid(('dataset = "mnist"', 'dataset = ["mnist"]'))),
    Case(S, SWEEP, r"grid.toml: name must be a non-empty string", grid(('name = "tiny"', 'name = ".."'))),
    Case(S, SWEEP, r"grid.toml: \[method.pbu\] class = 5: per-class settings go in tables",
         grid(("[method.finetune]", "[method.pbu]\nclass = 5\n[method.finetune]"))),
    Case(S, SWEEP, r"grid.toml: \[method.pbu.class.12\]: no data set of the grid has class 12 \(mnist has classes "
         r"0..9\)", grid(("[method.finetune]", "[method.pbu.class.12]\nalpha = 3.0\n[method.finetune]"))),
    Case(S, SWEEP, r"method.finetune.epochs: must be >= 1 and <= 1000, got -3",
         grid(("[method.finetune]\nepochs = 1", "[method.finetune]\nepochs = -3"))),
    Case(S, SWEEP, r"model vit_tiny_patch16_224 takes 224×224 inputs only, not 32×32: set image_size = 224 \(.*"
         r"--set data.image_size=N for a sweep\)",
         grid(('models = ["test_resnet"]', 'models = ["vit_tiny_patch16_224"]'))),
    Case(S, SWEEP, r"config file grid.toml is not UTF-8 text",
         {"grid.toml": GRID.encode() + b"# \xff\xfe\n"}),
    Case(S, swap(SWEEP, "--config", "conf"), r"config file conf is a directory", {"conf": DIR}),
    Case(S, SWEEP + ["--set", "train.epochs=0"], r"train.epochs: must be >= 1 and <= 1000, got 0", grid()),
    Case(S, SWEEP + ["--set", "method.pbu.alpha=0"], r"method.pbu.alpha: must be > 0 and <= 1000000, got 0", grid()),
    Case(S, SWEEP + ["--set", "colour=red"], r"--set colour: expected data\|model\|train\|eval\|budget\|unlearn.KEY",
         grid()),
    Case(S, SWEEP + ["--only", "colour=red"], r"--only colour: select on one of dataset", grid()),
    Case(S, SWEEP + ["--jobs", "-1"], r"--jobs must be >= 0 and <= 1024, got -1$", grid()),
    Case(S, SWEEP + ["--scheduler", "tcp://h:8786"], r"--scheduler goes with --backend dask$", grid()),
    Case(S, SWEEP + ["--device", "mps"], r"device 'mps' asked for, but MPS", grid()),
    Case(S, swap(SWEEP, "--results", "resfile"), r"--results resfile: is a file, expected a directory",
         {**grid(), "resfile": "x"}),
    Case(S, SWEEP, r"--results out/sweep/records: is a file, expected a directory",
         {**grid(), "out/sweep/records": "x"}),
    Case(S, swap(SWEEP, "--results", "/proc/sys/sweep"), r"--results /proc/sys/sweep: cannot be created, /proc/sys is "
         r"not writable", grid()),
    Case(S, swap(SWEEP, "--cache-dir", "cachefile"), r"--cache-dir cachefile: is a file, expected a directory",
         {**grid(), "cachefile": "x"}),
    Case(S, SWEEP + ["--data-root", "nodata"], r"mnist not found under nodata \(downloads are off\)", grid()),
    # ---- report
    Case(P, ["missing"], r"missing does not exist"),
    Case(P, ["res", "--format", "pdf"], r"--format takes csv, tex, md; got 'pdf'", {"res/runs.jsonl": RECORD}),
    Case(P, ["res", "--metrics", "accuracy"], r"unknown metric\(s\) accuracy; valid: acc_forget",
         {"res/runs.jsonl": RECORD}),
    Case(P, ["res", "--out", "outfile"], r"--out outfile: is a file, expected a directory",
         {"res/runs.jsonl": RECORD, "outfile": "x"}),
    Case(P, ["res", "--out", "outfile/report"], r"--out outfile/report: cannot be created, outfile is not a directory",
         {"res/runs.jsonl": RECORD, "outfile": "x"}),
    Case(P, ["res", "--out", "/proc/sys/report"], r"--out /proc/sys/report: cannot be created, /proc/sys is not "
         r"writable", {"res/runs.jsonl": RECORD}),
    Case(P, ["res"], r"res: nothing to report \(no records/\*.json or \*.jsonl there\)", {"res/records": DIR}),
    Case(P, ["res"], r"nothing to report \(1 file\(s\) skipped, the first: res/runs.jsonl: skipped 2 line\(s\) that "
         r"are not whole records \(line 1: not a record object \(JSON an array\) and 1 more\)\)",
         {"res/runs.jsonl": '[1, 2]\n"text"\n'}),
    Case(P, ["res"], r"res/runs.jsonl: skipped 1 line\(s\) .*\(line 1: not UTF-8 text \(byte 2\)\)",
         {"res/runs.jsonl": b'{"\xe9": 1}\n'}),
    Case(P, ["res"], r"res/records/abc.json: an empty record \{\}; skipped", {"res/records/abc.json": "{}"}),
    Case(P, ["res"], r"res/records/abc.json: an incomplete record \(no dataset, model, forget_class, seed, method, "
         r"acc_forget, acc_retain\); skipped", {"res/records/abc.json": '{"config_hash": "abc"}'}),
    Case(P, ["res"], r"res/records/abc.json: not a record object \(JSON a string\)",
         {"res/records/abc.json": '"done"'}),
    Case(P, ["one.json"], r"one.json: not JSON \(truncated or malformed\); skipped", {"one.json": RECORD[:40]}),
    Case(P, ["empty.jsonl"], r"empty.jsonl: nothing to report \(an empty file\)", {"empty.jsonl": "\n"}),
    # ---- second round. Upper bounds: a value far too large is refused before work, never a hang or an overflow
    Case(R, RUN + ["--hp", f"epochs={10**30}"], r"method.finetune.epochs: must be >= 1 and <= 1000, got 1"),
    Case(R, RUN + ["--train", "batch_size=1e30"], r"train.batch_size: must be >= 1 and <= 65536, got 1"),
    Case(R, RUN + ["--eval", f"batch_size={10**30}"], r"eval.batch_size: must be >= 1 and <= 65536, got 1"),
    Case(R, swap(RUN, "--data", f"train_per_class={10**30}"),
         r"data.train_per_class: must be >= 0 and <= 1000000, got 1"),
    Case(R, RUN + ["--data", "image_size=100000"], r"data.image_size: must be >= 0 and <= 1024, got 100000"),
    Case(R, RUN + ["--seed", str(10**30)], r"seed must be an integer from 0 to 4294967295, got 1"),
    Case(R, RUN + ["--seed", "9223372036854775807"], r"seed must be an integer from 0 to 4294967295, got 9223372"),
    Case(S, SWEEP, r"seed must be an integer from 0 to 4294967295, got 9223372036854775807",
         grid(("seeds = [0]", "seeds = [9223372036854775807]"))),
    Case(R, RUN + ["--workers", "1000000"], r"--workers must be >= 0 and <= 256, got 1000000$"),
    Case(S, SWEEP + ["--jobs", str(10**30)], r"--jobs must be >= 0 and <= 1024, got 1", grid()),
    Case(S, SWEEP + ["--jobs-per-gpu", "1000000"], r"--jobs-per-gpu must be >= 1 and <= 1024, got 1000000", grid()),
    # ---- timm arguments: tried at plan time on the meta device, the argument named
    Case(R, RUN + ["--config", "c.toml"], r"model.timm_args drop_rate=5: timm cannot build and train test_resnet with "
         r"it \(ValueError: dropout probability", {"c.toml": '[model]\ntimm_args = "drop_rate=5"\n'}),
    Case(R, RUN + ["--config", "c.toml"], r"model.timm_args drop_rate=abc: timm cannot build and train test_resnet",
         {"c.toml": '[model]\ntimm_args = "drop_rate=abc"\n'}),
    Case(R, RUN + ["--config", "c.toml"], r"model.timm_args global_pool=xyz: .*\(AssertionError: Invalid pool type",
         {"c.toml": '[model]\ntimm_args = "drop_rate=0.1,global_pool=xyz"\n'}),
    Case(S, SWEEP, r"model.timm_args drop_rate=5: timm cannot build and train test_resnet",
         grid(("[data]", '[model]\ntimm_args = "drop_rate=5"\n[data]'))),
    # ---- special files: never opened (a FIFO blocks for ever, /dev/zero never ends), a loop is not "missing"
    Case(R, RUN + ["--config", "c.toml"], r"config file c.toml is a named pipe \(FIFO\)$", {"c.toml": FIFO}),
    Case(R, RUN + ["--config", "/dev/zero"], r"config file /dev/zero is a device$"),
    Case(R, RUN + ["--config", "loop.toml"], r"config file loop.toml is a symbolic link loop$",
         {"loop.toml": Link("loop.toml")}),
    Case(S, swap(SWEEP, "--config", "/dev/zero"), r"config file /dev/zero is a device$"),
    Case(R, swap(RUN, "--results", "runs.jsonl"), r"--results runs.jsonl: is a named pipe \(FIFO\), expected a "
         r"regular file", {"runs.jsonl": FIFO}),
    Case(R, swap(RUN, "--results", "/dev/zero"), r"--results /dev/zero: is a device, expected a regular file"),
    Case(R, swap(RUN, "--results", "x" * 300 + ".jsonl"), r"--results x{40}\.\.\.x+\.jsonl: has a name longer "
         r"than 255 bytes"),
    Case(S, SWEEP, r"--results out/sweep: is a named pipe \(FIFO\), expected a directory",
         {**grid(), "out/sweep": FIFO}),
    Case(P, ["res"], r"nothing to report \(1 file\(s\) skipped, the first: res/runs.jsonl: is a named pipe \(FIFO\)"
         r"; skipped\)", {"res/runs.jsonl": FIFO}),
    Case(P, ["res"], r"nothing to report \(1 file\(s\) skipped, the first: res/records/abc.json: is a named pipe",
         {"res/records/abc.json": FIFO}),
    Case(P, ["res"], r"the first: res/runs.jsonl: is a device; skipped", {"res/runs.jsonl": Link("/dev/zero")}),
    Case(P, ["/dev/zero"], r"/dev/zero is a device, expected a results directory or a record file$"),
    Case(P, ["pipe.jsonl"], r"pipe.jsonl is a named pipe \(FIFO\), expected a results directory",
         {"pipe.jsonl": FIFO}),
    Case(P, ["loop"], r"loop is a symbolic link loop, expected a results directory", {"loop": Link("loop")}),
    Case(P, ["res", "--out", "pipe"], r"--out pipe: is a named pipe \(FIFO\), expected a directory",
         {"res/runs.jsonl": RECORD, "pipe": FIFO}),
    # ---- records are checked by type, version and digest; the file and the field named
    Case(P, ["res"], r"res/records/abc.json: field forget_class: expected a non-negative integer, got \[2\]; skipped",
         {"res/records/abc.json": record(forget_class=[2])}),
    Case(P, ["res"], r"res/records/abc.json: field seed: expected a non-negative integer, got \[0\]",
         {"res/records/abc.json": record(seed=[0])}),
    Case(P, ["res"], r"res/records/abc.json: field config_hash: expected a non-empty string, got \{\}",
         {"res/records/abc.json": record(config_hash={})}),
    Case(P, ["res"], r"res/records/abc.json: field method: expected a non-empty string, got 5",
         {"res/records/abc.json": record(method=5)}),
    Case(P, ["res"], r"res/records/abc.json: field dataset: expected text without control characters",
         {"res/records/abc.json": record(dataset="mni\0st")}),
    Case(P, ["res"], r"res/runs.jsonl: skipped 1 line\(s\) .*\(line 1: field forget_class: expected a non-negative "
         r"integer, got \"2\"\)", {"res/runs.jsonl": record(forget_class="2") + "\n"}),
    Case(P, ["res"], r"res/records/abc.json: record version 3, newer than this unlearnbench reads \(up to 2\)",
         {"res/records/abc.json": sealed(record_version=3)}),
    Case(P, ["res"], r"res/records/abc.json: its digest does not match its fields \(changed after it was written\)",
         {"res/records/abc.json": sealed(acc_forget=0.0)}),
    # ---- corrupt data files: one line naming the file and what is wrong
    Case(S, SWEEP + ["--data-root", "d"], r"mnist: d/MNIST/raw/train-images-idx3-ubyte is not an idx file of 3 "
         r"dimension\(s\): magic number 0x01000803, expected 0x00000803", {**grid(), **idx_files(images=b"\x01")}),
    Case(S, SWEEP + ["--data-root", "d"], r"mnist: d/MNIST/raw/train-images-idx3-ubyte has dtype byte 0x0d, expected "
         r"0x08", {**grid(), **idx_files(images=b"\0\0\x0d")}),
    Case(S, SWEEP + ["--data-root", "d"], r"mnist: d/MNIST/raw/train-images-idx3-ubyte is truncated: 5000 bytes, its "
         r"header says 7856", {**grid(), **idx_files(truncate_images=(5000).to_bytes(2, "big"))}),
    Case(S, SWEEP + ["--data-root", "d"], r"mnist: d/MNIST/raw/t10k-labels-idx1-ubyte is not an idx file of 1 "
         r"dimension", {**grid(), **idx_files(split="test", labels=b"\xff")}),
    Case(S, SWEEP + ["--data-root", "d"], r"mnist: d/MNIST/raw/train-images-idx3-ubyte is a named pipe",
         {**grid(), **idx_files(), "d/MNIST/raw/train-images-idx3-ubyte": FIFO}),
    # ---- sweep names
    Case(S, SWEEP, r"grid.toml: name must be at most 100 letters, digits, spaces and \. _ \+ - / \(it names the "
         r"directory",
         grid(('name = "tiny"', 'name = "ti\\u0000ny"'))),
    Case(S, SWEEP, r"grid.toml: name must be at most 100 letters", grid(('name = "tiny"', f'name = "{"n" * 300}"'))),
    # ---- the Dask scheduler is reached before anything is written
    Case(S, SWEEP + ["--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"],
         r"--scheduler tcp://127.0.0.1:9: no Dask scheduler answered within 5 s", grid()),
    # ---- minor: a key twice, settings that would be ignored
    Case(R, RUN + ["--hp", "lr=1", "--hp", "lr=0.001"], r"--hp: lr given twice \(lr=1 and lr=0.001\)"),
    Case(R, RUN + ["--data", "name=cifar100"], r"data.name = 'cifar100': the data set is chosen by --dataset"),
    Case(S, SWEEP, r"model.name = 'resnet50': the model is chosen by --model \(a run\) or the grid's models",
         grid(("[data]", '[model]\nname = "resnet50"\n[data]'))),
]


def _make(root: Path, files: dict[str, Any]) -> None:
    for name, content in files.items():
        path = root / name
        if content is DIR:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is FIFO:
            os.mkfifo(path)
            continue
        if isinstance(content, Link):
            path.symlink_to(content.target)
            continue
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under `root` (links not followed: a loop is an entry, not an error): kind, size, time."""
    out = {}
    for p in root.rglob("*"):
        st = p.lstat()
        out[str(p.relative_to(root))] = (p.is_dir() and not p.is_symlink(), st.st_size, st.st_mtime_ns)
    return out


def _tripwire(*_a: object, **_k: object) -> None:
    raise AssertionError("the work started: this input was not refused up front")


@pytest.fixture()
def workspace(tmp_path, monkeypatch) -> Path:
    """An empty working directory, the default cache inside it, and no way for a case to start real work."""
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(ws / "default-cache"))
    monkeypatch.setattr(runner.Runner, "original", _tripwire)
    monkeypatch.setattr(sweep, "run_jobs", _tripwire)
    monkeypatch.setattr(sweep, "estimate", _tripwire)
    return ws


MAINS: dict[str, Callable[[list[str]], int]] = {"run": run.main, "sweep": sweep_cli.main, "report": report.main}


def refused(cli: str, argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = MAINS[cli](argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}-{c.cli}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: Case, workspace: Path, capsys):
    _make(workspace, case.files)
    before = _snapshot(workspace)
    code, out, err = refused(case.cli, case.argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, f"{case}: exit {code}\n{err}"
    assert len(lines) == 1 and re.search(case.message, lines[0]), f"{case}:\n{err}"
    assert lines[0].startswith(f"unlearnbench.{case.cli}: error: ") or "(see --help)" in lines[0], lines[0]
    assert out == "", out
    assert _snapshot(workspace) == before, f"{case}: something was written"


def test_the_table_covers_the_three_clis():
    counts = {cli: sum(c.cli == cli for c in CASES) for cli in MAINS}
    assert len(CASES) >= 40 and all(n >= 10 for n in counts.values()), counts


def assert_refused(cli: str, argv: list[str], message: str, root: Path, capsys) -> None:
    """`cli argv` exits 2 with one stderr line matching `message` and leaves `root` as it was."""
    before = _snapshot(root)
    code, out, err = refused(cli, argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and re.search(message, lines[0]), err
    assert out == "" and _snapshot(root) == before


def test_no_home_directory_is_one_line(workspace, monkeypatch, capsys):
    """A uid without a password entry, HOME and the cache variables unset: no default cache directory, said so."""
    import pwd

    def no_entry(uid: int) -> None:
        raise KeyError(uid)

    for name in ("HOME", "UNLEARNBENCH_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    real = pwd.getpwuid
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    argv = [a for a in RUN if a not in ("--cache-dir", "cache")] + ["--data-root", "nodata"]
    assert_refused("run", argv, r"no home directory for the default cache and data directories \(HOME is unset and "
                   r"the password database has none\): set UNLEARNBENCH_CACHE", workspace, capsys)
    monkeypatch.setattr(pwd, "getpwuid", real)
    from unlearnbench.runtime import default_cache_dir
    monkeypatch.setenv("HOME", "")  # empty: the password database's home, never /.cache
    monkeypatch.delenv("UNLEARNBENCH_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "unlearnbench" / "checkpoints"


def test_resizing_more_than_memory_holds_is_refused_before_allocating(workspace, monkeypatch, capsys):
    """image_size 1024 on every image of a split: the bytes it would take are compared with the memory available."""
    from unlearnbench import data
    _make(workspace, {**grid(), **idx_files(n=300)})
    monkeypatch.setattr(data, "memory_available", lambda: 2**30)
    argv = SWEEP + ["--data-root", "d", "--set", "data.image_size=1024", "--set", "data.train_per_class=0"]
    assert_refused("sweep", argv, r"data: mnist train at image_size=1024 needs ~2.6 GiB to resize its 300 images, "
                   r"1.0 GiB available: lower image_size", workspace, capsys)


# --------------------------------------------------------------------------------------------------------------------
# every numeric setting declares its range, and a value outside it is refused
# --------------------------------------------------------------------------------------------------------------------
def _numeric(hint: Any) -> type | None:
    """int or float for a numeric field type (optional or not), else None."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    kinds = [a for a in args if a in (int, float)]
    return kinds[0] if kinds else None


def undeclared(cls: type) -> list[str]:
    """The numeric fields of dataclass `cls` that declare no range (`param`, `positive`, `at_least`, `fraction`), or
    a range without an upper bound (10**30 epochs, a batch of 10**30: refused before work, not after)."""
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if _numeric(hints[f.name]) and (
        "range" not in f.metadata or f.metadata["range"].le is None and f.metadata["range"].lt is None)]


def outside(rng: Range, kind: type) -> list[Any]:
    """One value just outside each bound of `rng`."""
    step = 1 if kind is int else 0.5
    values = [rng.ge - step if rng.ge is not None else None, rng.gt if rng.gt is not None else None,
              rng.le + step if rng.le is not None else None, rng.lt if rng.lt is not None else None]
    return [kind(v) for v in values if v is not None]


def _settings() -> list[tuple[str, list[str], str, str, Any]]:
    """(label, CLI option prefix, field, where in the message, value) for every bound of every numeric setting."""
    out = []
    tables: list[tuple[type, list[str], str]] = [(get_method(m).hparams, ["--method", m, "--hp"], f"method.{m}")
                                                 for m in list_methods()]
    tables += [(cls, ["--method", "finetune", option], where) for cls, option, where in (
        (TrainRecipe, "--train", "train"), (DataConfig, "--data", "data"), (EvalConfig, "--eval", "eval"),
        (ModelConfig, "--model-table", "model"))]
    for cls, option, where in tables:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = _numeric(hints[f.name])
            if kind is None:
                continue
            for value in outside(f.metadata["range"], kind) if "range" in f.metadata else [None]:
                out.append((f"{where}.{f.name}={value}", option, f.name, where, value))
    return out


SETTINGS = _settings()


def test_every_numeric_setting_declares_its_range():
    tables = [get_method(m).hparams for m in list_methods()] + [TrainRecipe, DataConfig, EvalConfig, ModelConfig]
    missing = {cls.__qualname__: undeclared(cls) for cls in tables if undeclared(cls)}
    assert not missing, f"declare a range (param/positive/at_least/fraction) for: {missing}"
    assert len(SETTINGS) >= 50  # the walk reaches the fields: a registry or a table it missed would show here


def test_the_range_check_would_catch_a_method_that_forgets_to_declare():
    @dataclass(frozen=True)
    class Careless:
        steps: int = 3
        lr: float | None = param(None, gt=0)
        name: str = "x"
        unbounded: int = dataclasses.field(default=1, metadata={"range": Range(ge=1)})

    assert undeclared(Careless) == ["steps", "unbounded"]


@pytest.mark.parametrize("label, option, name, where, value", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_a_value_outside_each_declared_range_is_refused(label, option, name, where, value, workspace, capsys):
    if "--model-table" in option:  # pragma: no cover - ModelConfig has no numeric field today
        pytest.fail("model settings have no command-line option: add a case")
    argv = [a for a in RUN if a not in ("--method", "finetune")] + option + [f"{name}={value!r}"]
    if option[-1] == "--data" and name == "train_per_class":  # RUN sets it: a key given twice is refused as such
        argv = swap(argv, "--data", f"{name}={value!r}")[:-len(option) - 1] + option[:-1]
    before = _snapshot(workspace)
    code, out, err = refused("run", argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert re.search(rf"{re.escape(where)}\.{name}: must be .*, got ", lines[0]), lines[0]
    assert _snapshot(workspace) == before and out == ""


# --------------------------------------------------------------------------------------------------------------------
# the methods package cannot be shadowed
# --------------------------------------------------------------------------------------------------------------------
def test_a_methods_package_in_the_working_directory_does_not_change_the_methods(tmp_path):
    """The methods are `unlearnbench.methods`; a user's own `methods/` package in the working directory (first on
    sys.path under `python -m`) is not imported."""
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "__init__.py").write_text('ORDER = ()\nraise SystemExit("the wrong methods package")\n')
    (tmp_path / "methods" / "finetune.py").write_text("raise SystemExit('the wrong finetune')\n")
    there = subprocess.run([sys.executable, "-m", "unlearnbench.run", "--list"], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert there.returncode == 0, there.stderr
    assert there.stdout.strip() == listing.list_everything().strip() and "pbu+stop" in there.stdout
    listed = [line.split()[0] for line in there.stdout.splitlines() if re.match(r"  \S", line)]  # not wrapped lines
    assert listed == list_methods() and len(listed) >= 6


# --------------------------------------------------------------------------------------------------------------------
# no path a record can choose
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_record_with_path_like_names_writes_nothing_outside_the_report(tmp_path, monkeypatch, capsys):
    """A record whose data set climbs out of the results directory and whose model is an absolute path: the report
    still runs, every file it writes lies under --out, and nothing appears anywhere else."""
    import json
    monkeypatch.chdir(tmp_path)
    escape = tmp_path / "escaped"
    res = tmp_path / "a" / "b" / "res"
    (res / "records").mkdir(parents=True)
    evil = [{**json.loads(RECORD), "config_hash": f"k{i}", "method": m, "seed": 0,
             "dataset": "x/../../../../escaped/d", "model": str(escape / "m"), "unlearn_seconds": 1.0}
            for i, m in enumerate(("original", "pbu"))]
    for r in evil:
        (res / "records" / f"{r['config_hash']}.json").write_text(json.dumps(r))
    before = {p for p in tmp_path.rglob("*")}
    assert report.main([str(res)]) == 0
    capsys.readouterr()
    new = {p for p in tmp_path.rglob("*")} - before
    assert new and all(res / "report" in p.parents or p == res / "report" for p in new), sorted(map(str, new))
    assert not escape.exists()
    plots = sorted(p.name for p in (res / "report" / "plots").iterdir())
    assert plots and all(re.fullmatch(r"(tradeoff|time)_[A-Za-z0-9_.+-]+\.(png|pdf)", n) for n in plots), plots


def test_a_record_file_that_is_a_fifo_does_not_block_the_plan(tmp_path):
    from unlearnbench.store import RecordStore
    store = RecordStore(tmp_path).create()
    os.mkfifo(store.path("abc"))
    assert store.read("abc") == (None, "is a named pipe (FIFO)")
