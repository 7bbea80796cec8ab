"""The feature sampler: PUT's UQ-Transformer
(hyudsl/FDM:image_synthesis/modeling/vector_predictor/{transformer.py,transformer_block.py}).

It reads the *unquantized* patch features of the masked image (fully masked patches all carry the
same feature vector, which acts as a mask token), embeds them with a Linear layer plus a learned
positional embedding, runs pre-LN blocks with full (unmasked) self-attention and predicts logits over
the unmasked half of the codebook.
"""

from __future__ import annotations

import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fdm_jax.nn.layers import Linear, compute_cast, compute_dtype

# transformer.py:_init_weights: Linear weights N(0, 0.02), biases 0; pos_emb zeros.
_linear_init = nn.initializers.normal(0.02)


def gelu2(x: jax.Array) -> jax.Array:
    """transformer_block.py:GELU2 = x * sigmoid(1.702 x) (not the erf GELU)."""
    return x * jax.nn.sigmoid(1.702 * x)


class LayerNorm(nn.Module):
    """`torch.nn.LayerNorm` (biased variance, eps 1e-5 by default; Flax's default eps is 1e-6).

    Always computed in float32, the result cast to `dtype` (the next matmul's input): in bfloat16
    (8 significant bits) the mean and variance over 512 channels lose the small deviations that
    LayerNorm divides by, and x - mean cancels catastrophically."""

    epsilon: float = 1e-5
    dtype: Any = None  # output dtype (None: float32); the statistics are float32 regardless

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        x = x.astype(jnp.float32)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        return compute_cast(self.dtype, (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias)


ATTENTION_IMPLEMENTATIONS = ("einsum", "dot_product")


class SelfAttention(nn.Module):
    """transformer_block.py:FullAttention with causal=False and no mask; returns (y, head-mean attention).

    attention "einsum": softmax(q k^T / sqrt(d)) v written out, the head-mean attention returned (the
    parity runner checks it); "dot_product": jax.nn.dot_product_attention (bit-identical on CPU at
    float32, tests/test_models.py; fused kernels on accelerators), no attention map (None)."""

    num_heads: int
    attention: str = "einsum"
    dtype: Any = None  # matmul dtype (None: float32); scores and softmax are float32 regardless

    @nn.compact
    def __call__(self, x):
        b, t, c = x.shape
        hd = c // self.num_heads

        def heads(name):  # channel c -> head c // hd, as .view(B, T, nh, hs)
            return Linear(c, kernel_init=_linear_init, name=name, dtype=self.dtype)(x).reshape(b, t, self.num_heads, hd)

        k, q, v = heads("key"), heads("query"), heads("value")
        if self.attention == "dot_product":
            # jax.nn.dot_product_attention's XLA path takes the q.k logits and the softmax in float32
            # for bfloat16 inputs, as the einsum branch below does.
            y = jax.nn.dot_product_attention(q, k, v).reshape(b, t, c)
            return Linear(c, kernel_init=_linear_init, name="proj", dtype=self.dtype)(y), None
        if self.attention != "einsum":
            raise ValueError(f"attention: {self.attention!r}; expected one of {ATTENTION_IMPLEMENTATIONS}")
        # Head-major operands, as the original's .transpose(1, 2): XLA's CPU dot runs the two products
        # about 1.3x faster this way than on (B, T, nh, hs) operands (same numbers, bit for bit;
        # benchmarks/README.md, "fill step").
        q, k, v = (jnp.transpose(a, (0, 2, 1, 3)) for a in (q, k, v))     # (B, nh, T, hs)
        # Scores accumulated and returned in float32 and the softmax in float32: exp() of bfloat16
        # scores would turn their ~0.4 % rounding into a relative error of |score| * 0.4 % in every
        # weight (scores reach tens), and the head-mean attention is checked by the parity fixtures.
        att = jnp.einsum("bhqd,bhkd->bhqk", q, k, preferred_element_type=jnp.float32) * (1.0 / hd**0.5)
        att = jax.nn.softmax(att, axis=-1)
        y = jnp.einsum("bhqk,bhkd->bhqd", compute_cast(self.dtype, att), v)
        y = jnp.transpose(y, (0, 2, 1, 3)).reshape(b, t, c)
        return Linear(c, kernel_init=_linear_init, name="proj", dtype=self.dtype)(y), att.mean(axis=1)


class Block(nn.Module):
    """Pre-LN block: x + proj(attn(ln1(x))); then + mlp(ln2(x)).

    scanned: the body of `nn.scan` (FeatureSampler.scan_blocks): called as block(x, None), it sows its
    output ('block_out') and head-mean attention ('block_attn') itself and returns (x, None), so that the scan
    stacks only what is asked for (the sown values, when `intermediates` is mutable)."""

    num_heads: int
    mlp_ratio: int = 4
    layer_norm_eps: float = 1e-5
    attention: str = "einsum"
    scanned: bool = False
    dtype: Any = None  # matmul dtype (None: float32); the residual stream stays float32

    @nn.compact
    def __call__(self, x, _=None):
        c, dt = x.shape[-1], self.dtype
        a, att = SelfAttention(self.num_heads, self.attention, name="attn", dtype=dt)(
            LayerNorm(self.layer_norm_eps, name="ln1", dtype=dt)(x))
        # The residual stream is float32 (x + a promotes): 35 bfloat16 roundings of a running sum
        # would accumulate; the adds are cheap next to the matmuls.
        x = x + a.astype(x.dtype)
        h = LayerNorm(self.layer_norm_eps, name="ln2", dtype=dt)(x)
        h = Linear(self.mlp_ratio * c, kernel_init=_linear_init, name="mlp_fc1", dtype=dt)(h)
        h = Linear(c, kernel_init=_linear_init, name="mlp_fc2", dtype=dt)(gelu2(h))
        x = x + h.astype(x.dtype)
        if not self.scanned:
            return x, att
        self.sow("intermediates", "block_out", x)  # not 'attn': that name is the attention submodule's
        if att is not None:
            self.sow("intermediates", "block_attn", att)
        return x, None


class FeatureSampler(nn.Module):
    """MaskedImageInpaintingTransformer. Field names follow configs/*.py `model.sampler`.

    __call__(features (B, L, feature_dim)) -> logits (B, L, num_tokens). Each block's output and
    head-averaged attention are sown into the `intermediates` collection when it is mutable
    (`block_intermediates` gives them the same names in both layouts).

    scan_blocks: False keeps one parameter subtree per block (`block_0` ... `block_{n-1}`, the layout
    of the converted original checkpoints and of every saved run); True runs the blocks as one
    `nn.scan` over a stacked subtree `blocks` (each leaf with a leading axis of num_layers), so the
    program holds one block and its compile time does not grow with the depth. `stack_blocks` /
    `unstack_blocks` convert between the two layouts (`match_layout` picks the one a module needs).
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
    scan_blocks: bool = False  # nn.scan over the blocks (stacked parameters `blocks`); class doc
    # Computation dtype of the matmuls ('float32' or 'bfloat16'); parameters are float32 either way,
    # LayerNorm statistics, attention softmax, the residual stream and the logits float32 (the
    # comments in LayerNorm, SelfAttention, Block and __call__ say why).
    dtype: Any = "float32"

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        if features.shape[1] != self.seq_len:
            raise ValueError(
                f"FeatureSampler: sequence length {features.shape[1]} != seq_len {self.seq_len} "
                "(the positional embedding has one entry per patch of the training image size)")
        dt = compute_dtype(self.dtype)  # None: no casts at all
        x = Linear(self.width, kernel_init=_linear_init, name="emb_proj", dtype=dt)(features)
        x = x.astype(jnp.float32) + self.param("pos_emb", nn.initializers.zeros, (1, self.seq_len, self.width))
        if self.scan_blocks:
            # One traced block, its parameters stacked on axis 0; a new init key per block (as the
            # unrolled blocks get); the sown outputs/attentions stacked on axis 0 too.
            blocks = nn.scan(Block, variable_axes={"params": 0, "intermediates": 0},
                             split_rngs={"params": True, "dropout": True}, length=self.num_layers)
            x, _ = blocks(self.num_heads, self.mlp_ratio, self.layer_norm_eps, self.attention, scanned=True,
                          dtype=dt, name=SCANNED)(x, None)
        else:
            for i in range(self.num_layers):
                x, att = Block(self.num_heads, self.mlp_ratio, self.layer_norm_eps, self.attention,
                               dtype=dt, name=f"block_{i}")(x)
                self.sow("intermediates", f"block{i}_out", x)
                if att is not None:
                    self.sow("intermediates", f"block{i}_attn", att)
        # ln_f and to_logits in float32 whatever dtype (one width x num_tokens matmul, under 1 % of
        # the FLOPs): the sequential schedule ranks positions by their max logit and top-K filters by
        # value, so the ordering of the logits must not be decided by bfloat16 rounding (logit gaps
        # below ~0.4 % of their size tie or swap in bfloat16).
        x = LayerNorm(self.layer_norm_eps, name="ln_f")(x)
        return Linear(self.num_tokens, kernel_init=_linear_init, name="to_logits")(x)


# -- the two parameter layouts ----------------------------------------------------------------------

SCANNED = "blocks"  # the scanned layout's subtree (FeatureSampler(scan_blocks=True))
_BLOCK = re.compile(r"block_(\d+)$")


def _split(tree):
    """(params, rebuild): the sampler's params, from a params dict or a variables dict {'params': ...}."""
    if "params" in tree:
        return tree["params"], lambda p: {**tree, "params": p}
    return tree, lambda p: p


def is_scanned(tree) -> bool:
    """Whether a sampler params (or variables) tree is in the scanned layout."""
    return SCANNED in _split(tree)[0]


def stack_blocks(tree):
    """Per-block layout (`block_0` ... `block_{n-1}`) -> scanned layout (`blocks`, every leaf stacked
    on a new axis 0 in block order). Takes the params or a variables dict {'params': ...} (other
    collections kept); a tree already scanned is returned as is. Exact (a copy of the values)."""
    params, rebuild = _split(tree)
    if SCANNED in params:
        return tree
    index = {int(m.group(1)): k for k in params if (m := _BLOCK.match(k))}
    if not index:
        raise ValueError(f"stack_blocks: no block_<i> subtrees in the sampler parameters ({sorted(params)})")
    if sorted(index) != list(range(len(index))):
        raise ValueError(f"stack_blocks: block indices {sorted(index)} are not 0..{len(index) - 1}")
    blocks = [params[index[i]] for i in range(len(index))]
    out = {k: v for k, v in params.items() if not _BLOCK.match(k)}
    out[SCANNED] = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *blocks)
    return rebuild(out)


