"""EMA vector quantizer with PUT's dual codebook
(hyudsl/FDM:image_synthesis/modeling/codecs/image_codec/vector_quantizer.py:VectorQuantizer).

Codes [0, masked_embed_start) quantize fully known patches (token_type 1); codes
[masked_embed_start, num_embed) quantize every other patch. The codebook is not a trainable
parameter: it lives in the `codebook` collection and is updated by exponential moving averages
during phase-1 training (`update_ema=True` with `mutable=['codebook']`), like Flax's BatchNorm.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdm_jax.put_fdm.patch_masks import UNMASKED


def squared_distances(z: jax.Array, embedding: jax.Array) -> jax.Array:
    """|z|^2 + |e|^2 - 2 z.e in the original's expanded form (its argmin ties depend on it). (L, D), (N, D) -> (L, N)."""
    return (
        jnp.sum(z**2, axis=1, keepdims=True)
        + jnp.sum(embedding**2, axis=1)
        - 2 * jnp.matmul(z, embedding.T)
    )


def nearest_codes(z: jax.Array, embedding: jax.Array, token_type: jax.Array | None, masked_embed_start: int):
    """Dual-codebook index rule of `VectorQuantizer._quantize` (topk=1, no gumbel). z (L, D), token_type (L,)."""
    d = squared_distances(z, embedding)
    n_e = embedding.shape[0]
    if token_type is None or masked_embed_start >= n_e:
        return jnp.argmin(d, axis=1)
    unmasked = jnp.argmin(d[:, :masked_embed_start], axis=1)
    masked = masked_embed_start + jnp.argmin(d[:, masked_embed_start:], axis=1)
    return jnp.where(token_type == UNMASKED, unmasked, masked)


def ema_update(embedding_avg, cluster_size, z, index, decay: float, eps: float):
    """One EMA codebook step, as the original runs it after quantizing with the old codebook.

    Under a batch-sharded jit the sums below are over the global batch, which is what the
    original's all_reduce computes. Returns (embedding, cluster_size, embedding_avg).
    """
    n_e = cluster_size.shape[0]
    onehot = jax.nn.one_hot(index, n_e, dtype=z.dtype)  # (L, n_e)
    count = onehot.sum(0)
    z_sum = (z.T @ onehot).T
    cluster_size = cluster_size * decay + count * (1 - decay)
    embedding_avg = embedding_avg * decay + z_sum * (1 - decay)
    n = cluster_size.sum()
    smoothed = (cluster_size + eps) / (n + n_e * eps) * n
    return embedding_avg / smoothed[:, None], cluster_size, embedding_avg


def restart_dead_codes(embedding, cluster_size, embedding_avg, z, token_type, masked_embed_start: int,
                       threshold: float):
    """NOT in the original (opt-in, `dead_code_restart` > 0): codes whose EMA count fell below
    `threshold` are moved onto features z of the current batch (of their own token type where the batch
    has one), with a pseudo-count of 1. The original's EMA divides a never-used code's average by a
    cluster size of ~eps, so such a code leaves the data for about ln(|e| / eps) / (1 - decay) ~ 1400
    steps; its long runs absorb that, short ones end with a collapsed codebook (configs/put_fdm_small.py)."""
    n_e, length = cluster_size.shape[0], z.shape[0]
    dead = cluster_size < threshold
    k = jnp.arange(n_e, dtype=jnp.float32)[:, None]
    n = jnp.arange(length, dtype=jnp.float32)[None, :]
    salt = jnp.abs(jnp.sum(jax.lax.stop_gradient(z[:, 0]))) % 97.0  # changes the picks from batch to batch
    h = jnp.abs(jnp.sin(k * 12.9898 + n * 78.233 + salt) * 43758.5453) % 1.0  # a hash in [0, 1) per (code, feature)
    if token_type is not None and masked_embed_start < n_e:
        same_type = (token_type == UNMASKED)[None, :] == (jnp.arange(n_e) < masked_embed_start)[:, None]
        h = jnp.where(same_type, h + 1.0, h)
    picked = z[jnp.argmax(h, axis=1)]
    return (jnp.where(dead[:, None], picked, embedding), jnp.where(dead, 1.0, cluster_size),
            jnp.where(dead[:, None], picked, embedding_avg))


class VectorQuantizer(nn.Module):
    num_embed: int = 1024
    embed_dim: int = 256
    masked_embed_start: int = 512
    ema_decay: float = 0.99  # hard-coded in vector_quantizer.py
    ema_eps: float = 1e-5  # hard-coded in vector_quantizer.py
    dead_code_restart: float = 0.0  # not in the original: > 0 restarts codes whose EMA count is below it

    def setup(self):
        # embedding ~ N(0, 1), embedding_avg a copy, cluster_size zeros (vector_quantizer.py __init__).
        self.embedding = self.variable(
            "codebook", "embedding",
            lambda: jax.random.normal(self.make_rng("params"), (self.num_embed, self.embed_dim)),
        )
        self.embedding_avg = self.variable("codebook", "embedding_avg", lambda: jnp.copy(self.embedding.value))  # own buffer (donation)
        self.cluster_size = self.variable("codebook", "cluster_size", lambda: jnp.zeros((self.num_embed,)))

    def __call__(self, z: jax.Array, token_type: jax.Array | None = None, update_ema: bool = False):
        """z (B, h, w, D), token_type (B, h, w) or None (= all unmasked codes... see below).

        token_type None searches the whole codebook, as the original does; `get_features` without a
        mask passes all-ones token types instead (codes < masked_embed_start).
        Returns dict(quantize = straight-through z_q, index (B, h, w), quantize_loss).
        """
        shape = z.shape
        flat = z.reshape(-1, shape[-1])
        tt = None if token_type is None else token_type.reshape(-1)
        embedding = self.embedding.value
        index = nearest_codes(flat, embedding, tt, self.masked_embed_start)
        z_q = embedding[index]  # get_embed_type 'retrive': a row gather with the pre-update codebook
        if update_ema and not self.is_initializing():
            new = ema_update(self.embedding_avg.value, self.cluster_size.value,
                             jax.lax.stop_gradient(flat), index, self.ema_decay, self.ema_eps)
            if self.dead_code_restart > 0:
                new = restart_dead_codes(*new, jax.lax.stop_gradient(flat), tt, self.masked_embed_start,
                                         self.dead_code_restart)
            self.embedding.value, self.cluster_size.value, self.embedding_avg.value = new
        loss = jnp.mean((jax.lax.stop_gradient(z_q) - flat) ** 2)
        z_q = flat + jax.lax.stop_gradient(z_q - flat)  # straight-through estimator
        return {
            "quantize": z_q.reshape(shape),
            "index": index.reshape(shape[:-1]),
            "quantize_loss": loss,
        }

    def embed(self, index: jax.Array) -> jax.Array:
        """Codebook vectors of `index` (any shape) -> index.shape + (D,)."""
        return self.embedding.value[index]
