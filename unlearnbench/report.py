"""`python -m unlearnbench.report` (`unlearnbench report`): tables and plots from a results directory, under its
documented name. The command is `unlearnbench.cli.report`; the statistics `unlearnbench.aggregate`, the tables
`unlearnbench.tables`, the plots `unlearnbench.plots`.
"""
from __future__ import annotations

import sys

from .cli.report import main, parser

__all__ = ["main", "parser"]

if __name__ == "__main__":
    sys.exit(main())
