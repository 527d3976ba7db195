"""benchmarks/theta_quality.py (unlearnbench.studies.theta_quality): a run stopped part-way resumes from its rows, keeping only those of this run's θ*s."""
from __future__ import annotations

import json

from unlearnbench.studies import theta_quality as tq


def test_resume_keeps_rows_of_this_runs_thetas_in_its_order(tmp_path, capsys):
    rows = tmp_path / "q.jsonl"
    # an earlier run measured a, then z (a θ* of another recipe), then b
    rows.write_text("".join(json.dumps({"key": k, "model": m}) + "\n" for k, m in [("a", "m1"), ("z", "m9"),
                                                                                   ("b", "m2")]))
    kept = tq.resumable_rows(rows, ["b", "c", "a"])
    assert [r["key"] for r in kept] == ["b", "a"]
    assert capsys.readouterr().out.strip() == (f"resuming from {rows}: 2 θ* measured already, 1 row(s) of other θ*s "
                                               "dropped")
    assert tq.resumable_rows(tmp_path / "none.jsonl", ["a"]) == []


def test_wall_time_is_the_rows_sum_and_says_when_some_rows_lack_it():
    assert tq._wall_time([{"seconds": 60.0}, {"seconds": 120.0}]).startswith("Wall time 3.0 min over these rows")
    assert tq._wall_time([{"seconds": 60.0}, {}]) == "Wall time: not recorded for 1 of the rows."
