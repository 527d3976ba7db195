"""The budget rule: how long every method of a table trains, declared once and applied by the harness to all alike.

A sweep (or a run) declares one rule:

    [budget]
    rule = "epochs"   # (default) every method makes its published number of passes over the data it reads, at this
                      # protocol's data size: on a sixth of MNIST, a sixth of the published optimizer steps
    rule = "steps"    # every method takes its published number of optimizer steps: its epochs are scaled by the size
                      # of the data its published recipe passed over (each method declares it, with its source)

A method declares its schedule with its registration (`register_method(..., schedule=Schedule(...))`): which
hyperparameters count epochs, how many optimizer steps one epoch takes at given data sizes, and the data its
published recipe ran on. A method without one (SSD, θ*) trains nothing, or a fixed number of steps: no rule changes
it. The oracle (retrain) follows θ*'s recipe, not a rule.

An epoch count set by hand in a sweep file or on the command line is kept (a user's own study), and every record and
report says it departs from the rule (`deviations`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal, Mapping

RULES = ("epochs", "steps")
Rule = Literal["epochs", "steps"]


@dataclass(frozen=True)
class BudgetConfig:
    """The `[budget]` table."""

    rule: Rule = "epochs"


@dataclass(frozen=True)
class Published:
    """The data one epoch of a method's published recipe passed over."""

    forget: int  # images of the forget class
    retain: int  # images of the other classes
    classes: int  # classes of the data set
    what: str  # in words, e.g. "a CIFAR-10 class (5,000 images) and the other 45,000"
    source: str  # where the recipe says so (repo@commit, file, line)


#: Steps of one epoch of `field` for hyperparameters `hp` at (forget, retain) training images of `classes` classes.
StepsFn = Callable[[Any, str, int, int, int], int]


@dataclass(frozen=True)
class Schedule:
    """How a method's training is counted: `fields` are its epoch counts; `steps(hp, field, forget, retain, classes)` the
    optimizer steps one epoch of `field` takes; `published` the data its published recipe ran on."""

    fields: tuple[str, ...]
    steps: StepsFn
    published: Published
    # hyperparameters that count epochs of the first field (an lr schedule's milestones, a tuple): the "steps" rule
    # scales them by the same factor, so that a schedule keeps its shape (a decay that never fires still never fires)
    milestones: tuple[str, ...] = ()


def batches(n: float, batch_size: int) -> int:
    """Steps of one pass over n images (the last batch may be short)."""
    return max(1, math.ceil(n / batch_size))


def forget_pass(batch_field: str = "batch_size") -> StepsFn:
    """One epoch = one pass over the forget set at `hp.<batch_field>` (most retain-free methods)."""
    return lambda hp, field, forget, retain, classes: batches(forget, getattr(hp, batch_field))


def retain_pass(batch_field: str = "batch_size") -> StepsFn:
    """One epoch = one pass over the retain set."""
    return lambda hp, field, forget, retain, classes: batches(retain, getattr(hp, batch_field))


def rule_epochs(schedule: Schedule, hp: Any, rule: str, forget: int | None, retain: int | None,
                classes: int = 0) -> dict[str, int]:
    """Each epoch field's value under `rule`, from the method's published values in `hp`: unchanged under "epochs";
    under "steps", scaled so that the steps match the published recipe's (at least one epoch)."""
    published = {f: getattr(hp, f) for f in schedule.fields}
    if rule == "epochs":
        return published
    if forget is None or retain is None:
        raise ValueError("the steps rule needs the data sizes")
    out = {}
    for f, epochs in published.items():
        if epochs == 0:  # an optional phase switched off stays off
            out[f] = 0
            continue
        p = schedule.published
        pub = epochs * schedule.steps(hp, f, p.forget, p.retain, p.classes)
        out[f] = max(1, round(pub / schedule.steps(hp, f, forget, retain, classes)))
    return out


