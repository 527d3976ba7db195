"""θ*'s quality per architecture: train-mode against eval-mode accuracy, without and with `bn_recalibrate`. The
command stays `python benchmarks/theta_quality.py ...`; its code and documentation:
unlearnbench/studies/theta_quality.py."""
import sys

from unlearnbench.studies.theta_quality import main

if __name__ == "__main__":
    sys.exit(main())
