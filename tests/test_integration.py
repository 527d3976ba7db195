"""End to end on a real MNIST subset, through the same CLI a researcher types."""
from __future__ import annotations

import json

import pytest

from unlearnbench.records import SCHEMA, read_jsonl, undeclared
from unlearnbench.cli.run import main

pytestmark = pytest.mark.slow  # trains on real MNIST: `make test-fast` leaves these out

ALWAYS = {f.name for f in SCHEMA if f.always}  # what every record the runner writes has


@pytest.fixture(scope="module")
def env(tmp_path_factory, data_root):
    tmp = tmp_path_factory.mktemp("integration")
    return ["--data-root", str(data_root), "--cache-dir", str(tmp / "cache"), "--no-download",
            "--data", "train_per_class=300", "--data", "test_per_class=100",
            "--train", "epochs=2", "--train", "batch_size=64"], tmp / "runs.jsonl"


def _run(env, method: str, capsys, *extra: str) -> tuple[dict, str]:
    args, results = env
    code = main(["--dataset", "mnist", "--model", "resnet18", "--forget-class", "2", "--seed", "0",
                 "--method", method, "--results", str(results), *args, *extra])
    out = capsys.readouterr().out
    assert code == 0
    return list(read_jsonl(results))[-1], out


def test_retrain_then_finetune_forget_class_2(env, capsys):
    rt, out = _run(env, "retrain", capsys)
    assert ALWAYS <= set(rt) and not undeclared(rt) and json.dumps(rt)
    assert {"oracle_checkpoint", "mia", "zrf", "record_version", "digest"} <= set(rt)  # eval's defaults: all of them
    assert "original : trained now" in out and "trained now and cached" in out
    assert rt["original_acc_forget"] > 80 and rt["original_acc_retain"] > 80
    assert rt["acc_forget"] == 0.0 and rt["acc_retain"] > rt["original_acc_retain"] - 5
    assert rt["retain_samples_seen"] == 2700 and rt["forget_samples_seen"] == 0
    assert rt["acc_forget_gap"] == 0 and rt["speedup"] == 1.0 and rt["mia_gap"] == 0.0

    again, out = _run(env, "retrain", capsys)  # the same call again: nothing is trained
    assert "original : cache hit" in out and "cache hit: time of the cached run" in out
    assert {k: again[k] for k in ("acc_forget", "acc_retain", "unlearn_seconds", "config_hash")} == \
        {k: rt[k] for k in ("acc_forget", "acc_retain", "unlearn_seconds", "config_hash")}
    assert again["method_cache_hit"] is True and again["original_cache_hit"] is True

    # a variant runs like any method, under its own name, with its overrides over the base's defaults
    ft, out = _run(env, "finetune+cosine", capsys, "--hp", "epochs=2")
    assert "original : cache hit" in out
    assert ft["acc_forget"] == 0.0 and ft["acc_retain"] > ft["original_acc_retain"] - 5
    assert ft["forget_samples_seen"] == 0 and ft["retain_samples_seen"] == 2700 and ft["retain_draws"] == 5400
    assert ft["config"]["method"] == {"name": "finetune+cosine", "epochs": 2, "lr": 1e-3, "optimizer": "adam",
                                      "batch_size": 0, "weight_decay": 0.0, "scheduler": "cosine"}
    assert ft["diagnostics"] == {"steps": 2 * 43}  # 2,700 retain images in batches of θ*'s 64
    # every record names the θ* and the oracle it was measured against
    assert ft["original_checkpoint"] == rt["original_checkpoint"] and len(ft["original_checkpoint"]["sha256"]) == 64
    assert ft["oracle_checkpoint"] == rt["oracle_checkpoint"] != ft["original_checkpoint"]
    assert ft["threads"] >= 1
    assert ft["config"]["train"]["epochs"] == 2 and ft["config"]["data"]["train_per_class"] == 300
    assert ft["retrain_seconds"] == rt["unlearn_seconds"] and ft["retrain_acc_retain"] == rt["acc_retain"]
    for metric in ("mia", "mia_retrain", "zrf", "kl_to_retrain", "activation_distance", "speedup"):
        assert isinstance(ft[metric], float), metric
    assert ft["original_acc_forget"] == rt["original_acc_forget"]
