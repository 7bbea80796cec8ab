"""Tests for fdm_jax.convert.pth_reader: the torch-free .pth reader against the fixtures."""

from __future__ import annotations

import functools
import json
import pickle
import pickletools
import sys
import zipfile
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from fdm_jax.convert.pth_reader import PthFormatError, load_pth

try:
    from shared_paths import fixtures_dir, require
except ImportError:  # tests/ imported as a package
    from tests.shared_paths import fixtures_dir, require

PUT = "put_fdm"
# (pth, npz holding the same tensors under param/)
STATE_DICT_FILES = [
    ("lama/ffc_generator_small.pth", "lama/ffc_generator_small.npz"),
    ("tsgl/tsgl_lama_generator_small.pth", "tsgl/tsgl_lama_generator_small.npz"),
    ("tsgl/tsgl_medfe_generator_small.pth", "tsgl/tsgl_medfe_generator_small.npz"),
]
PUT_FILES = ["put_fdm_codec_fdm_tuning", "put_fdm_transformer"]
ALL_PTH = [p for p, _ in STATE_DICT_FILES] + [f"{PUT}/{n}.pth" for n in PUT_FILES]


def fixture(rel: str) -> Path:
    return require(fixtures_dir() / rel)


@functools.lru_cache(maxsize=None)
def npz_params(rel: str) -> dict[str, np.ndarray]:
    with np.load(fixture(rel)) as z:
        return {k[len("param/") :]: z[k] for k in z.files if k.startswith("param/")}


@functools.lru_cache(maxsize=None)
def pure(rel: str) -> Any:
    return load_pth(fixture(rel), use_torch=False)


@functools.lru_cache(maxsize=None)
def pth_info() -> dict[str, Any]:
    return json.loads(fixture(f"{PUT}/pth_info.json").read_text())


def assert_same_array(a: Any, b: np.ndarray, where: str) -> None:
    assert isinstance(a, np.ndarray), f"{where}: {type(a).__name__}, not ndarray"
    assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    assert np.array_equal(a, b) and a.tobytes() == b.tobytes(), f"{where}: values differ"


