"""Pixel losses of EdgeConnectLoss (hyudsl/FDM:image_synthesis/modeling/modules/edge_connect/
losses.py and image_gradient_loss.py). Images NHWC in [0, 1]; masks (B, H, W, 1), 1 = known.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_same_shape(a, b, names=("reconstruction", "image")):
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} shape {a.shape} != {names[1]} shape {b.shape}; expected equal shapes")


def l1_mean(a: jax.Array, b: jax.Array) -> jax.Array:
    """`nn.L1Loss()`: mean |a - b| over every element."""
    return jnp.mean(jnp.abs(a - b))


def hole_fraction(mask: jax.Array) -> jax.Array:
    """mean(1 - mask) over the WHOLE batch mask tensor: the batch's fraction of missing pixels."""
    return jnp.mean(1.0 - mask.astype(jnp.float32))


def hole_normalised_l1(reconstruction: jax.Array, image: jax.Array, mask: jax.Array) -> jax.Array:
    """L1 over all pixels divided by the batch hole fraction (losses.py 'generator' and
    'fdm_decoder_tuning': l1_loss(rec, image) / torch.mean(1 - mask)). Like the original it is
    infinite for a batch without holes (impossible with the shipped masks, which all have holes)."""
    _check_same_shape(reconstruction, image)
    if mask.ndim != 4 or mask.shape[:3] != image.shape[:3] or mask.shape[3] != 1:
        raise ValueError(f"mask shape {mask.shape}: expected (B, H, W, 1) matching image {image.shape}")
    return l1_mean(reconstruction, image) / hole_fraction(mask)


def image_gradients(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """ImageGradientLoss.gradient on NHWC: forward differences |x[j+1] - x[j]| along W (dx) and H (dy),
    with the last column of dx and the last row of dy set to 0 (same shape as x)."""
    if x.ndim != 4:
        raise ValueError(f"image_gradients: expected (B, H, W, C), got shape {x.shape}")
    dx = jnp.abs(x[:, :, 1:, :] - x[:, :, :-1, :])
    dy = jnp.abs(x[:, 1:, :, :] - x[:, :-1, :, :])
    dx = jnp.pad(dx, ((0, 0), (0, 0), (0, 1), (0, 0)))
    dy = jnp.pad(dy, ((0, 0), (0, 1), (0, 0), (0, 0)))
    return dx, dy


def gradient_loss(reconstruction: jax.Array, image: jax.Array) -> jax.Array:
    """ImageGradientLoss(fake, real): (mean|dx Y - dx I| + mean|dy Y - dy I|) / 2, the means over
    the full tensors (the zero last column/row counts), the target detached."""
    _check_same_shape(reconstruction, image)
    fdx, fdy = image_gradients(reconstruction)
    rdx, rdy = image_gradients(jax.lax.stop_gradient(image))
    return (l1_mean(fdx, rdx) + l1_mean(fdy, rdy)) / 2
