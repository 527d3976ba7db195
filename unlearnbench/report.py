"""Tables and plots from a results directory: the paper's table regenerated, beside the paper's own numbers.

    python -m unlearnbench.report RESULTS_DIR [--format csv,tex,md] [--compare-paper] [--out DIR]
                                  [--metrics acc_forget,acc_retain] [--methods pbu,retrain] [--ci] [--strict]
                                  [--versus METHOD]

Writes, under --out (default RESULTS_DIR/report):
    summary.csv            tidy: one row per data set / model / class / method; mean, std, n, 95% interval (lo, hi)
                           of every metric
    table.{md,tex,csv}     the paper's layout: rows data set → model → class, a column pair per method
    table_doc.tex          a minimal LaTeX document around table.tex (booktabs + multirow)
    metrics.{md,csv}       the metrics beyond the paper's two, per cell
    comparison.{md,tex,csv} (--compare-paper) ours beside the paper's, with the difference
    plots/tradeoff_<data>_<model>.{png,pdf}   A_Dr against A_Df per method, error bars over seeds
    plots/time_<data>_<model>.{png,pdf}       unlearning time per method (log scale), retrain as the reference line
    methods.{md,csv,tex}   one row per data set / model / method, pooled over forget classes and seeds: A_Df, A_Dr,
                           MIA and its gap to the oracle, time, speed-up, samples seen (the retain-free comparison)
    grid.md                (md; only when some data set and class has records of more than one model) the method ×
                           architecture grid: per data set and forget class, rows architectures, columns methods,
                           cells "A_Df / A_Dr" (means over seeds), a table per group of methods (the paper's, the
                           retain-free rivals, the baselines); ↓ marks an A_Dr more than 10 points below θ*'s;
                           last, per method, how many rows it ran on and where it collapsed (↓)
    versus.{md,csv}        (--versus METHOD) every method against METHOD on the cells they share: mean paired
                           differences, their intervals, exact sign-flip p-values (Holm), * at 5%
    ranks.{md,csv}         (--versus) average rank per method on A_Df and A_Dr, with its interval
    spread.{md,csv}        (a θ* with several unlearning runs) the between-θ* and within-θ* SD per cell
Means are over seeds (and unlearning runs); std is the sample standard deviation (n − 1); n = 1 prints no ±; a missing
cell prints "—". `--ci` adds the 95% interval of the mean: a percentile cluster bootstrap over the trained models θ*,
then their runs (`unlearnbench.stats`), which never leaves the metric's range; none from fewer than 3 θ*s.
Columns follow the method registry: the paper's methods first, each followed by its variants, then the others.

One θ* per row. A row of the table compares methods that started from the same θ* (per seed) and were measured
against the same retrained oracle. Every record names both (`original_checkpoint`, `oracle_checkpoint`: cache key and
sha256; records older than those fields are identified by θ*'s and the oracle's test accuracies). A cell whose records
started from another θ* than its row's (the Initial column's, else the most common) or met another oracle is marked †
in every format, with a footnote and a warning on stderr; `--strict` makes it an error (exit 2).
The command ends by printing the table (and the comparison) as plain text, then where the files and plots are.
"""
from __future__ import annotations

import math
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from . import stats
from .cli.options import ArgumentParser, cli, prog
from .errors import UsageError
from .files import check_dir, inside, regular_file_problem, stable_token, write_if_changed
from .store import load_records


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
# the paper's layout
# --------------------------------------------------------------------------------------------------------------------
def paper_layout(summary: pd.DataFrame, metrics: Sequence[str], pm: str = " ± ", ci: bool = False,
                 marked: Sequence[tuple] = ()) -> pd.DataFrame:
    """Rows (dataset, model, class); columns (method, metric); strings. Cells in `marked` (dataset, model, class,
    method) get a dagger: they were measured from another θ* or oracle than their row."""
    if summary.empty:
        return pd.DataFrame()
    methods = sorted(summary["method"].unique(), key=_method_rank)
    rows = summary[["dataset", "model", "forget_class"]].drop_duplicates()
    index = pd.MultiIndex.from_frame(rows)
    columns = pd.MultiIndex.from_product([methods, list(metrics)], names=["method", "metric"])
    # Filled by position: a .loc write per cell on this unsorted MultiIndex warns (PerformanceWarning) each time.
    row_of = {key: i for i, key in enumerate(index)}
    column_of = {key: j for j, key in enumerate(columns)}
    cells = [[DASH] * len(columns) for _ in range(len(index))]
    marked = set(marked)
    for _, r in summary.iterrows():
        mark = DAGGER if (r["dataset"], r["model"], r["forget_class"], r["method"]) in marked else ""
        for m in metrics:
            cells[row_of[(r["dataset"], r["model"], r["forget_class"])]][column_of[(r["method"], m)]] = fmt(
                r[f"{m}_mean"], r[f"{m}_std"], int(r[f"{m}_n"]), METRICS[m].digits, pm,
                _bounds(r, m) if ci else None) + mark
    return pd.DataFrame(cells, index=index, columns=columns)


