"""Which of a model's parameter groups holds a method's loss of A_Dr? The command stays `python
benchmarks/weight_groups.py ...`; its code and documentation: unlearnbench/studies/weight_groups.py."""
import sys

from unlearnbench.studies.weight_groups import main

if __name__ == "__main__":
    sys.exit(main())
