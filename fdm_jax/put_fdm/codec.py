"""P-VQVAE: patch encoder, dual-codebook quantizer and patch decoder
(hyudsl/FDM:image_synthesis/modeling/codecs/image_codec/patch_vqgan.py:PatchVQGAN).

Conventions at this API: images NHWC float in [0, 255]; pixel masks (B, H, W, 1) with 1 = known.
Inside, images are x/127.5 - 1 and holes are exactly -1.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdm_jax.nn.layers import Conv2d, compute_dtype
from fdm_jax.put_fdm.patch_decoder import PatchDecoder
from fdm_jax.put_fdm.patch_encoder import PatchEncoder
from fdm_jax.put_fdm.patch_masks import token_type as pixel_token_type
from fdm_jax.put_fdm.vector_quantizer import VectorQuantizer

IMAGE_SCALE = 127.5  # patch_vqgan.py im_process_info: scale 127.5, mean 1, std 1


def preprocess(image: jax.Array) -> jax.Array:
    """[0, 255] -> [-1, 1] (PatchVQGAN.pre_process)."""
    return image / IMAGE_SCALE - 1.0


def postprocess(x: jax.Array) -> jax.Array:
    """[-1, 1] -> clamp to [0, 255] (PatchVQGAN.post_process)."""
    return jnp.clip((x + 1.0) * IMAGE_SCALE, 0.0, 255.0)


def mask_pixels(x: jax.Array, mask: jax.Array) -> jax.Array:
    """multi_pixels_with_mask: any non-zero mask value counts as known; holes become exactly -1."""
    return jnp.where(mask != 0, x, -1.0)


class PatchVQVAE(nn.Module):
    """Field names follow configs/*.py `model.codec`. R = res_ch sets every inner width the original
    hard-codes for R = 256 (see the fixtures' WIDTH_NOTE)."""

    res_ch: int = 256
    encoder_out_ch: int = 256
    embed_dim: int = 256
    decoder_in_ch: int = 256
    num_embed: int = 1024
    masked_embed_start: int = 512
    patch_size: int = 8
    in_ch: int = 3
    out_ch: int = 3
    num_res_blocks: int = 8
    ema_decay: float = 0.99
    ema_eps: float = 1e-5
    # Computation dtype of the encoder and decoder convolutions/matmuls ('float32' or 'bfloat16');
    # parameters, the codebook, the nearest-code search and the returned features/images are float32
    # (a code is the argmin of distances whose gaps can be far below bfloat16's 0.4 % resolution).
    dtype: Any = "float32"
    dead_code_restart: float = 0.0  # not in the original (0 = off): see vector_quantizer.restart_dead_codes

    def setup(self):
        dt = compute_dtype(self.dtype)
        self.encoder = PatchEncoder(self.res_ch, self.encoder_out_ch, self.patch_size, self.num_res_blocks, dtype=dt)
        self.quant_conv = Conv2d(self.embed_dim, 1, dtype=dt)
        self.quantizer = VectorQuantizer(self.num_embed, self.embed_dim, self.masked_embed_start,
                                         self.ema_decay, self.ema_eps, self.dead_code_restart)
        self.post_quant_conv = Conv2d(self.decoder_in_ch, 1, dtype=dt)
        self.decoder = PatchDecoder(self.res_ch, self.out_ch, self.num_res_blocks, dtype=dt)

    # -- pieces --------------------------------------------------------------------------------
    def encode(self, x: jax.Array) -> jax.Array:
        """Preprocessed image (holes already -1 if masked) -> unquantized features F (B, h, w, e_dim), float32."""
        return self.quant_conv(self.encoder(x)).astype(x.dtype)

    def token_type(self, mask: jax.Array) -> jax.Array:
        return pixel_token_type(mask, self.patch_size)

    def _token_type_or_known(self, mask, feature):
        """Token types of `mask`, or all-known (codes < masked_embed_start) when there is no mask."""
        return self.token_type(mask) if mask is not None else jnp.ones(feature.shape[:-1], jnp.int32)

    def quantize(self, feature, token_type=None, update_ema: bool = False):
        return self.quantizer(feature, token_type, update_ema=update_ema)

    def embed(self, index: jax.Array) -> jax.Array:
        return self.quantizer.embed(index)

    def decode(self, feature, masked_image, mask, post_conv: bool = True):
        """Raw decoder output y (no clamp). masked_image is preprocessed ([-1, 1])."""
        if post_conv:
            feature = self.post_quant_conv(feature)
        return self.decoder(feature, masked_image, mask)

    # -- the original's entry points ------------------------------------------------------------
    def get_features(self, image, mask=None):
        """PatchVQGAN.get_features(image, mask, return_token=True, return_quantize_feature=True).

        Without a mask every patch counts as known, so tokens come from codes < masked_embed_start.
        """
        x = preprocess(image)
        if mask is not None:
            x = mask_pixels(x, mask)
        f = self.encode(x)
        tt = self._token_type_or_known(mask, f)
        q = self.quantize(f, tt)
        return {"feature": f, "feature_quantize": q["quantize"], "token": q["index"], "token_type": tt}

    def decode_with_feature(self, feature, image, mask, post_process: bool = True):
        """decode_with_feature(feature, image*mask, mask, post_conv=True, pre_process=True): the FDM
        inference decode. `image` in [0, 255]; it is multiplied by the mask here as the caller does."""
        y = self.decode(feature, preprocess(image * mask), mask)
        return postprocess(y) if post_process else y

    def reconstruct(self, image, mask, erase_mask=None):
        """PatchVQGAN.sample: encode the FULL image, quantize (token types from erase_mask, else all
        unmasked codes), decode with the masked image; [0, 255]."""
        x = preprocess(image)
        f = self.encode(x)
        tt = self._token_type_or_known(erase_mask, f)
        q = self.quantize(f, tt)["quantize"]
        return postprocess(self.decode(q, mask_pixels(x, mask), mask))

    def train_forward(self, image, mask, erase_mask=None, update_ema: bool = True):
        """PatchVQGAN.forward(name='generator') (phase 1a). `image` is already multiplied by the erase
        mask (as the dataset does). Returns (input, reconstruction) in [0, 255] and the quantizer dict."""
        x = preprocess(image)
        f = self.encode(x)
        tt = self._token_type_or_known(erase_mask, f)
        q = self.quantize(f, tt, update_ema=update_ema)
        y = self.decode(q["quantize"], mask_pixels(x, mask), mask)
        return postprocess(x), postprocess(y), q

    def __call__(self, image, mask):
        """Initialisation / smoke path: masked features, quantized, decoded."""
        g = self.get_features(image, mask)
        return self.decode_with_feature(g["feature_quantize"], image, mask)
