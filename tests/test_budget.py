"""The budget rule: hand-computed epoch and step counts, what a cell's key holds, what a record says."""
import pytest

from unlearnbench.budget import Published, Schedule, batches, deviations, facts, forget_pass, rule_epochs
from unlearnbench.config import hash_view
from unlearnbench.errors import UsageError
from unlearnbench.registry import get_method
from unlearnbench.plan import Overrides, resolve_cell

# the CPU grid's protocol: 1,000 training images per class of MNIST
SIZES = lambda cfg, k: (1000, 9000)  # noqa: E731


def test_batches_counts_a_short_last_batch():
    assert (batches(1000, 64), batches(1024, 64), batches(1, 64), batches(0, 64)) == (16, 16, 1, 1)


def test_steps_rule_scales_pbu_and_bad_teaching_to_their_published_steps():
    # PBU: 5 epochs × ceil(5,851 / 64) = 5 × 92 = 460 published steps; here 16 per epoch: 460 / 16 = 28.75 → 29
    pbu = get_method("pbu")
    assert rule_epochs(pbu.schedule, pbu.resolve(), "steps", 1000, 9000, 10) == {"epochs": 29}
    # Bad Teaching: ceil((5,851 + int(0.3 × 54,149)) / 256) = ceil(22,095 / 256) = 87; here ceil(3,700 / 256) = 15
    bt = get_method("bad_teaching")
    assert rule_epochs(bt.schedule, bt.resolve(), "steps", 1000, 9000, 10) == {"epochs": 6}  # 87 / 15 = 5.8
    # the epochs rule leaves every published count as it is
    assert rule_epochs(pbu.schedule, pbu.resolve(), "epochs", 1000, 9000, 10) == {"epochs": 5}


def test_steps_rule_keeps_at_least_one_epoch_and_a_switched_off_phase_off():
    sched = Schedule(("a", "b"), forget_pass(), Published(10, 90, 10, "tiny", "here"))

    class HP:
        a, b, batch_size = 1, 0, 10

    assert rule_epochs(sched, HP, "steps", 1000, 9000, 10) == {"a": 1, "b": 0}  # 1 step published, 100 here


def test_a_cell_under_the_steps_rule_has_the_scaled_epochs_and_the_key_of_what_runs():
    steps = resolve_cell("mnist", "test_resnet", 8, 0, "pbu", Overrides(budget={"rule": "steps"}), sizes=SIZES)
    assert steps.hparams.epochs == 29 and steps.hand_set == () and steps.budget.rule == "steps"
    by_hand = resolve_cell("mnist", "test_resnet", 8, 0, "pbu", Overrides(method={"pbu": {"epochs": 29}}))
    assert by_hand.hand_set == ("epochs",) and by_hand.budget.rule == "epochs"
    assert steps.key == by_hand.key  # the same computation: one key; the rule is the record's, not the key's
    assert "budget" in steps.to_dict() and "budget" not in steps.to_dict(hash_view)
    assert steps.to_dict()["budget"] == {"rule": "steps", "hand_set": []}


def test_a_hand_set_epoch_count_is_kept_under_the_steps_rule():
    ov = Overrides(method={"pbu": {"epochs": 3}}, budget={"rule": "steps"})
    cell = resolve_cell("mnist", "test_resnet", 8, 0, "pbu", ov, sizes=SIZES)
    assert cell.hparams.epochs == 3 and cell.hand_set == ("epochs",)


def test_methods_without_a_schedule_and_the_oracle_are_not_scaled():
    ov = Overrides(budget={"rule": "steps"})
    for method in ("original", "ssd", "retrain"):
        cell = resolve_cell("mnist", "test_resnet", 8, 0, method, ov, sizes=SIZES)
        assert cell.key == resolve_cell("mnist", "test_resnet", 8, 0, method, Overrides()).key


def test_an_unknown_rule_is_refused():
    with pytest.raises(UsageError, match="budget.rule"):
        resolve_cell("mnist", "test_resnet", 8, 0, "pbu", Overrides(budget={"rule": "wallclock"}), sizes=SIZES)


def test_record_facts_give_epochs_steps_and_deviations():
    pbu = get_method("pbu")
    published = pbu.resolve()
    hand = pbu.resolve({"epochs": 3})
    got = facts(pbu.schedule, "steps", hand, published, ("epochs",), 1000, 9000, 10)
    assert got == {"rule": "steps", "epochs": {"epochs": 3}, "rule_epochs": {"epochs": 29},
                   "published_epochs": {"epochs": 5}, "steps": 48, "published_steps": 460, "hand_set": ["epochs"]}
    assert deviations(got) == {"epochs": (3, 29)}
    ruled = facts(pbu.schedule, "epochs", published, published, (), 1000, 9000, 10)
    assert ruled["steps"] == 80 and deviations(ruled) == {}
    assert facts(None, "steps", published, published, (), 0, 0, 0) == {"rule": "steps"}


