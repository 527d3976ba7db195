"""Data sets by name, the forget/retain split, and the sample sets handed to training loops and methods.

Small data sets (MNIST, Fashion-MNIST, CIFAR-100) are read once through torchvision's own classes and held as uint8
tensors on the device; batches are gathered by index and normalised on the fly, so an epoch has no per-sample Python.
Food-101 (101k JPEGs) streams through a DataLoader with workers and torchvision transforms.

A `SampleSet` is a view of some samples of one split. It is the only way a method touches data, so it also records
which samples were drawn: the runner reports `forget_samples_seen` / `retain_samples_seen` from it.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import DataConfig, TrainRecipe
from .errors import DataUnavailable, UsageError, did_you_mean


# --------------------------------------------------------------------------------------------------------------------
# sources: where batches come from
# --------------------------------------------------------------------------------------------------------------------
class Source(Protocol):
    labels: Tensor  # int64 on the CPU, one per sample

    def load(self, index_batches: Sequence[Tensor], augment: str, generator: torch.Generator | None
             ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (normalised float images, labels) on the device, one pair per index batch, in order."""


def _random_crop_flip(x: Tensor, augment: str, generator: torch.Generator | None, pad: int = 4) -> Tensor:
    """Random crop with `pad` pixels of zero padding (and optional horizontal flip), vectorised over the batch."""
    b, _, h, w = x.shape
    off = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(x.device)
    rows = off[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = off[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
    x = padded[torch.arange(b, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    x = x.permute(0, 3, 1, 2)
    if augment == "crop_flip":
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x.contiguous()


class Normalizer:
    """uint8 images → float, `(x/255 - mean)/std` as one fused multiply-add on the device."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device) -> None:
        shape = (1, len(mean), 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(shape)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -torch.tensor(mean, dtype=torch.float32, device=device).view(shape) / std_t

    def __call__(self, x: Tensor) -> Tensor:
        return x if x.is_floating_point() else torch.addcmul(self.shift, x.float(), self.scale)


class TensorSource:
    """Images held as one tensor on the device (uint8, or float already normalised such as UNSIR's noise)."""

    def __init__(self, images: Tensor, labels: Tensor, mean: Sequence[float], std: Sequence[float],
                 device: torch.device | str = "cpu") -> None:
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to("cpu", torch.int64)
        self._labels_dev = self.labels.to(self.device)
        self._normalize = Normalizer(mean, std, self.device)

    def load(self, index_batches: Sequence[Tensor], augment: str = "none",
             generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        for idx in index_batches:
            idx = idx.to(self.device, non_blocking=True)
            x = self.images.index_select(0, idx)
            if augment != "none":
                x = _random_crop_flip(x, augment, generator)
            yield self._normalize(x), self._labels_dev.index_select(0, idx)


class StreamSource:
    """Images decoded from files by DataLoader workers (Food-101); `index_map` selects a subset of the files."""

    def __init__(self, train_dataset: torch.utils.data.Dataset, eval_dataset: torch.utils.data.Dataset,
                 labels: Tensor, mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu",
                 num_workers: int = 4, index_map: Tensor | None = None) -> None:
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        self.index_map = index_map if index_map is not None else torch.arange(len(labels))
        self.labels = labels.to("cpu", torch.int64)[self.index_map]
        self.device = torch.device(device)
        self.num_workers = num_workers
        self._normalize = Normalizer(mean, std, self.device)

    def load(self, index_batches: Sequence[Tensor], augment: str = "none",
             generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        dataset = self.train_dataset if augment != "none" else self.eval_dataset
        seed = int(torch.randint(2**62, (1,), generator=generator)) if generator is not None else 0
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=[self.index_map[b].tolist() for b in index_batches],
            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(seed))
        for x, y in loader:
            x = x.to(self.device, non_blocking=True)
            yield self._normalize(x), y.to(self.device)


# --------------------------------------------------------------------------------------------------------------------
# sample sets: what methods and loops see
# --------------------------------------------------------------------------------------------------------------------
class Tracker:
    """Which samples of one role (forget or retain) were drawn, and how many draws in all."""

    def __init__(self, size: int) -> None:
        self.mask = torch.zeros(size, dtype=torch.bool)
        self.draws = 0

    def mark(self, index: Tensor) -> None:
        self.mask[index] = True
        self.draws += len(index)

    @property
    def distinct(self) -> int:
        return int(self.mask.sum())


class Batch(NamedTuple):
    x: Tensor  # normalised images on the device
    y: Tensor  # labels on the device
    part: Tensor  # which part of a union each sample came from (0 for a plain set)


@dataclass(frozen=True)
class _Part:
    source: Source
    index: Tensor  # positions into the source
    tracker: Tracker | None


def _first_per_class(labels: Tensor, n: int) -> Tensor:
    """Positions of the first `n` samples of each class, in their original order (deterministic)."""
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    starts = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    rank = torch.arange(len(labels)) - starts
    return torch.sort(order[rank < n]).values


class SampleSet:
    """Some samples of one or more sources; iterating it draws (and counts) them."""

    def __init__(self, parts: Sequence[_Part]) -> None:
        self._parts = [p for p in parts]

    @classmethod
    def of(cls, source: Source, index: Tensor | None = None, tracker: Tracker | None = None) -> "SampleSet":
        index = torch.arange(len(source.labels)) if index is None else index.to("cpu", torch.int64)
        return cls([_Part(source, index, tracker)])

    def __len__(self) -> int:
        return sum(len(p.index) for p in self._parts)

    def __add__(self, other: "SampleSet") -> "SampleSet":
        """The union, parts kept apart: `Batch.part` tells a sample's origin (Bad Teaching, UNSIR impair)."""
        return SampleSet(self._parts + other._parts)

    @property
    def labels(self) -> Tensor:
        return torch.cat([p.source.labels[p.index] for p in self._parts]) if self._parts else torch.zeros(0).long()

    def subset(self, positions: Tensor) -> "SampleSet":
        """The samples at `positions` (into this set); draws still count toward the parent's tracker."""
        positions = torch.as_tensor(positions, dtype=torch.int64)
        parts, start = [], 0
        for p in self._parts:
            mine = positions[(positions >= start) & (positions < start + len(p.index))] - start
            if len(mine):
                parts.append(_Part(p.source, p.index[mine], p.tracker))
            start += len(p.index)
        return SampleSet(parts)

    def per_class(self, n: int) -> "SampleSet":
        """The first `n` samples of every class present, in data-set order."""
        return self.subset(_first_per_class(self.labels, n))

    def random_subset(self, fraction: float, generator: torch.Generator) -> "SampleSet":
        if not 0 < fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        k = round(fraction * len(self))
        return self.subset(torch.sort(torch.randperm(len(self), generator=generator)[:k]).values)

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False, augment: str = "none") -> Iterator[Batch]:
        """Yield batches on the device; the per-batch work is index arithmetic, never a per-sample loop."""
        n = len(self)
        if n == 0:
            return
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        chunks = list(order.split(batch_size))
        if drop_last and len(chunks) > 1 and len(chunks[-1]) < batch_size:
            chunks.pop()
        bounds = torch.tensor([len(p.index) for p in self._parts]).cumsum(0)
        starts = bounds - torch.tensor([len(p.index) for p in self._parts])
        # per part: the source positions each chunk needs from it (empty if none)
        plan = []
        for c in chunks:
            pid = torch.bucketize(c, bounds, right=True)
            plan.append([(k, p.index[c[pid == k] - starts[k]]) for k, p in enumerate(self._parts)
                         if bool((pid == k).any())])
        streams = [p.source.load([idx for row in plan for k2, idx in row if k2 == k], augment, generator)
                   for k, p in enumerate(self._parts)]
        for row in plan:
            xs, ys, ks = [], [], []
            for k, idx in row:
                x, y = next(streams[k])
                tracker = self._parts[k].tracker
                if tracker is not None:
                    tracker.mark(idx)
                xs.append(x)
                ys.append(y)
                ks.append(torch.full((len(y),), k, dtype=torch.int64, device=y.device))
            if len(xs) == 1:
                yield Batch(xs[0], ys[0], ks[0])
            else:
                yield Batch(torch.cat(xs), torch.cat(ys), torch.cat(ks))


class Withheld:
    """Stands in for data a method did not declare: any use raises, so blindness is enforced, not promised."""

    def __init__(self, role: str, method: str) -> None:
        object.__setattr__(self, "_msg", f"method {method!r} did not declare that it needs the {role} set")

    def _deny(self, *_a: object, **_k: object) -> None:
        raise PermissionError(object.__getattribute__(self, "_msg"))

    def __getattr__(self, name: str) -> None:
        self._deny()

    __len__ = __iter__ = __bool__ = __getitem__ = __add__ = __radd__ = _deny


# --------------------------------------------------------------------------------------------------------------------
# the registry of data sets
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    in_chans: int
    native_size: int
    image_size: int  # default model input size
    mean: tuple[float, ...]
    std: tuple[float, ...]
    recipe: TrainRecipe  # default recipe for the original model (source in the registry entry)
    streamed: bool
    files: str  # where the files go, for the offline message
    open: Callable[[Path, str, bool], object]  # (root, split, download) -> torchvision data set


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


def get_dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise did_you_mean("dataset", name, list(DATASETS))
    return DATASETS[name]


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def _torchvision(cls_name: str, **fixed: object) -> Callable[[Path, str, bool], object]:
    def open_(root: Path, split: str, download: bool, **kw: object) -> object:
        from torchvision import datasets
        cls = getattr(datasets, cls_name)
        if cls_name == "Food101":
            return cls(str(root), split=split, download=download, **fixed, **kw)
        return cls(str(root), train=split == "train", download=download, **fixed, **kw)
    return open_


# ours (docs/data_and_models.md, "Training recipes")
_MNIST_RECIPE = TrainRecipe(optimizer="adam", lr=1e-3, epochs=2, batch_size=128, scheduler="cosine")
register_dataset(DatasetSpec(
    "mnist", 10, 1, 28, 32, (0.1307,), (0.3081,), _MNIST_RECIPE, False,
    "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte", _torchvision("MNIST")))
register_dataset(DatasetSpec(
    "fashion_mnist", 10, 1, 28, 32, (0.2860,), (0.3530,), _MNIST_RECIPE, False,
    "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte", _torchvision("FashionMNIST")))
register_dataset(DatasetSpec(
    "cifar100", 100, 3, 32, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    TrainRecipe(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, epochs=30, batch_size=128,
                scheduler="cosine", augment="crop_flip"), False,
    "cifar-100-python/{train,test,meta} (the python pickles)", _torchvision("CIFAR100")))
register_dataset(DatasetSpec(
    "food101", 101, 3, 512, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
    TrainRecipe(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, epochs=30, batch_size=128,
                scheduler="cosine", augment="crop_flip"), True,
    "food-101/images/<class>/<id>.jpg and food-101/meta/{train,test}.json", _torchvision("Food101")))


# --------------------------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------------------------
#: The data sets stored as idx files (MNIST's format): their folder under the data root.
IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_problem(path: Path, ndim: int, item_shape: tuple[int, ...]) -> tuple[int | None, str | None]:
    """(item count, None) for a sound idx file of unsigned bytes with `ndim` dimensions, the last ones `item_shape`;
    (None, what is wrong) otherwise: its magic number, its dtype byte, its shape, or its size against its header."""
    from .files import regular_file_problem
    if (bad := regular_file_problem(path)) is not None:
        return None, bad
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4 + 4 * ndim)
    if len(header) < 4 or header[:2] != b"\0\0" or header[3] != ndim:
        expected = 0x800 | ndim
        return None, (f"is not an idx file of {ndim} dimension(s): magic number 0x{header[:4].hex() or '(none)'}, "
                      f"expected 0x{expected:08x}")
    if header[2] != 0x08:
        return None, f"has dtype byte 0x{header[2]:02x}, expected 0x08 (unsigned bytes)"
    if len(header) < 4 + 4 * ndim:
        return None, f"is truncated: {size} bytes, shorter than its header"
    dims = [int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if tuple(dims[1:]) != item_shape:
        return None, f"holds items of shape {tuple(dims[1:])}, expected {item_shape}"
    want = 4 + 4 * ndim + dims[0] * (item_shape[0] * item_shape[1] if item_shape else 1)
    if size < want:
        return None, f"is truncated: {size} bytes, its header says {want}"
    if size > want:
        return None, f"has {size - want} bytes more than its header says ({want})"
    return dims[0], None


def check_idx_files(spec: DatasetSpec, root: Path, split: str) -> None:
    """MNIST-format files that are there must be sound (magic, dtype, shape, size, as many labels as images): one
    UsageError naming the file and what is wrong. Missing files are left to the download / "not found" path."""
    folder = IDX_FOLDERS.get(spec.name)
    if folder is None:
        return
    images, labels = (Path(root) / folder / "raw" / name for name in _IDX_FILES[split])
    counts = []
    for path, ndim, shape in ((images, 3, (spec.native_size, spec.native_size)), (labels, 1, ())):
        if not os.path.lexists(path):
            return
        n, problem = idx_problem(path, ndim, shape)
        if problem is not None:
            raise UsageError(f"{spec.name}: {path} {problem}")
        counts.append(n)
    if counts[0] != counts[1]:
        raise UsageError(f"{spec.name}: {images} holds {counts[0]} images but {labels} {counts[1]} labels")


def _open(spec: DatasetSpec, root: Path, split: str, download: bool, **kw: object) -> object:
    """Open a torchvision data set; missing files become one clear DataUnavailable, not a traceback."""
    check_idx_files(spec, root, split)
    try:
        return spec.open(root, split, False, **kw)
    except (RuntimeError, FileNotFoundError, OSError):
        pass
    where = f"put {spec.files} under {root}, or point --data-root / UNLEARNBENCH_DATA at a copy"
    if not download:
        raise DataUnavailable(f"{spec.name} not found under {root} (downloads are off): {where}")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return spec.open(root, split, True, **kw)
    except Exception as exc:  # noqa: BLE001 - any failure of the download is the same message to the user
        reason = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else type(exc).__name__
        raise DataUnavailable(f"{spec.name} not found under {root} and the download failed ({reason}): {where}"
                              ) from None


def _resize(images: Tensor, native: int, size: int, default: int) -> Tensor:
    """MNIST-size images are zero-padded to the default (28→32, the LeNet-5 convention); other sizes resize."""
    if size == native:
        return images
    if size == default and size > native and (size - native) % 2 == 0:
        p = (size - native) // 2
        return F.pad(images, (p, p, p, p))
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=size < native,
                        align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


@functools.lru_cache(maxsize=4)
def _native_tensors(name: str, root: str, split: str, download: bool, where: str) -> tuple[Tensor, Tensor]:
    """`where`: the root's absolute path, which the memo is keyed by (a relative root names another directory in
    another working directory)."""
    spec = DATASETS[name]
    ds = _open(spec, Path(root), split, download)
    images = torch.as_tensor(ds.data)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)  # NCHW uint8
    return images.contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64)


def memory_available() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_resize_memory(name: str, split: str, n: int, chans: int, size: int, native: int) -> None:
    """Resizing n images to size×size holds them as floats twice over (input and output of the interpolation) and as
    bytes: refuse, before allocating, what would not fit in the memory available."""
    if size == native:
        return
    need = n * chans * size * size * (4 + 4 + 1)
    free = memory_available()
    if free is not None and need > free:
        raise UsageError(f"data: {name} {split} at image_size={size} needs ~{need / 2**30:.1f} GiB to resize its {n} "
                         f"images, {free / 2**30:.1f} GiB available: lower image_size, or keep fewer images "
                         f"(train_per_class / test_per_class)")


@functools.lru_cache(maxsize=8)
def _host_tensors(name: str, root: str, split: str, download: bool, size: int, cap: int, where: str
                  ) -> tuple[Tensor, Tensor]:
    """The split as uint8 NCHW at `size`; with `cap`, the first `cap` of each class, cut before resizing (resizing
    is per image, so cutting first gives the same images at a fraction of the memory)."""
    spec = DATASETS[name]
    images, labels = _native_tensors(name, root, split, download, where)
    if cap:
        keep = _first_per_class(labels, cap)
        images, labels = images[keep], labels[keep]
    check_resize_memory(name, split, len(labels), images.shape[1], size, spec.native_size)
    return _resize(images, spec.native_size, size, spec.image_size), labels


def _stream_transforms(size: int) -> tuple[object, object]:
    from torchvision import transforms as T
    train = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.PILToTensor()])
    evaluate = T.Compose([T.Resize(round(size / 0.875)), T.CenterCrop(size), T.PILToTensor()])
    return train, evaluate


@dataclass
class DataBundle:
    """Both splits of one data set, ready on the device, plus the spec they follow."""

    spec: DatasetSpec
    config: DataConfig
    image_size: int
    train: Source
    test: Source

    def indices(self, split: str, forget_class: int) -> tuple[Tensor, Tensor]:
        """(forget, retain) positions in `split`: by class, in data-set order, deterministic."""
        labels = (self.train if split == "train" else self.test).labels
        is_forget = labels == forget_class
        return is_forget.nonzero().flatten(), (~is_forget).nonzero().flatten()

    def sample_set(self, split: str, part: str = "all", forget_class: int | None = None,
                   tracker: Tracker | None = None) -> SampleSet:
        source = self.train if split == "train" else self.test
        if part == "all":
            return SampleSet.of(source, None, tracker)
        forget, retain = self.indices(split, int(forget_class))  # type: ignore[arg-type]
        return SampleSet.of(source, forget if part == "forget" else retain, tracker)


def check_forget_class(spec: DatasetSpec, forget_class: int) -> None:
    if not 0 <= forget_class < spec.num_classes:
        raise UsageError(f"forget class {forget_class} is out of range for {spec.name} "
                         f"(classes 0..{spec.num_classes - 1})")


def resolve_image_size(spec: DatasetSpec, cfg: DataConfig) -> int:
    return cfg.image_size or spec.image_size


def load_data(cfg: DataConfig, root: Path, *, download: bool = True, device: torch.device | str = "cpu",
              num_workers: int = 4) -> DataBundle:
    """Load both splits (memoised per process); `train_per_class`/`test_per_class` keep the first n per class."""
    spec = get_dataset_spec(cfg.name)
    size = resolve_image_size(spec, cfg)
    caps = {"train": cfg.train_per_class, "test": cfg.test_per_class}
    sources: dict[str, Source] = {}
    for split in ("train", "test"):
        if spec.streamed:
            train_tf, eval_tf = _stream_transforms(size)
            tr = _open(spec, root, split, download, transform=train_tf)
            ev = _open(spec, root, split, download, transform=eval_tf)
            labels = torch.as_tensor(ev._labels, dtype=torch.int64)  # Food101 keeps its targets here
            keep = _first_per_class(labels, caps[split]) if caps[split] else None
            sources[split] = StreamSource(tr, ev, labels, spec.mean, spec.std, device, num_workers, keep)
        else:
            images, labels = _host_tensors(spec.name, str(root), split, download, size, caps[split],
                                           os.path.abspath(root))
            sources[split] = TensorSource(images, labels, spec.mean, spec.std, device)
        found = int(sources[split].labels.max()) + 1 if len(sources[split].labels) else 0
        if found > spec.num_classes:
            raise UsageError(f"{spec.name} {split} split has labels up to {found - 1}, expected < {spec.num_classes}")
    return DataBundle(spec, cfg, size, sources["train"], sources["test"])


def train_sizes(root: Path, *, download: bool = False) -> Callable[[DataConfig, int], tuple[int, int]]:
    """(forget, retain) training images of a data config's forget class, read from the data under `root`: what a
    budget rule that counts steps needs at plan time. The labels are read once per (root, config): a sweep asks for
    every cell."""

    def sizes(cfg: DataConfig, forget_class: int) -> tuple[int, int]:
        counts = _class_counts(Path(root), cfg, download)
        return counts[forget_class], sum(counts) - counts[forget_class]

    return sizes


@functools.lru_cache(maxsize=None)
def _class_counts(root: Path, cfg: DataConfig, download: bool) -> tuple[int, ...]:
    labels = load_data(cfg, root, download=download).train.labels
    return tuple(int(n) for n in torch.bincount(torch.as_tensor(labels), minlength=int(labels.max()) + 1))
