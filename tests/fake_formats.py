"""Small data sets written in the real on-disk formats of CIFAR-100 (python pickles) and Food-101 (JPEG + meta)."""
from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np


def write_cifar100(root: Path, per_class_train: int = 3, per_class_test: int = 2, seed: int = 0) -> dict[str, str]:
    """cifar-100-python/{train,test,meta} as torchvision reads them; returns each file's md5."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    md5 = {}
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        labels = np.repeat(np.arange(100), n)
        data = rng.integers(0, 256, size=(len(labels), 3 * 32 * 32), dtype=np.uint8)
        # make each image's mean track its class so that the content is checkable after loading
        data[:, :16] = labels[:, None].astype(np.uint8)
        entry = {"filenames": [f"img_{i}.png" for i in range(len(labels))], "batch_label": f"{split} batch",
                 "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist(), "data": data}
        (folder / split).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"fine_label_names": [f"class_{i}" for i in range(100)],
            "coarse_label_names": [f"super_{i}" for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    for name in ("train", "test", "meta"):
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return md5


def write_food101(root: Path, per_class_train: int = 2, per_class_test: int = 1, size: int = 40) -> None:
    """food-101/images/<class>/<id>.jpg and food-101/meta/{train,test}.json, 101 classes."""
    from PIL import Image

    base = root / "food-101"
    classes = [f"dish_{i:03d}" for i in range(101)]
    meta: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for k, cls in enumerate(classes):
        (base / "images" / cls).mkdir(parents=True, exist_ok=True)
        for split, n in (("train", per_class_train), ("test", per_class_test)):
            meta[split][cls] = []
            for i in range(n):
                ident = f"{split}{i}"
                colour = (k * 2 % 256, (k * 7) % 256, 255 - k)
                Image.new("RGB", (size + k % 5, size), colour).save(base / "images" / cls / f"{ident}.jpg")
                meta[split][cls].append(f"{cls}/{ident}")
    (base / "meta").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        (base / "meta" / f"{split}.json").write_text(json.dumps(meta[split]))
    (base / "meta" / "classes.txt").write_text("\n".join(classes) + "\n")
