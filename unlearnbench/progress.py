"""Progress of long work: θ*'s training, the oracle's, a method's unlearning.

The runner opens a task around each (`task(label, total)`, the total in sample-steps: the planner's estimate of the
work), and the one training loop (`train.train_steps`) reports every step to it (`advance`). How it shows is set once
per process (`configure`):

    bar     a tqdm bar on stderr (the default on a terminal)
    lines   a line on stderr every `every` seconds: done, rate, ETA (the default elsewhere, e.g. a log or a sweep's
            worker)
    quiet   nothing (`--quiet`)

The total is an estimate (a stopping rule may end a method sooner), so a bar may finish short of 100%.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

MODES = ("auto", "bar", "lines", "quiet")
#: Seconds between two progress lines in "lines" mode.
EVERY = 30.0

_mode = "auto"
_every = EVERY
_prefix = ""
_stack: list["_Task"] = []


def configure(mode: str = "auto", every: float = EVERY, prefix: str = "") -> None:
    """How progress shows in this process: `mode` one of MODES ("auto": a bar on a terminal, else lines); `prefix`
    starts every line (a sweep's worker names its job)."""
    global _mode, _every, _prefix
    if mode not in MODES:
        raise ValueError(f"progress mode {mode!r}: one of {', '.join(MODES)}")
    _mode, _every, _prefix = mode, every, prefix


def _resolved() -> str:
    if _mode != "auto":
        return _mode
    return "bar" if sys.stderr.isatty() else "lines"


def duration(seconds: float) -> str:
    """A rough duration: seconds, minutes or hours."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Task:
    def __init__(self, label: str, total: float, mode: str) -> None:
        self.label, self.total, self.mode = label, max(float(total), 0.0), mode
        self.done = 0
        self.start = self.last = time.perf_counter()
        self.bar: Any = None
        if mode == "bar":
            from tqdm import tqdm
            self.bar = tqdm(total=int(self.total) or None, desc=f"{_prefix}{label}", unit="img", unit_scale=True,
                            file=sys.stderr, leave=False, dynamic_ncols=True)

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.mode == "lines" and now - self.last >= _every:
            self.last = now
            print(f"{_prefix}{self.label}: {self.line(now)}", file=sys.stderr, flush=True)

    def line(self, now: float) -> str:
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total and self.done < self.total and rate > 0:
            left = f", ETA {duration((self.total - self.done) / rate)}"
            return f"{100 * self.done / self.total:.0f}% ({self.done:,} of ~{int(self.total):,} images){left}"
        return f"{self.done:,} images in {duration(elapsed)}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def task(label: str, total: float) -> Iterator[None]:
    """Within the block, training steps count toward `label`'s progress (`total`: the sample-steps expected)."""
    t = _Task(label, total, _resolved())
    _stack.append(t)
    try:
        yield
    finally:
        _stack.remove(t)
        t.close()


def advance(samples: int) -> None:
    """One training step of `samples` images was taken (the training loop calls it)."""
    if _stack:
        _stack[-1].advance(samples)
