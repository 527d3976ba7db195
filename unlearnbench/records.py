"""Records: one JSON object per cell, its fields defined once here (`SCHEMA`; docs/records_and_cache.md's table is
generated from it), appended to a JSON-lines file.

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
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .files import guarded_lock, json_line, writing

log = logging.getLogger("unlearnbench")

_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


#: The version of the records this code writes; 1 is a record without `record_version` (written before it existed).
RECORD_VERSION = 2
#: Names (data set, model, method, config hash): printable text, no control character (a NUL, a newline).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Check = Callable[[Any], "str | None"]  # a field's value -> what it should be, or None when it is fine


def _name(v: Any) -> str | None:
    if not isinstance(v, str) or not v:
        return "a non-empty string"
    return "text without control characters" if _CONTROL.search(v) else None


def _count(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "a non-negative integer"


def _number(v: Any) -> str | None:
    return None if v is None or isinstance(v, (int, float)) and not isinstance(v, bool) else "a number or null"


def _of(kind: type, words: str) -> Check:
    return lambda v: None if v is None or isinstance(v, kind) else words


@dataclass(frozen=True)
class Field:
    """One field of a record. Consecutive fields with the same `doc` share a row of the reference's table."""

    name: str
    doc: str  # what it holds (Markdown, one line): docs/records_and_cache.md's field table is generated from these
    required: bool = False  # every record has it: a record without it is not read
    always: bool = False  # every record the runner writes now has it (the others depend on `eval` or on the method)
    check: Check | None = None  # what its value must be where a record has it (readers skip a record that fails)


_CELL = "the cell (`method` is a method or a variant name)"
_ACC = "A_Df / A_Dr after unlearning, and θ\\*'s (%)"
_METRIC = "a [metric](#metrics), where `eval` asks for it (the oracle's gaps, KL and speed-up with `eval.oracle`)"
_DRAWN = "distinct training samples the method drew from the forget and the retain set, and draws in all"
_CALL = ("the unlearning call's wall time (for `retrain`: its training time, also on a cache hit); whether the "
         "method's output came from the cache (retrain only; `null` for the others)")
_ORIGINAL = "θ\\*'s training time; whether θ\\* came from the cache"
_TEST = "test images behind A_Df / A_Dr"
_CONFIG = ("the resolved config (data, model, recipe, seed, forget class, method with every hyperparameter, eval, the "
           "oracle's hyperparameters, and `unlearn.precision` where the method's steps ran in another precision than "
           "θ\\*'s); the hash names the record")
_WHERE = "torch's thread count, host name, time of writing"
_MIGRATED = ("set on records made before the budget rule, by `benchmarks/rename_pbu_records.py`: `budget_stamped` "
             "(true) where `budget` was added from the cell its sweep file plans under the same key (its results "
             "untouched); "
             "`renamed_from` (`{\"method\", \"config_hash\"}`) where a PBU record took its new name (old `pbu` → "
             "`pbu+stop`, old `pbu+fixed5` → `pbu`, CHANGELOG.md)")
#: the deep-forgetting measurements (unlearnbench.deep.FIELDS; kept here so that this module imports no torch)
_DEEP_FIELDS = ("probe_acc_forget", "probe_acc_retain", "proto_acc_forget", "relearn_steps", "relearn_censored",
                "relearn_acc_forget", "relearn_target", "deep_acc_forget")
_DEEP = ("with `eval.deep`: the [deep-forgetting measurements](deep_forgetting.md#what-a-record-holds) of the model, "
         "of θ\\* (`original_`) and of the oracle (`retrain_`): linear probe, prototype attack (or why it does not "
         "apply), relearn time; the Anamnesis Index `ain`; `deep_seconds`, their wall time (θ\\*'s and the "
         "oracle's: when they were measured, once per cell, then kept)")
_SEAL = ("the record format's version (2; a record without it is version 1, from before it existed) and the sha256 of "
         "the canonical JSON (sorted keys, no spaces) of every other field")

