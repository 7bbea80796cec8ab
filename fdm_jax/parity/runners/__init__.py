"""Importing this package registers every parity runner: each module in this folder is imported,
so a port adds a runner by adding a file (no shared list to edit)."""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")
