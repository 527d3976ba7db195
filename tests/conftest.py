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


@pytest.fixture(scope="session")
def competent_resnet(mnist_small):
    """A small real timm model (test_resnet) trained on `mnist_small`, in eval mode: the θ* that method tests unlearn
    (copy it before changing it). The recipe of tests/test_methods.py's `trained` fixture."""
    from unlearnbench.config import ModelConfig, TrainRecipe
    from unlearnbench.models import create_model
    from unlearnbench.runtime import Runtime, deterministic, generator
    from unlearnbench.train import fit
    with deterministic(0):
        model = create_model(ModelConfig("test_resnet"), 10, 1)
    fit(model, mnist_small.sample_set("train"), TrainRecipe(epochs=4, batch_size=32, lr=3e-3, scheduler="cosine"),
        Runtime(torch.device("cpu")), generator(0))
    return model.eval()
