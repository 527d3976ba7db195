"""Shared fixtures. Real MNIST comes from $UNLEARNBENCH_DATA or ../shared/data (never downloaded in CI)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from unlearnbench.config import DataConfig
from unlearnbench.data import load_data

REPO = Path(__file__).resolve().parent.parent


def mnist_root() -> Path:
    env = os.environ.get("UNLEARNBENCH_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = mnist_root()
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.fail(f"real MNIST is needed at {root}/MNIST/raw (set UNLEARNBENCH_DATA)")
    return root


@pytest.fixture(scope="session")
def mnist_small(data_root: Path):
    """Real MNIST, the first 100 training and 50 test images of each class."""
    return load_data(DataConfig("mnist", train_per_class=100, test_per_class=50), data_root, download=False)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
