"""The speed benchmark runs end to end and prints each comparison (its numbers are measurements, not asserted)."""
from __future__ import annotations

import re

from unlearnbench.method import list_methods
from unlearnbench.perf import main

CONFIG = """
[data]
train_per_class = 20
test_per_class = 10
[train]
epochs = 1
batch_size = 32
[method.finetune]
epochs = 1
[method.fast_effective]
noise_steps = 2
retain_per_class = 10
[method.pbu]
fisher = "mc"
"""


def test_perf_prints_the_four_comparisons(tmp_path, data_root, capsys):
    cfg = tmp_path / "perf.toml"
    cfg.write_text(CONFIG)
    assert main(["--sections", "loader,methods,fisher,flops", "--model", "test_resnet", "--steps", "2",
                 "--loader-workers", "0", "--fisher-samples", "3", "--config", str(cfg), "--data-root",
                 str(data_root), "--cache-dir", str(tmp_path / "cache"), "--no-download"]) == 0
    out = capsys.readouterr().out
    for heading in ("(a) training throughput", "(b) unlearning time", "(c)", "(d)"):
        assert heading in out
    assert "(200 training images)" in out  # the file's data subset reached section b
    methods = out[out.index("(b) unlearning time"):out.index("(c)")]
    speedups = dict(re.findall(r"\|\s*(\w+)\s*\|\s*[\d.]+\s*\|\s*([\d.]+)x", methods))
    assert set(speedups) == set(list_methods(variants=False)) - {"original"}  # every method as published
    assert {"retrain", "finetune", "fast_effective", "bad_teaching", "pbu"} <= set(speedups)
    assert float(speedups["retrain"]) == 1.0
    assert re.search(r"\|\s*pbu\s*\|.*\|\s*\d+/0\s*\|", methods), "PBU must draw no retain sample"


def test_perf_rejects_unknown_sections(capsys):
    assert main(["--sections", "loader,warp"]) == 2
    assert "--sections takes" in capsys.readouterr().err


def test_perf_options_section_compares_each_variant_with_fp32(tmp_path, data_root, capsys):
    assert main(["--sections", "options", "--model", "test_resnet", "--steps", "2", "--options-per-class", "10",
                 "--variants", "channels_last", "--data-root", str(data_root), "--cache-dir", str(tmp_path / "c"),
                 "--no-download"]) == 0
    captured = capsys.readouterr()
    rows = dict(re.findall(r"\|\s*(fp32|channels_last)\s*\|\s*[\d,]+\s*\|\s*([\d.]+)x", captured.out))
    assert set(rows) == {"fp32", "channels_last"} and float(rows["fp32"]) == 1.0
    assert "(e) channels_last:" in captured.err  # progress per variant, before the table
    assert not re.search(r"\|\s*(bf16|compile)", captured.out)  # only the variants asked for


def test_perf_rejects_unknown_variants(capsys):
    assert main(["--sections", "options", "--variants", "fp32,fp8"]) == 2
    assert "--variants takes" in capsys.readouterr().err