#: Every field a record may have, in the order of the reference's table: the one definition of the record. The
#: runner builds records of these fields only (`undeclared`), readers check them (`record_problem`), the tests and
#: the docs' table (`fields_markdown`) read them from here.
SCHEMA: tuple[Field, ...] = (
    Field("dataset", _CELL, True, True, _name), Field("model", _CELL, True, True, _name),
    Field("forget_class", _CELL, True, True, _count), Field("seed", _CELL, True, True, _count),
    Field("method", _CELL, True, True, _name),
    Field("unlearn_seed", "which unlearning run of the cell's θ\\* (`run --unlearn-seed`, a sweep's "
                          "`unlearn_seeds`): 0 seeds the method with `seed`; a record without the field is run 0. Also "
                          "in `config` when it is not 0", always=True),
    Field("acc_forget", _ACC, True, True, _number), Field("acc_retain", _ACC, True, True, _number),
    Field("original_acc_forget", _ACC, always=True), Field("original_acc_retain", _ACC, always=True),
    *(Field(name, _METRIC) for name in ("acc_forget_gap", "acc_retain_gap", "mia", "mia_retrain", "mia_gap", "zrf",
                                        "kl_to_retrain", "activation_distance", "retrain_seconds", "speedup")),
    *(Field(name, _DRAWN, always=True) for name in ("forget_samples_seen", "retain_samples_seen", "forget_draws",
                                                    "retain_draws")),
    Field("retrain_acc_forget", "the oracle's A_Df / A_Dr"), Field("retrain_acc_retain", "the oracle's A_Df / A_Dr"),
    Field("original_checkpoint", "which θ\\* the cell started from: `{\"key\": ..., \"sha256\": ...}`, its cache key "
                                 "(the hash of its data, model, recipe and seed) and the sha256 of its weights",
          always=True, check=_of(dict, "an object")),
    Field("oracle_checkpoint", "which retrained oracle every gap, the KL and the speed-up are measured against: "
                               "`{\"key\", \"sha256\"}`", check=_of(dict, "an object")),
    Field("diagnostics", "what the method reports it did: `steps`; PBU also `epochs_run`, `stopped_early`, "
                         "`fisher_seconds`; Bad Teaching `teacher_redraws` (rejected draws). Empty for a method that "
                         "reports nothing", always=True),
    Field("unlearn_seconds", _CALL, always=True), Field("method_cache_hit", _CALL, always=True),
    Field("original_train_seconds", _ORIGINAL, always=True), Field("original_cache_hit", _ORIGINAL, always=True),
    Field("test_forget_samples", _TEST, always=True), Field("test_retain_samples", _TEST, always=True),
    Field("config_hash", _CONFIG, True, True, _name), Field("config", _CONFIG, always=True),
    Field("versions", "unlearnbench and its git commit (`-dirty` if the tracked tree had changes), Python, torch, "
                      "torchvision, timm, numpy", always=True),
    Field("device", "CPU: model name, threads, cores, `vector_flags` (AVX/AVX2/FMA/AVX-512/AMX flags of "
                    "`/proc/cpuinfo`); CUDA: name, compute capability, CUDA version", always=True),
    Field("threads", _WHERE, always=True), Field("host", _WHERE, always=True),
    Field("created", _WHERE, always=True, check=_of(str, "a string")),
    Field("budget", "the table's budget rule and what it gave this cell "
                    "([configuration](configuration.md#the-budget-rule)): `rule`; for a method with epochs, "
                    "`epochs` (run), `rule_epochs` (the rule's), `published_epochs`, "
                    "`steps` (at this data; a stopping rule may end sooner, `diagnostics.steps` says), "
                    "`published_steps`, `hand_set` (epoch counts set against the rule). Also `config.budget` (`rule`, "
                    "`hand_set`), which is not hashed: the key holds the epochs that ran", always=True,
          check=_of(dict, "an object")),
    *(Field(f"{who}{name}", _DEEP, check=_number if name != "relearn_censored" else None)
      for who in ("", "original_", "retrain_") for name in _DEEP_FIELDS),
    *(Field(f"{who}proto_not_applicable", _DEEP) for who in ("", "original_", "retrain_")),
    Field("ain", _DEEP, check=_number),
    *(Field(f"{who}deep_seconds", _DEEP, check=_number) for who in ("", "original_", "retrain_")),
    Field("jobs_per_gpu", "on CUDA, how many jobs the sweep let share one GPU (`--jobs-per-gpu`): the record's "
                          "times were measured beside up to this many"),
    Field("budget_stamped", _MIGRATED), Field("renamed_from", _MIGRATED),
    Field("record_version", _SEAL, check=_count), Field("digest", _SEAL, check=_of(str, "a string")),
)
FIELDS = {f.name: f for f in SCHEMA}
#: The fields every record has: what identifies its cell and the paper's two numbers.
REQUIRED = tuple(f.name for f in SCHEMA if f.required)
#: What each field a reader relies on must hold (a field absent from an older record is not checked).
FIELD_TYPES = {f.name: f.check for f in SCHEMA if f.check is not None}


def undeclared(record: Mapping[str, Any]) -> list[str]:
    """The fields of `record` that SCHEMA does not define (a record being built must have none)."""
    return [k for k in record if k not in FIELDS]


def fields_markdown() -> str:
    """The reference's field table (docs/records_and_cache.md; a test keeps the two equal)."""
    rows: list[tuple[list[str], str]] = []
    for f in SCHEMA:
        if rows and rows[-1][1] == f.doc:
            rows[-1][0].append(f.name)
        else:
            rows.append(([f.name], f.doc))
    return "\n".join(["| field | |", "|---|---|",
                      *(f"| {', '.join(f'`{n}`' for n in names)} | {doc} |" for names, doc in rows)]) + "\n"


def machine(record: Mapping[str, Any]) -> str:
    """The machine a record (or any row with a `device` field) was measured on, in words: its device's name and vector
    flags, e.g. "Intel(R) Xeon(R) Processor (avx avx2 avx512f)"."""
    device = record.get("device") if isinstance(record.get("device"), Mapping) else {}
    return f"{device.get('name')} ({' '.join(device.get('vector_flags', []))})"


def digest(obj: dict[str, Any]) -> str:
    """sha256 of a record's fields other than `digest`, as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps({k: v for k, v in obj.items() if k != "digest"}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(record: dict[str, Any]) -> dict[str, Any]:
    """The record as it is stored: JSON types only (NaN as null), `record_version` and `digest` added."""
    obj = json.loads(json_line(record))
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


def dumps(record: dict[str, Any]) -> str:
    return json_line(seal(record))


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
