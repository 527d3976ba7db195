"""The deep-forgetting table and plot of a report (records with the fields of `unlearnbench.deep`).

    deep.{md,csv,tex}          per data set, model and forget class, one row per method pooled over seeds: A_Df,
                               the linear probe's A_Df and A_Dr, the prototype attack's A_Df, relearn steps and AIN;
                               above them θ*'s and the oracle's rows, from the same records' `original_*` and
                               `retrain_*` fields (each seed's once)
    plots/deep_<data>_<model>.{png,pdf}   per method, A_Df against the probe's A_Df, and the prototype attack's A_Df
                                          against relearn steps; θ*'s and the oracle's means marked

Records without the fields (made with `[eval] deep = false`, or before it existed) print "—"; a report whose records
have none writes neither file.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from .files import write_report_file as _write
from .records import machine

#: (record field, column label, LaTeX label, digits)
COLUMNS = (("acc_forget", "A_Df", r"$A_{D_f}$", 2),
           ("probe_acc_forget", "probe A_Df", r"probe $A_{D_f}$", 2),
           ("probe_acc_retain", "probe A_Dr", r"probe $A_{D_r}$", 2),
           ("proto_acc_forget", "prototype-attack A_Df", r"proto.\ $A_{D_f}$", 2),
           ("relearn_steps", "relearn steps", "relearn steps", 1),
           ("ain", "AIN", "AIN", 2))
#: The method-level fields of a reference row: θ* is `original_<field>` (its A_Df `original_acc_forget`), the
#: oracle `retrain_<field>`; AIN is the method's alone (the oracle's is 1 by definition, θ*'s undefined).
REFERENCES = (("original", "θ* (before unlearning)"), ("retrain", "oracle (retrained without the class)"))
CENSORED = "≥"


def has_deep(records: Sequence[dict[str, Any]]) -> bool:
    return any(r.get("probe_acc_forget") is not None or r.get("relearn_steps") is not None for r in records)


def _value(r: dict[str, Any], field: str, prefix: str = "") -> float:
    v = r.get(prefix + field) if prefix else r.get(field)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")


def _pool(values: list[float], censored: bool, digits: int) -> str:
    from .aggregate import fmt
    import numpy as np
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return fmt(float("nan"), float("nan"), 0, digits)
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
    return (CENSORED if censored else "") + fmt(float(np.mean(finite)), std, len(finite), digits)


def deep_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Per data set, model and forget class (as the main table: a block compares methods from the same θ*s): θ*'s
    row, the oracle's row, then each method's, pooled over its seeds (mean ± std); a relearn-steps mean that
    includes a censored run (capped) is a lower bound, marked ≥."""
    from .aggregate import DATASET_NAMES, MODEL_NAMES, _method_rank, method_label
    rows: list[dict[str, str]] = []
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((str(r.get("dataset")), str(r.get("model")), int(r.get("forget_class", -1))),
                          []).append(r)
    for (dataset, model, forget_class), part in sorted(groups.items(), key=lambda kv: kv[0]):
        if not has_deep(part):
            continue
        where = {"data set": DATASET_NAMES.get(dataset, dataset), "model": MODEL_NAMES.get(model, model),
                 "class": str(forget_class)}
        cells = {r.get("seed"): r for r in part if r.get("probe_acc_forget") is not None
                 or r.get("relearn_steps") is not None}  # each θ*'s and oracle's measurements once
        for prefix, label in REFERENCES:
            refs = [r for r in cells.values() if r.get(f"{prefix}_relearn_steps") is not None]
            if not refs:
                continue
            row = {**where, "method": label, "n": str(len(refs))}
            for field, name, _, digits in COLUMNS:
                if field == "ain":
                    row[name] = "1.00" if prefix == "retrain" else "—"
                    continue
                values = [_value(r, field, f"{prefix}_") for r in refs]
                censored = field == "relearn_steps" and any(r.get(f"{prefix}_relearn_censored") for r in refs)
                row[name] = _pool(values, censored, digits)
            rows.append(row)
        # θ*'s and the oracle's own cells are the two rows above (the same models, measured alike)
        for method in sorted({str(r["method"]) for r in part} - {"original", "retrain"},
                             key=lambda m: (_method_rank(m), m)):
            mine = [r for r in part if r["method"] == method]
            row = {**where, "method": method_label(method), "n": str(len(mine))}
            for field, name, _, digits in COLUMNS:
                censored = field in ("relearn_steps", "ain") and any(r.get("relearn_censored") for r in mine)
                row[name] = _pool([_value(r, field) for r in mine], censored, digits)
            rows.append(row)
    return rows


