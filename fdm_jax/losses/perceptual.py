"""Content (perceptual) and style losses given feature maps
(hyudsl/FDM:image_synthesis/modeling/modules/edge_connect/losses.py:PerceptualLoss, StyleLoss).

The losses take the feature dicts of the two images, so they work with any backbone
(`fdm_jax.losses.vgg`) and with maps computed elsewhere. Maps are NHWC.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
from jax import lax

# losses.py: PerceptualLoss uses relu1_1 .. relu5_1 with weights [1.0] * 5; StyleLoss ('normal')
# uses relu2_2, relu3_4, relu4_4, relu5_2 of VGG19.
CONTENT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)
STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")


def gram_matrix(x: jax.Array) -> jax.Array:
    """StyleLoss.compute_gram: F F^T / (C H W) with F = x as (B, C, H*W). NHWC (B, H, W, C) -> (B, C, C)."""
    if x.ndim != 4:
        raise ValueError(f"gram_matrix: expected an NHWC feature map, got shape {x.shape}")
    b, h, w, c = x.shape
    f = x.reshape(b, h * w, c)
    return jnp.einsum("bpc,bpd->bcd", f, f, precision=lax.Precision.HIGHEST) / (h * w * c)


def _pairs(feats_x: Mapping, feats_y: Mapping, layers: Sequence[str], what: str):
    missing = [l for l in layers if l not in feats_x or l not in feats_y]
    if missing:
        raise KeyError(f"{what}: feature maps {missing} missing (have {sorted(feats_x)} / {sorted(feats_y)})")
    for l in layers:
        if feats_x[l].shape != feats_y[l].shape:
            raise ValueError(f"{what}: layer {l} shapes differ: {feats_x[l].shape} vs {feats_y[l].shape}")
    return [(feats_x[l], feats_y[l]) for l in layers]


def content_loss(feats_x: Mapping[str, jax.Array], feats_y: Mapping[str, jax.Array],
                 layers: Sequence[str] = CONTENT_LAYERS, weights: Sequence[float] | None = None):
    """PerceptualLoss: sum_l w_l mean|phi_l(x) - phi_l(y)|. Returns (total, per-layer terms (L,))."""
    weights = CONTENT_WEIGHTS[: len(layers)] if weights is None else tuple(weights)
    if len(weights) != len(layers):
        raise ValueError(f"content_loss: {len(weights)} weights for {len(layers)} layers")
    terms = jnp.stack([jnp.mean(jnp.abs(a - b)) for a, b in _pairs(feats_x, feats_y, layers, "content_loss")])
    return jnp.sum(terms * jnp.asarray(weights, terms.dtype)), terms


def style_loss(feats_x: Mapping[str, jax.Array], feats_y: Mapping[str, jax.Array],
               layers: Sequence[str] = STYLE_LAYERS):
    """StyleLoss: sum_l mean|Gram(phi_l(x)) - Gram(phi_l(y))|. Returns (total, per-layer terms (L,)).

    The caller feeds hole-only images (x * (1 - mask)), as EdgeConnectLoss does."""
    terms = jnp.stack([jnp.mean(jnp.abs(gram_matrix(a) - gram_matrix(b)))
                       for a, b in _pairs(feats_x, feats_y, layers, "style_loss")])
    return jnp.sum(terms), terms
