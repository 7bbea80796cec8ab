"""Read PyTorch ``.pth`` checkpoints into numpy, with or without torch.

Why this exists: the original PUT/FDM, LaMa and TSGL weights come as ``torch.save``
checkpoints, and users of this JAX port usually have no torch installed. Since torch 1.6
such a file is just a zip archive::

    <prefix>/data.pkl        pickle of the object tree; tensors are
                             torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
                             and each storage is a *persistent id*
                             ('storage', <storage type>, <key>, <location>, <numel>)
    <prefix>/data/<key>      the raw bytes of storage <key>
    <prefix>/byteorder       b"little" or b"big" (absent in old files: little)
    <prefix>/version, .format_version, .storage_alignment, .data/serialization_id

so a small restricted unpickler plus ``zipfile`` and ``numpy`` reads it. The unpickler only
resolves the handful of globals that ``torch.load(weights_only=True)`` would allow and that
a weights checkpoint needs (tensor rebuild functions, storage types, torch dtypes,
``collections.OrderedDict``, a few harmless builtins); anything else raises
:class:`PthFormatError` instead of importing or calling it, so loading an untrusted file
cannot run code.

When torch is importable, :func:`load_pth` uses ``torch.load(weights_only=True)`` by default
and converts the result, so both paths return the same tree: tensors become C-contiguous,
writable, native-order (little-endian on every supported host) ``numpy.ndarray`` of the same
dtype (bfloat16 and float8 via ``ml_dtypes``), ``OrderedDict`` becomes ``dict`` (key order
kept), ``torch.Size`` becomes ``tuple``, a torch dtype becomes a ``numpy.dtype``, and a bare
storage becomes a 1-D array. The legacy pre-1.6 (non-zip) format is only readable with torch.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import math
import os
import pickle
import sys
import zipfile
from typing import Any, Callable

import ml_dtypes
import numpy as np

__all__ = ["PthFormatError", "load_pth"]

PathLike = str | os.PathLike[str]


class PthFormatError(ValueError):
    """The file is not a readable ``torch.save`` zip checkpoint (or uses a forbidden global)."""


# torch dtype name (as pickled: GLOBAL 'torch <name>') -> numpy dtype.
_TORCH_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(dt)
    for name, dt in {
        "float64": np.float64,
        "float32": np.float32,
        "float16": np.float16,
        "bfloat16": ml_dtypes.bfloat16,
        "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
        "float8_e5m2": ml_dtypes.float8_e5m2,
        "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
        "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
        "complex128": np.complex128,
        "complex64": np.complex64,
        "int64": np.int64,
        "int32": np.int32,
        "int16": np.int16,
        "int8": np.int8,
        "uint64": np.uint64,
        "uint32": np.uint32,
        "uint16": np.uint16,
        "uint8": np.uint8,
        "bool": np.bool_,
    }.items()
}

# Legacy typed storage classes (GLOBAL 'torch FloatStorage', ...) -> torch dtype name.
_STORAGE_TYPES: dict[str, str] = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}

_SAFE_BUILTINS: dict[str, Any] = {
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.slice": slice,
    "builtins.complex": complex,
    "collections.OrderedDict": collections.OrderedDict,
    "torch.Size": tuple,
}


class _StorageType:
    """Stand-in for a storage class named in a persistent id; ``dtype`` None = untyped bytes."""

    def __init__(self, dtype: np.dtype | None) -> None:
        self.dtype = dtype


class _Storage:
    """One ``data/<key>`` record as a 1-D native-order array (uint8 when untyped)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data


def _to_native(buf: bytes, dtype: np.dtype, big_endian: bool) -> np.ndarray:
    """Interpret ``buf`` as a 1-D array of ``dtype`` stored with the given byte order."""
    arr = np.frombuffer(buf, dtype=dtype)
    if dtype.itemsize > 1 and big_endian != (sys.byteorder == "big"):
        if dtype.kind == "c":  # swap the real and imaginary parts separately
            half = np.dtype(f"f{dtype.itemsize // 2}")
            arr = arr.view(half).byteswap().view(dtype)
        else:  # also right for ml_dtypes types, which numpy cannot byteswap by dtype
            arr = arr.view(f"u{dtype.itemsize}").byteswap().view(dtype)
    return arr


