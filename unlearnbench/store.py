"""The results store of a sweep: one JSON file per cell under `<results>/records/`, named by the cell's config hash.

Append-only by construction: a record is written once, through a temporary file and a rename, under a per-cell file
lock, and never rewritten. A sweep killed at any moment leaves complete records and at most stray temporary files
(ignored, and removed by the next run); a cell is done if and only if its record file exists and parses. Two sweeps
on the same directory share the work safely: the lock makes the second wait for a cell the first is computing, then
skip it.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from .cache import atomic_write_json
from .records import _clean, read_jsonl

log = logging.getLogger("unlearnbench")


class RecordStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "records"

    def create(self) -> "RecordStore":
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".*.tmp"):  # left by a writer killed before its rename
            if time.time() - stale.stat().st_mtime > 60:
                stale.unlink(missing_ok=True)
        return self

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def lock(self, key: str) -> FileLock:
        return FileLock(str(self.dir / f".{key}.lock"))

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def write(self, record: dict[str, Any]) -> None:
        atomic_write_json(self.path(record["config_hash"]), _clean(record))

    def keys(self) -> set[str]:
        return {p.stem for p in self.dir.glob("*.json")} if self.dir.exists() else set()

    def records(self) -> list[dict[str, Any]]:
        return load_records(self.root)


def load_records(root: Path) -> list[dict[str, Any]]:
    """The records of one results directory: its store (`records/*.json`) and its JSON-lines files (the one-cell
    CLI's). Not its subdirectories: side experiments kept beside a sweep (`extra/...`) must not enter its table."""
    root = Path(root)
    found: dict[str, dict[str, Any]] = {}
    files = [root] if root.is_file() else sorted(root.glob("*.jsonl")) + sorted(root.glob("records/*.json"))
    for path in files:
        if path.suffix == ".jsonl":
            for rec in read_jsonl(path):
                found[rec.get("config_hash", str(len(found)))] = rec
        else:
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                log.warning("%s: unreadable record, skipped", path)
                continue
            found[rec.get("config_hash", path.stem)] = rec
    return list(found.values())