def _bounds(row: pd.Series, metric: str) -> tuple[float, float]:
    return row[f"{metric}_lo"], row[f"{metric}_hi"]


#: What a table's [lo, hi] is, in its note.
INTERVAL = ("[lo, hi] = 95% interval of the mean, percentile cluster bootstrap over the trained models θ* (seeds), "
            f"then their runs; {stats.NA_NOTE}")


def seeds_note(summary: pd.DataFrame, ci: bool = False, runs: bool = False) -> str:
    """The table's note; `runs`: some θ* has more than one unlearning run, so a cell's n counts records, not seeds."""
    ns = sorted(summary["n"].unique()) if not summary.empty else [0]
    n = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    interval = f"; {INTERVAL}" if ci else ""
    what = "record(s) (θ* seeds × unlearning runs; spread.md separates the two)" if runs else "seed(s)"
    return f"mean ± sample std over {n} {what} per cell{interval}; n = 1 shows no ±; — = no result (yet)"


def _flat(table: pd.DataFrame, flagged: Sequence[tuple] = ()) -> pd.DataFrame:
    """Flat column and row names; a row in `flagged` (its θ* at chance) is marked FLAG."""
    out = table.copy()
    out.columns = [f"{method_label(m)} {METRICS[k].label}" for m, k in table.columns]
    out.index = [f"{DATASET_NAMES.get(d, d)} {MODEL_NAMES.get(mo, mo)} class {c}"
                 + (f" {FLAG}" if (d, mo, c) in flagged else "") for d, mo, c in table.index]
    return out


def to_markdown(table: pd.DataFrame, note: str, flagged: Sequence[tuple] = ()) -> str:
    if table.empty:
        return "_no results yet_\n"
    flat = _flat(table, flagged)
    flat.index.name = "data set / model / forget class"
    return flat.to_markdown(disable_numparse=True) + f"\n\n{note}\n"


