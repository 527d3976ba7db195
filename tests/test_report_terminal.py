"""The reporter's terminal output: the table (and the comparison with the paper) as text, then where the files are."""
from __future__ import annotations

import json

from unlearnbench.aggregate import records_frame, summarize
from unlearnbench.cli.report import main
from unlearnbench.tables import paper_layout, terminal_text


def _rec(method, seed, acc_f, acc_r, cls=2, model="resnet34"):
    return {"dataset": "mnist", "model": model, "forget_class": cls, "seed": seed, "method": method,
            "acc_forget": acc_f, "acc_retain": acc_r, "unlearn_seconds": 1.0 + seed,
            "config_hash": f"{model}-{cls}-{method}-{seed}"}


METHODS = ("original", "retrain", "finetune", "fast_effective", "bad_teaching", "pbu")
# every method on class 2 (two seeds) and class 8 (one seed); A_Df 10·i + seed, A_Dr 90 + i + seed/10
RECORDS = [_rec(m, s, 10.0 * i + s, 90.0 + i + s / 10, cls=c)
           for c, seeds in ((2, (0, 1)), (8, (0,))) for i, m in enumerate(METHODS) for s in seeds]


def _store(root, records):
    (root / "records").mkdir(parents=True)
    for r in records:
        (root / "records" / f"{r['config_hash']}.json").write_text(json.dumps(r))
    return root


def test_the_command_ends_with_the_table_then_the_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # wide enough for one block: one line per row
    res = _store(tmp_path / "res", RECORDS)
    assert main([str(res), "--format", "md,csv", "--no-plots"]) == 0
    out = capsys.readouterr().out
    table, files = out.split("report written to")
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if "Initial" in line)
    assert all(name in lines[header] for name in ("Retrain", "Fine-tune", "Fast-Effective", "Bad Teaching", "PBU"))
    assert lines[header + 1].split() == ["A_Df", "A_Dr"] * 6
    row2 = next(line for line in lines if line.startswith("MNIST ResNet-34 class 2"))
    row8 = next(line for line in lines if line.startswith("MNIST ResNet-34 class 8"))
    # class 2, two seeds: Initial A_Df 0 and 1 → 0.50 ± 0.71; PBU (i = 5) A_Dr 95.0 and 95.1 → 95.05 ± 0.07
    assert row2.split("class 2")[1].split()[:3] == ["0.50", "±", "0.71"] and row2.endswith("95.05 ± 0.07")
    assert row8.split("class 8")[1].split() == [f"{v:.2f}" for i in range(6) for v in (10.0 * i, 90.0 + i)]
    assert "mean ± sample std over 1–2 seed(s)" in table
    assert "beside the paper" not in out  # no --compare-paper, no comparison
    assert f"files in {res / 'report'}/: " in files and "table.md" in files and "summary.csv" in files
    assert out.rstrip().splitlines()[-1].startswith("  files in")  # the files are the last thing printed


def test_the_comparison_is_printed_where_cells_are_shared(tmp_path, capsys):
    res = _store(tmp_path / "res", RECORDS)
    assert main([str(res), "--compare-paper", "--format", "csv", "--no-plots"]) == 0
    out = capsys.readouterr().out
    comparison = out.split("beside the paper's table:")[1].split("report written to")[0]
    # the paper's MNIST ResNet-34 class 2 Initial: A_Df 99.65 ± 0.11; ours 0.50 ± 0.71 → Δ −99.15
    initial = next(line for line in comparison.splitlines() if line.startswith("2  Initial"))
    assert "0.50 ± 0.71" in initial and "99.65 ± 0.11" in initial and "-99.15" in initial
    assert comparison.count("MNIST, ResNet-34\n") == 1  # one block per data set and model
    assert sum(line[:1] in "28" and line[:1] != "" for line in comparison.splitlines()) == 12  # 2 classes × 6
    assert max(map(len, comparison.splitlines())) <= 100
    _store(tmp_path / "r18", [_rec("pbu", 0, 1.0, 95.0, model="resnet18")])
    assert main([str(tmp_path / "r18"), "--compare-paper", "--format", "csv", "--no-plots"]) == 0
    assert "beside the paper's table: no cell in common with it" in capsys.readouterr().out


def test_plots_are_listed_after_the_table(tmp_path, capsys):
    res = _store(tmp_path / "res", RECORDS[:2])
    assert main([str(res), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.index("MNIST ResNet-34 class 2") < out.index(f"plots in {res / 'report' / 'plots'}/: ")
    assert "tradeoff_mnist_resnet34.png" in out.split("plots in")[1]


def test_a_table_wider_than_100_columns_gets_a_row_per_class_and_method():
    """Six methods' column pairs do not fit 100 columns: a block per data set and model, a row per class and method,
    A_Df beside A_Dr on every row (never a method's pair split across blocks)."""
    table = paper_layout(summarize(records_frame(RECORDS)), ["acc_forget", "acc_retain"])
    text = terminal_text(table, "a note " * 30, width=100)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[0] == "MNIST, ResNet-34" and lines[1].split() == ["class", "method", "A_Df", "A_Dr"]
    rows = [line for line in lines if any(name in line for name in ("Initial", "Retrain", "Fine-tune", "PBU"))]
    assert len(rows) == 8  # 4 of the 6 methods × 2 classes
    assert rows[0].split() == ["2", "Initial", "0.50", "±", "0.71", "90.05", "±", "0.07"]  # the pair on one row
    assert next(line for line in lines if line.startswith("8")).split() == ["8", "Initial", "0.00", "90.00"]
    assert text.rstrip().endswith("a note") and all(len(line) <= 100 for line in lines)  # the note wraps too
    small = paper_layout(summarize(records_frame(RECORDS[:4])), ["acc_forget", "acc_retain"])  # 2 methods: fits
    assert terminal_text(small, "n", width=100).splitlines()[2].startswith("MNIST ResNet-34 class 2")


def test_a_row_whose_theta_star_is_at_chance_is_flagged(tmp_path, capsys):
    at_chance = [dict(r, original_acc_forget=0.0, original_acc_retain=11.0, test_forget_samples=100,
                      test_retain_samples=900, seed=r["seed"]) for r in RECORDS if r["forget_class"] == 2]
    sound = [dict(r, original_acc_forget=98.0, original_acc_retain=97.0, test_forget_samples=100,
                  test_retain_samples=900) for r in RECORDS if r["forget_class"] == 8]
    res = _store(tmp_path / "res", at_chance + sound)
    assert main([str(res), "--format", "md", "--no-plots"]) == 0
    out = capsys.readouterr().out
    flagged = [line for line in out.splitlines() if line.startswith(("2 ⚠", "8 ⚠"))]
    assert [line.split()[:3] for line in flagged] == [["2", "⚠", "Initial"]]  # class 2's row, not class 8's
    assert "⚠ θ* at chance" in out and "MNIST ResNet-34 seed 0 (9.9%), seed 1 (9.9%)" in out
    assert "MNIST ResNet-34 class 2 ⚠" in (res / "report" / "table.md").read_text()


    assert terminal_text(paper_layout(summarize(records_frame([])), ["acc_forget"]), "n").startswith("no results yet")
