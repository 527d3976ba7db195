"""The files the CLIs write: checked before any work, written all or nothing, a failure reported in one line.

- `check_dir` / `check_file`: an output path exists or can be created, is of the right kind and is writable, else a
  UsageError naming it. The CLIs call them before any work, so that a bad path costs nothing and writes nothing.
- `check_input_file` / `regular_file_problem`: a path to read is a regular file (a FIFO would block for ever,
  `/dev/zero` never end, a symbolic-link loop is not "missing"); `inside`: an output path lies under its directory.
- `atomic_write_bytes` / `atomic_write_json` / `atomic_write_jsonl`: through a temporary file in the same directory,
  fsync, rename. A failed write (disk full, permissions, a read-only file system) is a `WriteError` naming the path,
  not a traceback. `read_json_lines` reads back what `atomic_write_jsonl` wrote (rows of any shape; records are read
  by `records.read_jsonl`, which checks each is a whole record).
- `remove_stale_tmp`: the temporary files of writers that died before their rename (kill -9 during a save); every
  directory the atomic writers write into is swept once per process (`sweep_stale_tmp`).
- `guarded_lock`: a file lock whose holder, if its work fails, leaves neither the lock file nor empty directories.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock

from .errors import UsageError, WriteError

#: This host, as it appears in temporary file names (a cache directory may be shared between hosts).
HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
#: `.<target>.<pid>@<host>.tmp` (`@<host>` absent in names written before hosts were part of them)
_TMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)(?:@(?P<host>[^@/]+))?\.tmp$")
#: A temporary file of another host's writer is left alone this long: its process cannot be seen from here.
FOREIGN_TMP_SECONDS = 24 * 3600


# --------------------------------------------------------------------------------------------------------------------
# checks before any work
# --------------------------------------------------------------------------------------------------------------------
#: The longest file name most file systems take (ext4, xfs, btrfs: 255 bytes).
NAME_MAX = 255


def _kind(mode: int) -> str:
    """What a file that is neither a regular file nor a directory is, in words."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _path_problem(path: Path) -> str | None:
    """What makes `path` unusable as a name at all (a NUL byte, a component longer than the file system takes)."""
    text = str(path)
    if "\0" in text:
        return "contains a NUL byte"
    if any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX for part in Path(text).parts):
        return f"has a name longer than {NAME_MAX} bytes"
    return None


