from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from fake_formats import write_cifar100, write_food101
from unlearnbench.config import DataConfig
from unlearnbench.data import (TensorSource, Tracker, Withheld, _first_per_class, _random_crop_flip,
                               load_data)
from unlearnbench.errors import DataUnavailable


def test_mnist_real_counts_and_padding(data_root):
    data = load_data(DataConfig("mnist"), data_root, download=False)
    assert len(data.train.labels) == 60000 and len(data.test.labels) == 10000
    counts = torch.bincount(data.train.labels).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # published MNIST counts
    images = data.train.images
    assert images.dtype == torch.uint8 and images.shape[1:] == (1, 32, 32)
    # zero padding, digits untouched: the 2-pixel border is empty and the centre is torchvision's image
    raw = torchvision.datasets.MNIST(str(data_root), train=True, download=False).data
    assert int(images[:, :, :2].sum()) == 0 and int(images[:, :, :, -2:].sum()) == 0
    assert torch.equal(images[:, 0, 2:30, 2:30], raw)


def test_forget_retain_split_is_by_class_and_deterministic(mnist_small):
    for split in ("train", "test"):
        forget, retain = mnist_small.indices(split, 6)
        labels = (mnist_small.train if split == "train" else mnist_small.test).labels
        assert (labels[forget] == 6).all() and (labels[retain] != 6).all()
        assert len(forget) + len(retain) == len(labels)
        assert torch.equal(forget, mnist_small.indices(split, 6)[0])
    assert len(mnist_small.indices("train", 6)[0]) == 100 and len(mnist_small.indices("test", 6)[0]) == 50


def test_first_per_class_keeps_order():
    labels = torch.tensor([3, 1, 3, 3, 1, 0, 1])
    assert _first_per_class(labels, 2).tolist() == [0, 1, 2, 4, 5]


