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

_REPO_ROOT = Path(__file__).resolve().parents[2]


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


def load_sibling(config_file: str | os.PathLike, name: str):
    """Imports `name` (e.g. 'tsgl_common.py') from the folder of `config_file` (pass __file__): how a
    config file shares settings with another, configs/ not being a package."""
    return _import_file(Path(config_file).resolve().parent / name)


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


def _parse_value(text: str, current):
    """A command-line value, typed like the field it replaces (as config_flags does)."""
    import ast

    if isinstance(current, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if isinstance(current, bool) and isinstance(value, str):
        low = value.lower()
        if low in ("true", "false"):
            return low == "true"
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def apply_overrides(config, overrides) -> ml_collections.ConfigDict:
    """Applies 'a.b.c=value' strings (from `--config.a.b.c=value`) to `config` in place.

    A key that does not exist is a ValueError naming it and the closest existing keys (a misspelt
    key must never be silently added); a value of another type than the field's is a ValueError too.
    """
    import difflib

    def all_keys(c, prefix=""):
        for k, v in c.items():
            yield prefix + k
            if isinstance(v, ml_collections.ConfigDict):
                yield from all_keys(v, prefix + k + ".")

    for item in overrides:
        path, sep, text = str(item).partition("=")
        if not sep:
            raise ValueError(f"config override {item!r}: expected KEY=VALUE")
        parts = path.split(".")
        node = config
        for i, part in enumerate(parts):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                known = list(all_keys(config))
                close = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"config key {path!r} does not exist (no {'.'.join(parts[:i + 1])!r}){hint}")
            if i < len(parts) - 1:
                node = node[part]
        current = node[parts[-1]]
        if isinstance(current, ml_collections.ConfigDict):
            raise ValueError(f"config key {path!r} is a group, not a value")
        value = _parse_value(text, current)
        try:
            node[parts[-1]] = value
        except TypeError as e:
            raise ValueError(f"config key {path!r}: cannot set {text!r} ({e})") from None
    return config
