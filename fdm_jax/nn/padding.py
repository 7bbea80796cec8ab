"""Padding an image up to a multiple of a modulo at the bottom/right (LaMa's `pad_img_to_modulo` /
`pad_tensor_to_modulo` in saic_mdal/lama saicinpainting/evaluation/data.py), for numpy and jax arrays.

mode "symmetric": numpy.pad's edge-including mirror (LaMa's dataset, `np.pad(..., mode='symmetric')`).
mode "reflect": the edge-excluding mirror of `torch.nn.functional.pad(x, ..., mode='reflect')` (LaMa's
refiner), which torch only allows for a padding smaller than the padded dimension; numpy would
silently reflect again, so the same condition is an error here.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

MODES = ("symmetric", "reflect")


def pad_to_modulo(x, modulo: int, *, mode: str = "symmetric", axes: tuple[int, int] = (1, 2)):
    """Pad the two spatial `axes` of x (NHWC: (1, 2); HWC images: (0, 1)) at their end up to multiples
    of `modulo`. numpy in -> numpy out (np.pad), anything else -> jax (jnp.pad); x itself if no padding
    is needed."""
    if mode not in MODES:
        raise ValueError(f"pad_to_modulo: unknown mode {mode!r}; expected one of {MODES}")
    sizes = [x.shape[a] for a in axes]
    pads = [-n % modulo for n in sizes]
    if not any(pads):
        return x
    if mode == "reflect" and any(p >= n for p, n in zip(pads, sizes)):
        raise ValueError(f"pad_to_modulo: a {'x'.join(map(str, sizes))} image cannot be reflect-padded to a "
                         f"multiple of {modulo} (torch's 'reflect' needs a padding smaller than the size)")
    width = [(0, 0)] * x.ndim
    for a, p in zip(axes, pads):
        width[a] = (0, p)
    if isinstance(x, np.ndarray):
        return np.pad(x, width, mode=mode)
    return jnp.pad(x, width, mode=mode)
