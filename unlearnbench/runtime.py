"""Where and how computation runs: device, precision, default directories, versions for provenance."""
from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import UsageError


def default_dir(env: str, sub: str) -> Path:
    """$env if set, else a per-user cache directory (XDG_CACHE_HOME or ~/.cache)/unlearnbench/sub."""
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "unlearnbench" / sub
    return home_dir(env) / ".cache" / "unlearnbench" / sub


def home_dir(env: str) -> Path:
    """The user's home directory: $HOME when set and not empty, else the password database's; a UsageError naming
    what to set when there is none (an empty HOME would otherwise put the cache under /.cache)."""
    home = os.environ.get("HOME")
    if not home:
        try:
            import pwd
            home = pwd.getpwuid(os.getuid()).pw_dir
        except (ImportError, KeyError):  # no Unix password database, or a uid without an entry
            home = ""
    if not home or not os.path.isabs(home):
        how = "empty" if "HOME" in os.environ else "unset"
        raise UsageError(f"no home directory for the default cache and data directories (HOME is {how} and the "
                         f"password database has none): set {env} or XDG_CACHE_HOME, or pass --cache-dir and "
                         f"--data-root")
    return Path(home)


#: The file whose presence marks a data folder that holds MNIST (torchvision's layout).
MNIST_MARK = Path("MNIST") / "raw" / "train-images-idx3-ubyte"


def default_data_root() -> Path:
    """Where data sets are found, one rule for the CLI, the Python API and `make`: $UNLEARNBENCH_DATA if set; else
    `../shared/data` beside the source checkout when it holds MNIST (a workplace that keeps data next to its
    checkouts); else the per-user cache (XDG_CACHE_HOME or ~/.cache)/unlearnbench/data, where torchvision downloads."""
    if os.environ.get("UNLEARNBENCH_DATA"):
        return Path(os.environ["UNLEARNBENCH_DATA"]).expanduser()
    beside = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    if (beside / MNIST_MARK).is_file():
        return beside
    return default_dir("UNLEARNBENCH_DATA", "data")


def default_cache_dir() -> Path:
    return default_dir("UNLEARNBENCH_CACHE", "checkpoints")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):  # torch's message lists every device type it knows
        raise UsageError(f"bad device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r} asked for, but CUDA is not available here")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UsageError(f"device {name!r} asked for, but this machine has {count} CUDA device(s) "
                             f"(cuda:0..cuda:{count - 1})")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(f"device {name!r} asked for, but MPS (Apple's GPU) is not available here; use cpu "
                             "or auto")
        return device
    raise UsageError(f"device {name!r} is not one this benchmark runs on; use auto, cpu, cuda, cuda:N or mps")


@dataclass(frozen=True)
class Runtime:
    """How to run on the chosen device; handed to every loop so that precision is applied in one place."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False
    num_workers: int = 4
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision == "fp16" and self.device.type != "cuda":
            raise UsageError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def for_training(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module a training loop calls: `model` itself, or a compiled view sharing its parameters."""
        return torch.compile(model) if self.compile else model

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch's global RNG for model initialisation; loops use their own explicit generators."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to `n` within the block (0: left as it is), then restored."""
    before = torch.get_num_threads()
    if n > 0 and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


#: Generator salt of the data order of the original's training; retrain reuses it so that only D_f differs.
DATA_ORDER = 1


def generator(seed: int, salt: int = 0) -> torch.Generator:
    """A CPU generator for one purpose (data order, noise, sampling); `salt` separates purposes."""
    return torch.Generator().manual_seed(seed * 1_000_003 + salt)


@lru_cache(maxsize=1)
def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    import numpy
    import timm
    import torchvision

    from . import __version__
    return {"unlearnbench": __version__, "git": _git_commit(), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__,
            "numpy": numpy.__version__}


def describe_device(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device),
                "capability": ".".join(map(str, torch.cuda.get_device_capability(device))),
                "cuda": torch.version.cuda}
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu)
        flags = next((ln.split(":", 1)[1].split() for ln in info if ln.startswith("flags")), [])
    except OSError:
        pass
    # the vector units decide speed and, at a fixed thread count, which bits CPU training produces
    vector = sorted(f for f in flags if f in VECTOR_FLAGS)
    return {"type": "cpu", "name": cpu, "threads": torch.get_num_threads(), "cores": os.cpu_count(),
            "vector_flags": vector}


#: The /proc/cpuinfo flags that tell hosts apart for speed and numerics.
VECTOR_FLAGS = frozenset({"avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_bf16",
                          "amx_tile", "amx_int8"})
