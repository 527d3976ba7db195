"""What Bad Teaching distils toward on the forget class, and what its student ends up predicting. The command stays
`python benchmarks/bad_teaching_targets.py ...`; its code and documentation:
unlearnbench/studies/bad_teaching_targets.py."""
import sys

from unlearnbench.studies.bad_teaching_targets import main

if __name__ == "__main__":
    sys.exit(main())
