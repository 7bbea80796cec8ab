"""Checks of array inputs at the Python API's entry points (sampling, refinement), so bad input is an
`InputError` naming the input and what was expected, raised before any model runs, instead of a JAX
shape error from deep inside a model or an all-NaN result (NaN x 0 = NaN in the masked input).

Shapes and dtypes are always checked; values (finite, in range) only when the arrays are concrete, so
the checks also run, as far as they can, inside `jax.jit`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.io.images import InputError

__all__ = ["InputError", "check_image_mask"]


def _concrete(x) -> np.ndarray | None:
    return None if isinstance(x, jax.core.Tracer) else np.asarray(x)


def _check_dtype(x, name: str, where: str) -> None:
    dt = np.dtype(x.dtype) if not jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else None
    if dt is None or not (np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.integer)):
        raise InputError(f"{where}: {name} must be a real (float or integer) array, got dtype {x.dtype}")


def check_image_mask(image, mask, *, where: str, value_range: tuple[float, float] = (0.0, 255.0),
                     batch: int | None = None, patch_size: int | None = None,
                     seq_len: int | None = None) -> tuple[jax.Array, jax.Array]:
    """image (B, H, W, 3), values finite in `value_range`; mask (B, H, W, 1), finite in [0, 1] with
    1 = known. batch: the required B (None: any >= 1). patch_size / seq_len: H and W must be multiples
    of the patch size and give exactly seq_len patches (the sampler's positional embedding).
    Returns both as float32 jax arrays."""
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
        mask = np.asarray(mask)
    lo, hi = value_range
    rng = f" in [{lo:g}, {hi:g}]" if np.isfinite([lo, hi]).all() else ""
    want = f"({'B' if batch is None else batch}, H, W, 3) RGB{rng}"
    if len(image.shape) != 4 or image.shape[-1] != 3 or image.shape[0] < 1 or (batch is not None
                                                                                and image.shape[0] != batch):
        raise InputError(f"{where}: image must be {want}, got shape {tuple(image.shape)}")
    _check_dtype(image, "image", where)
    want_mask = tuple(image.shape[:3]) + (1,)
    if tuple(mask.shape) != want_mask:
        raise InputError(f"{where}: mask must be {want_mask} with 1 = known (the image's B, H, W), "
                         f"got shape {tuple(mask.shape)}")
    _check_dtype(mask, "mask", where)
    h, w = int(image.shape[1]), int(image.shape[2])
    if h < 1 or w < 1:
        raise InputError(f"{where}: image has an empty side ({h}x{w})")
    if patch_size is not None:
        p = int(patch_size)
        side = int(round(np.sqrt(seq_len))) * p if seq_len is not None else None
        expect = f"{side}x{side}" if side is not None and (side // p) ** 2 == seq_len else f"{seq_len} patches"
        if h % p or w % p:
            raise InputError(f"{where}: image {h}x{w} is not a multiple of the codec's {p}-pixel patches"
                             + (f"; this model takes {expect} images" if seq_len is not None else ""))
        if seq_len is not None and (h // p) * (w // p) != int(seq_len):
            raise InputError(f"{where}: image {h}x{w} gives {(h // p) * (w // p)} patches; this model takes "
                             f"{expect} images ({seq_len} patches of {p} pixels)")
    x, m = _concrete(image), _concrete(mask)
    if x is not None:
        xf = x.astype(np.float64)
        if not np.isfinite(xf).all():
            raise InputError(f"{where}: image has {int((~np.isfinite(xf)).sum())} NaN or infinite value(s); "
                             f"expected finite values{rng}")
        if xf.min() < lo or xf.max() > hi:
            raise InputError(f"{where}: image values span [{xf.min():g}, {xf.max():g}]; expected [{lo:g}, {hi:g}]")
    if m is not None:
        mf = m.astype(np.float64)
        if not np.isfinite(mf).all():
            raise InputError(f"{where}: mask has {int((~np.isfinite(mf)).sum())} NaN or infinite value(s); "
                             "expected values in [0, 1] with 1 = known")
        if mf.min() < 0 or mf.max() > 1:
            hint = " (a 0/255 mask file? read it with fdm_jax.io.images.read_mask)" if mf.max() > 1 else ""
            raise InputError(f"{where}: mask values span [{mf.min():g}, {mf.max():g}]; expected [0, 1] with "
                             f"1 = known{hint}")
    return jnp.asarray(image).astype(jnp.float32), jnp.asarray(mask).astype(jnp.float32)
