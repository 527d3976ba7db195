"""Errors a user can fix, and the one way every CLI reports them.

A `UsageError` is bad input (an unknown name, an impossible class, a malformed config, missing data offline).
CLIs print it as one line on stderr and exit with status 2, before anything is written.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, NoReturn, Sequence


class UsageError(Exception):
    """Input the user can correct; reported in one line, exit status 2."""


class DataUnavailable(UsageError):
    """The data set is not on disk and could not be downloaded."""


def did_you_mean(kind: str, name: str, valid: Sequence[str]) -> UsageError:
    return UsageError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")


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
    """Wrap a CLI entry point so that a UsageError becomes one line and exit status 2."""

    def wrapped(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv)
        except UsageError as exc:
            module = _INVOKED_AS.get() or main.__module__
            if module == "__main__":  # run as `python -m unlearnbench.X`: the module's real name is in its spec
                spec = getattr(sys.modules["__main__"], "__spec__", None)
                module = spec.name if spec is not None else module
            print(f"{module}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    wrapped.__name__ = main.__name__
    wrapped.__doc__ = main.__doc__
    return wrapped
