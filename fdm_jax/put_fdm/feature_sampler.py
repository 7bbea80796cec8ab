"""The feature sampler: PUT's UQ-Transformer
(hyudsl/FDM:image_synthesis/modeling/vector_predictor/{transformer.py,transformer_block.py}).

It reads the *unquantized* patch features of the masked image (fully masked patches all carry the
same feature vector, which acts as a mask token), embeds them with a Linear layer plus a learned
positional embedding, runs pre-LN blocks with full (unmasked) self-attention and predicts logits over
the unmasked half of the codebook.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdm_jax.nn.layers import Linear

# transformer.py:_init_weights: Linear weights N(0, 0.02), biases 0; pos_emb zeros.
_linear_init = nn.initializers.normal(0.02)


def gelu2(x: jax.Array) -> jax.Array:
    """transformer_block.py:GELU2 = x * sigmoid(1.702 x) (not the erf GELU)."""
    return x * jax.nn.sigmoid(1.702 * x)


class LayerNorm(nn.Module):
    """`torch.nn.LayerNorm` (biased variance, eps 1e-5 by default; Flax's default eps is 1e-6)."""

    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


ATTENTION_IMPLEMENTATIONS = ("einsum", "dot_product")


class SelfAttention(nn.Module):
    """transformer_block.py:FullAttention with causal=False and no mask; returns (y, head-mean attention).

    attention "einsum": softmax(q k^T / sqrt(d)) v written out, the head-mean attention returned (the
    parity runner checks it); "dot_product": jax.nn.dot_product_attention (bit-identical on CPU at
    float32, tests/test_models.py; fused kernels on accelerators), no attention map (None)."""

    num_heads: int
    attention: str = "einsum"

    @nn.compact
    def __call__(self, x):
        b, t, c = x.shape
        hd = c // self.num_heads

        def heads(name):  # channel c -> head c // hd, as .view(B, T, nh, hs)
            return Linear(c, kernel_init=_linear_init, name=name)(x).reshape(b, t, self.num_heads, hd)

        k, q, v = heads("key"), heads("query"), heads("value")
        if self.attention == "dot_product":
            y = jax.nn.dot_product_attention(q, k, v).reshape(b, t, c)
            return Linear(c, kernel_init=_linear_init, name="proj")(y), None
        if self.attention != "einsum":
            raise ValueError(f"attention: {self.attention!r}; expected one of {ATTENTION_IMPLEMENTATIONS}")
        # Head-major operands, as the original's .transpose(1, 2): XLA's CPU dot runs the two products
        # about 1.3x faster this way than on (B, T, nh, hs) operands (same numbers, bit for bit;
        # benchmarks/README.md, "fill step").
        q, k, v = (jnp.transpose(a, (0, 2, 1, 3)) for a in (q, k, v))     # (B, nh, T, hs)
        att = jnp.einsum("bhqd,bhkd->bhqk", q, k) * (1.0 / hd**0.5)
        att = jax.nn.softmax(att, axis=-1)
        y = jnp.transpose(jnp.einsum("bhqk,bhkd->bhqd", att, v), (0, 2, 1, 3)).reshape(b, t, c)
        return Linear(c, kernel_init=_linear_init, name="proj")(y), att.mean(axis=1)


class Block(nn.Module):
    """Pre-LN block: x + proj(attn(ln1(x))); then + mlp(ln2(x))."""

    num_heads: int
    mlp_ratio: int = 4
    layer_norm_eps: float = 1e-5
    attention: str = "einsum"

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        a, att = SelfAttention(self.num_heads, self.attention, name="attn")(LayerNorm(self.layer_norm_eps, name="ln1")(x))
        x = x + a
        h = LayerNorm(self.layer_norm_eps, name="ln2")(x)
        h = Linear(self.mlp_ratio * c, kernel_init=_linear_init, name="mlp_fc1")(h)
        h = Linear(c, kernel_init=_linear_init, name="mlp_fc2")(gelu2(h))
        return x + h, att


class FeatureSampler(nn.Module):
    """MaskedImageInpaintingTransformer. Field names follow configs/*.py `model.sampler`.

    __call__(features (B, L, feature_dim)) -> logits (B, L, num_tokens). Each block's output and
    head-averaged attention are sown into the `intermediates` collection when it is mutable.
    """

    num_layers: int = 35
    width: int = 512
    num_heads: int = 8
    mlp_ratio: int = 4
    seq_len: int = 1024
    num_tokens: int = 512
    feature_dim: int = 256
    layer_norm_eps: float = 1e-5
    attention: str = "einsum"  # or "dot_product" (jax.nn.dot_product_attention; SelfAttention's doc)

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        if features.shape[1] != self.seq_len:
            raise ValueError(
                f"FeatureSampler: sequence length {features.shape[1]} != seq_len {self.seq_len} "
                "(the positional embedding has one entry per patch of the training image size)")
        x = Linear(self.width, kernel_init=_linear_init, name="emb_proj")(features)
        x = x + self.param("pos_emb", nn.initializers.zeros, (1, self.seq_len, self.width))
        for i in range(self.num_layers):
            x, att = Block(self.num_heads, self.mlp_ratio, self.layer_norm_eps, self.attention, name=f"block_{i}")(x)
            self.sow("intermediates", f"block{i}_out", x)
            if att is not None:
                self.sow("intermediates", f"block{i}_attn", att)
        x = LayerNorm(self.layer_norm_eps, name="ln_f")(x)
        return Linear(self.num_tokens, kernel_init=_linear_init, name="to_logits")(x)
