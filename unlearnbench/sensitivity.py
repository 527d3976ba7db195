"""How a table moves with its budget rule: the same cells run under two rules, side by side.

    python -m unlearnbench.sensitivity results/mnist_retain_free results/mnist_retain_free_steps \
        --out results/mnist_retain_free/budget_sensitivity.md
    (seconds: it reads records only; the command is `unlearnbench.cli.sensitivity`)

For every cell (data set, model, θ* seed, forget class, method) that both results directories have, it prints each
rule's A_Df / A_Dr and the optimizer steps the rule gave the method (`budget.steps`; a stopping rule may end
sooner), then each method's average rank per rule (1 = best; lowest A_Df, highest A_Dr; as `report --versus` ranks
them) over the units (θ*, class) of the pair, among the methods both rules ran on every one of them; a method run on
some units only is listed, not ranked. θ* (original) and the oracle (retrain) are the same cells under either rule
and are left out of the ranks. A cell pair measured from
two different θ* is refused.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import UsageError
from .paired import rank_table
from .aggregate import _method_rank, latest_per_seed, method_label, records_frame, theta_star
from .store import load_records

KEY = ["dataset", "model", "seed", "forget_class", "method"]
FIXED = {"original", "retrain"}


def frame(results: Path) -> tuple[pd.DataFrame, str, dict[tuple, str | None]]:
    records, _ = latest_per_seed(load_records(results))
    rules = {(r.get("budget") or {}).get("rule", "epochs") for r in records if r["method"] not in FIXED}
    if not rules:
        raise UsageError(f"{results}: no record of an unlearning method (θ* and the oracle only)")
    if len(rules) != 1:
        raise UsageError(f"{results}: records under {len(rules)} budget rules ({', '.join(sorted(rules))}), need one")
    df = records_frame(records)
    steps = {tuple(r[k] for k in KEY): (r.get("budget") or {}).get("steps") for r in records}
    df["steps"] = [steps.get(tuple(row[k] for k in KEY)) for _, row in df.iterrows()]
    thetas = {tuple(r[k] for k in KEY): theta_star(r) for r in records}
    return df, rules.pop(), thetas


def compare(first: Path, second: Path) -> str:
    """The Markdown side by side of two results directories' shared cells (the module docstring says what it holds);
    a UsageError for a directory under more than one rule, two directories under the same rule, no method cell in
    common, or a pair of cells measured from two different θ*."""
    (a, rule_a, theta_a), (b, rule_b, theta_b) = frame(first), frame(second)
    if rule_a == rule_b:
        raise UsageError(f"{first} and {second} both ran under the budget rule {rule_a!r}: nothing to compare "
                         "(give the same cells under two rules)")
    both = a.merge(b, on=KEY, suffixes=(f" {rule_a}", f" {rule_b}"))
    if both.empty or both["method"].isin(FIXED).all():
        raise UsageError(f"{first} and {second} have no method cell in common (data set, model, seed, class, method)")
    for _, row in both.iterrows():
        k = tuple(row[c] for c in KEY)
        if theta_a.get(k) != theta_b.get(k):
            raise UsageError(f"{k}: measured from two different θ*; not a pair")
    both = both.assign(order=both["method"].map(_method_rank)).sort_values(["seed", "forget_class", "order"],
                                                                          kind="stable")
    ran = [m for m in dict.fromkeys(both.sort_values("order", kind="stable")["method"]) if m not in FIXED]
    # ranks compare methods on the same units: those that both rules ran on every unit (θ*, class) of the pair; a
    # method run on some units only (a diagnostic variant, a column still running) is listed, not ranked
    units = set(zip(both["seed"], both["forget_class"]))
    on = {m: set(zip(p["seed"], p["forget_class"])) for m, p in both.groupby("method")}
    methods = [m for m in ran if on[m] == units]
    partial = [m for m in ran if m not in methods]
    lines = [f"Budget rule \"{rule_a}\" ({first}) against \"{rule_b}\" ({second}): {len(both)} cells both "
             f"ran, A_Df / A_Dr in %, steps = the optimizer steps the rule gave (a stopping rule may end sooner).", "",
             f"| seed | class | method | {rule_a}: A_Df / A_Dr (steps) | {rule_b}: A_Df / A_Dr (steps) |",
             "|---|---|---|---|---|"]
    for _, r in both.iterrows():
        cells = []
        for rule in (rule_a, rule_b):
            steps = r[f"steps {rule}"]
            cells.append(f"{r[f'acc_forget {rule}']:.2f} / {r[f'acc_retain {rule}']:.2f}"
                         + ("" if pd.isna(steps) else f" ({int(steps)})"))
        lines.append(f"| {r['seed']} | {r['forget_class']} | {method_label(r['method'])} | {cells[0]} | {cells[1]} |")
    ranks = {}
    for rule, df in ((rule_a, a), (rule_b, b)):
        shared = df[df["method"].isin(methods)]
        shared = shared.merge(both[KEY], on=KEY)
        ranks[rule] = rank_table(shared).set_index("method") if methods else None
    lines += ["", f"Average rank over the {len(units)} units (θ*, class) both rules ran, among the {len(methods)} methods "
              "that both ran on every one of them (1 = best):", "",
              f"| method | A_Df rank, {rule_a} | A_Df rank, {rule_b} | A_Dr rank, {rule_a} | A_Dr rank, {rule_b} |",
              "|---|---|---|---|---|"]
    for m in methods:
        lines.append(f"| {method_label(m)} | " + " | ".join(
            f"{ranks[rule].loc[m, f'{metric}_rank']:.2f}" for metric in ("acc_forget", "acc_retain")
            for rule in (rule_a, rule_b)) + " |")
    if partial:
        lines += ["", "Not ranked (run under both rules on some of the units only): " + ", ".join(
            f"{method_label(m)} ({len(on[m])} of {len(units)})" for m in partial) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from .cli.sensitivity import main
    raise SystemExit(main())