def rule_milestones(schedule: Schedule, published_hp: Any, ruled: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """Each milestone field of `published_hp` scaled as the rule scaled the schedule's first epoch count."""
    first = schedule.fields[0]
    before = getattr(published_hp, first)
    factor = ruled[first] / before if before else 1.0
    return {m: tuple(max(1, round(e * factor)) for e in getattr(published_hp, m)) for m in schedule.milestones}


def steps_of(schedule: Schedule, hp: Any, forget: int, retain: int, classes: int) -> int:
    """Optimizer steps of the epoch fields of `hp` at these data sizes (a stopping rule may end sooner)."""
    return sum(getattr(hp, f) * schedule.steps(hp, f, forget, retain, classes) for f in schedule.fields)


def facts(schedule: Schedule | None, rule: str, hp: Any, published_hp: Any, hand_set: tuple[str, ...],
          forget: int, retain: int, classes: int) -> dict[str, Any]:
    """What a record says of its budget: the rule; and for a method with a schedule, the epochs it ran, the rule's and
    the published ones, its steps and the published steps, and which fields were set by hand against the rule."""
    out: dict[str, Any] = {"rule": rule}
    if schedule is None:
        return out
    ruled = rule_epochs(schedule, published_hp, rule, forget, retain, classes)
    ran = {f: getattr(hp, f) for f in schedule.fields}
    p = schedule.published
    return {**out, "epochs": ran, "rule_epochs": ruled,
            "published_epochs": {f: getattr(published_hp, f) for f in schedule.fields},
            "steps": steps_of(schedule, hp, forget, retain, classes),
            "published_steps": steps_of(schedule, published_hp, p.forget, p.retain, p.classes),
            "hand_set": sorted(f for f in hand_set if ran[f] != ruled[f])}


def deviations(budget: Mapping[str, Any] | None) -> dict[str, tuple[int, int]]:
    """field → (ran, rule's) for each epoch count of a record that departs from its rule."""
    if not budget or "epochs" not in budget:
        return {}
    return {f: (budget["epochs"][f], budget["rule_epochs"][f]) for f in budget.get("hand_set", [])
            if f in budget["epochs"] and f in budget.get("rule_epochs", {})}


def cifar10_class(source: str) -> Published:
    """One class of CIFAR-10's training set (5,000 of 50,000 images): what most published recipes ran on."""
    return Published(5000, 45000, 10, "a CIFAR-10 class (5,000 training images) and the other 45,000", source)


def mnist_class8(source: str) -> Published:
    """Class 8 of full MNIST (5,851 of 60,000 training images): the class PBU's official notebook forgets."""
    return Published(5851, 54149, 10, "full MNIST's class 8 (5,851 training images) and the other 54,149", source)


def schedule_table(forget: int, retain: int, classes: int) -> str:
    """The registered methods' schedules as a Markdown table: each epoch count as published, the data it was
    published for, and what the "steps" rule makes of it at (forget, retain) images of `classes` classes (the
    reference's table; a test keeps the two equal)."""
    from .registry import get_method, list_methods
    rows = ["| method | epoch counts | published epochs (steps) | published on | under \"steps\" here | source |",
            "|---|---|---|---|---|---|"]
    for name in list_methods(variants=False):
        spec = get_method(name)
        if spec.cached or spec.schedule is None:
            continue
        s, hp = spec.schedule, spec.resolve()
        p = s.published
        published = ", ".join(f"{getattr(hp, f)}" for f in s.fields)
        ruled = rule_epochs(s, hp, "steps", forget, retain, classes)
        rows.append(f"| `{name}` | {', '.join(f'`{f}`' for f in s.fields)} | {published} "
                    f"({steps_of(s, hp, p.forget, p.retain, p.classes)}) | {p.what} | "
                    f"{', '.join(str(ruled[f]) for f in s.fields)} ({steps_of(s, replace(hp, **ruled), forget, retain, classes)}) "
                    f"| {p.source} |")
    return "\n".join(rows) + "\n"
