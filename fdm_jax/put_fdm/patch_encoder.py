"""P-VQVAE patch encoder (hyudsl/FDM:image_synthesis/modeling/codecs/image_codec/encoder.py:PatchEncoder).

Each non-overlapping patch is encoded independently by an MLP, so a fully known patch gets the same
feature whatever is masked elsewhere (`PatchEncoder.forward`: F.unfold into patches, then the MLP).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from fdm_jax.nn.layers import Linear, LinearResBlock, patchify


class PatchEncoder(nn.Module):
    """(B, H, W, 3) image in [-1, 1] -> (B, H/p, W/p, out_ch) features (before quant_conv).

    res_ch: width of the MLP. The original hard-codes LinearResBlock(256, 128) whatever res_ch is, so
    it only runs with res_ch=256; reduced models use blocks (res_ch, res_ch/2), the rule the
    fixtures' reduced originals follow.
    """

    res_ch: int = 256
    out_ch: int = 256
    patch_size: int = 8
    num_res_blocks: int = 8
    dtype: Any = None  # computation dtype of the layers (None: float32); parameters float32

    @nn.compact
    def __call__(self, x):
        # Vector order inside a patch is F.unfold's c*p*p + ky*p + kx, so PyTorch weights need no reordering.
        dt = self.dtype
        h = patchify(x, self.patch_size)
        h = nn.relu(Linear(self.res_ch, name="pre", dtype=dt)(h))
        for i in range(self.num_res_blocks):
            h = LinearResBlock(self.res_ch // 2, name=f"res_{i}", dtype=dt)(h)
        return nn.relu(Linear(self.out_ch, name="post", dtype=dt)(h))
