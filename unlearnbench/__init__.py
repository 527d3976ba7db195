"""unlearnbench: a benchmark harness for class unlearning in deep image classifiers.

The Python API (docs/api.md), imported on first use so that `import unlearnbench` stays light:

    import unlearnbench as ub
    record = ub.run_cell(dataset="mnist", model="resnet18", forget_class=2, method="pbu", hp={"beta": 90})
    ub.run_sweep("benchmarks/mnist_quick.toml"); df = ub.load_results("results/mnist_quick")
    ub.build_report("results/mnist_quick"); ub.list_methods(); ub.get_method("pbu").defaults

The unlearning methods live in the top-level `methods/` folder and are the subpackage `unlearnbench.methods`: an
install maps the folder there (setup.cfg, `package_dir`), so no `methods` package in a user's working directory can
stand in for them. Run from a source checkout (`python -m unlearnbench.run` in the repository, pytest), this package
finds `unlearnbench.methods` in that folder itself, through the finder below.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

__version__ = "0.1.0"

#: The API's names, each from `unlearnbench.api` when first used (torch, timm and pandas load only then).
_API = ("run_cell", "run_sweep", "load_results", "build_report", "list_methods", "get_method", "list_datasets",
        "list_models", "data_root", "register_method", "register_variant", "register_dataset", "UsageError")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})

_HERE = Path(__file__).resolve().parent
_SOURCE_METHODS = _HERE.parent / "methods"


class _SourceTreeMethods(importlib.abc.MetaPathFinder):
    """Finds `unlearnbench.methods` in the checkout's `methods/` folder (and nothing else)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname != f"{__name__}.methods":
            return None
        # the path finder looks a name's last part ("methods") up in the folders given: the checkout's root
        return importlib.machinery.PathFinder.find_spec(fullname, [str(_SOURCE_METHODS.parent)])


# A source checkout: no unlearnbench/methods/ here, the methods beside this package. First in line, so that an
# editable install of another checkout (its finder maps unlearnbench.methods to *its* folder) cannot answer instead.
if not (_HERE / "methods").is_dir() and (_SOURCE_METHODS / "__init__.py").is_file() \
        and not any(isinstance(f, _SourceTreeMethods) for f in sys.meta_path):
    sys.meta_path.insert(0, _SourceTreeMethods())