class _Unpickler(pickle.Unpickler):
    """Unpickler for ``data.pkl`` that resolves only allowlisted globals."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, path: str) -> None:
        super().__init__(io.BytesIO(data))
        self._zip = archive
        self._prefix = prefix
        self._path = path
        byteorder = f"{prefix}/byteorder"
        order = archive.read(byteorder) if byteorder in set(archive.namelist()) else b"little"
        if order not in (b"little", b"big"):
            raise PthFormatError(f"{path}: unknown byteorder record {order!r}")
        self._big_endian = order == b"big"
        self._storages: dict[str, _Storage] = {}

    # -- globals -----------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        # torch.save writes protocol 2, so Python 2 names (__builtin__.set) may appear; the
        # mapping the default find_class applies is redone here (it only renames py2 modules).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        rebuild: dict[str, Callable[..., Any]] = {
            "torch._utils._rebuild_tensor": self._rebuild_tensor,
            "torch._utils._rebuild_tensor_v2": self._rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": self._rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": _rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        }
        if full in rebuild:
            return rebuild[full]
        if full in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[full]
        if module == "torch" and name in _STORAGE_TYPES:
            return _StorageType(_TORCH_DTYPES[_STORAGE_TYPES[name]])
        if full in ("torch.storage.UntypedStorage", "torch.UntypedStorage"):
            return _StorageType(None)
        if module == "torch" and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        raise PthFormatError(
            f"{self._path}: data.pkl references the global {full!r}, which this reader does not "
            "allow (only tensors, storages, dtypes, OrderedDict and plain Python values)"
        )

    # -- storages ----------------------------------------------------------------------
    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise PthFormatError(f"{self._path}: unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise PthFormatError(f"{self._path}: malformed storage id {pid!r}")
        if key not in self._storages:
            dtype = storage_type.dtype if storage_type.dtype is not None else np.dtype(np.uint8)
            nbytes = numel * dtype.itemsize
            record = f"{self._prefix}/data/{key}"
            try:
                raw = self._zip.read(record)
            except KeyError:
                raise PthFormatError(f"{self._path}: missing storage record {record!r}") from None
            if len(raw) < nbytes:
                raise PthFormatError(
                    f"{self._path}: storage {record!r} has {len(raw)} bytes, expected {nbytes}"
                )
            data = _to_native(raw[:nbytes], dtype, self._big_endian)
            self._storages[key] = _Storage(data)
        return self._storages[key]

    # -- tensors -----------------------------------------------------------------------
    def _view(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype: np.dtype | None = None
    ) -> np.ndarray:
        """``storage[offset:]`` seen with ``size``/``stride`` (in elements), as a fresh array."""
        if not isinstance(storage, _Storage):
            raise PthFormatError(f"{self._path}: tensor built from {type(storage).__name__}")
        data = storage.data
        if dtype is not None and dtype != data.dtype:  # _rebuild_tensor_v3 on untyped bytes
            usable = len(data) - len(data) % dtype.itemsize
            data = data[:usable].view(dtype)
            if self._big_endian:
                data = _to_native(data.tobytes(), dtype, True)
        size, stride = tuple(size), tuple(stride)
        ints = (offset, *size, *stride)
        if len(size) != len(stride) or not all(isinstance(v, int) and v >= 0 for v in ints):
            raise PthFormatError(
                f"{self._path}: bad tensor geometry offset={offset} size={size} stride={stride}"
            )
        if math.prod(size) == 0:
            return np.zeros(size, dtype=data.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= len(data):
            raise PthFormatError(
                f"{self._path}: tensor (offset={offset} size={size} stride={stride}) "
                f"reads past its storage of {len(data)} elements"
            )
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[offset:], shape=size, strides=[s * item for s in stride], writeable=False
        )
        return view.copy()

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any) -> np.ndarray:
        return self._view(storage, offset, size, stride)

    def _rebuild_tensor_v2(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any = False,
        backward_hooks: Any = None,
        metadata: Any = None,
    ) -> np.ndarray:
        return _apply_metadata(self._view(storage, offset, size, stride), metadata)

    def _rebuild_tensor_v3(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any,
        backward_hooks: Any,
        dtype: Any,
        metadata: Any = None,
    ) -> np.ndarray:
        if not isinstance(dtype, np.dtype):
            raise PthFormatError(f"{self._path}: _rebuild_tensor_v3 with dtype {dtype!r}")
        return _apply_metadata(self._view(storage, offset, size, stride, dtype), metadata)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None) -> Any:
    """``nn.Parameter`` -> its data (gradient flags, hooks and extra state are dropped)."""
    return data


def _apply_metadata(arr: np.ndarray, metadata: Any) -> np.ndarray:
    """Resolve the lazy ``conj``/``neg`` bits torch stores as tensor metadata."""
    if metadata:
        if metadata.get("conj"):
            arr = np.conj(arr)
        if metadata.get("neg"):
            arr = np.negative(arr)
    return arr


def _plain(obj: Any) -> Any:
    """OrderedDict -> dict and bare storages -> arrays, recursively (key order kept)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    if isinstance(obj, _Storage):
        return obj.data.copy()
    return obj