def assert_tree_equal(a: Any, b: Any, where: str = "root") -> None:
    """Same types, same dict key order, bit-identical arrays."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert_same_array(a, b, where)
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys differ"
        for k in a:
            assert_tree_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_tree_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def check_arrays(sd: dict[str, Any], ref: dict[str, np.ndarray], rename=lambda k: k) -> None:
    for k, v in sd.items():
        assert_same_array(v, ref[rename(k)], k)
        assert v.flags.c_contiguous and v.flags.writeable, k


# ---------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("pth,npz", STATE_DICT_FILES, ids=[p for p, _ in STATE_DICT_FILES])
def test_state_dict_files_match_npz(pth: str, npz: str) -> None:
    sd, ref = pure(pth), npz_params(npz)
    assert type(sd) is dict
    if pth.startswith("tsgl/"):  # saved from a DataParallel model
        assert all(k.startswith("module.") for k in sd)
        rename = lambda k: k.removeprefix("module.")  # noqa: E731
    else:
        rename = lambda k: k  # noqa: E731
    assert {rename(k) for k in sd} == set(ref)
    assert len(sd) == len(ref)
    check_arrays(sd, ref, rename)
    # num_batches_tracked are 0-d int64 tensors
    scalars = [k for k, v in sd.items() if v.ndim == 0]
    assert scalars and all(sd[k].dtype == np.int64 for k in scalars)


@pytest.mark.parametrize("name", PUT_FILES)
def test_put_fdm_checkpoint_container(name: str) -> None:
    info = pth_info()["files"][name]
    path = fixture(f"{PUT}/{info['file']}")
    assert path.stat().st_size == info["size"]
    ck = pure(f"{PUT}/{info['file']}")
    assert type(ck) is dict
    assert sorted(ck) == sorted(info["top_level_keys"])
    for k in ("last_epoch", "last_iter"):
        assert type(ck[k]) is int
    assert (ck["last_epoch"], ck["last_iter"]) == (0, 9)
    assert type(ck["spend_time"]) is float
    model = ck["model"]
    assert type(model) is dict and len(model) == info["n_model_keys"]
    assert sum(k.startswith("loss.") for k in model) == info["n_loss_keys"]
    # the optimizer/scheduler states are plain nested Python values
    opt = ck["optimizer_and_scheduler"]
    assert type(opt) is dict and opt
    for entry in opt.values():
        assert type(entry["scheduler"]["module"]["min_lrs"]) is list
        assert type(entry["optimizer"]["module"]["param_groups"]) is list


def test_put_fdm_models_match_sampling_greedy_params() -> None:
    ref = npz_params(f"{PUT}/sampling_greedy.npz")
    tuning = pure(f"{PUT}/put_fdm_codec_fdm_tuning.pth")["model"]
    transformer = pure(f"{PUT}/put_fdm_transformer.pth")["model"]
    groups = lambda keys: {k.split(".")[0] for k in keys}  # noqa: E731
    # phase 3 (fdm_tuning) holds temp, content_codec.*, fdm.* (+ loss.*); the transformer
    # checkpoint holds temp, content_codec.*, generator.*; together: exactly the npz params.
    tuning_w = {k: v for k, v in tuning.items() if not k.startswith("loss.")}
    assert groups(tuning_w) == {"temp", "content_codec", "fdm"}
    assert groups(transformer) == {"temp", "content_codec", "generator"}
    assert set(tuning_w) == {k for k in ref if not k.startswith("generator.")}
    assert set(transformer) == {k for k in ref if not k.startswith("fdm.")}
    assert set(tuning_w) | set(transformer) == set(ref)
    check_arrays(tuning_w, ref)
    check_arrays(transformer, ref)
    # loss.* are float32 too, including 0-d ones (adversarial labels)
    loss = {k: v for k, v in tuning.items() if k.startswith("loss.")}
    assert all(v.dtype == np.float32 for v in loss.values())
    assert loss["loss.adversarial_loss.real_label"].shape == ()


# ------------------------------------------------------------ hand-written checkpoints


def _v(x: Any) -> bytes:
    """Pickle opcodes (protocol 2, no header/STOP) that push the plain value ``x``."""
    data = pickletools.optimize(pickle.dumps(x, protocol=2))
    assert data[:2] == b"\x80\x02" and data[-1:] == b"."
    return data[2:-1]


def _g(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


_EMPTY_HOOKS = _g("collections", "OrderedDict") + b")R"


def _tensor(key: str, stype: tuple[str, str], numel: int, offset: int, size: tuple, stride: tuple,
            v3_dtype: str | None = None) -> bytes:
    storage = b"(" + _v("storage") + _g(*stype) + _v(key) + _v("cpu") + _v(numel) + b"tQ"
    args = storage + _v(offset) + _v(size) + _v(stride) + b"\x89" + _EMPTY_HOOKS
    if v3_dtype is None:
        return _g("torch._utils", "_rebuild_tensor_v2") + b"(" + args + b"tR"
    return _g("torch._utils", "_rebuild_tensor_v3") + b"(" + args + _g("torch", v3_dtype) + b"tR"


def _odict(items: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(_v(k) + v for k, v in items)
    return _g("collections", "OrderedDict") + b")R(" + body + b"u"


def _write_ckpt(path: Path, pkl: bytes, storages: dict[str, bytes], byteorder: bytes = b"little",
                prefix: str = "archive") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", pkl)
        z.writestr(f"{prefix}/byteorder", byteorder)
        for key, raw in storages.items():
            z.writestr(f"{prefix}/data/{key}", raw)
        z.writestr(f"{prefix}/version", b"3\n")
    return path


F32 = ("torch", "FloatStorage")
BASE = np.arange(12, dtype=np.float32)
BF16 = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
U16 = np.array([0, 1, 2, 65535, 4], dtype=np.uint16)
F64 = np.array([7.25], dtype=np.float64)


def _synthetic(tmp_path: Path, byteorder: str = "little") -> tuple[Path, dict[str, Any]]:
    """A checkpoint with views of one shared storage, 0-d/empty tensors, bf16, v3 uint16, a
    Parameter, a set and a tuple; returns it with the expected load_pth result."""
    param = (_g("torch._utils", "_rebuild_parameter") + b"("
             + _tensor("3", ("torch", "DoubleStorage"), 1, 0, (), ()) + b"\x88" + _EMPTY_HOOKS + b"tR")
    pkl = b"\x80\x02}(" + b"".join([
        _v("sd"), _odict([
            ("base", _tensor("0", F32, 12, 0, (3, 4), (4, 1))),
            ("t", _tensor("0", F32, 12, 0, (4, 3), (1, 4))),
            ("col", _tensor("0", F32, 12, 6, (2,), (4,))),
            ("scalar", _tensor("0", F32, 12, 11, (), ())),
            ("empty", _tensor("0", F32, 12, 0, (0, 3), (3, 1))),
            ("bf16", _tensor("1", ("torch", "BFloat16Storage"), 3, 0, (3,), (1,))),
            ("u16", _tensor("2", ("torch.storage", "UntypedStorage"), 10, 0, (5,), (1,), "uint16")),
            ("param", param),
        ]),
        _v("meta"), _v({"step": 3, "lr": 1e-3, "names": ["a", "b"], "shape": (2, 3), "none": None}),
        _v("tags"), _g("__builtin__", "set") + _v(([1, 2],)) + b"R",  # protocol 2 names
    ]) + b"u."
    order = "<" if byteorder == "little" else ">"

    def raw(a: np.ndarray) -> bytes:
        if a.dtype == ml_dtypes.bfloat16:
            return a.view(np.uint16).astype(order + "u2").tobytes()
        return a.astype(a.dtype.newbyteorder(order)).tobytes()

    storages = {"0": raw(BASE), "1": raw(BF16), "2": raw(U16), "3": raw(F64)}
    path = _write_ckpt(tmp_path / f"synthetic_{byteorder}.pth", pkl, storages, byteorder.encode())
    m = BASE.reshape(3, 4)
    expected = {
        "sd": {"base": m, "t": m.T.copy(), "col": m[1:, 2].copy(), "scalar": np.array(11.0, np.float32),
               "empty": np.zeros((0, 3), np.float32), "bf16": BF16, "u16": U16,
               "param": np.array(7.25, np.float64)},
        "meta": {"step": 3, "lr": 1e-3, "names": ["a", "b"], "shape": (2, 3), "none": None},
        "tags": {1, 2},
    }
    return path, expected


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_synthetic_views_dtypes_byteorder(tmp_path: Path, byteorder: str) -> None:
    path, expected = _synthetic(tmp_path, byteorder)
    got = load_pth(path, use_torch=False)
    assert_tree_equal(got, expected)
    for v in got["sd"].values():
        assert v.flags.c_contiguous and v.flags.writeable and v.dtype.isnative
    got["sd"]["t"][0, 0] = 100.0  # copies: views of one storage do not alias
    assert got["sd"]["base"][0, 0] == 0.0


def test_geometry_past_storage_is_rejected(tmp_path: Path) -> None:
    pkl = b"\x80\x02" + _tensor("0", F32, 4, 2, (2, 2), (2, 1)) + b"."
    path = _write_ckpt(tmp_path / "oob.pth", pkl, {"0": BASE[:4].tobytes()})
    with pytest.raises(PthFormatError, match="past its storage") as e:
        load_pth(path, use_torch=False)
    assert str(path) in str(e.value)


# ------------------------------------------------------------------------------ errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_pth(path, use_torch=False)


@pytest.mark.parametrize("content,what", [
    (b"hello, not a checkpoint\n", "not a zip archive"),
    (pickle.dumps({"legacy": 1}, protocol=2), "legacy"),
])
def test_non_zip_file(tmp_path: Path, content: bytes, what: str) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(PthFormatError) as e:
        load_pth(path, use_torch=False)
    msg = str(e.value)
    assert str(path) in msg and what in msg and "zip" in msg and "\n" not in msg


def test_zip_without_data_pkl(tmp_path: Path) -> None:
    path = tmp_path / "nopkl.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/data/0", b"\0" * 4)
    with pytest.raises(PthFormatError, match="data.pkl") as e:
        load_pth(path, use_torch=False)
    assert str(path) in str(e.value)


def test_forbidden_global(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pkl = b"\x80\x02" + _g("os", "system") + _v((f"touch {marker}",)) + b"R."
    path = _write_ckpt(tmp_path / "evil.pth", pkl, {})
    with pytest.raises(PthFormatError) as e:
        load_pth(path, use_torch=False)
    assert "os.system" in str(e.value) and str(path) in str(e.value)
    assert not marker.exists()


def test_forbidden_torch_global(tmp_path: Path) -> None:
    # torch names outside the allowlist are refused too (not imported, not called)
    pkl = b"\x80\x02" + _g("torch.serialization", "load") + _v(("x",)) + b"R."
    path = _write_ckpt(tmp_path / "evil2.pth", pkl, {})
    with pytest.raises(PthFormatError, match="torch.serialization.load"):
        load_pth(path, use_torch=False)


def test_missing_storage_record(tmp_path: Path) -> None:
    pkl = b"\x80\x02" + _tensor("5", F32, 4, 0, (4,), (1,)) + b"."
    path = _write_ckpt(tmp_path / "nostorage.pth", pkl, {})
    with pytest.raises(PthFormatError, match="data/5"):
        load_pth(path, use_torch=False)


def test_truncated_pickle(tmp_path: Path) -> None:
    path = _write_ckpt(tmp_path / "trunc.pth", b"\x80\x02}(X\x01\x00\x00", {})
    with pytest.raises(PthFormatError, match="trunc.pth"):
        load_pth(path, use_torch=False)


# ------------------------------------------------------------------------------- torch


def test_without_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With torch hidden: None falls back to the pure reader, True raises ImportError."""
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    path, expected = _synthetic(tmp_path)
    assert_tree_equal(load_pth(path), expected)
    assert_tree_equal(load_pth(path, use_torch=False), expected)
    with pytest.raises(ImportError, match="use_torch=False"):
        load_pth(path, use_torch=True)


