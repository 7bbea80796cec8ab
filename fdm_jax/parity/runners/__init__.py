"""Importing this package registers every parity runner: each module in this folder is imported,
so a port adds a runner by adding a file (no shared list to edit).

A runner module that fails to import does not take the others down: its error is kept in
`IMPORT_ERRORS` (module -> message) and the harness reports it for fixtures left without a runner.
"""

import importlib
import pkgutil
import traceback

IMPORT_ERRORS: dict[str, str] = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    try:
        importlib.import_module(f"{__name__}.{_info.name}")
    except Exception as e:  # noqa: BLE001  (reported by the harness, never swallowed)
        IMPORT_ERRORS[_info.name] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
