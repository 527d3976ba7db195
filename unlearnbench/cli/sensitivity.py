"""`python -m unlearnbench.sensitivity` (`unlearnbench sensitivity`): one grid under two budget rules, side by side
(the table: `unlearnbench.sensitivity`)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from ..files import atomic_write_bytes
from .options import ArgumentParser, cli, prog


def parser() -> ArgumentParser:
    # the table's module loads pandas: its first line is repeated here so that --help answers at once
    p = ArgumentParser(prog=prog("sensitivity"), description="How a table moves with its budget rule: the same cells "
                       "run under two rules, side by side. What each column holds: unlearnbench/sensitivity.py.")
    p.add_argument("first", type=Path, help="a results directory")
    p.add_argument("second", type=Path, help="a results directory of the same cells under another budget rule")
    p.add_argument("--out", type=Path, help="also write the Markdown here")
    return p


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ..sensitivity import compare
    text = compare(args.first, args.second)
    print(text, end="")
    if args.out:
        atomic_write_bytes(args.out, lambda f: f.write(text.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