def test_normalisation_matches_the_formula():
    images = torch.tensor([[[[0, 255], [51, 128]]]], dtype=torch.uint8)
    src = TensorSource(images, torch.tensor([0]), (0.1307,), (0.3081,))
    x, y = next(src.load([torch.tensor([0])]))
    expected = (images.float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(x, expected, atol=1e-6) and y.tolist() == [0]


def test_batches_count_what_is_drawn(mnist_small):
    tracker = Tracker(len(mnist_small.train.labels))
    retain = mnist_small.sample_set("train", "retain", 2, tracker)
    assert len(retain) == 900 and tracker.draws == 0
    sub = retain.per_class(10)
    seen = [b.y for b in sub.batches(32, shuffle=True, generator=torch.Generator().manual_seed(0))]
    assert sum(len(y) for y in seen) == 90 and 2 not in torch.cat(seen).tolist()
    assert tracker.distinct == 90 and tracker.draws == 90
    for _ in sub.batches(64):
        pass
    assert tracker.distinct == 90 and tracker.draws == 180
    # stopping early counts only what was drawn
    forget_tracker = Tracker(len(mnist_small.train.labels))
    forget = mnist_small.sample_set("train", "forget", 2, forget_tracker)
    next(iter(forget.batches(30)))
    assert (forget_tracker.distinct, forget_tracker.draws) == (30, 30)
    for _ in forget.batches(30, shuffle=True, generator=torch.Generator().manual_seed(0)):
        pass
    assert (forget_tracker.distinct, forget_tracker.draws) == (100, 130)
    assert tracker.distinct == 90  # the retain tracker is untouched by forget draws


def test_union_keeps_parts_apart(mnist_small):
    forget = mnist_small.sample_set("train", "forget", 2)
    retain = mnist_small.sample_set("train", "retain", 2).per_class(5)
    union = forget + retain
    assert len(union) == 100 + 45
    batches = list(union.batches(40, shuffle=True, generator=torch.Generator().manual_seed(1)))
    y, part = torch.cat([b.y for b in batches]), torch.cat([b.part for b in batches])
    assert ((y == 2) == (part == 0)).all() and int((part == 1).sum()) == 45
    assert [len(b.y) for b in batches] == [40, 40, 40, 25]


def test_random_crop_flip_shapes_and_content():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    g = torch.Generator().manual_seed(0)
    out = _random_crop_flip(x, "crop", g, pad=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    # every output pixel is an input pixel of the same image, or padding
    for i in range(2):
        assert set(out[i].unique().tolist()) <= set(x[i].unique().tolist()) | {0}
    same = _random_crop_flip(x, "crop", torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(out, same)


def test_withheld_raises_on_any_use():
    w = Withheld("retain", "pbu")
    for use in (lambda: len(w), lambda: list(w), lambda: w.batches(8), lambda: w.labels, lambda: bool(w),
                lambda: w[0]):
        with pytest.raises(PermissionError, match="pbu.*retain"):
            use()


def test_missing_data_offline_is_one_clear_error(tmp_path):
    with pytest.raises(DataUnavailable) as err:
        load_data(DataConfig("mnist"), tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path) in msg and "MNIST/raw" in msg and "\n" not in msg


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    def no_network(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error Name or service not known>")
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    with pytest.raises(DataUnavailable, match="download failed .*urlopen error.*MNIST/raw"):
        load_data(DataConfig("fashion_mnist" if False else "mnist", image_size=31), tmp_path, download=True)


def test_cifar100_loads_from_real_format_pickles(tmp_path, monkeypatch):
    md5 = write_cifar100(tmp_path)
    # torchvision checks the md5 of the real files; point it at the generated ones (loading code unchanged)
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "train_list", [["train", md5["train"]]])
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "test_list", [["test", md5["test"]]])
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "meta", {"filename": "meta", "key": "fine_label_names",
                                                                 "md5": md5["meta"]})
    data = load_data(DataConfig("cifar100"), tmp_path, download=False)
    assert data.spec.num_classes == 100 and data.image_size == 32
    assert data.train.images.shape == (300, 3, 32, 32) and len(data.test.labels) == 200
    # the class is written into the first 16 red pixels of each image: it survives the HWC→CHW conversion
    assert torch.equal(data.train.images[:, 0, 0, :16].long(), data.train.labels[:, None].expand(-1, 16))
    forget, retain = data.indices("train", 42)
    assert len(forget) == 3 and len(retain) == 297
    batch = next(data.sample_set("train", "forget", 42).batches(8, augment="crop_flip",
                                                                generator=torch.Generator().manual_seed(0)))
    assert batch.x.shape == (3, 3, 32, 32) and batch.x.dtype == torch.float32 and (batch.y == 42).all()


def test_cifar100_missing_offline(tmp_path):
    with pytest.raises(DataUnavailable, match="cifar100 not found.*cifar-100-python"):
        load_data(DataConfig("cifar100"), tmp_path, download=False)


def test_food101_streams_from_real_layout(tmp_path):
    write_food101(tmp_path)
    data = load_data(DataConfig("food101", image_size=32), tmp_path, download=False, num_workers=2)
    assert data.spec.num_classes == 101 and len(data.train.labels) == 202 and len(data.test.labels) == 101
    forget = data.sample_set("train", "forget", 30)
    x, y, _ = next(forget.batches(8))
    assert x.shape == (2, 3, 32, 32) and (y == 30).all()
    # the image colour encodes the class: the first channel is k*2 (JPEG is lossy: allow a few levels)
    mean_red = (x[:, 0] * 0.229 + 0.485).mean() * 255
    assert abs(float(mean_red) - 60) < 4
    # training batches go through the augmenting transform, in workers, and still cover every sample once
    all_train = data.sample_set("train")
    seen = torch.cat([b.y for b in all_train.batches(64, shuffle=True, augment="crop_flip",
                                                     generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == sorted(data.train.labels.tolist())
    capped = load_data(DataConfig("food101", image_size=32, train_per_class=1), tmp_path, download=False,
                       num_workers=0)
    assert len(capped.train.labels) == 101 and torch.equal(capped.train.labels, torch.arange(101))


def test_the_data_root_is_found_by_one_rule(monkeypatch, tmp_path):
    """$UNLEARNBENCH_DATA; else ../shared/data beside the checkout when it holds MNIST; else the per-user cache.
    The CLI (--data-root's default), the Python API and `make` all use this function."""
    from unlearnbench import runtime
    from unlearnbench.api import data_root
    monkeypatch.setenv("UNLEARNBENCH_DATA", str(tmp_path / "mine"))
    assert runtime.default_data_root() == tmp_path / "mine" == data_root()
    monkeypatch.delenv("UNLEARNBENCH_DATA")
    beside = Path(runtime.__file__).resolve().parent.parent.parent / "shared" / "data"
    if (beside / runtime.MNIST_MARK).is_file():  # this workplace: the data beside the checkout
        assert runtime.default_data_root() == beside
    monkeypatch.setattr(runtime, "MNIST_MARK", Path("no") / "such" / "file")  # nothing beside it: the cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtime.default_data_root() == tmp_path / "xdg" / "unlearnbench" / "data"
