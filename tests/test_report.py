"""The reporter: numbers, layout, partial results, the paper comparison, LaTeX that compiles, plots."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pandas as pd
import pytest

from unlearnbench.aggregate import comparison, fmt, paper_numbers, records_frame, summarize
from unlearnbench.cli.report import main
from unlearnbench.tables import paper_layout, to_markdown


def _rec(method, seed, acc_f, acc_r, cls=2, model="resnet34", **extra):
    return {"dataset": "mnist", "model": model, "forget_class": cls, "seed": seed, "method": method,
            "acc_forget": acc_f, "acc_retain": acc_r, "unlearn_seconds": extra.pop("t", 1.0 + seed),
            "config_hash": f"{model}-{cls}-{method}-{seed}", **extra}


RECORDS = [
    _rec("original", 0, 99.0, 99.2), _rec("original", 1, 99.5, 99.4), _rec("original", 2, 99.9, 99.0),
    _rec("retrain", 0, 0.0, 99.1, t=400.0), _rec("retrain", 1, 0.0, 99.3, t=420.0),
    _rec("pbu", 0, 0.5, 95.0, mia=0.2, t=20.0),
    _rec("finetune", 0, 0.0, 98.0, cls=6), _rec("finetune", 1, 0.0, 97.0, cls=6),
]


def test_summary_by_hand():
    s = summarize(records_frame(RECORDS)).set_index(["forget_class", "method"])
    orig = s.loc[(2, "original")]
    assert orig["n"] == 3 and orig["acc_forget_mean"] == pytest.approx((99.0 + 99.5 + 99.9) / 3)
    # sample std (n - 1) of 99.0, 99.5, 99.9: mean 99.4667, squares .2178 + .0011 + .1878 = .4067, /2 → sqrt = .451
    assert orig["acc_forget_std"] == pytest.approx(0.45092, abs=1e-4)
    assert s.loc[(2, "pbu")]["n"] == 1 and pd.isna(s.loc[(2, "pbu")]["acc_forget_std"])
    assert s.loc[(2, "pbu")]["mia_n"] == 1 and s.loc[(2, "original")]["mia_n"] == 0
    # rows follow the paper's method order
    assert list(summarize(records_frame(RECORDS))["method"][:3]) == ["original", "retrain", "pbu"]


def test_formatting_rules():
    assert fmt(99.4667, 0.45092, 3, 2) == "99.47 ± 0.45"
    assert fmt(0.5, float("nan"), 1, 2) == "0.50"  # n = 1: no ±
    assert fmt(float("nan"), float("nan"), 0, 2) == "—"


def test_paper_layout_marks_missing_cells():
    table = paper_layout(summarize(records_frame(RECORDS)), ["acc_forget", "acc_retain"])
    assert table.loc[("mnist", "resnet34", 2), ("pbu", "acc_retain")] == "95.00"
    assert table.loc[("mnist", "resnet34", 6), ("pbu", "acc_forget")] == "—"  # not run (yet)
    assert table.loc[("mnist", "resnet34", 6), ("finetune", "acc_retain")] == "97.50 ± 0.71"


def test_comparison_with_the_paper():
    paper = paper_numbers()
    assert len(paper) == 162 and set(paper["dataset"]) == {"mnist", "cifar100", "food101"}
    comp = comparison(summarize(records_frame(RECORDS)), paper).set_index(["forget_class", "method"])
    row = comp.loc[(2, "original")]
    assert row["acc_forget_paper"] == "99.65 ± 0.11" and row["acc_retain_diff"] == pytest.approx(99.2 - 99.42)
    assert (2, "pbu") in comp.index and (6, "finetune") in comp.index
    assert len(comparison(summarize(records_frame([_rec("pbu", 0, 1, 2, model="resnet18")])), paper)) == 0


def _write_store(root, records):
    (root / "records").mkdir(parents=True)
    for r in records:
        (root / "records" / f"{r['config_hash']}.json").write_text(json.dumps(r))


@pytest.mark.slow
def test_cli_writes_every_format_and_plots(tmp_path, capsys):
    _write_store(tmp_path / "res", RECORDS)
    (tmp_path / "res" / "records" / ".tmp-partial.json.123.tmp").write_text("{")  # a killed writer's leftover
    (tmp_path / "res" / "runs.jsonl").write_text(json.dumps(_rec("finetune", 2, 0.0, 96.0, cls=6)) + "\n{\"trunc")
    assert main([str(tmp_path / "res"), "--compare-paper"]) == 0
    out = tmp_path / "res" / "report"
    for name in ("summary.csv", "table.csv", "table.md", "table.tex", "table_doc.tex", "metrics.md", "metrics.csv",
                 "comparison.md", "comparison.csv", "comparison.tex", "plots/tradeoff_mnist_resnet34.png",
                 "plots/tradeoff_mnist_resnet34.pdf", "plots/time_mnist_resnet34.png", "plots/time_mnist_resnet34.pdf"):
        assert (out / name).stat().st_size > 0, name
    md = (out / "table.md").read_text()
    assert "| MNIST ResNet-34 class 2" in md and "99.47 ± 0.45" in md and "1–3 seed(s)" in md
    assert "| 0.00 ± 0.00 " in md and "97.00 ± 1.00" in md  # class 6 fine-tune: 98, 97 and the .jsonl's 96
    assert "Initial A_Df" in md and "PBU A_Dr" in md
    summary = pd.read_csv(out / "summary.csv")
    assert {"acc_forget_mean", "acc_forget_std", "acc_forget_n", "mia_mean", "speedup_mean"} <= set(summary.columns)
    assert "2 cell(s) in common" not in capsys.readouterr().out


@pytest.mark.slow
def test_a_second_report_on_the_same_records_leaves_every_file_as_it_was(tmp_path):
    """Committed reports stay clean: same records, same bytes (PDF without a creation date), files not rewritten."""
    _write_store(tmp_path / "res", RECORDS)
    assert main([str(tmp_path / "res"), "--compare-paper"]) == 0
    out = tmp_path / "res" / "report"
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.suffix for p in files} >= {".png", ".pdf", ".csv", ".md", ".tex"}
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    for p in files:  # an older time, so that a rewrite would show even within the file system's time resolution
        os.utime(p, ns=(before[p][1] - 10**9, before[p][1] - 10**9))
    assert main([str(tmp_path / "res"), "--compare-paper"]) == 0
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files
    for p in files:
        assert p.read_bytes() == before[p][0], p.name
        assert p.stat().st_mtime_ns == before[p][1] - 10**9, f"{p.name} rewritten"
    _write_store(tmp_path / "more", RECORDS[:-1])  # other records: the files that depend on them change
    assert main([str(tmp_path / "more"), "--compare-paper", "--out", str(out)]) == 0
    assert (out / "summary.csv").read_bytes() != before[out / "summary.csv"][0]


def test_side_experiments_and_superseded_records_stay_out_of_the_table(tmp_path, capsys):
    """A subdirectory's records (extra/...) are not the sweep's; a re-run cell counts once, with its newest record."""
    _write_store(tmp_path / "res", [_rec("pbu", 0, 0.5, 95.0, created="2026-11-26T10:00:00+0000")])
    _write_store(tmp_path / "res" / "extra" / "pbu_mc", [_rec("pbu", 1, 9.0, 50.0, config_hash="mc")])
    (tmp_path / "res" / "extra" / "runs.jsonl").write_text(json.dumps(_rec("pbu", 2, 9.0, 50.0)) + "\n")
    rerun = _rec("pbu", 0, 0.1, 97.0, config_hash="rerun", created="2026-11-26T12:00:00+0000")
    (tmp_path / "res" / "records" / "rerun.json").write_text(json.dumps(rerun))
    assert main([str(tmp_path / "res"), "--format", "csv", "--no-plots"]) == 0
    row = pd.read_csv(tmp_path / "res" / "report" / "summary.csv").set_index("method").loc["pbu"]
    assert row["n"] == 1 and row["acc_forget_mean"] == 0.1 and row["acc_retain_mean"] == 97.0
    assert "1 older record(s)" in capsys.readouterr().err


def test_empty_and_partial_results_do_not_crash(tmp_path, capsys):
    (tmp_path / "empty" / "records").mkdir(parents=True)
    assert main([str(tmp_path / "empty"), "--compare-paper"]) == 2  # one line: nothing to report; nothing written
    assert "nothing to report" in capsys.readouterr().err and not (tmp_path / "empty" / "report").exists()
    _write_store(tmp_path / "one", [_rec("pbu", 0, 1.0, 90.0)])
    assert main([str(tmp_path / "one")]) == 0
    table = paper_layout(summarize(records_frame([])), ["acc_forget"])
    assert "no results yet" in to_markdown(table, "")


@pytest.mark.parametrize("argv, message", [(["--format", "pdf"], "--format takes csv, tex, md"),
                                           (["--metrics", "accuracy"], "unknown metric")])
def test_bad_options(argv, message, tmp_path, capsys):
    _write_store(tmp_path / "res", RECORDS)
    assert main([str(tmp_path / "res"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_latex_compiles(tmp_path):
    """CI installs TeX Live and sets UNLEARNBENCH_REQUIRE_LATEX=1, so this never skips there."""
    if not shutil.which("pdflatex"):
        if os.environ.get("UNLEARNBENCH_REQUIRE_LATEX"):
            pytest.fail("pdflatex is required here (UNLEARNBENCH_REQUIRE_LATEX is set) but not installed")
        pytest.skip("pdflatex not installed (CI installs it)")
    _write_store(tmp_path / "res", RECORDS + [_rec("pbu", 0, 0.0, 93.0, model="convnext_large", cls=8)])
    assert main([str(tmp_path / "res"), "--compare-paper", "--metrics", "acc_forget,acc_retain,mia_gap"]) == 0
    out = tmp_path / "res" / "report"
    for doc in ("table_doc.tex", "comparison_doc.tex"):
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc], cwd=out,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:]
        assert (out / doc.replace(".tex", ".pdf")).stat().st_size > 1000
    tex = (out / "table.tex").read_text()
    assert r"\multirow{3}{*}{MNIST}" in tex and r"\multirow{2}{*}{ResNet-34}" in tex and r"\toprule" in tex
    assert tex.index("ResNet-34") < tex.index("ConvNeXt-L")  # the paper's model order, not the alphabet


# ------------------------------------------------------------------------------------------------ one θ* per row
def _ck(sha):
    return {"key": "original-x", "sha256": sha * 64}


def _rows_from_two_thetas():
    """Seed 0 of class 2: Initial, Retrain and PBU from θ* 'a'; fine-tune from θ* 'b' (retrained elsewhere)."""
    same = {"original_checkpoint": _ck("a"), "oracle_checkpoint": _ck("o")}
    return [_rec("original", 0, 99.0, 99.2, **same), _rec("retrain", 0, 0.0, 99.1, **same),
            _rec("pbu", 0, 0.5, 95.0, **same),
            _rec("finetune", 0, 0.0, 98.0, original_checkpoint=_ck("b"), oracle_checkpoint=_ck("o"))]


def test_a_cell_from_another_theta_star_is_marked_in_every_format(tmp_path, capsys):
    from unlearnbench.aggregate import mixed_cells
    mixed = mixed_cells(_rows_from_two_thetas())
    assert list(mixed) == [("mnist", "resnet34", 2, "finetune")] and "θ*" in mixed[list(mixed)[0]][0]
    _write_store(tmp_path / "res", _rows_from_two_thetas())
    assert main([str(tmp_path / "res"), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 cell(s) were measured from another θ* or oracle" in err
    out = tmp_path / "res" / "report"
    md, tex, csv = ((out / n).read_text() for n in ("table.md", "table.tex", "table.csv"))
    assert "0.00†" in md and "98.00†" in md and "95.00†" not in md  # the fine-tune cell, not PBU's
    assert "Fine-tune: seed 0: θ* sha256 bbbbbbbbbbbb, the row's sha256 aaaaaaaaaaaa" in md
    assert r"98.00$^\dagger$" in tex and "98.00†" in csv
    # --strict: the same input is an error, one line, exit 2
    assert main([str(tmp_path / "res"), "--strict", "--no-plots", "--out", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--strict" in err[0] and not (tmp_path / "strict").exists()


def test_older_records_are_told_apart_by_their_theta_star_accuracies():
    from unlearnbench.aggregate import mixed_cells
    old = [_rec("original", 1, 99.16, 99.34, original_acc_forget=99.16, original_acc_retain=99.34),
           _rec("pbu", 1, 0.0, 97.0, original_acc_forget=99.37, original_acc_retain=99.25)]
    assert list(mixed_cells(old)) == [("mnist", "resnet34", 2, "pbu")]
    same = [dict(r, original_acc_forget=99.16, original_acc_retain=99.34) for r in old]
    assert mixed_cells(same) == {}


def test_confidence_interval_by_hand_and_the_paper_outside_it():
    s = summarize(records_frame(RECORDS)).set_index(["forget_class", "method"])
    # original, class 2: three θ*s, one run each (99.0, 99.5, 99.9). A resample of three draws is all 99.0 with
    # probability 1/27 = 3.7% > 2.5%, all 99.9 likewise: the 95% percentile interval is [min, max] exactly
    assert (s.loc[(2, "original")]["acc_forget_lo"], s.loc[(2, "original")]["acc_forget_hi"]) == pytest.approx(
        (99.0, 99.9))
    assert pd.isna(s.loc[(2, "pbu")]["acc_forget_lo"])  # one θ*: no interval
    assert pd.isna(s.loc[(6, "finetune")]["acc_retain_lo"])  # two θ*s: none either
    assert fmt(99.4667, 0.45092, 3, 2, ci=(99.0, 99.9)) == "99.47 ± 0.45 [99.00, 99.90]"
    assert fmt(97.5, 0.71, 2, 2, ci=(float("nan"), float("nan"))) == "97.50 ± 0.71 [n/a (needs ≥ 3 trained models)]"
    comp = comparison(summarize(records_frame(RECORDS)), paper_numbers()).set_index(["forget_class", "method"])
    # the paper's Initial A_Df 99.65 lies inside [99.0, 99.9]; PBU has one seed, so no interval
    assert comp.loc[(2, "original")]["acc_forget_paper_in_ci"] == "yes"
    assert comp.loc[(2, "pbu")]["acc_retain_paper_in_ci"] == "n/a"
    tight = [_rec("retrain", s, 0.0, 90.0 + s / 100) for s in range(3)]  # 90.00-90.02: the paper's 99.x is outside
    row = comparison(summarize(records_frame(tight)), paper_numbers()).iloc[0]
    assert row["acc_retain_paper_in_ci"] == "no"
    from unlearnbench.tables import comparison_markdown
    assert "*" in comparison_markdown(comparison(summarize(records_frame(tight)), paper_numbers()))


def test_variants_follow_their_base_and_methods_picks_columns(tmp_path):
    from unlearnbench.aggregate import method_label, methods_summary
    recs = RECORDS + [_rec("pbu+stop", 0, 0.0, 80.0), _rec("finetune+cosine", 0, 0.0, 98.5, cls=6)]
    table = paper_layout(summarize(records_frame(recs)), ["acc_forget"])
    assert list(dict.fromkeys(m for m, _ in table.columns)) == ["original", "retrain", "finetune",
                                                               "finetune+cosine", "pbu", "pbu+stop"]
    assert method_label("pbu+stop") == "PBU +stop" and method_label("bad_teaching") == "Bad Teaching"
    ms = methods_summary(records_frame(recs)).set_index("method")
    assert ms.loc["original", "n"] == 3 and pd.isna(ms.loc["original", "unlearn_seconds_mean"])  # no time for θ*
    assert ms.loc["retrain", "unlearn_seconds_mean"] == pytest.approx(410.0)
    _write_store(tmp_path / "res", recs)
    assert main([str(tmp_path / "res"), "--methods", "retrain,pbu+stop", "--no-plots", "--format", "md"]) == 0
    md = (tmp_path / "res" / "report" / "table.md").read_text()
    assert "PBU +stop A_Df" in md and "Retrain A_Df" in md and "Initial" not in md and "PBU A_Df" not in md
    assert main([str(tmp_path / "res"), "--methods", "nope", "--no-plots"]) == 2


def test_files_that_are_not_records_are_named_in_one_warning_each_and_skipped(tmp_path, capsys):
    _write_store(tmp_path / "res", RECORDS)
    records = tmp_path / "res" / "records"
    (records / "empty.json").write_text("{}")
    (records / "partial.json").write_text(json.dumps({"config_hash": "partial", "method": "pbu"}))
    (records / "list.json").write_text("[1, 2, 3]")
    (tmp_path / "res" / "runs.jsonl").write_bytes(json.dumps(_rec("pbu", 1, 0.5, 94.0)).encode() + b"\n\xff\xfe\n7\n")
    assert main([str(tmp_path / "res"), "--format", "csv", "--no-plots"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 4
    assert any("empty.json: an empty record {}; skipped" in w for w in warnings)
    assert any("partial.json: an incomplete record (no dataset, model, forget_class, seed, acc_forget, acc_retain)"
               in w for w in warnings)
    assert any("list.json: not a record object (JSON an array)" in w for w in warnings)
    assert any("runs.jsonl: skipped 2 line(s) that are not whole records (line 2: not UTF-8 text (byte 0) and 1 more)"
               in w for w in warnings)
    summary = pd.read_csv(tmp_path / "res" / "report" / "summary.csv").set_index(["forget_class", "method"])
    assert summary.loc[(2, "pbu"), "n"] == 2  # the records that are whole all count


def test_method_by_architecture_grid(tmp_path):
    """grid.md: written only when a data set and class has records of two or more models; rows architectures, columns
    methods, "A_Df / A_Dr" means over seeds, ↓ where A_Dr is more than 10 points below θ*'s."""
    from unlearnbench.tables import arch_grid

    _write_store(tmp_path / "one", RECORDS)  # one model only: no grid
    assert main([str(tmp_path / "one"), "--format", "md", "--no-plots"]) == 0
    assert not (tmp_path / "one" / "report" / "grid.md").exists()

    records = [*RECORDS, _rec("original", 0, 98.0, 90.0, model="convnext_atto"),
               _rec("pbu", 0, 0.0, 79.9, model="convnext_atto"),  # 10.1 points below θ*: collapsed
               _rec("retrain", 0, 0.0, 80.0, model="convnext_atto")]  # exactly 10 below: not marked
    _write_store(tmp_path / "two", records)
    assert main([str(tmp_path / "two"), "--format", "md", "--no-plots"]) == 0
    grid = (tmp_path / "two" / "report" / "grid.md").read_text()
    assert "## MNIST, forget class 2" in grid and "forget class 6" not in grid  # class 6: one model
    lines = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in grid.splitlines()
             if ln.startswith("| ") and not ln.startswith("| architecture")}
    header = next(ln for ln in grid.splitlines() if ln.startswith("| architecture"))
    assert [c.strip() for c in header.split("|")[2:-1]] == ["Initial", "Retrain", "PBU"]
    assert lines["ResNet-34"] == ["99.5 / 99.2", "0.0 / 99.2", "0.5 / 95.0"]  # means over seeds 0-2 and 0-1
    assert lines["ConvNeXt-Atto"] == ["98.0 / 90.0", "0.0 / 80.0", "0.0 / 79.9 ↓"]
    assert arch_grid(summarize(records_frame(RECORDS))) == ""

    # methods of several groups: one table per group, θ* first in each, variants with their method
    grouped = arch_grid(summarize(records_frame([*records, _rec("ssd", 0, 1.0, 97.0),
                                                 _rec("grad_ascent+keep_bn", 0, 2.0, 60.0, model="convnext_atto")])))
    headings = [ln for ln in grouped.splitlines() if ln.startswith("## ")]
    assert headings == ["## MNIST, forget class 2: the paper's methods", "## MNIST, forget class 2: the retain-free "
                        "rivals", "## MNIST, forget class 2: the baselines that use the retain set",
                        "## Collapses per method (↓), over the tables above"]
    headers = [[c.strip() for c in ln.split("|")[2:-1]] for ln in grouped.splitlines() if ln.startswith("| archit")]
    assert headers == [["Initial", "Retrain", "PBU"], ["Initial", "NegGrad +keep_bn"], ["Initial", "SSD"]]
    tables, collapses = grouped.split("## Collapses per method")
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in tables.splitlines()
            if ln.startswith("| ") and not ln.startswith("| archit")]
    assert rows[2:] == [["ResNet-34", "99.5 / 99.2", "—"], ["ConvNeXt-Atto", "98.0 / 90.0", "2.0 / 60.0 ↓"],
                        ["ResNet-34", "99.5 / 99.2", "1.0 / 97.0"], ["ConvNeXt-Atto", "98.0 / 90.0", "—"]]

    # per method, over all the tables: the rows it ran on and where it collapsed (the counts the docs quote)
    counts = [[c.strip() for c in ln.split("|")[1:-1]] for ln in collapses.splitlines()[3:] if ln.startswith("| ")]
    assert counts == [["Retrain", "2", "0", "—"], ["PBU", "2", "1", "MNIST ConvNeXt-Atto"],
                      ["NegGrad +keep_bn", "1", "1", "MNIST ConvNeXt-Atto"], ["SSD", "1", "0", "—"]]


