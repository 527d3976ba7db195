"""Errors a user can fix, and the one way every CLI reports them.

A `UsageError` is bad input (an unknown name, an impossible class, a malformed config, missing data offline, an
output path that cannot be written). CLIs print it as one line on stderr and exit with status 2, before any work.
A `WriteError` is a write that failed during the work (disk full, permissions changed): one line naming the path,
exit status 1. Any other OSError that names a file is reported the same way rather than as a traceback.
"""
from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, NoReturn, Sequence


class UsageError(Exception):
    """Input the user can correct; reported in one line, exit status 2."""


class WriteError(Exception):
    """A file could not be written during the work; the message names it. One line, exit status 1."""


class DataUnavailable(UsageError):
    """The data set is not on disk and could not be downloaded."""


def did_you_mean(kind: str, name: str, valid: Sequence[str]) -> UsageError:
    """"unknown method 'pbuu' (did you mean 'pbu'?); valid: ..." (the closest names by difflib, when any is close)."""
    import difflib
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return UsageError(f"unknown {kind} {name!r}{hint}; valid: {', '.join(sorted(valid))}")


_INVOKED_AS: ContextVar[str | None] = ContextVar("invoked_as", default=None)


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
        module = _INVOKED_AS.get() or main.__module__
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
