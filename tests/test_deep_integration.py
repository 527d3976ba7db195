"""The deep-forgetting measurements on a real MNIST subset, through the CLI: they tell the negative control (head_only,
which only hides the class at the head) apart from the retrained oracle, where A_Df cannot (both are 0)."""
from __future__ import annotations

import json

import pytest

from unlearnbench import deep
from unlearnbench.records import read_jsonl
from unlearnbench.run import main

pytestmark = pytest.mark.slow  # trains θ* and the oracle on real MNIST


@pytest.fixture(scope="module")
def records(tmp_path_factory, data_root):
    tmp = tmp_path_factory.mktemp("deep")
    results = tmp / "runs.jsonl"
    args = ["--dataset", "mnist", "--model", "resnet18", "--forget-class", "2", "--seed", "0",
            "--data-root", str(data_root), "--cache-dir", str(tmp / "cache"), "--no-download",
            "--data", "train_per_class=300", "--data", "test_per_class=100", "--train", "epochs=2",
            "--train", "batch_size=64", "--eval", "deep=true", "--eval", "mia=false", "--eval", "zrf=false",
            "--results", str(results)]
    for method in ("head_only", "retrain", "head_only"):
        assert main([*args, "--method", method]) == 0
    measured = []  # models the `original` cell measures itself: none, θ*'s measurement is its own
    real = deep.measure
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(deep, "measure", lambda *a, **k: measured.append(1) or real(*a, **k))
        assert main([*args, "--method", "original"]) == 0
    found = list(read_jsonl(results))
    return {"head_only": found[0], "retrain": found[1], "again": found[2], "original": found[3],
            "original_measured": len(measured), "cache": tmp / "cache"}


def test_head_only_hides_the_class_at_the_output_only(records):
    h, rt = records["head_only"], records["retrain"]
    assert h["acc_forget"] == 0.0 == rt["acc_forget"]  # A_Df cannot tell them apart
    # the forget class's logit now trails another's on every input: a retain image θ* got right stays right, and
    # one θ* took for the forget class may now be right
    assert h["acc_retain"] >= h["original_acc_retain"]
    assert h["diagnostics"]["shadow_class"] != 2


def test_the_probe_finds_the_class_in_head_only_as_in_theta_and_less_in_the_oracle(records):
    h, rt = records["head_only"], records["retrain"]
    # head_only's features are θ*'s: the probe sees exactly what it sees in θ*
    assert (h["probe_acc_forget"], h["probe_acc_retain"]) == (h["original_probe_acc_forget"],
                                                              h["original_probe_acc_retain"])
    assert h["probe_acc_forget"] > 80 and h["probe_acc_forget"] > rt["probe_acc_forget"]
    assert rt["probe_acc_forget"] == h["retrain_probe_acc_forget"]  # the oracle's, as every record has it


def test_the_prototype_attack_restores_head_only_not_the_oracle(records):
    h, rt = records["head_only"], records["retrain"]
    assert h["proto_acc_forget"] >= 90 and h["proto_acc_forget"] >= rt["proto_acc_forget"] + 10
    assert "proto_not_applicable" not in h


def test_head_only_relearns_faster_than_the_oracle(records):
    h, rt = records["head_only"], records["retrain"]
    assert h["original_relearn_steps"] == 0  # θ* is there already
    assert 0 < h["relearn_steps"] < rt["relearn_steps"] == h["retrain_relearn_steps"]
    assert not h["relearn_censored"] and not rt["relearn_censored"]
    assert h["ain"] == h["relearn_steps"] / rt["relearn_steps"] < 1 and rt["ain"] == 1.0
    assert h["relearn_acc_forget"] >= 0.95 * h["original_deep_acc_forget"]


def test_theta_and_the_oracle_are_measured_once_and_kept(records):
    again, h = records["again"], records["head_only"]
    kept = sorted((records["cache"] / "deep").glob("*.json"))
    assert len(kept) == 2  # θ*'s and the oracle's, not one per cell
    assert {json.loads(p.read_text())["checkpoint"]["key"] for p in kept} == {
        h["original_checkpoint"]["key"], h["oracle_checkpoint"]["key"]}
    for field in ("probe_acc_forget", "proto_acc_forget", "relearn_steps", "ain", "original_probe_acc_forget",
                  "retrain_relearn_steps"):
        assert again[field] == h[field], field  # seeded: the same cell measures the same
    assert h["deep_seconds"] > 0 and h["config"]["eval"]["deep"] is True
    # θ*'s and the oracle's cost: when they were measured, the same in every record of the cell
    assert h["original_deep_seconds"] > 0 and h["retrain_deep_seconds"] > 0
    assert (again["original_deep_seconds"], again["retrain_deep_seconds"]) == (h["original_deep_seconds"],
                                                                             h["retrain_deep_seconds"])


def test_the_original_cell_reuses_theta_s_measurement(records):
    o = records["original"]
    assert records["original_measured"] == 0  # kept from the cells before, not measured again
    for field in ("probe_acc_forget", "probe_acc_retain", "proto_acc_forget", "relearn_steps", "deep_acc_forget"):
        assert o[field] == o[f"original_{field}"], field
    assert o["relearn_steps"] == 0 and o["ain"] == 0
