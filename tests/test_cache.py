from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from unlearnbench.cache import CheckpointCache
from unlearnbench.errors import WriteError
from unlearnbench.files import HOST, atomic_write_json, atomic_write_jsonl, read_json_lines
from unlearnbench.records import append_jsonl


def _model(value: float) -> torch.nn.Module:
    m = torch.nn.Linear(64, 64)
    with torch.no_grad():
        m.weight.fill_(value)
        m.bias.fill_(value)
    return m


class Builder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return _model(float(self.calls)), {"drawn": 7}


def test_miss_then_hit(tmp_path):
    cache, build = CheckpointCache(tmp_path), Builder()
    m1, meta1, hit1 = cache.get_or_build("k1", lambda: _model(0.0), build, {"kind": "original"})
    m2, meta2, hit2 = cache.get_or_build("k1", lambda: _model(0.0), build, {"kind": "original"})
    assert (hit1, hit2, build.calls) == (False, True, 1)
    assert torch.equal(m2.weight, m1.weight) and m2.weight[0, 0].item() == 1.0
    assert meta2["seconds"] == meta1["seconds"] >= 0 and meta2["drawn"] == 7 and meta2["kind"] == "original"
    assert cache.contains("k1") and not cache.contains("k2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.json", "k1.lock", "k1.pt"]  # no temporary files


