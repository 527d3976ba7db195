"""Errors a user can fix, and the one way every CLI reports them.

A `UsageError` is bad input (an unknown name, an impossible class, a malformed config, missing data offline).
CLIs print it as one line on stderr and exit with status 2, before anything is written.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn, Sequence


class UsageError(Exception):
    """Input the user can correct; reported in one line, exit status 2."""


class DataUnavailable(UsageError):
    """The data set is not on disk and could not be downloaded."""


def did_you_mean(kind: str, name: str, valid: Sequence[str]) -> UsageError:
    return UsageError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr and exit 2 (argparse prints the whole usage)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def cli(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a CLI entry point so that a UsageError becomes one line and exit status 2."""

    def wrapped(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv)
        except UsageError as exc:
            module = main.__module__
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
