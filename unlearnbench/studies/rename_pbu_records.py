"""Carry committed PBU records across the change of PBU's default (CHANGELOG.md, "PBU's default is the official
schedule"): the stopping rule, once the default `pbu`, is now the variant `pbu+stop`, and the official fixed schedule,
once `pbu+fixed5`, is now `pbu`. A record keeps its results only where its configuration is, field for field, a cell
the sweep file now plans under the new name; it is then rewritten under that cell's key with `renamed_from` (the old
method name and key) and the budget facts the new records carry. Every other record of the old names is moved to
`superseded/` beside `records/`, where the reporter does not read it.

Records made before the budget rule existed carry no `budget`: each record whose key is a cell of the sweep file (the
same run: the rule is applied at plan time, so the key holds the epochs that ran) is stamped with that cell's
budget (the sweep file's rule, the epochs and steps) and `budget_stamped: true`; its results are untouched.

COMMAND: python benchmarks/rename_pbu_records.py benchmarks/mnist_retain_free_steps.toml results/mnist_retain_free \
             --into results/mnist_retain_free_steps
         (seconds; reads the data only to count each class). --dry-run says what it would do.
"""
from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from unlearnbench.catalog import RENAMED
from unlearnbench.plan import load_sweep
from unlearnbench.records import parse_record
from unlearnbench.runner import Env, Runner
from unlearnbench.runtime import default_cache_dir, default_data_root
from unlearnbench.store import RecordStore, named_now

IDENTITY = ("dataset", "model", "forget_class", "seed")


def flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def same_run(record_config: dict[str, Any], cell: Any) -> bool:
    """The record ran what `cell` plans: every field the record wrote has the cell's value (the method's name aside),
    and every field the cell's key hashes was written by the record (fields added since, at their legacy value, are
    not hashed)."""
    from unlearnbench.config import hash_view
    rec = {k: v for k, v in flat(record_config).items() if k != "method.name" and not k.startswith("budget.")}
    full = {k: v for k, v in flat(cell.to_dict()).items() if k != "method.name" and not k.startswith("budget.")}
    hashed = {k for k in flat(cell.to_dict(hash_view)) if k != "method.name"}
    return all(k in full and full[k] == v for k, v in rec.items()) and hashed <= set(rec)


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path, help="the sweep file whose cells the renamed records must be")
    ap.add_argument("results", type=Path, help="the results directory holding the old records")
    ap.add_argument("--into", type=Path, help="write renamed records here (default: the same directory)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    sweep = load_sweep(args.sweep)
    runner = Runner(Env(data_root=default_data_root(), cache_dir=default_cache_dir(), device="cpu", download=False))
    planned = {(c.setup.data.name, c.setup.model.name, c.forget_class, c.setup.seed, c.unlearn_seed, c.method): c
               for c in sweep.cells}
    planned_by_key = {c.key: c for c in sweep.cells}
    into = (args.into or args.results) / "records"
    superseded = args.results / "superseded"
    renamed = moved = 0
    for path in sorted((args.results / "records").glob("*.json")):
        record, problem = parse_record(path.read_bytes())
        if record is None or "budget" in record or record["method"] not in ("pbu", *RENAMED):
            continue
        # the readers' own renaming (old pbu with the stopping rule -> pbu+stop, a RENAMED variant -> its new name);
        # an old pbu record it leaves as it is ran neither schedule as today's names mean them
        new_name = named_now(record)["method"]
        config = record["config"]
        cell = planned.get(tuple(record[k] for k in IDENTITY) + (int(record.get("unlearn_seed") or 0), new_name))
        if new_name != record["method"] and cell is not None and same_run(config, cell):
            new = {**record, "method": new_name, "config": cell.to_dict(), "config_hash": cell.key,
                   "budget": runner.budget(cell),
                   "renamed_from": {"method": record["method"], "config_hash": record["config_hash"]}}
            new.pop("digest", None)
            print(f"rename {path.name} {record['method']} -> {into / (cell.key + '.json')} {new_name}")
            if not args.dry_run:
                RecordStore(into.parent).create().write(new)
                if into != args.results / "records":
                    superseded.mkdir(exist_ok=True)
                    path.rename(superseded / path.name)
                else:
                    path.unlink()
            renamed += 1
        else:
            print(f"supersede {path.name} ({record['method']}, seed {record['seed']}, class {record['forget_class']})")
            if not args.dry_run:
                superseded.mkdir(exist_ok=True)
                path.rename(superseded / path.name)
            moved += 1
    stamped = 0
    for path in sorted((args.results / "records").glob("*.json")):
        record, problem = parse_record(path.read_bytes())
        cell = planned_by_key.get(record["config_hash"]) if record is not None else None
        if cell is None or "budget" in record:
            continue
        new = {**record, "config": {**record["config"], "budget": cell.to_dict()["budget"]}, "budget": runner.budget(cell),
               "budget_stamped": True}
        new.pop("digest", None)
        if not args.dry_run:
            RecordStore(args.results).write(new)
        stamped += 1
    print(f"{renamed} renamed, {moved} moved to {superseded}, {stamped} stamped with their cell's budget")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
