"""Config files as ml_collections.config_flags loads them, plus what config_flags cannot do by itself.

Loading and `--config.KEY=VALUE` overrides are config_flags' own (`load_config` parses a private
FlagValues, exactly what a command's `--config` flag does). Added here:
  * `resolve_config_path`: a spec names a file relative to the current directory, or a config
    shipped with the package by name (`paris`, `paris.py:tiny`, `configs/paris.py:tiny`), so the
    paper configs work after `pip install` outside a checkout;
  * `load_config` as a plain function (the Python API and tests load configs without a command line);
  * `load_sibling`: how a config file imports another (configs/ is not an importable package);
  * one-line errors (`ConfigError`) instead of config_flags' tracebacks.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Sequence

import ml_collections

_PACKAGE = Path(__file__).resolve().parents[1]
# Where named configs live: the checkout's configs/ (editable installs, running from the repo) and
# the copy inside the installed package (setup.py maps configs/ to fdm_jax/configs in the wheel).
CONFIG_DIRS = (_PACKAGE.parent / "configs", _PACKAGE / "configs")


class ConfigError(ValueError):
    """A config spec, variant or override that cannot be used; the message is one line naming it."""


def split_spec(spec: str) -> tuple[str, str | None]:
    """'configs/paris.py:tiny' -> ('configs/paris.py', 'tiny'); no colon -> (path, None)."""
    path, sep, arg = str(spec).partition(":")
    return path, (arg if sep else None)


def resolve_config_path(path: str | os.PathLike) -> Path:
    """The config file `path` names: itself when it exists, else the shipped config of that name
    (`paris`, `paris.py` or `configs/paris.py`). ConfigError naming what was tried otherwise."""
    p = Path(path).expanduser()
    if p.is_file():
        return p.resolve()
    name = p.name if p.suffix == ".py" else p.name + ".py"
    tried = [p] + ([] if p.is_absolute() else [d / name for d in CONFIG_DIRS])
    for candidate in tried[1:]:
        if candidate.is_file():
            return candidate.resolve()
    shipped = sorted({f.stem for d in CONFIG_DIRS if d.is_dir() for f in d.glob("*.py")
                      if not f.stem.startswith("_") and f.stem not in ("put_fdm_common", "tsgl_common")})
    raise ConfigError(f"config file {str(path)!r} does not exist (tried {', '.join(map(str, tried))}); "
                      f"shipped configs: {', '.join(shipped)}")


def resolve_spec(spec: str) -> str:
    """'paris:tiny' -> '/abs/.../configs/paris.py:tiny' (the form config_flags loads)."""
    path, arg = split_spec(spec)
    resolved = str(resolve_config_path(path))
    return resolved if arg is None else f"{resolved}:{arg}"


def load_sibling(config_file: str | os.PathLike, name: str):
    """Imports `name` (e.g. 'put_fdm_common.py') from the folder of `config_file` (pass __file__):
    the one way a config file shares settings with another."""
    path = Path(config_file).resolve().parent / name
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(f"_fdm_jax_config_{path.stem}_{digest}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def load_config(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """The config `spec` names ('path.py', 'path.py:variant' or a shipped name), with overrides
    'KEY=VALUE' (`--config.KEY=VALUE` on a command line), parsed by config_flags itself."""
    from fdm_jax.cli.flags import parse_flags

    args = [f"--config={spec}"] + [f"--config.{o}" for o in overrides]
    return parse_flags(args, prog="load_config").config


def closest_keys(config: ml_collections.ConfigDict, key: str) -> list[str]:
    """Existing dotted keys of `config` closest to `key` (for 'did you mean' hints)."""
    def walk(c, prefix=""):
        for k, v in c.items():
            yield prefix + k
            if isinstance(v, ml_collections.ConfigDict):
                yield from walk(v, prefix + k + ".")

    return difflib.get_close_matches(key, list(walk(config)), n=3, cutoff=0.6)
