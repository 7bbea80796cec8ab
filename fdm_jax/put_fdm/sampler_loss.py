"""The feature sampler's training objective (hyudsl/FDM:image_synthesis/modeling/
model/inpainting_model.py `forward(name='transformer')` and vector_predictor/transformer.py
`prepare_data` / `forward`), as pure functions.

    inputs = sampler_training_inputs(codec, codec_vars, image, mask, rand=u)   # or key=...
    logits = sampler.apply(sampler_vars, inputs["features"])
    loss, accuracy = masked_token_cross_entropy(logits, inputs["token_target"], inputs["token_type"])

Images (B, H, W, 3) in [0, 255]; masks (B, H, W, 1), 1 = known (bool or float).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fdm_jax.put_fdm.codec import PatchVQVAE
from fdm_jax.put_fdm.patch_masks import UNMASKED

__all__ = ["masked_token_cross_entropy", "sampler_training_inputs"]


def sampler_training_inputs(codec: PatchVQVAE, codec_vars, image, mask, *, rand=None, key=None,
                            random_quantize: float = 0.3) -> dict:
    """prepare_data with input_feature_type 'origin' (the codec frozen, no EMA update).

    Features of the MASKED image, where each fully known patch (token_type 1) is replaced by its
    nearest unmasked code with probability `random_quantize` (`rand < random_quantize`, rand a uniform
    (B, h, w) draw, the original's torch.rand; give it as `rand` or draw it from `key`). Targets are the
    codes of the FULL image (codes < masked_embed_start).
    Returns features (B, L, C), token_target (B, L) int32, token_type (B, L) int32.
    """
    masked = codec.apply(codec_vars, image, mask, method=PatchVQVAE.get_features)
    full = codec.apply(codec_vars, image, method=PatchVQVAE.get_features)
    f, q, tt = masked["feature"], masked["feature_quantize"], masked["token_type"]
    b, h, w, c = f.shape
    if rand is None:
        if key is None:
            raise ValueError("sampler_training_inputs: give `rand` (B, h, w) or `key`")
        rand = jax.random.uniform(key, (b, h, w))
    rand = jnp.reshape(rand, (b, h, w))
    qmask = ((rand < random_quantize) & (tt == UNMASKED)).astype(f.dtype)[..., None]
    feat = f * (1 - qmask) + q * qmask
    return {
        "features": feat.reshape(b, h * w, c),
        "token_target": full["token"].reshape(b, h * w).astype(jnp.int32),
        "token_type": tt.reshape(b, h * w).astype(jnp.int32),
    }


def masked_token_cross_entropy(logits, token_target, token_type):
    """transformer.py forward(return_loss=True): (loss, accuracy).

    loss = sum_l CE(logits_l, target_l) [tt_l != 1] / (sum_l [tt_l != 1] + 1e-18), over the whole batch.
    accuracy (logging only) keeps the original's quirk: the arg-max of a KNOWN position is multiplied by
    0 before the comparison, so known positions whose target is code 0 count as correct, and the mean is
    over all B*L positions.
    """
    k = logits.shape[-1]
    lf = logits.reshape(-1, k)
    tgt = token_target.reshape(-1)
    valid = (token_type.reshape(-1) != UNMASKED).astype(lf.dtype)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(lf, axis=-1), tgt[:, None], axis=-1)[:, 0]
    loss = jnp.sum(ce * valid) / (jnp.sum(valid) + 1e-18)
    pred = jnp.argmax(lf, axis=-1) * valid.astype(jnp.int32)
    accuracy = jnp.mean((pred == tgt).astype(lf.dtype))
    return loss, accuracy
