"""The checkpoint cache: every original model and every retrained oracle is trained once, then reused.

A checkpoint is two files named by the hash of its resolved config: `<key>.pt` (the state dict) and `<key>.json`
(config, training wall time, sha256 of the .pt, versions, device). Both are written to a temporary file and renamed,
the .json last, so a reader never sees half a checkpoint; a .pt whose sha256 or contents do not match is deleted and
rebuilt, never used. A file lock per key makes concurrent workers train a checkpoint once and share it.

Leftovers: opening the cache removes the temporary files of writers that died mid-save (a killed process's
`.<key>.pt.<pid>@<host>.tmp`, full-size); a build that fails removes its lock file and the directories it created.
The cache directory itself is created on the first save, so a run refused before any training leaves nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .files import atomic_write_bytes, atomic_write_json, guarded_lock, regular_file_problem, remove_stale_tmp
from .models import state_dict_cpu

__all__ = ["CheckpointCache", "atomic_write_bytes", "atomic_write_json", "sha256_file"]

log = logging.getLogger("unlearnbench")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


class CheckpointCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()
        try:
            if self.root.is_dir():
                remove_stale_tmp(self.root)
        except OSError:  # unreadable: the first save says so, naming it
            pass

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.pt", self.root / f"{key}.json"

    def meta(self, key: str) -> dict[str, Any] | None:
        """The metadata of a complete checkpoint (cheap: no hashing), or None."""
        pt, meta = self._paths(key)
        if regular_file_problem(meta) or regular_file_problem(pt):  # absent, or a FIFO / device never to be read
            return None
        try:
            info = json.loads(meta.read_text())
            return info if pt.stat().st_size == info["bytes"] else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def contains(self, key: str) -> bool:
        return self.meta(key) is not None

    def load(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        """Load checkpoint `key` into `model`; None if absent. A corrupt checkpoint is removed and None returned."""
        pt, meta_path = self._paths(key)
        if not pt.exists() and not meta_path.exists():
            return None
        try:
            for p in (pt, meta_path):
                if (problem := regular_file_problem(p)) is not None:  # a FIFO would block, a device never end
                    raise ValueError(f"{p.name} {problem}")
            info = json.loads(meta_path.read_text())
            digest = sha256_file(pt)
            if digest != info["sha256"]:
                raise ValueError(f"sha256 {digest[:12]} != recorded {info['sha256'][:12]}")
            state = torch.load(pt, map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
            return info
        except Exception as exc:  # noqa: BLE001 - any failure to read means: do not trust it, rebuild
            log.warning("checkpoint %s is incomplete or corrupt (%s): rebuilding it", key,
                        str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__)
            for p in (pt, meta_path):
                p.unlink(missing_ok=True)
            return None

    def save(self, key: str, model: nn.Module, info: dict[str, Any]) -> dict[str, Any]:
        pt, meta_path = self._paths(key)
        atomic_write_bytes(pt, lambda f: torch.save(state_dict_cpu(model), f))
        info = {**info, "key": key, "sha256": sha256_file(pt), "bytes": pt.stat().st_size,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_json(meta_path, info)
        return info

    def get_or_build(self, key: str, empty: Callable[[], nn.Module],
                     build: Callable[[], tuple[nn.Module, dict[str, Any]]], info: dict[str, Any],
                     sync: Callable[[], None] = lambda: None) -> tuple[nn.Module, dict[str, Any], bool]:
        """(model, metadata, hit). On a miss `build()` runs, timed alone; it returns the model and facts to store
        beside it, and the checkpoint is saved with those, `info` and the wall time `seconds`."""
        with guarded_lock(self.root / f"{key}.lock"):
            model = empty()
            found = self.load(key, model)
            if found is not None:
                return model, found, True
            sync()
            start = time.perf_counter()
            model, facts = build()
            sync()
            seconds = time.perf_counter() - start
            return model, self.save(key, model, {**info, **facts, "seconds": seconds}), False
