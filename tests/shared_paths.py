"""Where the read-only ground-truth fixtures live, and how tests react when they are missing.

The fixtures are in ``shared/`` beside the repository (``<repo>/../shared``). Locally a
missing ``shared/`` only skips the tests that need it; under CI (``CI=true``) it is an error,
so a broken checkout can never pass by skipping everything.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["fixtures_dir", "require", "shared_dir"]


def shared_dir() -> Path:
    """``shared/`` next to the repository root (it may not exist)."""
    return Path(__file__).resolve().parents[1].parent / "shared"


def fixtures_dir() -> Path:
    """``shared/fixtures`` (it may not exist)."""
    return shared_dir() / "fixtures"


def require(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` if it exists; otherwise fail under ``CI=true`` and skip elsewhere."""
    p = Path(path)
    if not p.exists():
        msg = f"required fixture {p} is missing (expected shared/ at {shared_dir()})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg}; CI=true, so this is an error, not a skip")
        pytest.skip(msg)
    return p


def require_torch():
    """torch (the `test` extra installs it), for checks that rebuild what a fixture does not store or
    compare against torch itself; missing torch fails under CI=true and skips elsewhere."""
    try:
        import torch
    except ImportError:
        msg = "torch is not installed (pip install -e '.[test]' installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg}; CI=true, so this is an error, not a skip")
        pytest.skip(msg)
    return torch
