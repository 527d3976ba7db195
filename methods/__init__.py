"""The unlearning methods, one module each. Importing this package registers all of them.

Adding a method is adding a module here that decorates its function with `register_method`, naming its display name,
group and place in the group (see `unlearnbench.method` for the contract); `unlearnbench.registry` loads this package
on its first lookup.
"""
import importlib
import pkgutil

for _name in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_name}")
