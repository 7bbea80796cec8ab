"""P-VQVAE patch decoder (hyudsl/FDM:image_synthesis/modeling/codecs/image_codec/decoder.py:PatchDecoder).

A conv net from the 1/8-resolution features back to pixels. A small image encoder
(EncoderInPatchDecoder) extracts post-ReLU features of the masked image at every resolution, and
before each upsampling they replace the decoder's features wherever the pixel mask says "known",
using the top-left pixel of each block as the original's nearest downsampling does (`PatchDecoder.forward`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdm_jax.nn.layers import Conv2d, ConvResBlock, ConvTranspose2d
from fdm_jax.nn.resize import nearest_downsample


class ImageEncoder(nn.Module):
    """EncoderInPatchDecoder: ReLU after every conv; features at H, H/2, H/4, H/8.

    Widths 3 -> R/4 -> R/2 -> R -> R (the original hard-codes 64/128/256/256 for R = 256).
    """

    res_ch: int = 256
    dtype: Any = None  # computation dtype (None: float32); parameters float32

    @nn.compact
    def __call__(self, x):
        r, dt = self.res_ch, self.dtype
        e0 = nn.relu(Conv2d(r // 4, 3, 1, 1, name="conv0", dtype=dt)(x))
        e1 = nn.relu(Conv2d(r // 2, 4, 2, 1, name="conv1", dtype=dt)(e0))
        e2 = nn.relu(Conv2d(r, 4, 2, 1, name="conv2", dtype=dt)(e1))
        e3 = nn.relu(Conv2d(r, 4, 2, 1, name="conv3", dtype=dt)(e2))
        return e0, e1, e2, e3


class PatchDecoder(nn.Module):
    """(features (B, h, w, in_ch), masked image (B, 8h, 8w, 3) in [-1, 1], mask (B, 8h, 8w, 1), 1 = known)
    -> (B, 8h, 8w, out_ch), no output activation.

    The up path is R -> R -> R/2 -> R/4 (256/256/128/64 in the original).
    """

    res_ch: int = 256
    out_ch: int = 3
    num_res_blocks: int = 8
    dtype: Any = None  # computation dtype (None: float32); parameters float32; the output is float32

    @nn.compact
    def __call__(self, feature, masked_image, mask):
        r, dt = self.res_ch, self.dtype
        x = nn.relu(Conv2d(r, 3, 1, 1, name="pre", dtype=dt)(feature))
        for i in range(self.num_res_blocks):
            x = ConvResBlock(r // 2, name=f"res_{i}", dtype=dt)(x)

        mask = mask.astype(x.dtype)
        skips = ImageEncoder(r, dtype=dt, name="image_encoder")(masked_image)  # resolutions H, H/2, H/4, H/8
        widths = (r, r // 2, r // 4)
        for i, width in enumerate(widths):
            x = _merge(x, skips[3 - i], mask, 2 ** (3 - i))
            x = nn.relu(ConvTranspose2d(width, name=f"up_{i}", dtype=dt)(x))
        x = _merge(x, skips[0], mask, 1)
        y = Conv2d(self.out_ch, 3, 1, 1, name="post", dtype=dt)(x)
        return y if dt is None else y.astype(jnp.float32)


def _merge(x: jax.Array, skip: jax.Array, mask: jax.Array, factor: int) -> jax.Array:
    m = nearest_downsample(mask, factor) if factor > 1 else mask
    return x * (1 - m) + skip * m
