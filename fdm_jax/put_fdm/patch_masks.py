"""The original's pixel-mask -> patch-mask rules: token types and masked-patch indices here
(hyudsl/FDM:image_synthesis/modeling/utils/misc.py, model/inpainting_model.py); the third, the
decoder merge's nearest downsampling (codecs/image_codec/decoder.py), is fdm_jax.nn.resize.nearest_downsample.

Pixel masks inside the models are (B, H, W, 1) float with **1 = known pixel, 0 = hole**, the
polarity of the original PUT/FDM code. Convert PNG masks (255 = hole) at the edge of the system.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fdm_jax.nn.layers import block_reduce

# token_type values (modeling/utils/misc.py:get_token_type)
FULLY_MASKED = 0
UNMASKED = 1
PARTIALLY_MASKED = 2


def token_type(mask: jax.Array, patch: int) -> jax.Array:
    """misc.get_token_type(..., 'pixel_shuffle'): 1 if every pixel of the patch is known, 0 if none is,
    else 2. (B, H, W, 1) -> (B, H/p, W/p) int32."""
    s = block_reduce(mask.astype(jnp.float32), patch)[..., 0]
    tt = jnp.full(s.shape, PARTIALLY_MASKED, jnp.int32)
    tt = jnp.where(s == 0, FULLY_MASKED, tt)
    return jnp.where(s == patch * patch, UNMASKED, tt)


def masked_patch_index(mask: jax.Array, patch: int) -> jax.Array:
    """InpaintingModel.get_masked_patch_index: 1.0 where the patch has any missing pixel (block mean < 1).
    (B, H, W, 1) -> (B, H/p, W/p, 1) float32. The original asserts H == W; nothing here needs it."""
    m = block_reduce(mask.astype(jnp.float32), patch, jnp.mean)
    return (m < 1).astype(jnp.float32)