def _tex(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def to_latex(table: pd.DataFrame, note: str, caption: str) -> str:
    """booktabs + multirow, rows grouped data set → model → class, like the paper's table."""
    if table.empty:
        return "% no results yet\n"
    methods = list(dict.fromkeys(m for m, _ in table.columns))
    metrics = list(dict.fromkeys(k for _, k in table.columns))
    k = len(metrics)
    lines = [r"\begin{table*}[t]", r"\centering", r"\scriptsize", r"\setlength{\tabcolsep}{3pt}",
             r"\begin{tabular}{lll" + "c" * (k * len(methods)) + "}", r"\toprule",
             "Dataset & Model & Class & " + " & ".join(
                 rf"\multicolumn{{{k}}}{{c}}{{{_tex(method_label(m))}}}" for m in methods) + r" \\",
             " ".join(rf"\cmidrule(lr){{{4 + i * k}-{3 + (i + 1) * k}}}" for i in range(len(methods))),
             " & & & " + " & ".join(METRICS[x].latex for _ in methods for x in metrics) + r" \\", r"\midrule"]
    index = list(table.index)
    for d in dict.fromkeys(i[0] for i in index):
        d_rows = [i for i in index if i[0] == d]
        first_d = True
        for mo in dict.fromkeys(i[1] for i in d_rows):
            m_rows = [i for i in d_rows if i[1] == mo]
            for j, row in enumerate(m_rows):
                d_cell = rf"\multirow{{{len(d_rows)}}}{{*}}{{{_tex(DATASET_NAMES.get(d, d))}}}" if first_d else ""
                m_cell = rf"\multirow{{{len(m_rows)}}}{{*}}{{{_tex(MODEL_NAMES.get(mo, mo))}}}" if j == 0 else ""
                first_d = False
                values = [table.loc[row, (m, x)].replace(DASH, "--").replace(DAGGER, r"$^\dagger$")
                          .replace("≥", r"$\geq$") for m in methods for x in metrics]
                lines.append(f"{d_cell} & {m_cell} & {row[2]} & " + " & ".join(values) + r" \\")
            if mo != list(dict.fromkeys(i[1] for i in d_rows))[-1]:
                lines.append(rf"\cmidrule(l){{2-{3 + k * len(methods)}}}")
        lines.append(r"\midrule" if d != list(dict.fromkeys(i[0] for i in index))[-1] else r"\bottomrule")
    note_tex = _tex(note).replace("±", r"$\pm$").replace("—", "--").replace(DAGGER, r"$^\dagger$") \
        .replace("θ*", r"$\theta^*$").replace("\n", " ")
    lines += [r"\end{tabular}", rf"\caption{{{_tex(caption)} ({note_tex})}}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


LATEX_DOC = r"""\documentclass{article}
\usepackage[landscape,margin=1cm]{geometry}
\usepackage[utf8]{inputenc}
\usepackage{booktabs}
\usepackage{multirow}
\begin{document}
\input{%s}
\end{document}
"""


# --------------------------------------------------------------------------------------------------------------------
# one row per method (the retain-free comparison, and any set of methods side by side)
# --------------------------------------------------------------------------------------------------------------------
METHOD_TABLE = ["acc_forget", "acc_retain", "mia", "mia_gap", "unlearn_seconds", "speedup", "forget_samples_seen",
                "retain_samples_seen"]


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


def methods_rows(ms: pd.DataFrame, pm: str = " ± ", ci: bool = False) -> pd.DataFrame:
    rows = []
    for _, r in ms.iterrows():
        row = {"data set": DATASET_NAMES.get(r["dataset"], r["dataset"]),
               "model": MODEL_NAMES.get(r["model"], r["model"]), "method": method_label(r["method"]), "n": r["n"]}
        for m in METHOD_TABLE:
            row[METRICS[m].label] = fmt(r[f"{m}_mean"], r[f"{m}_std"], int(r[f"{m}_n"]), METRICS[m].digits, pm,
                                        _bounds(r, m) if ci else None)
        rows.append(row)
    return pd.DataFrame(rows)


def methods_markdown(ms: pd.DataFrame, ci: bool = False) -> str:
    if ms.empty:
        return "_no results yet_\n"
    return methods_rows(ms, ci=ci).to_markdown(index=False, disable_numparse=True) + \
        "\n\nn = records (forget classes × seeds) pooled per method; mean ± sample std over them" + \
        (f"; {INTERVAL}" if ci else "") + \
        "; speed-up = retrain time / method time, per cell.\n"


def methods_latex(ms: pd.DataFrame) -> str:
    if ms.empty:
        return "% no results yet\n"
    rows = methods_rows(ms)
    lines = [r"\begin{tabular}{lll" + "r" * (len(rows.columns) - 3) + "}", r"\toprule",
             " & ".join(["Dataset", "Model", "Method", "$n$"] + [METRICS[m].latex for m in METHOD_TABLE]) + r" \\",
             r"\midrule"]
    for _, r in rows.iterrows():
        lines.append(" & ".join(_tex(str(v)).replace("±", r"$\pm$").replace(DASH, "--").replace("∞", r"$\infty$")
                                for v in r.values) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


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


def comparison_markdown(comp: pd.DataFrame) -> str:
    if comp.empty:
        return "_no cell in common with the paper's table_\n"
    view = comp.assign(dataset=comp["dataset"].map(lambda d: DATASET_NAMES.get(d, d)),
                       model=comp["model"].map(lambda m: MODEL_NAMES.get(m, m)),
                       method=comp["method"].map(method_label))
    for m in ("acc_forget", "acc_retain"):  # a paper mean outside our 95% interval: Δ marked *
        view[f"{m}_diff"] = [f"{d:+.2f}" + ("*" if inside == "no" else "")
                             for d, inside in zip(view[f"{m}_diff"], view[f"{m}_paper_in_ci"])]
    view = view.drop(columns=["acc_forget_paper_in_ci", "acc_retain_paper_in_ci"])
    view.columns = ["data set", "model", "class", "method", "n", "A_Df ours", "A_Df paper", "Δ A_Df",
                    "A_Dr ours", "A_Dr paper", "Δ A_Dr"]
    return view.to_markdown(index=False, disable_numparse=True) + \
        f"\n\nours: mean ± std [{INTERVAL.partition(' = ')[2]}] over n seeds; Δ = our mean − the paper's mean " \
        "(percentage points); * = the paper's mean lies outside our interval.\n"


def comparison_latex(comp: pd.DataFrame) -> str:
    if comp.empty:
        return "% no cell in common with the paper's table\n"
    lines = [r"\begin{tabular}{llllrllrllr}", r"\toprule",
             r"Dataset & Model & Class & Method & $n$ & \multicolumn{3}{c}{$A_{D_f}$} & "
             r"\multicolumn{3}{c}{$A_{D_r}$} \\", r"\cmidrule(lr){6-8} \cmidrule(lr){9-11}",
             r" & & & & & ours & paper & $\Delta$ & ours & paper & $\Delta$ \\", r"\midrule"]
    for _, r in comp.iterrows():
        cells = [DATASET_NAMES.get(r["dataset"], r["dataset"]), MODEL_NAMES.get(r["model"], r["model"]),
                 str(r["forget_class"]), method_label(r["method"]), str(r["n"]),
                 r["acc_forget_ours"], r["acc_forget_paper"],
                 f"{r['acc_forget_diff']:+.2f}" + ("*" if r["acc_forget_paper_in_ci"] == "no" else ""),
                 r["acc_retain_ours"], r["acc_retain_paper"],
                 f"{r['acc_retain_diff']:+.2f}" + ("*" if r["acc_retain_paper_in_ci"] == "no" else "")]
        lines.append(" & ".join(_tex(c).replace("±", r"$\pm$").replace(DASH, "--").replace("≥", r"$\geq$")
                                for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------------------------------
def plots(df: pd.DataFrame, summary: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    for (dataset, model), part in summary.groupby(["dataset", "model"], sort=False):
        title = f"{DATASET_NAMES.get(dataset, dataset)}, {MODEL_NAMES.get(model, model)}"
        classes = sorted(part["forget_class"].unique())
        styles = method_styles(sorted(part["method"].unique(), key=_method_rank))
        fig, ax = plt.subplots(figsize=(7.6, 4.8))
        for method, rows in part.groupby("method", sort=False):
            colour, face = styles[method]
            for _, r in rows.iterrows():
                ax.errorbar(r["acc_forget_mean"], r["acc_retain_mean"],
                            xerr=0 if math.isnan(r["acc_forget_std"]) else r["acc_forget_std"],
                            yerr=0 if math.isnan(r["acc_retain_std"]) else r["acc_retain_std"],
                            fmt=markers[classes.index(r["forget_class"]) % len(markers)], color=colour,
                            markerfacecolor=face, markeredgewidth=1.5, capsize=3, markersize=7, alpha=0.85)
        handles = [plt.Line2D([], [], color=styles[m][0], markerfacecolor=styles[m][1], markeredgewidth=1.5,
                              marker="o", ls="", label=method_label(m)) for m in styles]
        handles += [plt.Line2D([], [], color="black", marker=markers[i % len(markers)], ls="", label=f"class {c}")
                    for i, c in enumerate(classes)]
        columns = 2 if len(handles) > 14 else 1  # a long legend in two columns stays within the figure's height
        fig.set_size_inches(7.6 + 2.4 * (columns - 1), 4.8)
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.04, 1.0), borderaxespad=0,
                  ncol=columns)
        ax.set_xscale("symlog", linthresh=1.0)  # 0-2% and 98% both readable
        ax.set_xlim(-0.1, 110)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("A_Df: accuracy on the forgotten class (%, symlog) — lower is better")
        ax.set_ylabel("A_Dr: accuracy on the other classes (%) — higher is better")
        ax.set_title(f"Forgetting vs. what is kept — {title}\n(mean ± std over seeds, one point per forget class)",
                     fontsize=10)
        ax.grid(alpha=0.3)
        written += _save(fig, out / f"tradeoff_{stable_token(dataset)}_{stable_token(model)}")

        times = df[(df["dataset"] == dataset) & (df["model"] == model) & ~df["method"].isin(NO_TIME)]
        times = times.groupby("method")["unlearn_seconds"].agg(["mean", "std"]).dropna(subset=["mean"])
        times = times.loc[sorted(times.index, key=_method_rank)]
        if times.empty:
            plt.close(fig)
            continue
        fig, ax = plt.subplots(figsize=(max(6.4, 0.45 * len(times) + 2.0), 4.4))
        labels = [method_label(m) for m in times.index]
        colour = [styles.get(m, ("grey", "grey"))[0] for m in times.index]
        ax.bar(range(len(times)), times["mean"], yerr=times["std"].fillna(0), capsize=3, color=colour,
               edgecolor=colour)
        for i, m in enumerate(times.index):  # the hollow-marker methods of the trade-off plot: hatched bars
            if styles.get(m, ("", "x"))[1] == "white":
                ax.patches[i].set_hatch("///")
                ax.patches[i].set_facecolor("white")
        ax.set_xticks(range(len(times)), labels, rotation=40, ha="right", rotation_mode="anchor")
        ax.set_yscale("log")
        # the axis covers every bar and error bar, with a labelled tick at 1, 2 and 5 of each decade
        top = float((times["mean"] + times["std"].fillna(0)).max())
        low = float(times["mean"][times["mean"] > 0].min()) if (times["mean"] > 0).any() else 1.0
        ax.set_ylim(low / 2, top * 1.6)
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if "retrain" in times.index:
            ax.axhline(times.loc["retrain", "mean"], color="black", ls="--", lw=1, label="retrain")
            ax.legend(fontsize=8)
        ax.set_ylabel("unlearning time (s, log scale)")
        ax.set_title(f"Unlearning time per method — {title}\n(mean ± std over classes and seeds)", fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(alpha=0.3, axis="y")
        written += _save(fig, out / f"time_{stable_token(dataset)}_{stable_token(model)}")
    return written


def method_styles(methods: Sequence[str]) -> dict[str, tuple[object, str]]:
    """Per method of one plot, in order: (colour, marker face). Ten distinct hues (tab10), filled for the first ten
    methods, hollow (white face) for the next ten, then Dark2's eight hues filled: no two methods of a plot share a
    style (the registry has more methods than any palette has distinguishable colours, so styles go by the methods
    the plot shows, not by the registry)."""
    import matplotlib.pyplot as plt
    tab10, dark2 = plt.get_cmap("tab10").colors, plt.get_cmap("Dark2").colors
    styles = [(c, c) for c in tab10] + [(c, "white") for c in tab10] + [(c, c) for c in dark2]
    return {m: styles[i % len(styles)] for i, m in enumerate(methods)}


def _save(fig: object, stem: Path) -> list[Path]:
    """PNG and PDF of `fig`, each written only if its bytes changed. The PDF carries no creation date, so the same
    records give the same bytes and a report run again leaves the committed plots untouched."""
    import io

    import matplotlib.pyplot as plt
    fig.tight_layout()  # type: ignore[attr-defined]
    paths = []
    for suffix, options in ((".png", {"dpi": 150}), (".pdf", {"metadata": {"CreationDate": None}})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=suffix[1:], **options)  # type: ignore[attr-defined]
        paths.append(inside(stem.parent, stem.with_name(stem.name + suffix)))
        write_if_changed(paths[-1], buffer.getvalue())
    plt.close(fig)  # type: ignore[arg-type]
    return paths


# --------------------------------------------------------------------------------------------------------------------
# the terminal
# --------------------------------------------------------------------------------------------------------------------
def terminal_text(table: pd.DataFrame, note: str, comp: pd.DataFrame | None = None, width: int | None = None,
                  flagged: Sequence[tuple] = ()) -> str:
    """The paper-layout `table` (and, given `comp`, the comparison with the paper) as plain text within `width`
    columns (default: the terminal's, at most 100 without one). The paper's layout (a row per data set / model /
    class, a column pair per method) when it fits; else one block per data set and model, a row per class and
    method, the metrics side by side, so that a method's A_Df never sits apart from its A_Dr. Notes wrap at `width`.
    Rows whose θ* is at chance (`flagged`) are marked FLAG."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    if table.empty:
        parts = ["no results yet"]
    else:
        view = table.copy()
        view.columns = pd.MultiIndex.from_tuples([(method_label(m), METRICS[k].label) for m, k in table.columns])
        view.index = _flat(table, flagged).index
        wide = view.to_string()
        fits = max(map(len, wide.splitlines())) <= width
        parts = [wide if fits else _long_text(table, flagged), _wrapped(note, width)]
    if comp is not None and comp.empty:
        parts.append("beside the paper's table: no cell in common with it")
    elif comp is not None:
        parts.append(_comparison_text(comp, width))
    return "\n\n".join("\n".join(line.rstrip() for line in part.splitlines()) for part in parts) + "\n"


def _wrapped(text: str, width: int) -> str:
    import textwrap
    return "\n".join(textwrap.fill(p, width, break_on_hyphens=False) if p.strip() else p
                     for p in text.splitlines())


def _long_text(table: pd.DataFrame, flagged: Sequence[tuple] = ()) -> str:
    """One block per data set and model; a row per forget class and method, its metrics side by side."""
    from tabulate import tabulate
    metrics = list(dict.fromkeys(k for _, k in table.columns))
    methods = list(dict.fromkeys(m for m, _ in table.columns))
    blocks = []
    for (d, mo), part in table.groupby(level=[0, 1], sort=False):
        rows = []
        for (_, _, c), values in part.iterrows():
            label = f"{c} {FLAG}" if (d, mo, c) in flagged else c
            present = [m for m in methods if any(values[(m, k)] != DASH for k in metrics)]
            rows += [[label if i == 0 else "", method_label(m), *(values[(m, k)] for k in metrics)]
                     for i, m in enumerate(present)]
        blocks.append(f"{DATASET_NAMES.get(d, d)}, {MODEL_NAMES.get(mo, mo)}\n" + tabulate(
            rows, headers=["class", "method", *(METRICS[k].label for k in metrics)], tablefmt="simple",
            disable_numparse=True, colalign=("left", "left", *("right" for _ in metrics))))
    return "\n\n".join(blocks)


def _comparison_text(comp: pd.DataFrame, width: int) -> str:
    """Ours beside the paper's, one block per data set and model, a row per class and method (comparison.md holds
    the same with the 95% intervals)."""
    from tabulate import tabulate
    blocks = []
    for (d, mo), part in comp.groupby(["dataset", "model"], sort=False):
        rows = []
        for _, r in part.iterrows():
            diffs = [f"{r[f'{m}_diff']:+.2f}" + ("*" if r[f"{m}_paper_in_ci"] == "no" else "")
                     for m in ("acc_forget", "acc_retain")]
            rows.append([f"{r['forget_class']}  {method_label(r['method'])}", r["n"], _short(r["acc_forget_ours"]),
                         _short(r["acc_forget_paper"]), diffs[0], _short(r["acc_retain_ours"]),
                         _short(r["acc_retain_paper"]), diffs[1]])
        blocks.append(f"{DATASET_NAMES.get(d, d)}, {MODEL_NAMES.get(mo, mo)}\n" + tabulate(
            rows, headers=["class, method", "n", "A_Df", "paper", "Δ", "A_Dr", "paper", "Δ"], tablefmt="simple",
            disable_numparse=True))
    return "beside the paper's table:\n\n" + "\n\n".join(blocks) + "\n\n" + _wrapped(
        "ours: mean ± std over n seeds (comparison.md adds the 95% interval); Δ = our mean − the paper's (points); "
        "* = the paper's mean lies outside our interval.", width)


def _short(cell: str) -> str:
    """'mean ± std [lo, hi]' without the interval (the files keep it; the terminal keeps its lines short)."""
    return str(cell).split(" [", 1)[0]


def files_text(out: Path, written: Sequence[Path], width: int = 100) -> str:
    """Where the report went: per directory, its files by name, wrapped at `width`."""
    import textwrap
    by_dir: dict[Path, list[str]] = {}
    for path in written:
        by_dir.setdefault(path.parent, []).append(path.name)
    kind = {d: "plots" if d.name == "plots" else "files" for d in by_dir}
    return "\n".join([f"report written to {out}/", *(textwrap.fill(
        ", ".join(names), width, initial_indent=f"  {kind[d]} in {d}/: ", subsequent_indent="    ",
        break_on_hyphens=False, break_long_words=False) for d, names in by_dir.items())])


# --------------------------------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------------------------------
def parser() -> ArgumentParser:
    me = prog("report")
    p = ArgumentParser(prog=me, description=__doc__.split("\n\n")[0], epilog=f"""examples:
  {me} results/mnist_paper --compare-paper
  {me} results/scratch/runs.jsonl --format md --no-plots
  {me} results/mnist --metrics acc_forget,acc_retain,mia_gap --no-plots
  {me} results/mnist --strict --ci --methods original,finetune,finetune+cosine
What each file holds: docs/cli.md#report.""")
    p.add_argument("results", type=Path, help="a results directory (records/*.json, *.jsonl) or a .jsonl file")
    p.add_argument("--format", default="csv,tex,md", help="any of csv, tex, md (comma-separated)")
    p.add_argument("--compare-paper", action="store_true", help="put the paper's numbers beside ours")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: RESULTS/report)")
    p.add_argument("--metrics", default="acc_forget,acc_retain",
                   help=f"metrics in the main table (default A_Df, A_Dr); any of {', '.join(METRICS)}")
    p.add_argument("--methods", help="columns to show, in registry order (default: every method with records), "
                                     "e.g. original,retrain,pbu,pbu+stop")
    p.add_argument("--ci", action="store_true",
                   help="add the 95%% interval of each mean: cluster bootstrap over the trained models θ* (≥ 3)")
    p.add_argument("--versus", metavar="METHOD",
                   help="compare every method with METHOD on the cells they share: paired differences, exact "
                        "sign-flip tests (Holm), average ranks (versus.md, ranks.md)")
    p.add_argument("--strict", action="store_true",
                   help="a cell measured from another θ* or oracle than its row is an error, not a marked cell")
    p.add_argument("--no-plots", action="store_true")
    return p


def _write(path: Path, text: str) -> Path:
    write_if_changed(inside(path.parent, path), text.encode("utf-8"))
    return path


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    formats = {f.strip() for f in args.format.split(",") if f.strip()}
    if not formats or formats - {"csv", "tex", "md"}:
        raise UsageError(f"--format takes csv, tex, md; got {args.format!r}")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise UsageError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; valid: {', '.join(METRICS)}")
    problem = regular_file_problem(args.results)
    if problem not in (None, "is a directory"):  # a FIFO or a device would never end, a link loop is not "missing"
        raise UsageError(f"{args.results} {problem}" + ("" if problem == "does not exist" else
                                                          ", expected a results directory or a record file"))
    out = args.out or (args.results if args.results.is_dir() else args.results.parent) / "report"
    check_dir(out, "--out" if args.out else "report directory (RESULTS/report; choose another with --out)")
    skipped: list[str] = []
    found = load_records(args.results, warn=skipped.append)
    if not found:  # one line, whatever was skipped: what there was, and why none of it counts
        why = (f"{len(skipped)} file(s) skipped, the first: {skipped[0]}" if skipped else
               "no records/*.json or *.jsonl there" if args.results.is_dir() else "an empty file")
        raise UsageError(f"{args.results}: nothing to report ({why})")
    for message in skipped:
        print(f"warning: {message}", file=sys.stderr)
    records, superseded = latest_per_seed(found)
    if superseded:
        print(f"note: {superseded} older record(s) of a cell and seed already recorded under other settings were "
              f"left out (the newest of each counts)", file=sys.stderr)
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        known = set(list_methods()) | {r.get("method") for r in records}
        unknown = [m for m in wanted if m not in known]
        if unknown or not wanted:
            raise UsageError(f"--methods: unknown method(s) {', '.join(unknown) or '(none)'}; valid: "
                             f"{', '.join(list_methods())}")
        records = [r for r in records if r.get("method") in wanted]
    if args.versus and args.versus not in {r.get("method") for r in records}:
        raise UsageError(f"--versus {args.versus}: no record of that method in {args.results}; methods there: "
                         f"{', '.join(sorted({str(r.get('method')) for r in records}, key=_method_rank))}")
    mixed = mixed_cells(records)
    if mixed:
        if args.strict:
            raise UsageError(f"{len(mixed)} cell(s) were measured from another θ* or oracle than their row "
                             f"(first: {mixed_note(mixed).splitlines()[1]}); without --strict they are marked {DAGGER}")
        print(f"warning: {len(mixed)} cell(s) were measured from another θ* or oracle than their row: marked "
              f"{DAGGER} in every table, listed under it", file=sys.stderr)
    df = records_frame(records)
    summary = summarize(df)
    pooled = methods_summary(df)
    broken = broken_thetas(records)
    note = seeds_note(summary, args.ci, bool((df["unlearn_seed"] > 0).any())) + (
        "\n\n" + mixed_note(mixed) if mixed else "") + ("\n\n" + broken_note(broken) if broken else "")
    budget_line = budget_note(records)  # each table's header (Markdown) or caption (LaTeX, the terminal)
    marks = list(mixed)
    caption = f"Class unlearning results from {args.results.name}"
    written: list[Path] = []
    if "csv" in formats:
        written.append(_write(out / "summary.csv", summary.to_csv(index=False)))
        table = paper_layout(summary, metrics, ci=args.ci, marked=marks)
        if not table.empty:
            written.append(_write(out / "table.csv", _flat(table).to_csv(index_label="row")))
        if not pooled.empty:
            written.append(_write(out / "methods.csv", methods_rows(pooled, ci=args.ci).to_csv(index=False)))
        extra = paper_layout(summary, EXTRA, marked=marks)
        if not extra.empty:
            written.append(_write(out / "metrics.csv", _flat(extra).to_csv(index_label="row")))
    if "md" in formats:
        head = f"_{budget_line}_\n\n"
        written.append(_write(out / "table.md", head + to_markdown(paper_layout(summary, metrics, ci=args.ci,
                                                                                marked=marks), note, list(broken))))
        written.append(_write(out / "metrics.md", head + _metrics_markdown(summary, note, marks)))
        written.append(_write(out / "methods.md", head + methods_markdown(pooled, args.ci)))
        if grid := arch_grid(summary, marks):
            written.append(_write(out / "grid.md", head + grid))
    if "tex" in formats:
        written.append(_write(out / "table.tex", to_latex(paper_layout(summary, metrics, pm=r"$\pm$", ci=args.ci,
                                                                       marked=marks), note,
                                                          f"{caption}; {budget_line}")))
        written.append(_write(out / "table_doc.tex", LATEX_DOC % "table"))
        written.append(_write(out / "methods.tex", methods_latex(pooled)))
        written.append(_write(out / "methods_doc.tex", LATEX_DOC % "methods"))
    if args.compare_paper:
        comp = comparison(summary, paper_numbers())
        if "csv" in formats and not comp.empty:
            written.append(_write(out / "comparison.csv", comp.to_csv(index=False)))
        if "md" in formats:
            written.append(_write(out / "comparison.md", comparison_markdown(comp)))
        if "tex" in formats:
            written.append(_write(out / "comparison.tex", comparison_latex(comp)))
            written.append(_write(out / "comparison_doc.tex", LATEX_DOC % "comparison"))
        print(f"{len(comp)} cell(s) in common with the paper's table")
    extra_text = []  # the paired comparison and the spread's two sources, printed after the table
    from . import paired
    if args.versus:
        table_vs = paired.paired(df, args.versus, paired.versus_metrics(metrics))
        ranks = paired.rank_table(df)
        extra_text += [paired.versus_markdown(table_vs, args.versus), paired.ranks_markdown(ranks)]
        if "md" in formats:
            written.append(_write(out / "versus.md", extra_text[-2]))
            written.append(_write(out / "ranks.md", extra_text[-1]))
        if "csv" in formats:
            written.append(_write(out / "versus.csv", paired.versus_csv(table_vs)))
            written.append(_write(out / "ranks.csv", paired.ranks_csv(ranks)))
    spread = paired.spread_table(df, metrics)
    if not spread.empty:  # some θ* has more than one unlearning run
        extra_text.append(paired.spread_markdown(spread, metrics))
        if "md" in formats:
            written.append(_write(out / "spread.md", extra_text[-1]))
        if "csv" in formats:
            written.append(_write(out / "spread.csv", paired.spread_csv(spread)))
    if not args.no_plots and not summary.empty:
        written += plots(df, summary, out / "plots")
    print(f"{len(df)} record(s), {len(summary)} cell(s)\n")
    print(terminal_text(paper_layout(summary, metrics, ci=args.ci, marked=marks), f"{note}\n{budget_line}",
                        comparison(summary, paper_numbers()) if args.compare_paper else None, flagged=list(broken)))
    for text in extra_text:
        print(text)
    print(files_text(out, written, shutil.get_terminal_size((100, 24)).columns))
    return 0


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
        return head + "; no epoch count departs from it"
    parts = [f"{method_label(m)} {f} {ran} (rule: {ruled}; {n} record(s))"
             for (m, f, ran, ruled), n in sorted(departs.items(), key=lambda kv: (_method_rank(kv[0][0]), kv[0]))]
    return head + "; set by hand against it: " + ", ".join(parts)


#: A method "collapses" the model where its A_Dr falls more than this many points below θ*'s (the Initial column).
COLLAPSE = 10.0
COLLAPSE_MARK = "↓"


def is_collapse(acc_retain: float, theta_acc_retain: float) -> bool:
    """A_Dr more than COLLAPSE points below θ*'s: the grid's ↓, the cells `bn_statistics.py --collapsed` explains."""
    return acc_retain < theta_acc_retain - COLLAPSE


def arch_grid(summary: pd.DataFrame, marked: Sequence[tuple] = ()) -> str:
    """The method × architecture grid (grid.md): per data set and forget class with records of two or more models,
    rows architectures, columns methods, cells "A_Df / A_Dr" (means over seeds); one table per group of methods with
    records (the paper's, the retain-free rivals, the baselines), θ* (Initial) the first column of each. An A_Dr more
    than COLLAPSE points below the row's Initial A_Dr is marked ↓; cells in `marked` (another θ* or oracle) get a
    dagger. "" when no data set and class has more than one model."""
    if summary.empty:
        return ""
    marked = set(marked)
    sections = []
    runs: dict[str, list[str]] = {}  # method -> the rows it has a cell in, and which of them it collapses
    collapsed: dict[str, list[str]] = {}
    in_grid = [cls for (_, cls), part in summary.groupby(["dataset", "forget_class"]) if part["model"].nunique() > 1]
    several_classes = len(set(in_grid)) > 1  # name the class in "where" only when the grid has more than one
    for (dataset, cls), part in summary.groupby(["dataset", "forget_class"], sort=False):
        models = list(dict.fromkeys(part["model"]))
        if len(models) < 2:
            continue
        cells: dict[tuple[str, str], str] = {}
        for model, rows in part.groupby("model", sort=False):
            initial = rows.loc[rows["method"] == "original", "acc_retain_mean"]
            theta = float(initial.iloc[0]) if len(initial) else float("nan")
            for _, r in rows.iterrows():
                a = r["acc_retain_mean"]
                text = " / ".join(fmt(r[f"{m}_mean"], float("nan"), int(r[f"{m}_n"]), 1)
                                  for m in ("acc_forget", "acc_retain"))
                where = f"{DATASET_NAMES.get(dataset, dataset)} {MODEL_NAMES.get(model, model)}" + (
                    f" (class {cls})" if several_classes else "")
                if r["method"] != "original" and not math.isnan(theta):
                    runs.setdefault(r["method"], []).append(where)
                    if is_collapse(a, theta):
                        text += f" {COLLAPSE_MARK}"
                        collapsed.setdefault(r["method"], []).append(where)
                if (dataset, model, cls, r["method"]) in marked:
                    text += DAGGER
                cells[model, r["method"]] = text
        seeds = sorted(part["n"].unique())
        n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
        title = f"{DATASET_NAMES.get(dataset, dataset)}, forget class {cls}"
        groups = _method_groups(sorted(part["method"].unique(), key=_method_rank))
        for group, methods in groups:
            methods = ["original", *methods] if "original" not in methods else methods  # θ* beside every group
            table = pd.DataFrame([[cells.get((model, m), DASH) for m in methods] for model in models],
                                 index=[MODEL_NAMES.get(m, m) for m in models],
                                 columns=[method_label(m) for m in methods])
            table.index.name = "architecture"
            heading = f"## {title}" + (f": {group}" if len(groups) > 1 else "")
            sections.append(f"{heading}\n\n" + table.to_markdown(disable_numparse=True) + "\n")
        sections.append(f"A_Df / A_Dr (%), mean over {n} seed(s); {COLLAPSE_MARK} = A_Dr more than "
                        f"{COLLAPSE:g} points below θ*'s (Initial); {DAGGER} = measured from another θ* or oracle "
                        f"than the rest of its row (see table.md); — = no result (yet)\n")
    if not sections:
        return ""
    return "# Methods across architectures\n\n" + "\n".join(sections) + "\n" + _collapse_table(runs, collapsed)


def _collapse_table(runs: dict[str, list[str]], collapsed: dict[str, list[str]]) -> str:
    """Per method, over every table of the grid: the rows it ran on, and those where it collapsed (↓), so that a
    count such as "collapses on 14 of 16 rows" is read off the records rather than counted by hand."""
    rows = [{"method": method_label(m), "rows": len(runs[m]), COLLAPSE_MARK: len(collapsed.get(m, [])),
             "where": ", ".join(collapsed.get(m, [])) or DASH}
            for m in sorted(runs, key=lambda m: (_method_rank(m), m))]
    return (f"## Collapses per method ({COLLAPSE_MARK}), over the tables above\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n")


def _method_groups(methods: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The methods split by the groups they are registered in (the paper's, the retain-free rivals, the baselines;
    `catalog.GROUP_TITLES`), each variant with its method, in the given order; groups without a method are left
    out."""
    from .registry import group_title
    out: dict[str, list[str]] = {}
    for m in methods:
        out.setdefault(group_title(m), []).append(m)
    return list(out.items())


def _metrics_markdown(summary: pd.DataFrame, note: str, marked: Sequence[tuple] = ()) -> str:
    """The metrics beyond the paper's two, one row per cell and method (wide tables do not read well here)."""
    if summary.empty:
        return "_no results yet_\n"
    rows = []
    for _, r in summary.iterrows():
        mark = DAGGER if (r["dataset"], r["model"], r["forget_class"], r["method"]) in set(marked) else ""
        row = {"data set": DATASET_NAMES.get(r["dataset"], r["dataset"]),
               "model": MODEL_NAMES.get(r["model"], r["model"]), "class": r["forget_class"],
               "method": method_label(r["method"]) + mark}
        for m in EXTRA:
            row[METRICS[m].label] = fmt(r[f"{m}_mean"], r[f"{m}_std"], int(r[f"{m}_n"]), METRICS[m].digits)
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + f"\n\n{note}\n"


if __name__ == "__main__":
    sys.exit(main())
