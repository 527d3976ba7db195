"""The reporter's tables, from `unlearnbench.aggregate`'s statistics: the paper's layout (Markdown, LaTeX, CSV), the
metrics beyond the paper's two, one row per method (the retain-free comparison), ours beside the paper's, the method ×
architecture grid, and the plain text the command prints.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Sequence

from . import stats
from .aggregate import (DAGGER, DASH, DATASET_NAMES, EXTRA, FLAG, METRICS, MODEL_NAMES, _bounds, _method_rank, fmt,
                        method_label, pd)
from .metrics import COLLAPSE, COLLAPSE_MARK, is_collapse


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
# the method × architecture grid
# --------------------------------------------------------------------------------------------------------------------
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
