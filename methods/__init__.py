"""The unlearning methods, one module each. Importing this package registers all of them.

Adding a method is adding a module here that decorates its function with `register_method`
(see `unlearnbench.method` for the contract).
"""
import importlib
import pkgutil

from unlearnbench.method import UnlearnTask, get_method, list_methods, register_method

#: Registration order is the column order of the report.
ORDER = ("original", "retrain", "finetune", "fast_effective", "bad_teaching", "pbu", "ssd", "lfssd", "scrub", "neggrad_plus")

for _name in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["ORDER", "UnlearnTask", "get_method", "list_methods", "register_method"]
