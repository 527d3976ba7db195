"""The reporter's numbers: records to per-cell statistics (mean, sample std, n and the 95% cluster-bootstrap interval of
every metric), in the paper's order; which θ* and oracle each record was measured from (one θ* per row); the budget
rule the records ran under; the paper's own numbers beside ours. The tables are written by `unlearnbench.tables`, the
plots by `unlearnbench.plots`, the command is `unlearnbench.cli.report`.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import numpy as np

from . import stats
from .errors import UsageError


class _Deferred:
    """pandas, imported at its first use: `report --help` and a mistyped command line answer without loading it."""

    def __getattr__(self, name: str) -> object:
        import pandas
        return getattr(pandas, name)


pd = _Deferred()


def list_methods() -> list[str]:
    """The registry's order (loaded when a report is built: the method modules load torch)."""
    from .registry import list_methods as registered
    return registered()


KEYS = ["dataset", "model", "forget_class", "method"]
#: What tells the records of one cell apart: θ*'s seed and the unlearning run (records from before unlearning seeds
#: existed have no `unlearn_seed`: they are run 0).
RUN = ["seed", "unlearn_seed"]


def unlearn_seed(record: dict) -> int:
    return int(record.get("unlearn_seed") or 0)


@dataclass(frozen=True)
class Metric:
    label: str  # Markdown / CSV header
    latex: str
    digits: int


METRICS: dict[str, Metric] = {
    "acc_forget": Metric("A_Df", r"$A_{D_f}$", 2),
    "acc_retain": Metric("A_Dr", r"$A_{D_r}$", 2),
    "acc_forget_gap": Metric("|A_Df−retrain|", r"$|\Delta A_{D_f}|$", 2),
    "acc_retain_gap": Metric("|A_Dr−retrain|", r"$|\Delta A_{D_r}|$", 2),
    "mia": Metric("MIA", "MIA", 3),
    "mia_retrain": Metric("MIA (retrain)", "MIA$_{rt}$", 3),
    "mia_gap": Metric("|MIA−retrain|", r"$|\Delta$MIA$|$", 3),
    "zrf": Metric("ZRF", "ZRF", 3),
    "kl_to_retrain": Metric("KL(retrain‖·)", "KL", 3),
    "activation_distance": Metric("act. dist.", "AD", 3),
    "unlearn_seconds": Metric("time (s)", "time (s)", 1),
    "speedup": Metric("speed-up", "speed-up", 1),
    "forget_samples_seen": Metric("forget seen", "$|D_f|$ seen", 0),
    "retain_samples_seen": Metric("retain seen", "$|D_r|$ seen", 0),
}
EXTRA = ["mia", "mia_gap", "zrf", "kl_to_retrain", "activation_distance", "acc_forget_gap", "acc_retain_gap",
         "unlearn_seconds", "speedup", "forget_samples_seen", "retain_samples_seen"]
DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar100": "CIFAR-100", "food101": "Food-101"}
MODEL_NAMES = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50",
               "densenet121": "DenseNet-121", "convnext_large": "ConvNeXt-L", "convnext_atto": "ConvNeXt-Atto",
               "efficientnet_b0": "EfficientNet-B0", "mobilenetv3_small_100": "MobileNetV3-Small",
               "regnetx_002": "RegNetX-200MF", "vit_tiny_patch16_224": "ViT-Tiny"}
DASH = "—"


# --------------------------------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------------------------------
def latest_per_seed(records: list[dict]) -> tuple[list[dict], int]:
    """One record per cell, seed and unlearning run, the newest: a cell re-run under changed settings (a new default,
    a `--set`) writes a second record, and averaging both would count one seed twice. Returns (records, how many were
    dropped)."""
    newest: dict[tuple, dict] = {}
    for r in records:
        key = (*(r.get(k) for k in KEYS + ["seed"]), unlearn_seed(r))
        if key not in newest or str(r.get("created", "")) >= str(newest[key].get("created", "")):
            newest[key] = r
    return list(newest.values()), len(records) - len(newest)


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record: the keys, the seed, every known metric present."""
    rows = [{**{k: r.get(k) for k in KEYS + ["seed"]}, "unlearn_seed": unlearn_seed(r),
             **{m: r.get(m) for m in METRICS}} for r in records if all(r.get(k) is not None for k in KEYS)]
    df = pd.DataFrame(rows, columns=KEYS + RUN + list(METRICS))
    for m in METRICS:
        df[m] = pd.to_numeric(df[m], errors="coerce")
    return df


#: Methods that do nothing: an unlearning time or speed-up would be noise.
NO_TIME = {"original"}


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Tidy summary: per data set / model / class / method, `<metric>_mean`, `_std` (n − 1), `_n`, and `n` seeds."""
    if df.empty:
        return pd.DataFrame(columns=KEYS + ["n"])
    df = df.copy()
    df.loc[df["method"].isin(NO_TIME), ["unlearn_seconds", "speedup"]] = float("nan")
    return _ordered(_aggregate(df, KEYS))


