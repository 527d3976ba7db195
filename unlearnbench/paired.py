"""Methods against one reference on the cells they share, their ranks, and the two sources of a method's spread.

The tables of `report --versus METHOD` (versus.{md,csv}, ranks.{md,csv}) and, where a θ* has more than one unlearning
run, of spread.{md,csv}. The statistics are `unlearnbench.stats`'; this module pairs records and lays out tables.

Pairing. Two records pair when they share the θ* (data set, model, seed), the forget class and the unlearning seed.
The paired differences (method − reference) of one θ* and class are averaged over their unlearning runs into one
*unit*: runs of the same θ* and class are not independent pairs. The test is the exact sign-flip test over the units;
the interval of the mean difference is the cluster bootstrap over θ*s (seeds), then their units. Units of one θ* (its
forget classes) share a model, so the test, which takes them as independent, can be optimistic where a θ* matters
more than the class; the interval does not assume it. Holm's step runs over the methods of one data set and model,
metric by metric.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from . import stats

ALPHA = 0.05
MARK = "*"
UNIT = ["dataset", "model", "seed", "forget_class"]
#: Metrics compared besides the main table's: the retain-free comparison's.
ALSO = ["mia", "mia_gap", "unlearn_seconds"]
#: What the ranks order: (metric, higher is better).
RANKED = [("acc_forget", False), ("acc_retain", True)]


def _units(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per method and unit (θ*, class): the metric's mean over the unlearning runs."""
    keep = df.dropna(subset=[metric])
    return keep.groupby(["method", *UNIT, "unlearn_seed"], sort=False)[metric].mean().reset_index()