def _versus_records():
    """4 θ*s × classes 2 and 6: fine-tune keeps 5–8 points more A_Dr than PBU (by seed), both forget fully;
    Initial keeps 9 more and forgets nothing."""
    recs = []
    for seed in range(4):
        for cls in (2, 6):
            recs += [_rec("pbu", seed, 0.0, 90.0, cls=cls), _rec("finetune", seed, 0.0, 95.0 + seed, cls=cls),
                     _rec("original", seed, 99.0, 99.0, cls=cls)]
    return recs


def test_versus_pairs_tests_and_ranks_by_hand(tmp_path, capsys):
    _write_store(tmp_path / "res", _versus_records())
    assert main([str(tmp_path / "res"), "--no-plots", "--versus", "pbu"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "res" / "report"
    vs = pd.read_csv(out / "versus.csv").set_index(["method", "metric"])
    # A_Dr: 8 units, differences 5, 6, 7, 8 (each twice): mean 6.5; all positive, so p = 2/2^8, Holm over the
    # 2 methods: 2 · 2/256 = 0.015625 ≤ 0.05
    ft = vs.loc[("finetune", "acc_retain")]
    assert (ft["n"], ft["thetas"], ft["mean_diff"]) == (8, 4, 6.5)
    assert ft["p"] == pytest.approx(2 / 256) and ft["p_holm"] == pytest.approx(4 / 256) and ft["significant"]
    assert 5.0 <= ft["lo"] <= ft["hi"] <= 8.0
    same = vs.loc[("finetune", "acc_forget")]  # no difference at all: p = 1, nothing marked
    assert same["mean_diff"] == 0 and same["p"] == 1 and not same["significant"]
    md = (out / "versus.md").read_text()
    assert "| Fine-tune" in md and "+6.50 [" in md and "p=0.016*" in md
    assert "# Against PBU" in printed and "p=0.016*" in printed  # printed as well as written
    ranks = pd.read_csv(out / "ranks.csv").set_index("method")
    # A_Dr: Initial 99 > fine-tune 95–98 > PBU 90 in every unit; A_Df: fine-tune and PBU tie at 0 (1.5 each)
    assert list(ranks.loc[["original", "finetune", "pbu"], "acc_retain_rank"]) == [1.0, 2.0, 3.0]
    assert list(ranks.loc[["original", "finetune", "pbu"], "acc_forget_rank"]) == [3.0, 1.5, 1.5]
    assert (ranks["units"] == 8).all() and (out / "ranks.md").exists()
    assert main([str(tmp_path / "res"), "--no-plots", "--versus", "scrub"]) == 2
    assert "--versus scrub: no record of that method" in capsys.readouterr().err


def test_two_unlearning_runs_per_theta_star_are_told_apart(tmp_path, capsys):
    """Records of unlearning runs 0 and 1 are both kept (not one superseding the other), pair run by run, and the
    report separates the spread between θ*s from the spread between runs."""
    recs = []
    for seed, base in enumerate((80.0, 84.0, 88.0)):
        for run, shift in ((0, -1.0), (1, 1.0)):
            recs.append(_rec("bad_teaching", seed, 10.0, base + shift, unlearn_seed=run,
                             config_hash=f"bt-{seed}-{run}"))
            recs.append(_rec("pbu", seed, 0.0, 90.0, unlearn_seed=run, config_hash=f"pbu-{seed}-{run}"))
    _write_store(tmp_path / "res", recs)
    assert main([str(tmp_path / "res"), "--no-plots", "--ci", "--versus", "pbu"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "res" / "report"
    summary = pd.read_csv(out / "summary.csv").set_index("method")
    assert summary.loc["bad_teaching", "n"] == 6 and summary.loc["bad_teaching", "acc_retain_mean"] == 84.0
    spread = pd.read_csv(out / "spread.csv").set_index("method")
    # θ* means 80, 84, 88: SD 4; runs ±1 around them: pooled SD √(6 · 1 / 3) = √2
    assert spread.loc["bad_teaching", "acc_retain_sd_between"] == pytest.approx(4.0)
    assert spread.loc["bad_teaching", "acc_retain_sd_within"] == pytest.approx(2 ** 0.5)
    assert (spread.loc["bad_teaching", "thetas"], spread.loc["bad_teaching", "runs"]) == (3, 2)
    assert "The two sources of spread" in printed
    vs = pd.read_csv(out / "versus.csv").set_index(["method", "metric"])
    assert vs.loc[("bad_teaching", "acc_retain"), "n"] == 3 and vs.loc[("bad_teaching", "acc_retain"), "pairs"] == 6
    lo, hi = summary.loc["bad_teaching", ["acc_retain_lo", "acc_retain_hi"]]
    assert 79.0 <= lo < 84.0 < hi <= 89.0  # within the observed values
