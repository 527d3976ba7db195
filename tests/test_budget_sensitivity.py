"""unlearnbench.sensitivity and its command: the same cells under two budget rules, side by side, generated records."""
from __future__ import annotations

from pathlib import Path

from unlearnbench.cli import sensitivity
from unlearnbench.store import RecordStore


def _write(root: Path, rule: str, cells: dict, theta: str = "aa") -> Path:
    store = RecordStore(root).create()
    for (seed, k, method), (forget, retain, steps) in cells.items():
        store.write({"config_hash": f"{rule}{seed}{k}{method}", "dataset": "mnist", "model": "resnet34",
                     "forget_class": k, "seed": seed, "method": method, "acc_forget": forget, "acc_retain": retain,
                     "created": "2026-12-07T00:00:00+0000", "original_checkpoint": {"key": "o", "sha256": theta},
                     "budget": {"rule": rule, **({} if steps is None else {"steps": steps})}})
    return root


def test_each_rule_side_by_side_with_its_ranks(tmp_path, capsys):
    # two units (seed 0, classes 2 and 6); under "epochs" pbu forgets best in both, under "steps" delete does
    # jit ran on class 6 only under "steps": listed, not ranked, and the ranks still use both units
    epochs = {(0, 2, "original"): (98.0, 97.0, None), (0, 2, "pbu"): (1.0, 90.0, 80), (0, 2, "delete"): (3.0, 95.0, 160),
              (0, 6, "pbu"): (0.5, 91.0, 80), (0, 6, "delete"): (2.0, 94.0, 160), (0, 2, "jit"): (5.0, 20.0, 8),
              (0, 6, "jit"): (0.0, 30.0, 8)}
    steps = {(0, 2, "original"): (98.0, 97.0, None), (0, 2, "pbu"): (0.9, 60.0, 464), (0, 2, "delete"): (0.0, 93.0, 800),
             (0, 6, "pbu"): (0.4, 70.0, 464), (0, 6, "delete"): (0.1, 92.0, 800), (0, 6, "jit"): (0.0, 10.0, 40)}
    out = tmp_path / "sensitivity.md"
    assert sensitivity.main([str(_write(tmp_path / "e", "epochs", epochs)), str(_write(tmp_path / "s", "steps", steps)),
                        "--out", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out
    assert "| 0 | 2 | PBU | 1.00 / 90.00 (80) | 0.90 / 60.00 (464) |" in text
    assert "| 0 | 2 | Initial | 98.00 / 97.00 | 98.00 / 97.00 |" in text
    # ranks among PBU and DELETE over the 2 units: A_Df epochs PBU 1, DELETE 2; steps DELETE 1, PBU 2; A_Dr DELETE first
    assert "| PBU | 1.00 | 2.00 | 2.00 | 2.00 |" in text
    assert "| DELETE | 2.00 | 1.00 | 1.00 | 1.00 |" in text
    assert "Average rank over the 2 units (θ*, class) both rules ran, among the 2 methods" in text
    assert text.rstrip().endswith("Not ranked (run under both rules on some of the units only): JiT (1 of 2).")
    assert "| 0 | 6 | JiT | 0.00 / 30.00 (8) | 0.00 / 10.00 (40) |" in text


def test_two_directories_that_are_no_pair_are_refused_in_one_line(tmp_path, capsys):
    epochs = _write(tmp_path / "e", "epochs", {(0, 2, "pbu"): (1.0, 90.0, 80)})
    cases = [(_write(tmp_path / "e2", "epochs", {(0, 2, "pbu"): (1.0, 90.0, 80)}), "both ran under the budget rule"),
             (_write(tmp_path / "s", "steps", {(0, 6, "pbu"): (1.0, 90.0, 464)}), "have no method cell in common"),
             (_write(tmp_path / "s2", "steps", {(0, 2, "original"): (98.0, 97.0, None)}), "no record of an unlearning method")]
    for second, message in cases:
        assert sensitivity.main([str(epochs), str(second)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_no_method_on_every_unit_ranks_none_and_lists_them(tmp_path, capsys):
    # pbu ran on class 2 only, delete on class 6 only: no method to rank, both listed
    epochs = {(0, 2, "pbu"): (1.0, 90.0, 80), (0, 6, "delete"): (2.0, 94.0, 160)}
    steps = {(0, 2, "pbu"): (0.9, 60.0, 464), (0, 6, "delete"): (0.1, 92.0, 800)}
    assert sensitivity.main([str(_write(tmp_path / "e", "epochs", epochs)),
                             str(_write(tmp_path / "s", "steps", steps))]) == 0
    text = capsys.readouterr().out
    assert "among the 0 methods" in text and "| PBU | " not in text.split("Average rank")[1]
    assert text.rstrip().endswith("PBU (1 of 2), DELETE (1 of 2).")


def test_a_pair_from_two_thetas_is_refused(tmp_path, capsys):
    one = {(0, 2, "pbu"): (1.0, 90.0, 80)}
    assert sensitivity.main([str(_write(tmp_path / "e", "epochs", one, "aa")),
                             str(_write(tmp_path / "s", "steps", one, "bb"))]) == 2
    err = capsys.readouterr().err
    assert "two different θ*; not a pair" in err and len(err.strip().splitlines()) == 1
