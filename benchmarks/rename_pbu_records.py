"""Carry committed PBU records across the change of PBU's default (CHANGELOG.md). The command stays `python
benchmarks/rename_pbu_records.py ...`; its code and documentation: unlearnbench/studies/rename_pbu_records.py."""
import sys

from unlearnbench.studies.rename_pbu_records import main

if __name__ == "__main__":
    sys.exit(main())
