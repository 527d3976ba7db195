"""The results store of a sweep: one JSON file per cell under `<results>/records/`, named by the cell's config hash.

Append-only by construction: a record is written once, through a temporary file and a rename, under a per-cell file
lock, and never rewritten. A sweep killed at any moment leaves complete records and at most stray temporary files
(ignored, and removed by the next run once their writer is dead); a cell is done if and only if its record file
exists and holds a whole record of that cell. An empty, partial or foreign record file is corrupt: its cell runs
again (and overwrites it), and the report skips it with a warning naming it. Two sweeps on the same directory share
the work safely: the lock makes the second wait for a cell the first is computing, then skip it.
"""
from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable

from .catalog import RENAMED
from .files import atomic_write_json, guarded_lock, make_dirs, regular_file_problem, remove_stale_tmp
from .records import parse_record, read_jsonl_checked, seal

log = logging.getLogger("unlearnbench")


class RecordStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "records"

    def create(self) -> "RecordStore":
        make_dirs(self.dir)
        remove_stale_tmp(self.dir)  # left by writers killed before their rename
        return self

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def lock(self, key: str) -> AbstractContextManager[None]:
        return guarded_lock(self.dir / f".{key}.lock")

    def read(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """(record, None) for a whole record of cell `key`; (None, why not) for a file that is not one; (None, None)
        when there is no file."""
        problem = regular_file_problem(self.path(key))
        if problem == "does not exist":
            return None, None
        if problem is not None:  # a FIFO would block the plan for ever, a device never end
            return None, problem
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"unreadable ({exc.strerror})"
        rec, problem = parse_record(data)
        if rec is not None and rec["config_hash"] != key:
            return None, f"the record of another cell ({rec['config_hash']})"
        return rec, problem

    def get(self, key: str) -> dict[str, Any] | None:
        return self.read(key)[0]

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def write(self, record: dict[str, Any]) -> None:
        atomic_write_json(self.path(record["config_hash"]), seal(record))

    def records(self) -> list[dict[str, Any]]:
        return load_records(self.root)


def load_records(root: Path, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The records of one results directory: its store (`records/*.json`) and its JSON-lines files (the one-cell
    CLI's). Not its subdirectories: side experiments kept beside a sweep (`extra/...`) must not enter its table.
    A file that is not a record (or a JSON-lines file with lines that are not) is reported through `warn`, one line
    per file naming it, and skipped."""
    warn = warn or (lambda message: log.warning("%s", message))
    root = Path(root)
    found: dict[str, dict[str, Any]] = {}
    files = [root] if root.is_file() else sorted(root.glob("*.jsonl")) + sorted(root.glob("records/*.json"))
    for path in files:
        if (problem := regular_file_problem(path)) is not None:  # a FIFO or a device: never opened
            warn(f"{path}: {problem}; skipped")
            continue
        if path.suffix == ".jsonl":
            try:
                records, skipped = read_jsonl_checked(path)
            except OSError as exc:
                warn(f"{path}: unreadable ({exc.strerror}); skipped")
                continue
            if skipped:
                n, problem = skipped[0]
                more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
                warn(f"{path}: skipped {len(skipped)} line(s) that are not whole records (line {n}: {problem}{more})")
            for rec in records:
                found[rec["config_hash"]] = rec
        else:
            try:
                rec, problem = parse_record(path.read_bytes())
            except OSError as exc:
                rec, problem = None, f"unreadable ({exc.strerror})"
            if rec is None:
                warn(f"{path}: {problem}; skipped")
                continue
            found[rec["config_hash"]] = rec
    return [named_now(r) for r in found.values()]


def named_now(record: dict[str, Any]) -> dict[str, Any]:
    """A record under the name its method has today. Records made before the budget rule (no `budget` field) name PBU
    as it was then: `pbu` ran the stopping rule, now `pbu+stop`, and `pbu+fixed5` the official schedule, now `pbu`
    (CHANGELOG.md). Committed records were renamed on disk where their cell still exists; this covers the others (a
    cell planned under a setting that has changed since). The file is not touched."""
    if "budget" in record:
        return record
    method, config = record.get("method"), record.get("config")
    hp = config.get("method", {}) if isinstance(config, dict) else {}
    if method in RENAMED:
        return {**record, "method": RENAMED[method][0], "renamed_from": {"method": method}}
    if method == "pbu" and isinstance(hp, dict) and hp.get("stop") == "forget_acc":
        return {**record, "method": "pbu+stop", "renamed_from": {"method": method}}
    return record
