"""Records: one JSON object per cell (schema: docs/records_and_cache.md), appended to a JSON-lines file.

An append is one `write` of a whole line under a file lock, then fsync: concurrent writers never interleave, and a
run killed mid-write leaves at most one unterminated last line, which readers skip (and report).

A record is a JSON object with at least the `REQUIRED` fields. Anything else (an empty `{}`, a partial object, valid
JSON that is not an object, bytes that are not UTF-8) is not a record: readers skip it and say so, naming the file.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterator

from .files import guarded_lock, writing

log = logging.getLogger("unlearnbench")

#: The fields every record has: what identifies its cell and the paper's two numbers.
REQUIRED = ("config_hash", "dataset", "model", "forget_class", "seed", "method", "acc_forget", "acc_retain")
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def record_problem(obj: Any) -> str | None:
    """Why `obj` (parsed JSON) is not a whole record, or None if it is one."""
    if not isinstance(obj, dict):
        return f"not a record object (JSON {_JSON_TYPES.get(type(obj), type(obj).__name__)})"
    if not obj:
        return "an empty record {}"
    missing = [k for k in REQUIRED if k not in obj]
    return f"an incomplete record (no {', '.join(missing)})" if missing else None


def parse_record(text: bytes | str) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) or (None, why it is not one)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not UTF-8 text (byte {exc.start})"
    try:
        obj = json.loads(text)
    except ValueError:
        return None, "not JSON (truncated or malformed)"
    problem = record_problem(obj)
    return (obj, None) if problem is None else (None, problem)


def _clean(obj: Any) -> Any:
    """JSON has no NaN: store it as null (an empty set has no accuracy)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(_clean(record), sort_keys=False, default=str, allow_nan=False)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    path = Path(path)
    line = dumps(record) + "\n"
    with guarded_lock(path.with_name(path.name + ".lock")), writing(path):  # a failure leaves no lock behind
        # a previous writer killed mid-line leaves no newline: start ours on a fresh line
        needs_newline = path.exists() and path.stat().st_size > 0 and _last_byte(path) != b"\n"
        with open(path, "a", encoding="utf-8") as f:
            f.write(("\n" if needs_newline else "") + line)
            f.flush()
            os.fsync(f.fileno())


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def read_jsonl_checked(path: Path) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The whole records of a JSON-lines file, and (line number, why) for every other non-blank line."""
    records: list[dict[str, Any]] = []
    skipped: list[tuple[int, str]] = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec, problem = parse_record(line)
            if rec is None:
                skipped.append((n, str(problem)))
            else:
                records.append(rec)
    return records, skipped


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    records, skipped = read_jsonl_checked(path)
    for n, problem in skipped:
        log.warning("%s:%d: skipped, %s", path, n, problem)
    yield from records