def test_the_configuration_reference_holds_the_registry_schedules():
    from pathlib import Path

    from unlearnbench.budget import schedule_table
    text = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    assert schedule_table(1000, 9000, 10) in text, "regenerate it: python -c 'from unlearnbench.budget import " \
                                                   "schedule_table; print(schedule_table(1000, 9000, 10))'"


def test_no_committed_sweep_file_rescales_a_method_by_hand():
    """Every epoch count a committed sweep file sets by hand, against its budget rule. Each is a declared cut of
    fine-tune's budget to fit a CPU (its reports print it as a deviation), or the spread study's copy of a protocol;
    a new one has to be added here, with its reason in the file's description."""
    from pathlib import Path

    from unlearnbench.plan import load_sweep
    allowed = {"cifar100_quick.toml": {"finetune"}, "food101_quick.toml": {"finetune"}, "smoke.toml": {"finetune"},
               "mnist_cpu.toml": {"finetune", "finetune+cosine"}, "mnist_quick.toml": {"finetune"},
               "mnist_unlearn_seeds.toml": {"bad_teaching", "pbu+stop"}}
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    found = {}
    for path in sorted(root.glob("*.toml")):
        hand = {c.method for c in load_sweep(path, sizes=lambda cfg, k: (1000, 9000)).cells if c.hand_set}
        if hand:
            found[path.name] = hand
    assert found == allowed


def test_the_steps_rule_scales_an_lr_schedule_with_its_epochs():
    """SCRUB's lr decays after epochs 3, 5, 9 and it runs 3: under "steps" at 1,000 / 9,000 images its 3 epochs of
    ⌈45,000 / 128⌉ = 352 retain steps become round(1,056 / ⌈9,000 / 128⌉ = 71) = 15, a factor of 5, and the decays
    move to 15, 25, 45: still after the last epoch, as published. Under "epochs" nothing moves."""
    from unlearnbench.plan import Overrides, resolve_cell
    sizes = lambda cfg, k: (1000, 9000)  # noqa: E731
    steps = resolve_cell("mnist", "resnet34", 8, 0, "scrub", Overrides(budget={"rule": "steps"}), sizes=sizes)
    assert (steps.hparams.epochs, steps.hparams.lr_decay_epochs) == (15, (15, 25, 45))
    epochs = resolve_cell("mnist", "resnet34", 8, 0, "scrub", Overrides(), sizes=sizes)
    assert (epochs.hparams.epochs, epochs.hparams.lr_decay_epochs) == (3, (3, 5, 9))
    mine = resolve_cell("mnist", "resnet34", 8, 0, "scrub",
                        Overrides(budget={"rule": "steps"}, method={"scrub": {"lr_decay_epochs": [2]}}), sizes=sizes)
    assert mine.hparams.lr_decay_epochs == (2,)  # set by hand: kept


def test_records_from_before_the_rule_read_under_todays_names(tmp_path):
    """An old `pbu` record ran the stopping rule: it reads as `pbu+stop`; old `pbu+fixed5` as `pbu`; a record with a
    `budget` field (made under the rule) keeps its name; the file is not rewritten."""
    from unlearnbench.store import RecordStore, load_records
    store = RecordStore(tmp_path).create()
    base = {"dataset": "mnist", "model": "resnet34", "forget_class": 2, "seed": 0, "acc_forget": 0.0,
            "acc_retain": 90.0, "created": "2026-12-01T00:00:00+0000"}
    store.write({**base, "config_hash": "a", "method": "pbu", "config": {"method": {"name": "pbu", "stop": "forget_acc"}}})
    store.write({**base, "config_hash": "b", "method": "pbu+fixed5", "config": {"method": {"stop": "none"}}})
    store.write({**base, "config_hash": "c", "method": "pbu", "config": {"method": {"stop": "none"}},
                 "budget": {"rule": "epochs"}})
    names = {r["config_hash"]: r["method"] for r in load_records(tmp_path)}
    assert names == {"a": "pbu+stop", "b": "pbu", "c": "pbu"}
    assert '"method": "pbu"' in (tmp_path / "records" / "a.json").read_text()
