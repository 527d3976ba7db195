"""Errors a user can fix.

A `UsageError` is bad input (an unknown name, an impossible class, a malformed config, missing data offline, an
output path that cannot be written). CLIs print it as one line on stderr and exit with status 2, before any work.
A `WriteError` is a write that failed during the work (disk full, permissions changed): one line naming the path,
exit status 1. How the commands report them (and any other OSError that names a file): `unlearnbench.cli.options`.
"""
from __future__ import annotations

from typing import Sequence


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
