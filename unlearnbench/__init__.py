"""unlearnbench: a benchmark harness for class unlearning in deep image classifiers."""
__version__ = "0.1.0"