def unstack_blocks(tree):
    """Scanned layout (`blocks`) -> per-block layout (`block_0` ...), the inverse of `stack_blocks`
    (params or variables; a per-block tree is returned as is)."""
    params, rebuild = _split(tree)
    if SCANNED not in params:
        return tree
    stacked = params[SCANNED]
    n = {int(leaf.shape[0]) for leaf in jax.tree_util.tree_leaves(stacked)}
    if len(n) != 1:
        raise ValueError(f"unstack_blocks: stacked leaves disagree on the number of blocks ({sorted(n)})")
    out = {k: v for k, v in params.items() if k != SCANNED}
    for i in range(n.pop()):
        out[f"block_{i}"] = jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], stacked)
    return rebuild(out)


def match_layout(tree, sampler: FeatureSampler):
    """Sampler params/variables in the layout `sampler` needs (`scan_blocks`), from either layout:
    what loads checkpoints and converted weights into a scanned or an unrolled sampler."""
    return stack_blocks(tree) if sampler.scan_blocks else unstack_blocks(tree)


def with_sampler_layout(variables: dict, models: dict) -> dict:
    """Model variables {'codec', 'sampler', ...} with the sampler's parameters in the layout
    models['sampler'] needs (`match_layout`), whichever layout the checkpoint was saved in."""
    if "sampler" not in variables or "sampler" not in models:
        return variables
    return {**variables, "sampler": match_layout(variables["sampler"], models["sampler"])}


def block_intermediates(intermediates) -> dict:
    """The sampler's sown `intermediates` -> {'block{i}_out': (B, L, C), 'block{i}_attn': (B, L, L)} in
    either layout (the scanned one sows them stacked under `blocks`)."""
    out = {name: value[0] for name, value in intermediates.items() if name != SCANNED}
    for name, (value,) in intermediates.get(SCANNED, {}).items():
        for i in range(value.shape[0]):
            out[f"block{i}_{name[len('block_'):]}"] = value[i]
    return out