NOTE = ("probe = a multinomial logistic regression on the penultimate features of a class-balanced sample of training "
        "images (the forgotten class included): its accuracy on the forgotten class's test images (probe A_Df) and "
        "on the others' (probe A_Dr); prototype attack = Spotter's head edit from {images} forget-class training "
        "images, no training (— where the head is not one linear layer); relearn steps = Adam steps on a few forget "
        "and retain images until A_Df is back to {target} of θ*'s (≥: some run hit the cap, a lower bound); AIN = "
        "relearn steps / the oracle's (< 1: the class comes back faster than into a model that never learned it). "
        "n = seeds; mean ± sample std; the θ* and oracle rows (Initial and Retrain) count each seed's once. "
        "Settings and sources: docs/deep_forgetting.md.")


def settings_words(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The prototype's image count and the relearning target as the records measured them (their `config.eval`),
    for the note and the plot's labels; where the records differ, both say so."""
    def one(key: str, show: Any) -> str:
        found = {(r.get("config") or {}).get("eval", {}).get(key) for r in records if has_deep([r])} - {None}
        return show(found.pop()) if len(found) == 1 else f"the records' own {key} ({len(found)} values)"
    return {"images": one("proto_images", str), "target": one("relearn_target", lambda v: f"{100 * v:g}%")}


def cost_line(records: Sequence[dict[str, Any]]) -> str:
    """What the measurements cost beside the unlearning call, from the records: the method's (`deep_seconds`, after
    the timed call) against `unlearn_seconds`, medians over the records that have both (θ*'s and the oracle's own
    records left out: theirs are the reference measurements), and θ*'s and the oracle's, measured once per cell
    (each cell counted once)."""
    import numpy as np
    mine = [r for r in records if _value(r, "deep_seconds") >= 0 and _value(r, "unlearn_seconds") >= 0
            and r.get("method") not in ("original", "retrain")]
    if not mine:
        return ""

    def median(rs: Sequence[dict[str, Any]], key: str) -> float:
        return float(np.median([_value(r, key) for r in rs]))

    deep, call = median(mine, "deep_seconds"), median(mine, "unlearn_seconds")
    worst = max(_value(r, "deep_seconds") for r in mine)
    cells = {(r.get("dataset"), r.get("model"), r.get("forget_class"), r.get("seed")): r for r in mine}.values()
    once = [_value(r, "original_deep_seconds") + _value(r, "retrain_deep_seconds") for r in cells]
    once = [v for v in once if not math.isnan(v)]
    text = (f"Cost: the method's measurements took a median {deep:.1f} s (at most {worst:.1f} s) after an unlearning "
            f"call of a median {call:.1f} s ({deep / call:.0%} of it), over {len(mine)} record(s)")
    if once:
        text += (f"; θ*'s and the oracle's, measured once per cell and kept, {float(np.median(once)):.1f} s per cell "
                 f"(median over {len(once)})")
    hosts: dict[str, list[dict[str, Any]]] = {}
    for r in mine:
        hosts.setdefault(machine(r), []).append(r)
    if len(hosts) > 1:  # a ratio of medians taken across machines of different speed would mean neither
        parts = []
        for host, rs in sorted(hosts.items()):
            d, c = median(rs, "deep_seconds"), median(rs, "unlearn_seconds")
            parts.append(f"{host}: {d:.1f} s after {c:.1f} s ({d / c:.0%}), {len(rs)} record(s)")
        text += f". The records come from {len(hosts)} machines; per machine, " + "; ".join(parts)
    return text + "."


def deep_markdown(rows: list[dict[str, str]], cost: str, words: dict[str, str], budget: str = "") -> str:
    import pandas as pd
    note = NOTE.format(**words)
    head = f"_{budget}_\n\n" if budget else ""  # the budget rule, as every table of the report states it
    return head + "# Deep forgetting: forgotten, or only hidden?\n\n" + pd.DataFrame(rows).to_markdown(
        index=False, disable_numparse=True) + f"\n\n{note}\n" + (f"\n{cost}\n" if cost else "")


def deep_latex(rows: list[dict[str, str]]) -> str:
    from .tables import _tex
    heads = ["Dataset", "Model", "Class", "Method", "$n$"] + [latex for _, _, latex, _ in COLUMNS]
    lines = [r"\begin{tabular}{llrl" + "r" * (len(heads) - 4) + "}", r"\toprule", " & ".join(heads) + r" \\",
             r"\midrule"]
    for row in rows:
        lines.append(" & ".join(_tex(v).replace("±", r"$\pm$").replace("—", "--").replace(CENSORED, r"$\geq$")
                                .replace("θ*", r"$\theta^*$") for v in row.values()) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


#: The plot's two panels: (x field, y field, x label, y label, y top or None for the data's own range)
PANELS = (("acc_forget", "probe_acc_forget", "A_Df: the model's output on the forgotten class (%)",
           "probe A_Df: a linear probe on its features (%)", 100.0),
          ("proto_acc_forget", "relearn_steps", "prototype-attack A_Df: its head edited from {images} images (%)",
           "relearn steps (Adam, to {target} of θ*'s A_Df)", None))


def deep_plots(records: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Per data set and model, two panels, one point per method (mean over its records, error bars the std), θ*'s
    and the oracle's means as black markers. Left: A_Df against the probe's A_Df; above the diagonal the probe finds
    more of the class than the output shows. Right: the prototype attack's A_Df against relearn steps; a model that
    only hides the class sits bottom right (restored by a head edit, relearnt at once), one that forgot it near the
    oracle."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .aggregate import DATASET_NAMES, MODEL_NAMES, _method_rank, method_label
    from .files import stable_token
    from .plots import _save, method_styles
    written: list[Path] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if has_deep([r]) and r.get("method") not in ("original", "retrain"):  # those two are the black markers
            groups.setdefault((str(r.get("dataset")), str(r.get("model"))), []).append(r)
    for (dataset, model), part in groups.items():
        methods = sorted({str(r["method"]) for r in part}, key=lambda m: (_method_rank(m), m))
        styles = method_styles(methods)
        words = settings_words(part)
        cells = {(r.get("forget_class"), r.get("seed")): r for r in part}.values()
        fig, axes = plt.subplots(1, 2, figsize=(13.0, 5.2))
        for ax, (fx, fy, xlabel, ylabel, top) in zip(axes, PANELS):
            if top is not None:
                ax.plot([0, top], [0, top], color="grey", lw=0.8, ls=":", label="probe = output")
            for method in methods:
                mine = [r for r in part if r["method"] == method]
                x = np.array([_value(r, fx) for r in mine])
                y = np.array([_value(r, fy) for r in mine])
                if np.isnan(x).all() or np.isnan(y).all():
                    continue
                colour, face = styles[method]
                ax.errorbar(np.nanmean(x), np.nanmean(y), xerr=np.nanstd(x), yerr=np.nanstd(y), fmt="o",
                            color=colour, markerfacecolor=face, markeredgewidth=1.5, capsize=3, markersize=7,
                            alpha=0.85, label=method_label(method))
            for prefix, label, marker in (("original", "θ*", "*"), ("retrain", "oracle", "X")):
                x = [_value(r, fx, f"{prefix}_") for r in cells]
                y = [_value(r, fy, f"{prefix}_") for r in cells]
                if not (all(math.isnan(v) for v in x) or all(math.isnan(v) for v in y)):
                    ax.plot(np.nanmean(x), np.nanmean(y), marker=marker, color="black", markersize=13, ls="",
                            label=f"{label} (mean over cells)")
            ax.set_xlim(-3, 103)
            if top is not None:
                ax.set_ylim(-3, top + 3)
            else:
                ax.set_ylim(bottom=-3)
            ax.set_xlabel(xlabel.format(**words))
            ax.set_ylabel(ylabel.format(**words))
            ax.grid(alpha=0.3)
        title = f"{DATASET_NAMES.get(dataset, dataset)}, {MODEL_NAMES.get(model, model)}"
        fig.suptitle(f"Forgotten or hidden? — {title} (mean ± std over forget classes and seeds)", fontsize=10)
        handles, labels = axes[0].get_legend_handles_labels()
        axes[1].legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.04, 1.0), borderaxespad=0)
        fig.tight_layout()
        written += _save(fig, out / f"deep_{stable_token(dataset)}_{stable_token(model)}")
    return written


def write(records: Sequence[dict[str, Any]], out: Path, formats: set[str], plots: bool,
          budget: str = "") -> tuple[list[Path], str]:
    """Write deep.{md,csv,tex} (the formats asked for) and the plots; returns (paths, the Markdown table to print).
    `budget`: the report's budget line (aggregate.budget_note), the Markdown's header. Nothing when no record has the
    fields."""
    if not has_deep(records):
        return [], ""
    rows = deep_rows(records)
    text = deep_markdown(rows, cost_line(records), settings_words(records), budget)
    written = []
    if "md" in formats:
        written.append(_write(out / "deep.md", text))
    if "csv" in formats:
        import pandas as pd
        written.append(_write(out / "deep.csv", pd.DataFrame(rows).to_csv(index=False)))
    if "tex" in formats:
        written.append(_write(out / "deep.tex", deep_latex(rows)))
    if plots:
        written += deep_plots(records, out / "plots")
    return written, text