def regular_file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a regular file ("does not exist", "is a directory", "is a named pipe (FIFO)",
    "is a symbolic link loop", ...), or None when it can. `os.stat` only: a FIFO is never opened."""
    if (bad := _path_problem(Path(path))) is not None:
        return bad
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "is a broken symbolic link" if os.path.islink(path) else "does not exist"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop"
        return f"cannot be inspected ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode):
        return f"is {_kind(st.st_mode)}"
    if not os.access(path, os.R_OK):
        return "is not readable"
    return None


def check_input_file(path: Path, what: str, expected: str = "a file") -> None:
    """A file the CLI reads: a readable regular file, else one UsageError naming it (`{what} {path} is ...`)."""
    problem = regular_file_problem(Path(path).expanduser())
    if problem == "is a directory":
        problem = f"is a directory, expected {expected}"
    if problem is not None:
        raise UsageError(f"{what} {path} {problem}")


def inside(root: Path, path: Path) -> Path:
    """`path`, checked to lie under directory `root` once resolved (symbolic links, `..`): a file name built from data
    can never send a write elsewhere. A WriteError otherwise."""
    real_root, real = Path(root).resolve(), Path(path).resolve()
    if real != real_root and real_root not in real.parents:
        raise WriteError(f"refusing to write {path}: it lies outside {root}")
    return path


def stable_token(text: str) -> str:
    """`text` as one safe file-name component: itself when it is already letters, digits and `_ . + -` (not starting
    with a dot), else those characters with the rest as `_`, plus a short hash of the original (two names that
    sanitise alike stay apart). Output file names built from data (a record's data set or model) go through it."""
    if re.fullmatch(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,99}", text):
        return text
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", text)[:60].lstrip(".") or "_"
    return f"{safe}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def _exists(path: Path, what: str) -> bool:
    try:
        return os.path.lexists(path)
    except OSError as exc:  # pragma: no cover - lexists swallows most errors itself
        raise UsageError(f"{what} {path}: cannot be inspected ({exc.strerror})") from None


def _creatable(path: Path, what: str) -> None:
    """`path` does not exist: its nearest existing ancestor must be a writable directory."""
    for parent in path.parents:
        if _exists(parent, what):
            break
    else:  # pragma: no cover - a relative path always ends at "."
        parent = Path(".")
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: cannot be created, {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot be created, {parent} is not writable")


def _usable(path: Path, what: str) -> None:
    if (bad := _path_problem(path)) is not None:
        text = repr(str(path))[1:-1]  # a NUL as \x00
        raise UsageError(f"{what} {text if len(text) <= 80 else text[:40] + '...' + text[-20:]}: {bad}")
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{what} {path}: is a symbolic link loop") from None


def check_dir(path: Path, what: str) -> None:
    """An output directory: an existing, writable directory, or one that can be created."""
    path = Path(path).expanduser()
    _usable(path, what)
    if not _exists(path, what):
        _creatable(path, what)
    elif not path.exists():
        raise UsageError(f"{what} {path}: is a broken symbolic link")
    elif not path.is_dir():
        kind = "a file" if path.is_file() else _kind(path.stat().st_mode)
        raise UsageError(f"{what} {path}: is {kind}, expected a directory")
    elif not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: is not writable")


def check_file(path: Path, what: str) -> None:
    """An output file written beside a lock file (`<path>.lock`): an existing writable file in a writable directory,
    or one that can be created."""
    path = Path(path).expanduser()
    _usable(path, what)
    if _exists(path, what):
        if path.is_dir():
            raise UsageError(f"{what} {path}: is a directory, expected a file")
        if not path.exists():
            raise UsageError(f"{what} {path}: is a broken symbolic link")
        if not path.is_file():  # appending to a FIFO would block until a reader comes, to a device write anywhere
            raise UsageError(f"{what} {path}: is {_kind(path.stat().st_mode)}, expected a regular file")
        if not os.access(path, os.W_OK):
            raise UsageError(f"{what} {path}: is not writable")
        if not os.access(path.parent, os.W_OK | os.X_OK):  # its lock file goes beside it
            raise UsageError(f"{what} {path}: its directory {path.parent} is not writable")
    else:
        _creatable(path, what)


# --------------------------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------------------------
@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Any OSError inside becomes a WriteError naming `path` (one line: disk full, permission denied, ...)."""
    try:
        yield
    except OSError as exc:
        raise WriteError(f"could not write {path}: {exc.strerror or exc}") from None


def _free(path: Path) -> str:
    try:
        return f"{shutil.disk_usage(path).free / 2**20:.0f} MB free there"
    except OSError:
        return "free space unknown"


def tmp_path(path: Path) -> Path:
    """The temporary file a writer of `path` uses: named by its process and host, so that the temporary files of dead
    writers can be told from those of live ones (`remove_stale_tmp`)."""
    return path.with_name(f".{path.name}.{os.getpid()}@{HOST}.tmp")


_SWEPT: set[str] = set()


def sweep_stale_tmp(directory: Path) -> None:
    """`remove_stale_tmp(directory)`, once per process and directory: the atomic writers call it, so no directory the
    project writes (results, reports, plots, `extra/` outputs) keeps the leftovers of a killed writer."""
    key = os.path.abspath(directory)
    if key not in _SWEPT:
        _SWEPT.add(key)
        remove_stale_tmp(Path(directory))


def atomic_write_bytes(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write through a temporary file in the same directory, fsync, rename: all or nothing."""
    path = Path(path)
    sweep_stale_tmp(path.parent)
    tmp = tmp_path(path)
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(f"could not write {path}: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # torch.save's zip writer reports a failed write so: "enforce fail at inline_container"
        if "inline_container" not in str(exc) and "PytorchStreamWriter" not in str(exc):
            raise
        raise WriteError(f"could not write {path}: the write failed, disk full? ({_free(path.parent)})") from None
    finally:
        with suppress(OSError):
            tmp.unlink()


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` (all or nothing) unless the file already holds exactly these bytes; whether it wrote.
    A report run again on the same records then leaves its files, and their times, as they were."""
    path = Path(path)
    sweep_stale_tmp(path.parent)
    with suppress(OSError):
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: f.write(data))
    return True


def write_report_file(path: Path, text: str) -> Path:
    """A report's text file: `text` written to `path` (kept inside its folder) only if its bytes changed; the path."""
    write_if_changed(inside(path.parent, path), text.encode("utf-8"))
    return path


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, lambda f: json.dump(obj, f, indent=1, sort_keys=True, default=str), mode="w")


def json_safe(obj: Any) -> Any:
    """`obj` with every NaN and infinity as None: JSON has neither (an empty set has no accuracy)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def json_line(obj: Any) -> str:
    """One line of a JSON-lines file, as every writer here writes it (records, a script's rows): strict JSON (NaN as
    null), anything not JSON by its str()."""
    return json.dumps(json_safe(obj), default=str, allow_nan=False)


def atomic_write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite `path` as one JSON line per row, all or nothing (a measurement script's rows, rewritten after each)."""
    atomic_write_bytes(path, lambda f: f.write("".join(json_line(r) + "\n" for r in rows)), mode="w")


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file, blank lines skipped; a missing file has none. Anything but a regular file there
    (a FIFO, a device) is a UsageError naming it."""
    path = Path(path)
    if not os.path.lexists(path):
        return []
    check_input_file(path, "rows file")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------------------------
# leftovers
# --------------------------------------------------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host is running (a zombie is not: it writes nothing any more)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process, alive
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_stale_tmp(directory: Path) -> list[Path]:
    """Remove the temporary files in `directory` whose writer is dead: a process of this host that no longer runs,
    or (another host's, whose processes we cannot see) a file untouched for a day. Returns what was removed."""
    removed: list[Path] = []
    try:
        candidates = list(Path(directory).glob(".*.tmp"))
    except OSError:
        return removed
    for p in candidates:
        m = _TMP_NAME.match(p.name)
        if m is None:
            continue
        try:
            age = time.time() - p.lstat().st_mtime
        except OSError:
            continue
        host, pid = m["host"], int(m["pid"])
        if host == HOST:
            stale = not pid_alive(pid)
        elif host is None:  # a name from before hosts were recorded: this host's, and old
            stale = age > 60 and not pid_alive(pid)
        else:
            stale = age > FOREIGN_TMP_SECONDS
        if stale:
            with suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def make_dirs(path: Path) -> list[Path]:
    """`mkdir -p path`; returns the directories it created, deepest first (for `remove_empty`)."""
    path = Path(path)
    missing = []
    p = path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return missing


def remove_empty(dirs: list[Path]) -> None:
    """Remove these directories, deepest first, while they are empty."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


@contextmanager
def guarded_lock(path: Path) -> Iterator[None]:
    """Hold a file lock at `path` (its directory created if missing). If the work under it fails, the lock file (when
    this call created it) and the directories this call created (when left empty) are removed: a failed run leaves
    nothing behind. A success keeps the lock file: removing it while another process waits on it would let that
    process and a newcomer both hold the lock (after a failure that costs at most one duplicated, atomic write)."""
    created: list[Path] = []
    lock = FileLock(str(path))
    for attempt in range(3):
        created += make_dirs(path.parent)
        fresh = not os.path.lexists(path)
        try:
            lock.acquire()
            break
        except FileNotFoundError:  # another process's failure removed the directory just made: make it again
            if attempt == 2:
                raise WriteError(f"could not write {path}: its directory keeps disappearing") from None
        except OSError as exc:
            remove_empty(created)
            raise WriteError(f"could not write {path}: {exc.strerror or exc}") from None
    try:
        yield
    except BaseException:
        if fresh:
            with suppress(OSError):
                path.unlink()
        lock.release()
        remove_empty(created)
        raise
    lock.release()
