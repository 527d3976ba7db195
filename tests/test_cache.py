from __future__ import annotations

import torch

from unlearnbench.cache import CheckpointCache


def _model(value: float) -> torch.nn.Module:
    m = torch.nn.Linear(64, 64)
    with torch.no_grad():
        m.weight.fill_(value)
        m.bias.fill_(value)
    return m


class Builder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return _model(float(self.calls)), {"drawn": 7}


def test_miss_then_hit(tmp_path):
    cache, build = CheckpointCache(tmp_path), Builder()
    m1, meta1, hit1 = cache.get_or_build("k1", lambda: _model(0.0), build, {"kind": "original"})
    m2, meta2, hit2 = cache.get_or_build("k1", lambda: _model(0.0), build, {"kind": "original"})
    assert (hit1, hit2, build.calls) == (False, True, 1)
    assert torch.equal(m2.weight, m1.weight) and m2.weight[0, 0].item() == 1.0
    assert meta2["seconds"] == meta1["seconds"] >= 0 and meta2["drawn"] == 7 and meta2["kind"] == "original"
    assert cache.contains("k1") and not cache.contains("k2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.json", "k1.lock", "k1.pt"]  # no temporary files


def test_corrupt_or_truncated_checkpoints_are_rebuilt(tmp_path):
    cache, build = CheckpointCache(tmp_path), Builder()
    cache.get_or_build("k", lambda: _model(0.0), build, {})
    pt = tmp_path / "k.pt"
    data = bytearray(pt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensor data
    pt.write_bytes(bytes(data))
    model, _, hit = cache.get_or_build("k", lambda: _model(0.0), build, {})
    assert not hit and build.calls == 2 and model.weight[0, 0].item() == 2.0
    pt.write_bytes(pt.read_bytes()[:100])  # truncated
    _, _, hit = cache.get_or_build("k", lambda: _model(0.0), build, {})
    assert not hit and build.calls == 3


def test_a_checkpoint_without_its_metadata_is_not_trusted(tmp_path):
    """A run killed between writing the .pt and the .json leaves an orphan .pt: it must be rebuilt."""
    cache, build = CheckpointCache(tmp_path), Builder()
    cache.get_or_build("k", lambda: _model(0.0), build, {})
    (tmp_path / "k.json").unlink()
    assert not cache.contains("k")
    _, _, hit = cache.get_or_build("k", lambda: _model(0.0), build, {})
    assert not hit and build.calls == 2


def test_state_dict_of_another_architecture_is_rejected(tmp_path):
    cache, build = CheckpointCache(tmp_path), Builder()
    cache.get_or_build("k", lambda: _model(0.0), build, {})
    assert cache.load("k", torch.nn.Linear(3, 3)) is None  # wrong shapes: treated as corrupt