def paired(df: pd.DataFrame, reference: str, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per data set, model, method (≠ reference) and metric: units n, θ*s, the mean paired difference
    (method − reference), its 95% cluster-bootstrap interval, the sign-flip p-value, Holm's adjusted p-value, and
    whether the difference is significant at 5% after Holm."""
    rows = []
    for metric in metrics:
        runs = _units(df, metric)
        ref = runs[runs["method"] == reference].drop(columns="method")
        for method, part in runs[runs["method"] != reference].groupby("method", sort=False):
            both = part.merge(ref, on=[*UNIT, "unlearn_seed"], suffixes=("", "_ref"))
            if both.empty:
                continue
            both["d"] = both[metric] - both[f"{metric}_ref"]
            units = both.groupby(UNIT, sort=True)["d"].mean().reset_index()
            for (dataset, model), u in units.groupby(["dataset", "model"], sort=False):
                lo, hi = stats.cluster_interval([c.tolist() for _, c in u.groupby("seed")["d"]])
                rows.append({"dataset": dataset, "model": model, "method": method, "metric": metric,
                             "n": len(u), "thetas": u["seed"].nunique(), "pairs": int(
                                 ((both["dataset"] == dataset) & (both["model"] == model)).sum()),
                             "mean_diff": float(u["d"].mean()), "lo": lo, "hi": hi,
                             "p": stats.sign_flip_pvalue(u["d"].tolist())})
    out = pd.DataFrame(rows, columns=["dataset", "model", "method", "metric", "n", "thetas", "pairs", "mean_diff",
                                      "lo", "hi", "p"])
    out["p_holm"] = float("nan")
    for _, family in out.groupby(["dataset", "model", "metric"], sort=False):
        out.loc[family.index, "p_holm"] = stats.holm(family["p"].tolist())
    out["significant"] = out["p_holm"] <= ALPHA
    return _in_order(out)


def _in_order(df: pd.DataFrame) -> pd.DataFrame:
    """The report's order: data sets, then models, as the paper's table; methods as the registry."""
    from .aggregate import DATASET_NAMES, MODEL_NAMES, _method_rank, _rank
    if df.empty:
        return df
    key = df.assign(_d=df["dataset"].map(_rank(list(DATASET_NAMES))), _o=df["model"].map(_rank(list(MODEL_NAMES))),
                    _m=df["method"].map(_method_rank))
    by = ["_d", "dataset", "_o", "model", *(["forget_class"] if "forget_class" in df else []), "_m"]
    return key.sort_values(by, kind="stable") \
        .drop(columns=["_d", "_o", "_m"]).reset_index(drop=True)


def rank_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per data set, model and method: the average rank (1 = best) over the units (θ*, class) where every method of
    that data set and model has a record, for each RANKED metric, with the cluster-bootstrap interval over θ*s."""
    rows = []
    for (dataset, model), part in df.groupby(["dataset", "model"], sort=False):
        methods = list(dict.fromkeys(part["method"]))
        found: dict[str, dict] = {m: {"dataset": dataset, "model": model, "method": m} for m in methods}
        for metric, higher in RANKED:
            units = part.dropna(subset=[metric]).groupby(["method", "seed", "forget_class"])[metric].mean().unstack(
                "method")
            units = units.reindex(columns=methods).dropna()  # units every method has
            ranked = pd.DataFrame([stats.ranks(v, higher) for v in units.to_numpy()], index=units.index,
                                  columns=methods) if len(units) else pd.DataFrame(columns=methods)
            for m in methods:
                col = ranked[m] if len(units) else pd.Series(dtype=float)
                lo, hi = stats.cluster_interval([c.tolist() for _, c in col.groupby(level="seed")]) if len(col) \
                    else (float("nan"), float("nan"))
                found[m] |= {"units": len(units), f"{metric}_rank": float(col.mean()) if len(col) else float("nan"),
                             f"{metric}_rank_lo": lo, f"{metric}_rank_hi": hi}
        rows += found.values()
    return _in_order(pd.DataFrame(rows))


def spread_table(df: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per cell (data set, model, class, method) with a θ* of more than one unlearning run: θ*s I, runs per θ* J
    (the most), and per metric the between-θ* SD (of the θ*s' means) and the within-θ* SD (runs around their θ*'s
    mean, pooled). Empty when every θ* has one run."""
    runs = df.groupby(["dataset", "model", "forget_class", "method", "seed"])["unlearn_seed"].nunique()
    if runs.empty or runs.max() < 2:
        return pd.DataFrame()
    rows = []
    for key, part in df.groupby(["dataset", "model", "forget_class", "method"], sort=False):
        per_theta = part.groupby("seed")["unlearn_seed"].nunique()
        if per_theta.max() < 2:
            continue
        row = dict(zip(["dataset", "model", "forget_class", "method"], key))
        row |= {"thetas": len(per_theta), "runs": int(per_theta.max())}
        for m in metrics:
            between, within = stats.spread([c.tolist() for _, c in part.groupby("seed")[m]])
            row |= {f"{m}_mean": float(part[m].mean()), f"{m}_sd_between": between, f"{m}_sd_within": within}
        rows.append(row)
    return _in_order(pd.DataFrame(rows))


# --------------------------------------------------------------------------------------------------------------------
# the tables, written
# --------------------------------------------------------------------------------------------------------------------
def _label(metric: str) -> str:
    """A metric's header, its bars escaped for a Markdown table (|MIA−retrain|)."""
    from .aggregate import METRICS
    return METRICS[metric].label.replace("|", "\\|")


def _num(x: float, digits: int) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def versus_markdown(table: pd.DataFrame, reference: str) -> str:
    """One table per data set and model: a row per method, a column per metric, each cell 'Δ [lo, hi] p' with the
    mark where the difference holds after Holm."""
    from .aggregate import DATASET_NAMES, METRICS, MODEL_NAMES, _method_rank, method_label
    ref = method_label(reference)
    if table.empty:
        return f"_no cell shared with {ref}_\n"
    sections = [f"# Against {ref}, on the cells they share\n"]
    for (dataset, model), part in table.groupby(["dataset", "model"], sort=False):
        metrics = list(dict.fromkeys(part["metric"]))
        rows = []
        for method in sorted(part["method"].unique(), key=_method_rank):
            mine = part[part["method"] == method].set_index("metric")
            row = {"method": method_label(method), "n": int(mine["n"].max()), "θ*": int(mine["thetas"].max())}
            for m in metrics:
                if m not in mine.index:
                    row[f"Δ {_label(m)}"] = "—"
                    continue
                r, d = mine.loc[m], METRICS[m].digits
                interval = stats.NA if math.isnan(r["lo"]) else f"{r['lo']:+.{d}f}, {r['hi']:+.{d}f}"
                row[f"Δ {_label(m)}"] = (f"{r['mean_diff']:+.{d}f} [{interval}] p={r['p_holm']:.3f}"
                                                + (MARK if r["significant"] else ""))
            rows.append(row)
        title = f"## {DATASET_NAMES.get(dataset, dataset)}, {MODEL_NAMES.get(model, model)}"
        sections.append(f"{title}\n\n" + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n")
    sections.append(
        f"Δ = mean paired difference, method − {ref}, over n units (a θ* and forget class; pairs share the θ*, the "
        f"class and the unlearning seed, and a unit averages its unlearning runs); [lo, hi] = its 95% percentile "
        f"cluster-bootstrap interval over the θ*s ({stats.NA_NOTE}); p = exact two-sided "
        f"sign-flip permutation test over the units, Holm-adjusted across the methods of each table, metric by "
        f"metric; {MARK} = significant at 5% after Holm. With n units the smallest possible p is 2/2^n before Holm.\n")
    return "\n".join(sections)


def ranks_markdown(ranks: pd.DataFrame) -> str:
    from .aggregate import DATASET_NAMES, METRICS, MODEL_NAMES, _method_rank, method_label
    if ranks.empty:
        return "_no results yet_\n"
    sections = ["# Average rank per method\n"]
    for (dataset, model), part in ranks.groupby(["dataset", "model"], sort=False):
        rows = []
        for _, r in part.sort_values("method", key=lambda s: s.map(_method_rank)).iterrows():
            row = {"method": method_label(r["method"]), "units": int(r["units"])}
            for m, _ in RANKED:
                lo = r[f"{m}_rank_lo"]
                interval = stats.NA if math.isnan(lo) else f"{lo:.2f}, {r[f'{m}_rank_hi']:.2f}"
                row[f"rank {_label(m)}"] = f"{_num(r[f'{m}_rank'], 2)} [{interval}]"
            rows.append(row)
        title = f"## {DATASET_NAMES.get(dataset, dataset)}, {MODEL_NAMES.get(model, model)}"
        sections.append(f"{title}\n\n" + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n")
    sections.append("rank 1 = best (lowest A_Df, highest A_Dr) among the methods of the table, per unit (a θ* and "
                    "forget class that every method of the table has, its unlearning runs averaged), ties sharing "
                    "their mean rank; the average over the units, [lo, hi] = its 95% percentile cluster-bootstrap "
                    f"interval over the θ*s ({stats.NA_NOTE}).\n")
    return "\n".join(sections)


def spread_markdown(spread: pd.DataFrame, metrics: Sequence[str]) -> str:
    from .aggregate import DATASET_NAMES, METRICS, MODEL_NAMES, method_label
    rows = []
    for _, r in spread.iterrows():
        row = {"data set": DATASET_NAMES.get(r["dataset"], r["dataset"]),
               "model": MODEL_NAMES.get(r["model"], r["model"]), "class": r["forget_class"],
               "method": method_label(r["method"]), "θ*": int(r["thetas"]), "runs": int(r["runs"])}
        for m in metrics:
            d = METRICS[m].digits
            row[f"{_label(m)} mean"] = _num(r[f"{m}_mean"], d)
            row[f"{_label(m)} SD θ*"] = _num(r[f"{m}_sd_between"], d)
            row[f"{_label(m)} SD runs"] = _num(r[f"{m}_sd_within"], d)
        rows.append(row)
    return ("# The two sources of spread\n\n" + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
            + "\n\nruns = unlearning runs per θ* (unlearning seeds); SD θ* = sample SD of the θ*s' means (between "
              "trained models); SD runs = pooled SD of the runs around their θ*'s mean (the method's own "
              "randomness). The variance of a mean over I θ*s × J runs is σ²_θ*/I + σ²_runs/(I·J) (Lanyon et al., "
              "arXiv 2510.26714); the SD of the θ*s' means holds σ²_runs/J besides σ²_θ*.\n")


def _csv(df: pd.DataFrame) -> str:
    """8 significant digits: the same numbers give the same bytes, and a p-value keeps its digits."""
    return df.to_csv(index=False, float_format="%.8g")


def versus_csv(table: pd.DataFrame) -> str:
    return _csv(table)


def ranks_csv(ranks: pd.DataFrame) -> str:
    return _csv(ranks)


def spread_csv(spread: pd.DataFrame) -> str:
    return _csv(spread)


def versus_metrics(table_metrics: Sequence[str]) -> list[str]:
    """The main table's metrics, then the retain-free comparison's (MIA, its gap, time)."""
    return list(dict.fromkeys([*table_metrics, *ALSO]))

