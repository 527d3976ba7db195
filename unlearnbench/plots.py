"""The reporter's plots: per data set and model, A_Dr against A_Df per method (error bars over seeds) and the unlearning
time per method (log scale, retrain as the reference line), PNG and PDF, each written only when its bytes change.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from .aggregate import DATASET_NAMES, MODEL_NAMES, NO_TIME, _method_rank, method_label, pd
from .files import inside, stable_token, write_if_changed


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
