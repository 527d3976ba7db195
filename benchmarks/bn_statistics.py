"""Is a method's loss of A_Dr in its BatchNorm running statistics or in its weights? The command stays `python
benchmarks/bn_statistics.py ...`; its code and documentation: unlearnbench/studies/bn_statistics.py."""
import sys

from unlearnbench.studies.bn_statistics import main

if __name__ == "__main__":
    sys.exit(main())