def _load_pure(path: str) -> Any:
    """Read a zip checkpoint with ``zipfile`` + the restricted unpickler (no torch)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            head = f.read(2)
        what = (
            "a raw pickle (the legacy pre-1.6 torch.save format; load it with torch installed)"
            if head[:1] == b"\x80"
            else "a file that is not a zip archive"
        )
        raise PthFormatError(
            f"{path}: expected a torch.save zip checkpoint (<prefix>/data.pkl), found {what}"
        ) from None
    with archive:
        names = archive.namelist()
        # Like torch: the archive's top folder is the prefix of its first record.
        prefix = names[0].split("/", 1)[0] if names and "/" in names[0] else ""
        if not prefix or f"{prefix}/data.pkl" not in set(names):
            pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            if not pkls:
                raise PthFormatError(
                    f"{path}: zip archive has no <prefix>/data.pkl; not a torch.save checkpoint"
                )
            prefix = pkls[0].split("/", 1)[0]
        try:
            unpickler = _Unpickler(archive.read(f"{prefix}/data.pkl"), archive, prefix, path)
            return _plain(unpickler.load())
        except PthFormatError:
            raise
        except Exception as e:  # truncated/corrupt pickle or zip record, bad REDUCE arguments
            raise PthFormatError(f"{path}: cannot read data.pkl: {type(e).__name__}: {e}") from e


def _load_with_torch(path: str, torch: Any) -> Any:
    """``torch.load(weights_only=True)`` on CPU, then the same conversion as the pure reader."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PthFormatError(f"{path}: torch.load failed: {first}") from e
    np_dtypes = {getattr(torch, name): dt for name, dt in _TORCH_DTYPES.items()}

    def to_numpy(t: Any) -> np.ndarray:
        t = t.detach().cpu().resolve_conj().resolve_neg().contiguous()
        if t.dtype not in np_dtypes:
            raise PthFormatError(f"{path}: tensor dtype {t.dtype} has no numpy equivalent")
        # Go through raw bytes so dtypes numpy lacks (bfloat16, float8, uint16...) stay exact.
        raw = t.reshape(-1).view(torch.uint8).numpy()
        return raw.view(np_dtypes[t.dtype]).reshape(tuple(t.shape)).copy()

    def conv(o: Any) -> Any:
        if isinstance(o, torch.Tensor):
            return to_numpy(o)
        if isinstance(o, torch.Size):
            return tuple(o)
        if isinstance(o, torch.dtype):
            if o not in np_dtypes:
                raise PthFormatError(f"{path}: dtype {o} has no numpy equivalent")
            return np_dtypes[o]
        if isinstance(o, torch.storage.TypedStorage):
            return to_numpy(torch.empty(0, dtype=o.dtype).set_(o.untyped()))
        if isinstance(o, torch.UntypedStorage):
            return to_numpy(torch.empty(0, dtype=torch.uint8).set_(o))
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, list):
            return [conv(v) for v in o]
        if isinstance(o, tuple):
            return tuple(conv(v) for v in o)
        return o

    return conv(obj)


def load_pth(path: PathLike, *, use_torch: bool | None = None) -> Any:
    """Load a ``torch.save`` checkpoint with every tensor as a ``numpy.ndarray``.

    Args:
      path: the ``.pth`` file.
      use_torch: ``None`` (default) uses torch when ``import torch`` works, else the pure
        reader; ``False`` always uses the pure reader and never imports torch; ``True``
        requires torch (``ImportError`` if it is missing).

    Returns:
      The unpickled object with tensors as C-contiguous, writable, native-order arrays of the
      tensor's dtype (bfloat16/float8 as ``ml_dtypes`` types), ``OrderedDict`` as ``dict``
      (order kept), ``torch.Size`` as ``tuple``, torch dtypes as ``numpy.dtype``, and plain
      Python values as they are. ``nn.Parameter`` becomes its data array.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      PthFormatError: not a zip checkpoint (pure reader), no ``data.pkl``, a global outside
        the allowlist, or corrupt contents.
      ImportError: ``use_torch=True`` and torch cannot be imported.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "checkpoint not found", path)
    torch = None
    if use_torch is None or use_torch:
        try:
            import torch  # type: ignore[import-not-found,no-redef]
        except (ImportError, OSError) as e:
            if use_torch:
                raise ImportError(
                    f"load_pth({path!r}, use_torch=True) needs PyTorch, which cannot be imported "
                    f"({e}); install torch or pass use_torch=False for the built-in reader"
                ) from e
            torch = None
    if torch is not None:
        return _load_with_torch(path, torch)
    return _load_pure(path)
