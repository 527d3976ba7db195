"""The docs stay true to the code: every relative link resolves (its anchor too), every command shown parses with its
tool's own parser, every TOML and Python snippet is valid, every repository path they name exists, the README's
methods table is what `unlearnbench list --markdown` prints, and the field tables of docs/configuration.md give each
setting's real default and range. Cheap: no data is loaded and nothing is trained."""
from __future__ import annotations

import csv
import dataclasses
import re
import tomllib
import typing
from pathlib import Path

import pytest

from shown_commands import ROOT, PYTHONS, check_call, check_make, harness_call, logical_lines, tokens_of

DOCS = sorted({ROOT / "README.md", ROOT / "CHANGELOG.md", *ROOT.glob("docs/*.md"), *ROOT.glob("results/*/README.md"),
               *ROOT.glob("results/*/extra/README.md")})
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
SHELL = {"", "bash", "sh", "shell", "console"}
REPO_PATH = re.compile(r"(?:results|benchmarks|docs|unlearnbench|methods|tests|\.ci)/[\w.+/-]*")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text outside fenced blocks and inline code (where links and headings live)."""
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_the_pages_exist_and_the_readme_is_a_manual():
    names = {_name(p) for p in DOCS}
    for page in ("cli", "configuration", "methods", "adding_a_method", "data_and_models", "records_and_cache",
                 "performance"):
        assert f"docs/{page}.md" in names
    assert {"CHANGELOG.md", "results/mnist/README.md", "results/mnist_paper/README.md"} <= names
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024, "the README is a manual: at most 12 KB"
    assert re.search(r"^make test\b", readme, re.M), "the test command CI runs (.ci/run: make test) stays visible"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_relative_links_resolve(doc: Path):
    broken = []
    for target in LINK.findall(_prose(doc.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {_name(dest)})")
    assert not broken, f"{_name(doc)}: broken links: {broken}"


def _blocks(doc: Path, languages: set[str]) -> list[str]:
    return [body for lang, body in FENCE.findall(doc.read_text()) if lang.lower() in languages]


@pytest.mark.slow
def test_every_command_shown_parses(monkeypatch):
    monkeypatch.chdir(ROOT)  # the commands are written for the repository root
    failures, checked = [], {}
    for doc in DOCS:
        for block in _blocks(doc, SHELL):
            for line in logical_lines(block):
                tokens = tokens_of(line)
                if not tokens:
                    continue
                try:
                    call = harness_call(tokens)
                    if call is not None:
                        check_call(*call)
                    elif tokens[0] == "make":
                        check_make(tokens[1:])
                    elif Path(tokens[0]).name in PYTHONS and len(tokens) > 1 and tokens[1].endswith(".py"):
                        assert (ROOT / tokens[1]).exists(), f"{tokens[1]} does not exist"
                    else:
                        continue
                except AssertionError as exc:
                    failures.append(f"{_name(doc)}: {line.strip()}\n    {exc}")
                checked[_name(doc)] = checked.get(_name(doc), 0) + 1
    assert not failures, "commands in the docs that would be refused:\n" + "\n".join(failures)
    assert checked.get("README.md", 0) >= 5 and sum(checked.values()) >= 30, checked  # the scan does find them


def test_config_snippets_are_valid(tmp_path):
    from unlearnbench.plan import load_sweep, overrides_from_mapping
    for doc in DOCS:
        for i, block in enumerate(_blocks(doc, {"toml"})):
            if "[[grid]]" in block:
                path = tmp_path / f"{doc.stem}_{i}.toml"
                path.write_text(block)
                load_sweep(path)
            else:
                overrides_from_mapping(tomllib.loads(block), f"{_name(doc)} toml block {i}")


def test_python_snippets_compile():
    for doc in DOCS:
        for i, block in enumerate(_blocks(doc, {"python"})):
            compile(block, f"{_name(doc)} python block {i}", "exec")


def test_repository_paths_named_in_the_docs_exist():
    committed_runs = {p.name for p in (ROOT / "results").iterdir() if p.is_dir()}
    missing = []
    for doc in DOCS:
        for span in re.findall(r"`([^`\n]+)`", FENCE.sub("", doc.read_text())):
            for path in REPO_PATH.findall(span):
                if re.search(r"[<{*]", span) or span != path.rstrip("/") and span != path:
                    continue  # a pattern, or a path inside a longer command: checked as a command, if anywhere
                parts = path.rstrip("/").split("/")
                if parts[0] == "results" and (len(parts) < 3 or parts[1] not in committed_runs):
                    continue  # a results directory a command would create
                if not (ROOT / path.rstrip("/")).exists():
                    missing.append(f"{_name(doc)}: {path}")
    assert not missing, f"paths named in the docs that do not exist: {missing}"


def readme_block(name: str) -> str:
    """The README's text between `<!-- NAME: ... -->` and `<!-- end of NAME -->` (a generated block)."""
    readme = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {name}:[^\n]*-->\n(.*?)<!-- end of {name} -->", readme, re.S)
    assert m, f"README.md: the {name}'s markers are missing"
    return m.group(1)


