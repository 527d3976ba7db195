"""Records: one JSON object per cell (schema: docs/records_and_cache.md), appended to a JSON-lines file.

An append is one `write` of a whole line under a file lock, then fsync: concurrent writers never interleave, and a
run killed mid-write leaves at most one unterminated last line, which readers skip (and report).

A record is a JSON object with at least the `REQUIRED` fields, each of its type (`FIELD_TYPES`). Anything else (an
empty `{}`, a partial object, a field of the wrong type, valid JSON that is not an object, bytes that are not UTF-8) is
not a record: readers skip it and say so, naming the file and the field.

Records written now carry `record_version` (RECORD_VERSION) and `digest`, the sha256 of every other field (`seal`).
A record without a version is a version-1 record, from before both existed, and is read as it always was; a record of
a newer version than this code knows, or whose fields no longer match its digest (edited by hand), is not read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Iterator

from .files import guarded_lock, writing

log = logging.getLogger("unlearnbench")

#: The fields every record has: what identifies its cell and the paper's two numbers.
REQUIRED = ("config_hash", "dataset", "model", "forget_class", "seed", "method", "acc_forget", "acc_retain")
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


#: The version of the records this code writes; 1 is a record without `record_version` (written before it existed).
RECORD_VERSION = 2
#: Names (data set, model, method, config hash): printable text, no control character (a NUL, a newline).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name(v: Any) -> str | None:
    if not isinstance(v, str) or not v:
        return "a non-empty string"
    return "text without control characters" if _CONTROL.search(v) else None


def _count(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "a non-negative integer"


def _number(v: Any) -> str | None:
    return None if v is None or isinstance(v, (int, float)) and not isinstance(v, bool) else "a number or null"


def _of(kind: type, words: str) -> Any:
    return lambda v: None if v is None or isinstance(v, kind) else words


#: What each field a reader relies on must hold (a field absent from an older record is not checked).
FIELD_TYPES = {"config_hash": _name, "dataset": _name, "model": _name, "method": _name, "forget_class": _count,
               "seed": _count, "acc_forget": _number, "acc_retain": _number, "created": _of(str, "a string"),
               "original_checkpoint": _of(dict, "an object"), "oracle_checkpoint": _of(dict, "an object"),
               "record_version": _count, "digest": _of(str, "a string"), "budget": _of(dict, "an object")}


def digest(obj: dict[str, Any]) -> str:
    """sha256 of a record's fields other than `digest`, as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps({k: v for k, v in obj.items() if k != "digest"}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(record: dict[str, Any]) -> dict[str, Any]:
    """The record as it is stored: JSON types only (NaN as null), `record_version` and `digest` added."""
    obj = json.loads(json.dumps(_clean(record), default=str, allow_nan=False))
    obj["record_version"] = RECORD_VERSION
    obj["digest"] = digest(obj)
    return obj


def record_problem(obj: Any) -> str | None:
    """Why `obj` (parsed JSON) is not a whole record, or None if it is one."""
    if not isinstance(obj, dict):
        return f"not a record object (JSON {_JSON_TYPES.get(type(obj), type(obj).__name__)})"
    if not obj:
        return "an empty record {}"
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        return f"an incomplete record (no {', '.join(missing)})"
    for key, check in FIELD_TYPES.items():
        if key in obj and (expected := check(obj[key])) is not None:
            return f"field {key}: expected {expected}, got {json.dumps(obj[key])[:40]}"
    version = obj.get("record_version", 1)
    if version > RECORD_VERSION:
        return f"record version {version}, newer than this unlearnbench reads (up to {RECORD_VERSION}); update it"
    if version >= 2 and obj.get("digest") != digest(obj):
        return "its digest does not match its fields (changed after it was written)"
    return None


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
    return json.dumps(seal(record), sort_keys=False, allow_nan=False)


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
