"""`python -m unlearnbench.perf`: speed, measured side by side (`unlearnbench perf`), under its documented name; its
code is `unlearnbench.cli.perf`, its measurements `unlearnbench.perf_sections`."""
from __future__ import annotations

import sys

from .cli.perf import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