def test_the_record_reference_table_is_the_schema():
    text = (ROOT / "docs" / "records_and_cache.md").read_text()
    m = re.search(r"<!-- field table:[^\n]*-->\n(.*?)<!-- end of field table -->", text, re.S)
    assert m, "docs/records_and_cache.md: the field table's markers are missing"
    from unlearnbench.records import fields_markdown
    assert m.group(1) == fields_markdown(), "regenerate it from unlearnbench.records.fields_markdown()"


def test_the_readme_methods_table_is_the_registry():
    from unlearnbench.cli.listing import methods_table
    assert readme_block("methods table") == methods_table(), "regenerate it with `unlearnbench list --markdown`"


# --------------------------------------------------------------------------------------------------------------------
# docs/configuration.md: one table per settings class, each row the field's real default and range
# --------------------------------------------------------------------------------------------------------------------
def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def expected_rows(cls: type) -> list[tuple[str, str, str]]:
    """(key, default, valid) for every field of `cls`, as docs/configuration.md writes them."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) is typing.Literal:
            valid = ", ".join(f'"{a}"' for a in typing.get_args(hint))
        else:
            valid = f.metadata["range"].describe() if "range" in f.metadata else ""
        rows.append((f"`{f.name}`", _fmt(f.default), valid))
    return rows


def documented_rows(text: str, name: str) -> list[tuple[str, str, str]] | None:
    m = re.search(rf"<!-- fields: {name} -->\n\|[^\n]*\n\|[-| ]*\n((?:\|[^\n]*\n)*)", text)
    if m is None:
        return None
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def settings_classes() -> list[type]:
    from unlearnbench.config import DataConfig, EvalConfig, ModelConfig, TrainRecipe, UnlearnConfig
    from unlearnbench.registry import get_method, list_methods
    classes = [DataConfig, ModelConfig, TrainRecipe, EvalConfig, UnlearnConfig]
    classes += [get_method(m).hparams for m in list_methods(variants=False)]
    return [c for c in classes if dataclasses.fields(c)]


@pytest.mark.parametrize("cls", settings_classes(), ids=lambda c: c.__name__)
def test_configuration_reference_gives_every_default_and_range(cls):
    documented = documented_rows((ROOT / "docs" / "configuration.md").read_text(), cls.__name__)
    expected = expected_rows(cls)
    assert documented is not None, f"docs/configuration.md has no table for {cls.__name__}:\n" + "\n".join(
        f"| {k} | {d} | {v} | ... |" for k, d, v in expected)
    assert documented == expected, f"docs/configuration.md, {cls.__name__}: rows should read\n" + "\n".join(
        f"| {k} | {d} | {v} | ... |" for k, d, v in expected)


# --------------------------------------------------------------------------------------------------------------------
# the README's headline table is the committed report's
# --------------------------------------------------------------------------------------------------------------------
HEADLINE_SOURCE = ROOT / "results/mnist/report/methods.csv"


def _mean_std(cell: str) -> str:
    """'97.57 ± 0.03 [97.49, 97.65]' → '97.57 ± 0.03' (the interval dropped)."""
    return cell.split(" [")[0]


def headline_markdown() -> str:
    """The README's results table: every model and method of results/mnist's pooled table (report/methods.csv),
    A_Df, A_Dr and time as mean ± std over the forget classes × seeds."""
    with HEADLINE_SOURCE.open(newline="") as f:
        rows = list(csv.DictReader(f))
    lines = ["| model | method | n | A_Df | A_Dr | time (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['method']} | {r['n']} | {_mean_std(r['A_Df'])} | {_mean_std(r['A_Dr'])} | "
                     f"{_mean_std(r['time (s)'])} |")
    return "\n".join(lines) + "\n"


def test_the_readme_headline_table_is_the_committed_report():
    expected = headline_markdown()
    assert readme_block("headline") == expected, f"README.md's headline table should read:\n{expected}"


@pytest.mark.slow
def test_the_robustness_grid_is_its_records(tmp_path):
    """results/robustness: report/grid.md is what `report` makes of the committed records today, and the README
    links to that grid (it reads the tables; it does not paste them)."""
    from unlearnbench.cli.report import main

    root = ROOT / "results" / "robustness"
    assert main([str(root), "--format", "md", "--no-plots", "--out", str(tmp_path)]) == 0
    grid = (tmp_path / "grid.md").read_text()
    assert (root / "report" / "grid.md").read_text() == grid, "run: python -m unlearnbench.report results/robustness"
    readme = (root / "README.md").read_text()
    assert "](report/grid.md)" in readme, "results/robustness/README.md should link to report/grid.md"


def test_the_cli_page_lists_every_option_of_every_command():
    """docs/cli.md names every option of every subcommand's own parser (perf's: there or in docs/performance.md)."""
    from unlearnbench import report
    from unlearnbench.cli import listing, perf, run, sweep
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    perf_page = page + (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    parsers = {"run": (run.parser(), page), "sweep": (sweep.parser(), page), "report": (report.parser(), page),
               "perf": (perf.parser(), perf_page), "list": (listing.list_parser(), page)}
    missing = [f"{name} {option}" for name, (parser, text) in parsers.items() for action in parser._actions
               for option in action.option_strings
               if option.startswith("--") and option != "--help" and f"`{option}" not in text
               and f", {option}" not in text and f"{option} " not in text]
    assert not missing, f"docs/cli.md does not list {missing}"
