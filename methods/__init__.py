"""The unlearning methods, one module each. Importing this package registers all of them.

Adding a method is adding a module here that decorates its function with `register_method`
(see `unlearnbench.method` for the contract).
"""
import importlib
import pkgutil

from unlearnbench.method import UnlearnTask, get_method, list_methods, register_method

#: The report's column groups, in the report's column order (`ORDER`).
GROUPS = (
    ("the paper's methods", ("original", "retrain", "finetune", "fast_effective", "bad_teaching", "pbu")),
    ("the retain-free rivals", ("grad_ascent", "boundary_shrink", "boundary_expand", "jit", "delete", "scar")),
    ("the baselines that use the retain set",
     ("ssd", "lfssd", "scrub", "neggrad_plus", "salun", "l1_sparse", "random_label")),
)
#: Registration order is the column order of the report.
ORDER = tuple(name for _, names in GROUPS for name in names)

for _name in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["GROUPS", "ORDER", "UnlearnTask", "get_method", "list_methods", "register_method"]
