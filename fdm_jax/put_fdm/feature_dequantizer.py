"""Feature Dequantization Module (hyudsl/FDM:image_synthesis/modeling/modules/FDM/fdm.py:FDM).

Predicts the quantisation error of the assembled feature grid at masked patches and adds it back
before decoding: v = qv + m * mix([qv; m]), m = 1 on patches with any missing pixel.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdm_jax.nn.layers import Conv2d, ConvResBlock, compute_dtype


class FeatureDequantizer(nn.Module):
    embed_dim: int = 256
    num_res_blocks: int = 8
    # Computation dtype ('float32' or 'bfloat16'); parameters float32; pv is returned in float32.
    dtype: Any = "float32"

    @nn.compact
    def __call__(self, qv: jax.Array, masked_patch_idx: jax.Array) -> jax.Array:
        """qv (B, h, w, C), masked_patch_idx (B, h, w, 1) -> pv (B, h, w, C), zero on known patches."""
        dt = compute_dtype(self.dtype)
        # The mask is the LAST input channel (FDM.forward: cat([qv, masked_patch_idx], 1)).
        x = jnp.concatenate([qv, masked_patch_idx.astype(qv.dtype)], axis=-1)
        x = nn.relu(Conv2d(self.embed_dim, 3, 1, 1, name="conv_in", dtype=dt)(x))
        for i in range(self.num_res_blocks):
            x = ConvResBlock(self.embed_dim // 2, name=f"res_{i}", dtype=dt)(x)
        x = Conv2d(self.embed_dim, 3, 1, 1, name="conv_out", dtype=dt)(x)
        return x.astype(qv.dtype) * masked_patch_idx


def apply_fdm(fdm_fn, quantized, background, masked_patch_idx):
    """InpaintingModel.apply_fdm: qv = bg*(1-m) + q*m; pv = FDM(qv, m); returns (v = qv + pv, pv).

    `fdm_fn(qv, m)` is a bound FeatureDequantizer (or `partial(model.apply, params)`).
    """
    m = masked_patch_idx
    qv = background * (1 - m) + quantized * m
    pv = fdm_fn(qv, m)
    return qv + pv, pv
