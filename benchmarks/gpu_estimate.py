"""The GPU time of the paper's MNIST block (benchmarks/mnist_paper.toml), from what one H200 measured. The command
stays `python benchmarks/gpu_estimate.py ...`; its code and documentation: unlearnbench/studies/gpu_estimate.py."""
import sys

from unlearnbench.studies.gpu_estimate import main

if __name__ == "__main__":
    sys.exit(main())
