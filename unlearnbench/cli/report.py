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
    deep.{md,csv,tex}      (records with [eval] deep) the deep-forgetting table and plots/deep_*: see deep_report
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

import shutil
import sys
from pathlib import Path
from typing import Sequence

from ..aggregate import DAGGER, EXTRA, METRICS, _method_rank, list_methods
from ..errors import UsageError
from ..files import check_dir, regular_file_problem
from ..files import write_report_file as _write
from .options import ArgumentParser, cli, prog

# pandas, torch and the tables load when a report is built (inside `main`): `--help` and a mistyped command line are
# answered at once.


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
    from ..aggregate import (broken_note, broken_thetas, budget_note, comparison, latest_per_seed, methods_summary,
                             mixed_cells, mixed_note, paper_numbers, records_frame, summarize)
    from ..plots import plots
    from ..store import load_records
    from ..tables import (LATEX_DOC, _flat, _metrics_markdown, arch_grid, comparison_latex, comparison_markdown,
                          files_text, methods_latex, methods_markdown, methods_rows, paper_layout, seeds_note,
                          terminal_text, to_latex, to_markdown)
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
    from .. import paired
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
    from .. import deep_report  # deep.{md,csv,tex} and its plot, where records have the deep measurements
    deep_files, deep_text = deep_report.write(records, out, formats, not args.no_plots, budget_line)
    written += deep_files
    extra_text += [deep_text] if deep_text else []
    if not args.no_plots and not summary.empty:
        written += plots(df, summary, out / "plots")
    print(f"{len(df)} record(s), {len(summary)} cell(s)\n")
    print(terminal_text(paper_layout(summary, metrics, ci=args.ci, marked=marks), f"{note}\n{budget_line}",
                        comparison(summary, paper_numbers()) if args.compare_paper else None, flagged=list(broken)))
    for text in extra_text:
        print(text)
    print(files_text(out, written, shutil.get_terminal_size((100, 24)).columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
