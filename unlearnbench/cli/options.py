"""What every command shares: its argument parser, the one way it reports an error, the name it goes by, and the
options of the commands that compute (where data and checkpoints are, which device, how much to log).

`@cli` wraps a command's `main`: a `UsageError` is one line on stderr and exit status 2, a `WriteError` or an OSError
naming a file one line and exit status 1. Nothing here loads torch: `--help` and a mistyped command line are
answered at once.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, Sequence

from ..errors import UsageError, WriteError
from ..files import check_dir

if TYPE_CHECKING:
    from ..runner import Env

_INVOKED_AS: ContextVar[str | None] = ContextVar("invoked_as", default=None)
#: A command module → the module its errors are reported under outside the console script: the `python -m` name that
#: runs it (`list` has none of its own: `python -m unlearnbench.cli list`).
PYTHON_M = {"unlearnbench.cli.run": "unlearnbench.run", "unlearnbench.cli.sweep": "unlearnbench.sweep",
            "unlearnbench.cli.perf": "unlearnbench.perf", "unlearnbench.cli.sensitivity": "unlearnbench.sensitivity",
            "unlearnbench.cli.report": "unlearnbench.report", "unlearnbench.cli.listing": "unlearnbench.cli"}


def prog(tool: str) -> str:
    """The command as the user typed it: `unlearnbench run` through the console script, else `python -m
    unlearnbench.run`. Usage lines, examples and error messages all say it the same way."""
    return _INVOKED_AS.get() or f"python -m unlearnbench.{tool}"


@contextmanager
def invoked_as(name: str) -> Iterator[None]:
    """Within this block, `prog` answers `name` (the console script sets it before calling a tool's `main`)."""
    token = _INVOKED_AS.set(name)
    try:
        yield
    finally:
        _INVOKED_AS.reset(token)


class HelpFormatter(argparse.HelpFormatter):
    """Help that fits a screen: at most 100 columns, option help from column 26; a text with indented lines (an
    epilog of examples) is kept as written, any other is wrapped."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 26,
                 width: int | None = None) -> None:
        width = width or min(shutil.get_terminal_size().columns, 100) - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if any(line.startswith("  ") for line in text.splitlines()):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


#: OSErrors of the storage the user can fix (full, over quota, read-only, permissions): one line even without a name.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr and exit 2 (argparse prints the whole usage), and help
    formatted by `HelpFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def cli(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a CLI entry point: a UsageError becomes one line and exit status 2; a WriteError, or an OSError naming a
    file, one line and exit status 1."""

    def say(message: object) -> None:
        module = _INVOKED_AS.get() or PYTHON_M.get(main.__module__, main.__module__)
        if module.startswith("unlearnbench.studies."):  # run as `python benchmarks/<name>.py`, named as argparse does
            module = module.rpartition(".")[2] + ".py"
        if module == "__main__":  # run as `python -m unlearnbench.X`: the module's real name is in its spec
            spec = getattr(sys.modules["__main__"], "__spec__", None)
            module = spec.name if spec is not None else os.path.basename(sys.argv[0])  # a script, as argparse names it
        text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())  # one line, always
        print(f"{module}: error: {text}", file=sys.stderr)

    def wrapped(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv)
        except UsageError as exc:
            say(exc)
            return 2
        except WriteError as exc:
            say(exc)
            return 1
        except OSError as exc:
            if exc.filename:
                say(f"{exc.filename}: {exc.strerror or exc}")
            elif exc.errno in _STORAGE_ERRNOS:  # a write into an open file fails without naming it
                say(f"a write failed: {exc.strerror}")
            else:  # not about files or storage: a fault, keep its traceback
                raise
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    wrapped.__name__ = main.__name__
    wrapped.__doc__ = main.__doc__
    wrapped.__wrapped__ = main  # type: ignore[attr-defined]  # the Python API calls it: errors raise instead
    return wrapped


#: DataLoader worker processes: far above any machine's useful count, low enough that a typo is refused.
MAX_WORKERS = 256


def add_env_options(p: ArgumentParser) -> None:
    """Options shared by the CLIs that compute: where data and checkpoints are, which device."""
    g = p.add_argument_group("where and how to compute")
    g.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help="data ($UNLEARNBENCH_DATA, else ../shared/data if it holds MNIST, else "
                        "~/.cache/unlearnbench/data)")
    g.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="checkpoints: $UNLEARNBENCH_CACHE, else ~/.cache/unlearnbench/checkpoints")
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    g.add_argument("--no-download", action="store_true", help="never download a missing data set")
    g.add_argument("--workers", type=int, default=4, metavar="N", help="DataLoader workers (Food-101)")
    g.add_argument("-v", "--verbose", action="count", default=0, help="per-epoch losses of every term")
    g.add_argument("-q", "--quiet", action="store_true", help="only warnings and the result")


def env_from_args(args: object) -> Env:
    """The environment the options name, checked before any work: a sane worker count, a cache directory that can be
    written, a device this machine has."""
    from ..runner import Env
    from ..runtime import default_cache_dir, default_data_root, resolve_device
    if not 0 <= getattr(args, "workers") <= MAX_WORKERS:
        raise UsageError(f"--workers must be >= 0 and <= {MAX_WORKERS}, got {getattr(args, 'workers')}")
    env = Env(data_root=getattr(args, "data_root") or default_data_root(),
              cache_dir=getattr(args, "cache_dir") or default_cache_dir(), device=getattr(args, "device"),
              download=not getattr(args, "no_download"), num_workers=getattr(args, "workers"))
    check_dir(env.cache_dir, "--cache-dir" if getattr(args, "cache_dir") else "checkpoint cache")
    resolve_device(env.device)
    return env


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("unlearnbench").setLevel(level)
    logging.getLogger("filelock").setLevel(logging.WARNING)
