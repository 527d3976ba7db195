"""Records: one JSON object per cell (schema: docs/records_and_cache.md), appended to a JSON-lines file.

An append is one `write` of a whole line under a file lock, then fsync: concurrent writers never interleave, and a
run killed mid-write leaves at most one unterminated last line, which readers skip (and report).
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

log = logging.getLogger("unlearnbench")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    line = dumps(record) + "\n"
    with FileLock(str(path) + ".lock"):
        # a previous writer killed mid-line leaves no newline: start ours on a fresh line
        needs_newline = path.exists() and path.stat().st_size > 0 and _last_byte(path) != b"\n"
        with open(path, "a") as f:
            f.write(("\n" if needs_newline else "") + line)
            f.flush()
            os.fsync(f.fileno())


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping a truncated or malformed record", path, n)