def _torch_or_none() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def test_torch_and_pure_readers_agree(tmp_path: Path) -> None:
    """With torch: both paths give equal trees. Without: use_torch=True fails helpfully."""
    torch = _torch_or_none()
    path, _ = _synthetic(tmp_path, "big")
    if torch is None:
        with pytest.raises(ImportError, match="PyTorch") as e:
            load_pth(path, use_torch=True)
        assert "use_torch=False" in str(e.value)
        return
    # Big-endian file: torch byteswaps typed storages but not the untyped (v3) one of uint16,
    # whose bytes it keeps as written; the pure reader swaps it too (it knows the dtype).
    big_torch, big_pure = load_pth(path, use_torch=True), load_pth(path, use_torch=False)
    assert_same_array(big_torch["sd"].pop("u16"), U16.byteswap(), "torch big-endian u16")
    assert_same_array(big_pure["sd"].pop("u16"), U16, "pure big-endian u16")
    assert_tree_equal(big_torch, big_pure, path.name)
    files = [fixture(rel) for rel in ALL_PTH] + [_synthetic(tmp_path, "little")[0]]
    # a file written by torch.save itself, with the features a state_dict may use
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    obj = {
        "p": torch.nn.Parameter(torch.ones(2)), "bf16": torch.tensor([1.5, -2], dtype=torch.bfloat16),
        "u16": torch.arange(5).to(torch.uint16), "t": base.t(), "col": base[1:, 2], "s": base[2, 3],
        "half": torch.tensor([0.5], dtype=torch.float16), "b": torch.tensor([True, False]),
        "i8": torch.tensor([-3], dtype=torch.int8), "c": torch.tensor([1 + 2j]).conj(),
        "neg": torch.tensor([1.0, 2.0])._neg_view(), "dtype": torch.float16, "size": torch.Size([2, 3]),
        "od": __import__("collections").OrderedDict([("z", 1), ("a", (2, [3.5, None]))]),
    }
    torch.save(obj, tmp_path / "torch_saved.pth")
    files.append(tmp_path / "torch_saved.pth")
    for f in files:
        assert_tree_equal(load_pth(f, use_torch=True), load_pth(f, use_torch=False), f.name)
    saved = load_pth(tmp_path / "torch_saved.pth", use_torch=False)
    np.testing.assert_array_equal(saved["neg"], [-1.0, -2.0])
    np.testing.assert_array_equal(saved["c"], [1 - 2j])
    assert saved["bf16"].dtype == ml_dtypes.bfloat16 and saved["dtype"] == np.float16