def _aggregate(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys`: `n` records, and per metric `_mean`, `_std` (n − 1), `_n`, and `_lo`, `_hi`: the 95%
    interval of the mean from a cluster bootstrap over the group's θ*s (seeds), then their records
    (`stats.cluster_interval`; NaN with fewer than 3 θ*s)."""
    grouped = df.groupby(keys, sort=False)
    out = grouped.size().rename("n").to_frame()
    for m in METRICS:
        g = grouped[m]
        out[f"{m}_mean"], out[f"{m}_std"], out[f"{m}_n"] = g.mean(), g.std(ddof=1), g.count()
        bounds = [_interval(part, m) for _, part in grouped]
        out[f"{m}_lo"], out[f"{m}_hi"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return out.reset_index()


def _interval(part: pd.DataFrame, metric: str) -> tuple[float, float]:
    """The cluster-bootstrap interval of `metric`'s mean over `part`'s records, clustered by θ* (seed)."""
    values = part[metric]
    if values.count() == 0 or not np.isfinite(values.dropna()).all():  # an infinite speed-up has no interval
        return float("nan"), float("nan")
    return stats.cluster_interval([c.tolist() for _, c in values.groupby(part["seed"], sort=True)])


def method_label(method: str) -> str:
    """The column name of a method: its registered display name, a variant as '<base> +<what>'."""
    from .registry import method_label as label
    return label(method)


def _method_rank(method: str) -> int:
    """The registry's order: the paper's methods first, each followed by its variants, then the others."""
    order = list_methods()
    return order.index(method) if method in order else len(order)


def _rank(order: Sequence[str]):
    return lambda name: list(order).index(name) if name in order else len(order)


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's order: MNIST, CIFAR-100, Food-101; ResNet, DenseNet, ConvNeXt; Initial … PBU."""
    key = df.assign(_d=df["dataset"].map(_rank(list(DATASET_NAMES))), _o=df["model"].map(_rank(list(MODEL_NAMES))),
                    _m=df["method"].map(_method_rank))
    return key.sort_values(["_d", "dataset", "_o", "model", "forget_class", "_m"]) \
        .drop(columns=["_d", "_o", "_m"]).reset_index(drop=True)


def fmt(mean: float, std: float, n: int, digits: int, pm: str = " ± ",
        ci: tuple[float, float] | None = None) -> str:
    """'mean ± std'; just 'mean' when n = 1; '—' when there is nothing; with `ci` (lo, hi), the 95% interval follows
    in brackets: 'mean ± std [lo, hi]', or '[n/a (needs ≥ 3 trained models)]' where there is none."""
    if n == 0 or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return DASH
    if math.isinf(mean):
        return "∞" if pm == " ± " else r"$\infty$"
    text = f"{mean:.{digits}f}"
    if n > 1 and std is not None and not math.isnan(std):
        text += f"{pm}{std:.{digits}f}"
    if ci is not None:
        lo, hi = ci
        text += f" [{stats.NA}]" if math.isnan(lo) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def _bounds(row: pd.Series, metric: str) -> tuple[float, float]:
    return row[f"{metric}_lo"], row[f"{metric}_hi"]


def methods_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per data set / model / method, pooled over forget classes and seeds: what `summarize` gives per cell."""
    if df.empty:
        return pd.DataFrame(columns=["dataset", "model", "method", "n"])
    df = df.copy()
    df.loc[df["method"].isin(NO_TIME), ["unlearn_seconds", "speedup"]] = float("nan")
    out = _aggregate(df, ["dataset", "model", "method"])
    key = out.assign(_d=out["dataset"].map(_rank(list(DATASET_NAMES))), _o=out["model"].map(_rank(list(MODEL_NAMES))),
                     _m=out["method"].map(_method_rank))
    return key.sort_values(["_d", "dataset", "_o", "model", "_m"]).drop(columns=["_d", "_o", "_m"]) \
        .reset_index(drop=True)


# --------------------------------------------------------------------------------------------------------------------
# one θ* per row
# --------------------------------------------------------------------------------------------------------------------
DAGGER = "†"


def _fingerprint(record: dict, checkpoint: str, accuracies: tuple[str, str]) -> str | None:
    """Which model a record names: the checkpoint's sha256, or (older records) that model's two test accuracies."""
    found = record.get(checkpoint)
    if isinstance(found, dict) and found.get("sha256"):
        return f"sha256 {str(found['sha256'])[:12]}"
    a, b = (record.get(k) for k in accuracies)
    return f"acc {a:.2f}/{b:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None


def theta_star(record: dict) -> str | None:
    return _fingerprint(record, "original_checkpoint", ("original_acc_forget", "original_acc_retain"))


def oracle(record: dict) -> str | None:
    return _fingerprint(record, "oracle_checkpoint", ("retrain_acc_forget", "retrain_acc_retain"))


def mixed_cells(records: list[dict]) -> dict[tuple, list[str]]:
    """Cells (dataset, model, class, method) with a record that started from another θ* than its row's, or met
    another oracle, for the same seed. A row's θ* is the Initial column's record's, else the most common; its oracle
    the Retrain column's, else the most common. Returns the cells with one line per mismatch."""
    by_row: dict[tuple, list[dict]] = {}
    for r in records:
        by_row.setdefault(tuple(r.get(k) for k in ("dataset", "model", "forget_class", "seed")), []).append(r)
    found: dict[tuple, list[str]] = {}
    for (dataset, model, cls, seed), rows in by_row.items():
        for what, ident, reference_method in (("θ*", theta_star, "original"), ("oracle", oracle, "retrain")):
            named = [(r, ident(r)) for r in rows if ident(r) is not None]
            if not named:
                continue
            ref = next((f for r, f in named if r["method"] == reference_method), None)
            ref = ref or Counter(f for _, f in named).most_common(1)[0][0]
            for r, f in named:
                if f != ref:
                    found.setdefault((dataset, model, cls, r["method"]), []).append(
                        f"seed {seed}: {what} {f}, the row's {ref}")
    return found


def mixed_note(mixed: dict[tuple, list[str]]) -> str:
    """The footnote of a table with marked cells."""
    if not mixed:
        return ""
    lines = [f"{DAGGER} measured from another θ* or against another oracle than the rest of its row:"]
    for (d, mo, c, m), why in sorted(mixed.items(), key=lambda kv: (str(kv[0][:3]), _method_rank(kv[0][3]))):
        lines.append(f"{DATASET_NAMES.get(d, d)} {MODEL_NAMES.get(mo, mo)} class {c}, {method_label(m)}: "
                     + "; ".join(why))
    return "\n".join(lines)


FLAG = "⚠"


def broken_thetas(records: list[dict]) -> dict[tuple, set[tuple[int, float]]]:
    """Rows (dataset, model, class) with a record whose θ* is at chance, by the condition of the warning a run prints
    when it trains θ* (`runner.near_chance` of its eval-mode test accuracy; the train-mode part of that check is not
    in the records): row → {(seed, θ*'s test accuracy)}. Data sets this process does not know are not checked."""
    from .data import DATASETS
    from .runner import near_chance
    found: dict[tuple, set[tuple[int, float]]] = {}
    for r in records:
        spec = DATASETS.get(str(r.get("dataset")))
        nf, nr = r.get("test_forget_samples"), r.get("test_retain_samples")
        af, ar = r.get("original_acc_forget"), r.get("original_acc_retain")
        if spec is None or not all(isinstance(v, (int, float)) for v in (nf, nr, af, ar)) or not nf + nr:
            continue
        acc = (af * nf + ar * nr) / (nf + nr)
        if near_chance(acc, spec.num_classes):
            found.setdefault((r["dataset"], r["model"], r["forget_class"]), set()).add((r.get("seed"), round(acc, 1)))
    return found


def broken_note(broken: dict[tuple, set[tuple[int, float]]]) -> str:
    """The footnote of a table with rows whose θ* is at chance."""
    if not broken:
        return ""
    thetas: dict[tuple, set[tuple[int, float]]] = {}
    for (d, mo, _), seeds in broken.items():
        thetas.setdefault((d, mo), set()).update(seeds)
    which = "; ".join(f"{DATASET_NAMES.get(d, d)} {MODEL_NAMES.get(mo, mo)} "
                      + ", ".join(f"seed {seed} ({acc:.1f}%)" for seed, acc in sorted(seeds, key=str))
                      for (d, mo), seeds in thetas.items())
    return (f"{FLAG} θ* at chance (eval-mode test accuracy at most 1.5 × chance, the warning `run` prints when it "
            f"trains θ*): {which}. These rows compare methods on a model that learned nothing; train θ* again "
            "(more epochs, --train bn_recalibrate=true).")


# --------------------------------------------------------------------------------------------------------------------
# beside the paper
# --------------------------------------------------------------------------------------------------------------------
def paper_numbers() -> pd.DataFrame:
    with resources.files("unlearnbench").joinpath("reference/paper_table.csv").open() as f:
        return pd.read_csv(f)


def comparison(summary: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Cells both have: ours (mean ± std, n), the paper's (mean ± std), and ours − paper, for A_Df and A_Dr."""
    both = summary.merge(paper, on=KEYS, suffixes=("", "_paper"))
    rows = []
    for _, r in both.iterrows():
        row = {"dataset": r["dataset"], "model": r["model"], "forget_class": r["forget_class"],
               "method": r["method"], "n": int(r["n"])}
        for m in ("acc_forget", "acc_retain"):
            row[f"{m}_ours"] = fmt(r[f"{m}_mean"], r[f"{m}_std"], int(r[f"{m}_n"]), 2, ci=_bounds(r, m))
            row[f"{m}_paper"] = fmt(r[f"{m}_mean_paper"], r[f"{m}_std_paper"], 2, 2)
            row[f"{m}_diff"] = round(r[f"{m}_mean"] - r[f"{m}_mean_paper"], 2)
            # is the paper's mean inside our 95% interval? (no interval from one seed)
            lo, hi = _bounds(r, m)
            row[f"{m}_paper_in_ci"] = "n/a" if math.isnan(lo) else \
                ("yes" if lo <= r[f"{m}_mean_paper"] <= hi else "no")
        rows.append(row)
    return _ordered(pd.DataFrame(rows)) if rows else pd.DataFrame()


# --------------------------------------------------------------------------------------------------------------------
# the budget rule
# --------------------------------------------------------------------------------------------------------------------
RULE_WORDS = {"epochs": "every method makes its published number of passes over the data it reads",
              "steps": "every method takes its published number of optimizer steps"}


def record_budget(record: dict) -> dict:
    """A record's budget facts (unlearnbench.budget). A record from before budget rules ran under the "epochs" rule;
    its epoch counts are compared with its method's published ones (an unknown method: none are compared)."""
    if isinstance(record.get("budget"), dict):
        return record["budget"]
    try:
        from .registry import get_method
        spec = get_method(str(record.get("method")))
    except (UsageError, ImportError):
        return {"rule": "epochs"}
    method = (record.get("config") or {}).get("method") or {}
    if spec.schedule is None or spec.cached or not all(f in method for f in spec.schedule.fields):
        return {"rule": "epochs"}
    published = {f: getattr(spec.resolve(), f) for f in spec.schedule.fields}
    ran = {f: method[f] for f in spec.schedule.fields}
    return {"rule": "epochs", "epochs": ran, "rule_epochs": published, "published_epochs": published,
            "hand_set": sorted(f for f in ran if ran[f] != published[f])}


def budget_note(records: list[dict]) -> str:
    """The tables' budget line: the rule(s) the records ran under, and every epoch count that departs from it."""
    from .budget import deviations
    rules: dict[str, int] = {}
    departs: dict[tuple[str, str, int, int], int] = {}
    for r in records:
        b = record_budget(r)
        rules[b.get("rule", "epochs")] = rules.get(b.get("rule", "epochs"), 0) + 1
        for f, (ran, ruled) in deviations(b).items():
            key = (str(r.get("method")), f, ran, ruled)
            departs[key] = departs.get(key, 0) + 1
    if len(rules) == 1:
        rule = next(iter(rules))
        head = f"budget rule: {rule} ({RULE_WORDS.get(rule, rule)}; unlearnbench.budget)"
    else:
        head = "budget rules: " + ", ".join(f"{k} ({n} records)" for k, n in sorted(rules.items())) + \
               " — the records of this table ran under more than one rule"
    if not departs:
        return head + "; no epoch count departs from it" + precision_note(records)
    parts = [f"{method_label(m)} {f} {ran} (rule: {ruled}; {n} record(s))"
             for (m, f, ran, ruled), n in sorted(departs.items(), key=lambda kv: (_method_rank(kv[0][0]), kv[0]))]
    return head + "; set by hand against it: " + ", ".join(parts) + precision_note(records)


def precision_note(records: list[dict]) -> str:
    """Where methods' steps ran in another precision than their θ*'s training (`[unlearn] precision`): how many
    records, in which precision against which; empty where none did (every record before the setting existed)."""
    pairs: dict[tuple[str, str], int] = {}
    for r in records:
        config = r.get("config") or {}
        ran = (config.get("unlearn") or {}).get("precision")
        if ran:
            key = (str(ran), str((config.get("train") or {}).get("precision", "fp32")))
            pairs[key] = pairs.get(key, 0) + 1
    return "".join(f"; methods' steps in {ran} where θ* trained in {theta} ([unlearn] precision; {n} record(s))"
                   for (ran, theta), n in sorted(pairs.items()))
