"""benchmarks/bn_statistics.py: the train-mode evaluation normalises by each batch and leaves the model untouched."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from unlearnbench.data import Batch

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bn_statistics", ROOT / "benchmarks" / "bn_statistics.py")
bn_statistics = importlib.util.module_from_spec(_spec)
sys.modules["bn_statistics"] = bn_statistics
_spec.loader.exec_module(bn_statistics)


class _Batches:
    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def batches(self, size: int):
        for i in range(0, len(self.x), size):
            xb = self.x[i:i + size]
            yield Batch(xb, torch.zeros(len(xb), dtype=torch.long), torch.zeros(len(xb), dtype=torch.long))


class _Runtime:
    @staticmethod
    def inputs(x: torch.Tensor) -> torch.Tensor:
        return x


def test_batch_statistics_normalise_each_batch_and_leave_the_running_statistics_alone():
    bn = nn.BatchNorm1d(1, affine=False)
    bn.running_mean.fill_(100.0)  # stale statistics: eval mode would map every input far below zero
    bn.eval()
    x = torch.tensor([[1.0], [3.0], [10.0], [14.0]])
    out = bn_statistics.batch_statistics_logits(bn, _Batches(x), _Runtime(), 2)
    # batch [1, 3]: mean 2, biased var 1 -> -1, 1 (eps 1e-5); batch [10, 14]: mean 12, var 4 -> -1, 1
    torch.testing.assert_close(out.squeeze(1), torch.tensor([-1.0, 1.0, -1.0, 1.0]), atol=1e-4, rtol=0)
    assert float(bn.running_mean) == 100.0 and not bn.training
