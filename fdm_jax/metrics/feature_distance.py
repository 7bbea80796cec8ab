"""How far features are from the ideal (unquantized) ones: the FDM paper's Table 3 measure.

The paper reports the L2 distance between generated and ideal features at masked patches (3.68 for
PUT's quantized features, 2.87 after FDM). `feature_distances` measures, for features of the FULL
image at the patches a mask touches (masked_patch_idx = 1), the per-patch L2 distance
||f - q|| of the quantized features q to the ideal f, and ||f - (q + pv)|| after FDM, with pv =
FDM(qv, m) and qv = f (1 - m) + q m exactly as phase 2 trains it (InpaintingModel.forward(name='fdm')).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from fdm_jax.put_fdm.quantization_error import quantization_error_inputs
from fdm_jax.put_fdm import PatchVQVAE, apply_fdm


def feature_distances(codec: PatchVQVAE, codec_vars, fdm, fdm_vars, image, mask) -> dict:
    """image (B, H, W, 3) in [0, 255], mask (B, H, W, 1), 1 = known. Returns sums over masked patches
    {'quantized': sum ||f - q||, 'with_fdm': sum ||f - (q + pv)||, 'patches': count} (sums, so
    batches can be accumulated; divide by 'patches' for the mean)."""
    qi = quantization_error_inputs(codec, codec_vars, image, mask)
    f, q, m = qi["feature"], qi["quantized"], qi["masked_patch_idx"]
    v, _ = apply_fdm(functools.partial(fdm.apply, fdm_vars), q, f, m)
    w = m[..., 0]
    dist = lambda a: jnp.sum(jnp.linalg.norm(f - a, axis=-1) * w)
    return {"quantized": dist(q), "with_fdm": dist(v), "patches": jnp.sum(w)}
