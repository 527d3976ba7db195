"""`python -m unlearnbench.cli`: the `unlearnbench` command without the install's console script."""
import sys

from . import main

sys.exit(main())
