"""The quick profile's committed records are its cells, and its step counts are the ones its description claims."""
from __future__ import annotations

import math
from pathlib import Path

from unlearnbench.plan import load_sweep
from unlearnbench.store import load_records

ROOT = Path(__file__).resolve().parents[1]
CONFIG, RESULTS = ROOT / "benchmarks" / "mnist_quick.toml", ROOT / "results" / "mnist_quick"


def test_committed_records_are_the_profiles_cells():
    """A changed default that changes a cell's key would orphan these records (and `make bench` would rerun)."""
    cells = {c.key: c for c in load_sweep(CONFIG).cells}
    records = load_records(RESULTS)
    assert sorted(r["config_hash"] for r in records) == sorted(cells)
    assert len({r["original_checkpoint"]["sha256"] for r in records}) == 1  # one θ* for the row


def test_step_counts_match_the_official_ones():
    """Bad Teaching: the official single epoch over full MNIST, (5,851 + 0.3 · 54,149) / 256 → 87 steps; PBU's
    ceiling: the official 5 epochs of ⌈5,851 / 64⌉ = 92 steps; UNSIR's retain subset: all 9,000 retain images;
    fine-tune: θ*'s epoch count."""
    cells = {c.method: c for c in load_sweep(CONFIG).cells}
    per_class = cells["original"].setup.data.train_per_class
    forget, retain = per_class, 9 * per_class
    bt = cells["bad_teaching"].hparams
    bt_steps = bt.epochs * math.ceil((forget + round(bt.retain_fraction * retain)) / bt.batch_size)
    official_bt = math.ceil((5851 + round(0.3 * 54149)) / 256)
    assert official_bt == 87 and abs(bt_steps - official_bt) <= 3
    pbu = cells["pbu"].hparams
    assert abs(pbu.epochs * math.ceil(forget / pbu.batch_size) - 5 * math.ceil(5851 / 64)) <= 8
    assert cells["fast_effective"].hparams.retain_per_class == per_class
    recorded = {r["method"]: r for r in load_records(RESULTS)}
    assert recorded["bad_teaching"]["diagnostics"]["steps"] == bt_steps
    ft = cells["finetune"].hparams
    assert ft.epochs == cells["original"].setup.train.epochs  # the official rule: as many epochs as θ* (10 and 10)
    assert recorded["finetune"]["diagnostics"]["steps"] == ft.epochs * math.ceil(retain / ft.batch_size)


def test_the_profile_rescales_no_method_by_hand():
    """Its budget rule, "steps", gives Bad Teaching and PBU their official step counts; only fine-tune's epochs are
    set by hand (a cut the report prints as a deviation)."""
    cells = {c.method: c for c in load_sweep(CONFIG).cells}
    assert {c.budget.rule for c in cells.values()} == {"steps"}
    assert {m: c.hand_set for m, c in cells.items() if c.hand_set} == {"finetune": ("epochs",)}
    assert cells["bad_teaching"].hparams.epochs == 6 and cells["pbu"].hparams.epochs == 29
