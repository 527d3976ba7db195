"""The report's deep-forgetting table (unlearnbench.deep_report) from hand-made records."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnbench import deep_report
from unlearnbench.cli.report import main


def _record(method: str, cls: int, seed: int, **fields) -> dict:
    base = {"config_hash": f"{method}-{cls}-{seed}", "dataset": "mnist", "model": "resnet34", "forget_class": cls,
            "seed": seed, "method": method, "acc_forget": 0.0, "acc_retain": 97.0, "unlearn_seconds": 10.0,
            "original_acc_forget": 98.0, "retrain_acc_forget": 0.0,
            "original_probe_acc_forget": 96.0, "original_probe_acc_retain": 95.0, "original_proto_acc_forget": 99.0,
            "original_relearn_steps": 0, "original_relearn_censored": False,
            "retrain_probe_acc_forget": 40.0 + cls, "retrain_probe_acc_retain": 95.0,
            "retrain_proto_acc_forget": 10.0, "retrain_relearn_steps": 20, "retrain_relearn_censored": False}
    return base | fields


RECORDS = [
    _record("head_only", 2, 0, probe_acc_forget=96.0, probe_acc_retain=95.0, proto_acc_forget=99.0,
            relearn_steps=4, relearn_censored=False, ain=0.2),
    _record("head_only", 6, 0, probe_acc_forget=94.0, probe_acc_retain=95.0, proto_acc_forget=97.0,
            relearn_steps=6, relearn_censored=False, ain=0.3),
    _record("pbu", 2, 0, probe_acc_forget=50.0, probe_acc_retain=90.0, proto_acc_forget=None,
            proto_not_applicable="its classifier is Sequential", relearn_steps=200, relearn_censored=True, ain=10.0),
    _record("finetune", 2, 0),  # made without the deep measurements: dashes
]


def test_rows_are_blocks_per_class_pooled_over_seeds_theta_and_the_oracle_first():
    records = RECORDS + [
        _record("head_only", 2, 1, probe_acc_forget=92.0, probe_acc_retain=95.0, proto_acc_forget=97.0,
                relearn_steps=6, relearn_censored=False, ain=0.3, retrain_probe_acc_forget=50.0)]
    rows = deep_report.deep_rows(records + [_record("original", 2, 0, probe_acc_forget=96.0),
                                            _record("retrain", 2, 0, probe_acc_forget=42.0)])
    assert [(r["class"], r["method"]) for r in rows] == [
        ("2", "θ* (before unlearning)"), ("2", "oracle (retrained without the class)"), ("2", "Fine-tune"),
        ("2", "PBU"), ("2", "Head only"),
        ("6", "θ* (before unlearning)"), ("6", "oracle (retrained without the class)"), ("6", "Head only")]
    by = {(r["class"], r["method"]): r for r in rows}
    # class 2: θ* and the oracle once per seed — seeds 0 and 1: the oracle's probe 42 and 50
    oracle = by["2", "oracle (retrained without the class)"]
    assert oracle["n"] == "2" and oracle["probe A_Df"] == "46.00 ± 5.66" and oracle["relearn steps"] == "20.0 ± 0.0"
    assert oracle["AIN"] == "1.00" and by["2", "θ* (before unlearning)"]["AIN"] == "—"
    assert by["2", "θ* (before unlearning)"]["A_Df"] == "98.00 ± 0.00"
    head = by["2", "Head only"]
    assert head["n"] == "2" and head["probe A_Df"] == "94.00 ± 2.83" and head["prototype-attack A_Df"] == "98.00 ± 1.41"
    assert head["relearn steps"] == "5.0 ± 1.4" and head["AIN"] == "0.25 ± 0.07"
    assert by["6", "Head only"]["probe A_Df"] == "94.00" and by["6", "oracle (retrained without the class)"]["n"] == "1"
    pbu = by["2", "PBU"]  # censored at the cap: a lower bound; the attack did not apply: a dash
    assert pbu["relearn steps"] == "≥200.0" and pbu["AIN"] == "≥10.00" and pbu["prototype-attack A_Df"] == "—"
    assert by["2", "Fine-tune"]["probe A_Df"] == "—" and by["2", "Fine-tune"]["A_Df"] == "0.00"


def test_records_without_the_fields_write_no_deep_table(tmp_path):
    assert not deep_report.has_deep([RECORDS[-1]])
    assert deep_report.write([RECORDS[-1]], tmp_path, {"md", "csv", "tex"}, plots=False) == ([], "")


@pytest.mark.slow
def test_the_report_prints_and_writes_the_deep_table_and_plot(tmp_path, capsys):
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    assert main([str(path), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "# Deep forgetting" in out and "≥200.0" in out
    for name in ("deep.md", "deep.csv", "deep.tex", "plots/deep_mnist_resnet34.png", "plots/deep_mnist_resnet34.pdf"):
        assert (tmp_path / "report" / name).is_file(), name
    assert r"$\geq$200.0" in (tmp_path / "report" / "deep.tex").read_text()
    # its header states the budget rule, as the report's other tables do
    assert (tmp_path / "report" / "deep.md").read_text().split("\n")[0] == \
        (tmp_path / "report" / "table.md").read_text().split("\n")[0]
    assert (tmp_path / "report" / "deep.md").read_text().startswith("_budget rule")


def test_the_cost_line_is_the_medians_of_the_records():
    records = [_record("head_only", 2, 0, relearn_steps=4, deep_seconds=2.0, unlearn_seconds=8.0,
                       original_deep_seconds=3.0, retrain_deep_seconds=9.0),
               _record("pbu", 2, 0, relearn_steps=9, deep_seconds=4.0, unlearn_seconds=12.0,
                       original_deep_seconds=3.0, retrain_deep_seconds=9.0),
               _record("grad_ascent", 2, 0, relearn_steps=9, deep_seconds=9.0, unlearn_seconds=30.0,
                       original_deep_seconds=3.0, retrain_deep_seconds=9.0),
               _record("original", 2, 0, deep_seconds=1.0, unlearn_seconds=0.0),  # θ*'s record: left out
               _record("retrain", 2, 0, deep_seconds=0.0, unlearn_seconds=90.0),  # the oracle's: left out
               _record("finetune", 6, 0)]  # without the measurements
    line = deep_report.cost_line(records)
    # medians 4.0 of (2, 4, 9) and 12.0 of (8, 12, 30): 33%; θ* + oracle once for the one cell (2, 0): 12 s
    assert line == ("Cost: the method's measurements took a median 4.0 s (at most 9.0 s) after an unlearning call of a "
                    "median 12.0 s (33% of it), over 3 record(s); θ*'s and the oracle's, measured once per cell and "
                    "kept, 12.0 s per cell (median over 1).")
    assert deep_report.cost_line([records[-1]]) == ""


def test_the_cost_line_splits_by_machine_when_the_records_come_from_several():
    fast, slow = ({"name": "Fast CPU", "vector_flags": ["avx2"]}, {"name": "Slow CPU", "vector_flags": ["avx2"]})
    records = [_record("head_only", 2, 0, deep_seconds=2.0, unlearn_seconds=8.0, device=slow),
               _record("pbu", 2, 0, deep_seconds=4.0, unlearn_seconds=12.0, device=slow),
               _record("finetune", 6, 0, deep_seconds=1.0, unlearn_seconds=100.0, device=fast)]
    line = deep_report.cost_line(records)
    assert line.startswith("Cost: the method's measurements took a median 2.0 s (at most 4.0 s) after an unlearning "
                           "call of a median 12.0 s (17% of it), over 3 record(s).")
    assert line.endswith("The records come from 2 machines; per machine, Fast CPU (avx2): 1.0 s after 100.0 s (1%), "
                         "1 record(s); Slow CPU (avx2): 3.0 s after 10.0 s (30%), 2 record(s).")
    assert "machines" not in deep_report.cost_line(records[:2])  # one machine: the one sentence


def test_the_note_states_the_settings_the_records_were_measured_with():
    eval_ = {"proto_images": 7, "relearn_target": 0.9}
    records = [r | {"config": {"eval": eval_}} for r in RECORDS[:3]]
    _, text = deep_report.write(records, Path("unused"), set(), plots=False)
    assert "head edit from 7 forget-class training images" in text and "back to 90% of θ*'s" in text
    mixed = records[:2] + [RECORDS[2] | {"config": {"eval": {"proto_images": 5, "relearn_target": 0.9}}}]
    assert deep_report.settings_words(mixed) == {"images": "the records' own proto_images (2 values)",
                                                 "target": "90%"}
