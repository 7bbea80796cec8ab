"""L_qe, the quantisation-error loss of FDM training (phases 2 and 3; FDM paper, Sec. 3.2, Eq. 1 and 3).

hyudsl/FDM:image_synthesis/modeling/model/inpainting_model.py, forward names 'fdm' and
'fdm_decoder_tuning':
    m      = get_masked_patch_index(mask)                      1 = patch with any missing pixel
    f, q   = content_codec.get_features(image)                 the UNMASKED image, token type 1
    v, pv  = apply_fdm(q, f, mask)                             qv = f (1 - m) + q m; pv = FDM(qv, m)
    target = (f - q) m
    L_qe   = L1Loss(mean)(pv, target) * g_rec_loss_weight      (losses.py 'fdm' / fdm_loss)
The mean runs over ALL B*h*w*C elements: known patches contribute exact zeros but count in the
denominator.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fdm_jax.put_fdm import PatchVQVAE, masked_patch_index


def quantization_error_inputs(codec: PatchVQVAE, codec_variables, image: jax.Array, mask: jax.Array) -> dict:
    """The frozen-codec part of the 'fdm' / 'fdm_decoder_tuning' forward.

    image NHWC in [0, 255] (never masked here), mask (B, H, W, 1) with 1 = known. Returns
    {'feature': f, 'quantized': q, 'masked_patch_idx': m (B, h, w, 1), 'target': (f - q) * m}, all
    without gradient (the codec is frozen; get_features runs under no_grad in the original)."""
    if image.ndim != 4 or mask.ndim != 4 or mask.shape[:3] != image.shape[:3] or mask.shape[-1] != 1:
        raise ValueError(f"image {image.shape} / mask {mask.shape}: expected (B, H, W, C) and (B, H, W, 1)")
    g = codec.apply(codec_variables, image, method=PatchVQVAE.get_features)
    f = jax.lax.stop_gradient(g["feature"])
    q = jax.lax.stop_gradient(g["feature_quantize"])
    m = masked_patch_index(mask, codec.patch_size)
    return {"feature": f, "quantized": q, "masked_patch_idx": m, "target": (f - q) * m}


def quantization_error_loss(pv: jax.Array, target: jax.Array, weight: float = 1.0) -> jax.Array:
    """weight * mean|pv - target| over every element (known patches included in the count)."""
    if pv.shape != target.shape:
        raise ValueError(f"pv shape {pv.shape} != target shape {target.shape}")
    return weight * jnp.mean(jnp.abs(pv - jax.lax.stop_gradient(target)))
