"""PBU's stopping rule and BatchNorm statistics, compared side by side on the same θ*. The command stays `python
benchmarks/pbu_stopping.py ...`; its code and documentation: unlearnbench/studies/pbu_stopping.py."""
import sys

from unlearnbench.studies.pbu_stopping import main

if __name__ == "__main__":
    sys.exit(main())
