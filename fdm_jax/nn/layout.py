"""Layout conversion between PyTorch and Flax.

Activations: PyTorch NCHW <-> NHWC here. Weights: the torch -> Flax kernel transforms that the
converters apply (torch.nn.Linear weight (out, in); torch.nn.Conv2d weight (O, I, kh, kw);
torch.nn.ConvTranspose2d weight (I, O, kh, kw), the layouts its documentation states), and their
inverses for writing PyTorch state_dicts back.
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import numpy as np


def to_nhwc(x, dtype=None) -> jnp.ndarray:
    """PyTorch NCHW array (numpy or jax) -> NHWC jax array, cast to `dtype` if given."""
    return jnp.asarray(np.asarray(x, dtype).transpose(0, 2, 3, 1))


def to_nchw(x) -> np.ndarray:
    """NHWC output -> PyTorch NCHW numpy; (B, h, w) maps -> (B, 1, h, w)."""
    x = np.asarray(x)
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)


# kind -> torch weight -> Flax kernel
TORCH_TO_FLAX: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda w: w.T,                          # (out, in) -> (in, out)
    "conv": lambda w: w.transpose(2, 3, 1, 0),        # (O, I, kh, kw) -> (kh, kw, I, O) HWIO
    "convT": lambda w: w.transpose(2, 3, 0, 1),       # (I, O, kh, kw) -> (kh, kw, I, O)
    "same": lambda w: w,
}
# kind -> Flax kernel -> torch weight (the inverses)
FLAX_TO_TORCH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda k: k.T,
    "conv": lambda k: k.transpose(3, 2, 0, 1),
    "convT": lambda k: k.transpose(2, 3, 0, 1),
    "same": lambda k: k,
}


def torch_shape(kind: str, flax_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The PyTorch weight shape a Flax kernel of `flax_shape` comes from (for error messages)."""
    return tuple(FLAX_TO_TORCH[kind](np.broadcast_to(np.empty((), np.bool_), tuple(flax_shape))).shape)
