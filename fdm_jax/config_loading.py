"""Loads ml_collections config files the way `ml_collections.config_flags` does.

A config spec is a path to a Python file that defines `get_config`, optionally followed by
`:arg`, e.g. `configs/paris.py` or `configs/paris.py:tiny`. The file is imported by path, and
`get_config(arg)` is called (`get_config()` when no `:arg` is given, or when the function takes no
argument at all).

Relative paths are resolved against the current directory first and then against the repository
root (the folder holding `fdm_jax/`), so `load_config("configs/paris.py")` works from anywhere
inside a checkout.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
from pathlib import Path

import ml_collections

_REPO_ROOT = Path(__file__).resolve().parent.parent


def split_spec(spec: str) -> tuple[str, str | None]:
    """'configs/paris.py:tiny' -> ('configs/paris.py', 'tiny'); no colon -> (path, None).

    Like config_flags, everything after the first ':' is the argument.
    """
    path, sep, arg = str(spec).partition(":")
    return path, (arg if sep else None)


def resolve_config_path(path: str | os.PathLike) -> Path:
    """Returns the config file for `path`; ValueError naming it when it does not exist."""
    candidates = [Path(path).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(_REPO_ROOT / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise ValueError(f"config file {str(path)!r} does not exist (tried: {tried})")


def _import_file(path: Path):
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module_name = f"_fdm_jax_config_{path.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"config file {str(path)!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _takes_argument(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins and the like: assume config_flags' calling style
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)
    return any(p.kind in positional for p in params)


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Imports the config file named by `spec` ('path.py' or 'path.py:arg') and returns its config.

    Raises ValueError when the file does not exist, when it has no `get_config`, when an argument
    is given to a `get_config` that takes none, or when `get_config` rejects the argument (the
    message names the file and the variant and keeps get_config's own message, which for the
    configs in `configs/` lists the valid variants).
    """
    path_str, arg = split_spec(spec)
    path = resolve_config_path(path_str)
    module = _import_file(path)
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise ValueError(f"config file {str(path)!r} defines no get_config() function")

    if not _takes_argument(get_config):
        if arg:
            raise ValueError(f"config file {str(path)!r}: get_config() takes no argument, "
                             f"but variant {arg!r} was given")
        config = get_config()
    else:
        try:
            config = get_config() if arg is None else get_config(arg)
        except ValueError as e:
            raise ValueError(f"config file {str(path)!r}: get_config({arg!r}) rejected variant "
                             f"{arg!r}: {e}") from e

    if isinstance(config, dict):
        config = ml_collections.ConfigDict(config)
    if not isinstance(config, (ml_collections.ConfigDict, ml_collections.FrozenConfigDict)):
        raise ValueError(f"config file {str(path)!r}: get_config() returned "
                         f"{type(config).__name__}, not a ConfigDict")
    return config