def test_corrupt_or_truncated_checkpoints_are_rebuilt(tmp_path):
    cache, build = CheckpointCache(tmp_path), Builder()
    cache.get_or_build("k", lambda: _model(0.0), build, {})
    pt = tmp_path / "k.pt"
    data = bytearray(pt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensor data
    pt.write_bytes(bytes(data))
    model, _, hit = cache.get_or_build("k", lambda: _model(0.0), build, {})
    assert not hit and build.calls == 2 and model.weight[0, 0].item() == 2.0
    pt.write_bytes(pt.read_bytes()[:100])  # truncated
    _, _, hit = cache.get_or_build("k", lambda: _model(0.0), build, {})
    assert not hit and build.calls == 3


def test_a_checkpoint_without_its_metadata_is_not_trusted(tmp_path):
    """A run killed between writing the .pt and the .json leaves an orphan .pt: it must be rebuilt."""
    cache, build = CheckpointCache(tmp_path), Builder()
    cache.get_or_build("k", lambda: _model(0.0), build, {})
    (tmp_path / "k.json").unlink()
    assert not cache.contains("k")
    _, _, hit = cache.get_or_build("k", lambda: _model(0.0), build, {})
    assert not hit and build.calls == 2


def test_state_dict_of_another_architecture_is_rejected(tmp_path):
    cache, build = CheckpointCache(tmp_path), Builder()
    cache.get_or_build("k", lambda: _model(0.0), build, {})
    assert cache.load("k", torch.nn.Linear(3, 3)) is None  # wrong shapes: treated as corrupt


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_opening_the_cache_removes_the_temporary_files_of_dead_writers(tmp_path):
    """A writer killed mid-save leaves a full-size temporary file; the next open removes it once its process is
    gone, and leaves those of live writers (and, for a day, another host's, whose processes it cannot see) alone."""
    dead, old = _dead_pid(), time.time() - 2 * 86400
    names = {"dead": f".k.pt.{dead}@{HOST}.tmp", "alive": f".k.json.{os.getpid()}@{HOST}.tmp",
             "foreign": f".k.pt.{dead}@another-host.tmp", "foreign_old": f".j.pt.{dead}@another-host.tmp",
             "unnamed_old": f".m.pt.{dead}.tmp", "other": ".notes.tmp"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"x" * 1000)
    for key in ("foreign_old", "unnamed_old"):
        os.utime(tmp_path / names[key], (old, old))
    CheckpointCache(tmp_path)
    left = {k for k, name in names.items() if (tmp_path / name).exists()}
    assert left == {"alive", "foreign", "other"}


def test_a_cache_is_created_on_the_first_save_and_a_failed_build_leaves_nothing(tmp_path):
    root = tmp_path / "a" / "b"
    cache = CheckpointCache(root)
    assert not (tmp_path / "a").exists()  # opening writes nothing

    def failing():
        raise RuntimeError("the training diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        cache.get_or_build("k", lambda: _model(0.0), failing, {})
    assert not (tmp_path / "a").exists()  # neither the lock file nor the directories it made
    cache.get_or_build("k", lambda: _model(0.0), Builder(), {})
    with pytest.raises(RuntimeError, match="diverged"):
        cache.get_or_build("k2", lambda: _model(0.0), failing, {})
    assert sorted(p.name for p in root.iterdir()) == ["k.json", "k.lock", "k.pt"]  # k2's lock is gone


def test_a_full_disk_is_one_line_naming_the_file(tmp_path):
    """/dev/full answers every write with ENOSPC: the save's temporary file is made a link to it."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    cache = CheckpointCache(tmp_path)
    (tmp_path / f".k.pt.{os.getpid()}@{HOST}.tmp").symlink_to("/dev/full")
    with pytest.raises(WriteError) as info:  # torch's zip writer: "[enforce fail at inline_container.cc...]"
        cache.save("k", _model(1.0), {})
    assert str(info.value).startswith(f"could not write {tmp_path / 'k.pt'}: ") and "\n" not in str(info.value)
    (tmp_path / f".k.json.{os.getpid()}@{HOST}.tmp").symlink_to("/dev/full")
    with pytest.raises(WriteError, match=r"could not write .*k\.json: No space left on device"):
        atomic_write_json(tmp_path / "k.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the links are gone, nothing half-written
    (tmp_path / "runs.jsonl").symlink_to("/dev/full")
    with pytest.raises(WriteError, match=r"could not write .*runs\.jsonl: No space left on device"):
        append_jsonl(tmp_path / "runs.jsonl", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl"]  # its lock file went with the failure


def test_rows_written_as_json_lines_read_back_as_they_were(tmp_path):
    path = tmp_path / "rows.jsonl"
    assert read_json_lines(path) == []  # no file yet: no rows
    rows = [{"key": "a", "acc": [93.6, 94.4]}, {"key": "b", "verdict": None}]
    atomic_write_jsonl(path, rows)
    assert path.read_text() == '{"key": "a", "acc": [93.6, 94.4]}\n{"key": "b", "verdict": null}\n'
    path.write_text(path.read_text() + "\n  \n")  # blank lines, as an editor may leave them, are no rows
    assert read_json_lines(path) == rows
    atomic_write_jsonl(path, rows[1:])  # rewritten whole, not appended
    assert read_json_lines(path) == rows[1:]


def test_a_dead_writers_temporary_file_goes_from_any_directory_written(tmp_path):
    """Not only the cache: a report or `extra/` directory loses the `.tmp` of a killed writer at the next write into
    it (also when the file it wrote is unchanged and not rewritten); a live writer's stays."""
    from unlearnbench import files
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for sub in ("report", "extra"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / f".table.md.{dead.pid}@{HOST}.tmp").write_text("half")
        (tmp_path / sub / f".table.md.{os.getpid()}@{HOST}.tmp").write_text("mine")
    files._SWEPT.clear()
    (tmp_path / "report" / "table.md").write_text("same")
    assert not files.write_if_changed(tmp_path / "report" / "table.md", b"same")  # unchanged: not rewritten
    atomic_write_jsonl(tmp_path / "extra" / "rows.jsonl", [{"a": 1}])
    for sub in ("report", "extra"):
        assert sorted(p.name for p in (tmp_path / sub).glob(".*.tmp")) == [f".table.md.{os.getpid()}@{HOST}.tmp"]


def test_a_sealed_record_reads_back_and_a_legacy_one_still_does(tmp_path):
    """Records written now carry record_version and a digest; a record without them (the committed ones) is read as
    it always was; an edit after sealing is caught."""
    from unlearnbench.records import RECORD_VERSION, parse_record, read_jsonl_checked
    rec = {"config_hash": "k", "dataset": "mnist", "model": "resnet18", "forget_class": 2, "seed": 0,
           "method": "pbu", "acc_forget": float("nan"), "acc_retain": 97.25, "path": tmp_path}
    append_jsonl(tmp_path / "runs.jsonl", rec)
    (back,), skipped = read_jsonl_checked(tmp_path / "runs.jsonl")
    assert skipped == [] and back["record_version"] == RECORD_VERSION and len(back["digest"]) == 64
    assert back["acc_forget"] is None and back["path"] == str(tmp_path)
    legacy = {k: v for k, v in back.items() if k not in ("record_version", "digest")}
    assert parse_record(json.dumps(legacy)) == (legacy, None)
    assert parse_record(json.dumps({**back, "acc_retain": 99.0}))[1].startswith("its digest does not match")


def test_a_fifo_in_the_cache_is_never_read(tmp_path):
    """A FIFO where a checkpoint's metadata should be: not cached (the plan does not block), and rebuilt over."""
    cache, build = CheckpointCache(tmp_path), Builder()
    os.mkfifo(tmp_path / "k1.json")
    assert not cache.contains("k1")
    _, meta, hit = cache.get_or_build("k1", lambda: _model(0.0), build, {"kind": "original"})
    assert not hit and build.calls == 1 and (tmp_path / "k1.json").is_file() and cache.contains("k1")
