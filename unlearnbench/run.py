"""`python -m unlearnbench.run`: the one-cell command (`unlearnbench run`), under its documented name; its code is
`unlearnbench.cli.run`."""
from __future__ import annotations

import sys

from .cli.run import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
