"""EdgeConnect patch discriminator with spectral normalisation
(hyudsl/FDM:image_synthesis/modeling/modules/edge_connect/networks.py:Discriminator).

Five bias-free 4x4 convolutions 3 -> w1 -> w2 -> w3 -> w4 -> 1 (strides 2, 2, 2, 1, 1, padding 1),
LeakyReLU(0.2) after the first four, sigmoid on the output (`use_sigmoid=True`,
`use_reflection_pad=False`). Every convolution is wrapped in `torch.nn.utils.spectral_norm`.

Spectral-norm state: the trainable kernel (PyTorch's `weight_orig`, here in Flax HWIO layout) is a
`params` leaf; the power-iteration vectors u (out,) and v (in*kh*kw,) live in the separate
`spectral_norm` collection, in PyTorch's order (the weight reshaped to (out, in*kh*kw)). In train
mode each call runs ONE power iteration (PyTorch's forward pre-hook) and returns the new u, v, so
the update is functional: inside `jax.grad` return it through `has_aux`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fdm_jax.nn.normalization import (SN_COLLECTION, SN_EPS, l2_normalize, power_iteration,  # noqa: F401
                                          spectral_norm_vectors, spectral_sigma, weight_matrix)
from fdm_jax.nn.params import abstract_variables

LEAKY_SLOPE = 0.2  # networks.py: nn.LeakyReLU(0.2, inplace=True)
INIT_STD = 0.02  # networks.py: BaseNetwork.init_weights(init_type='normal', gain=0.02)
FULL_WIDTHS = (64, 128, 256, 512)  # networks.py hard-codes these


class SpectralConv2d(nn.Module):
    """`spectral_norm(nn.Conv2d(in, out, k, stride, padding, bias=False))` on NHWC input."""

    features: int
    kernel_size: int = 4
    stride: int = 1
    padding: int = 1
    eps: float = SN_EPS

    @nn.compact
    def __call__(self, x: jax.Array, update: bool) -> jax.Array:
        k, in_ch = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", nn.initializers.normal(INIT_STD), (k, k, in_ch, self.features))
        # init_weights later overwrites only weight_orig (through the shared `weight.data`), not u, v.
        sigma = spectral_norm_vectors(self, kernel, update, self.eps)
        return lax.conv_general_dilated(
            x, kernel / sigma, window_strides=(self.stride, self.stride),
            padding=((self.padding, self.padding), (self.padding, self.padding)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Discriminator(nn.Module):
    """networks.py:Discriminator(in_channels=3, use_sigmoid=True, use_spectral_norm=True,
    use_reflection_pad=False). `widths` replaces the hard-coded 64/128/256/512 (the fixture uses
    16/32/64/128). Submodules are named conv1..conv5 like the original's Sequentials."""

    widths: Sequence[int] = FULL_WIDTHS
    use_sigmoid: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, update_sn: bool = True):
        """x (B, H, W, C) in [0, 1] -> (D map (B, h, w, 1), [conv1 ... conv5] feature maps).

        `update_sn` = train mode: one power iteration per call (needs mutable=['spectral_norm'])."""
        if x.ndim != 4:
            raise ValueError(f"discriminator input: expected (B, H, W, C) images, got shape {x.shape}")
        if min(x.shape[1:3]) < 24:
            raise ValueError(f"discriminator input: H and W must be >= 24 for the five 4x4 convolutions, "
                             f"got shape {x.shape}")
        if len(self.widths) != 4:
            raise ValueError(f"Discriminator.widths: expected 4 channel counts, got {tuple(self.widths)}")
        feats = []
        strides = (2, 2, 2, 1)
        h = x
        for i, (w, s) in enumerate(zip(self.widths, strides)):
            h = SpectralConv2d(w, stride=s, name=f"conv{i + 1}")(h, update_sn)
            h = nn.leaky_relu(h, LEAKY_SLOPE)
            feats.append(h)
        h = SpectralConv2d(1, stride=1, name="conv5")(h, update_sn)
        feats.append(h)
        out = jax.nn.sigmoid(h) if self.use_sigmoid else h
        return out, feats


def init_discriminator(disc: Discriminator, key: jax.Array, in_ch: int = 3) -> dict:
    """Fresh variables {'params': kernels N(0, 0.02), 'spectral_norm': {convK: {u, v}}} (the phase-3
    discriminator starts from scratch, as in the original). u, v = normalize(randn) and no power iteration runs
    at init, as in torch. All draws come from one normal vector (one small XLA program instead of one
    threefry per leaf, which is slow to compile on CPU)."""
    abstract = abstract_variables(disc, jnp.zeros((1, 32, 32, in_ch)), update_sn=False)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    sizes = [leaf.size for _, leaf in leaves]
    flat = np.asarray(jax.random.normal(key, (sum(sizes),), jnp.float32))
    out, start = [], 0
    for (path, leaf), n in zip(leaves, sizes):
        x = flat[start:start + n].reshape(leaf.shape)
        start += n
        if path[0].key == SN_COLLECTION:
            x = x / max(float(np.linalg.norm(x)), SN_EPS)
        else:
            x = x * INIT_STD
        out.append(jnp.asarray(x, leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


def discriminator_apply(disc: Discriminator, variables, x: jax.Array, train: bool = True):
    """D(x) -> (sigmoid map (B, h, w, 1), new spectral_norm state).

    train=True: one power iteration, the returned state holds the new u, v (thread it into the next
    call). train=False: torch's eval mode; u, v are used as stored and returned unchanged.
    Differentiable in variables['params'] and x.
    """
    missing = [c for c in ("params", SN_COLLECTION) if c not in variables]
    if missing:
        raise ValueError(f"discriminator variables: missing collection(s) {missing}; "
                         f"expected {{'params', '{SN_COLLECTION}'}} (init_discriminator or convert_discriminator)")
    if not train:
        out, _ = disc.apply(variables, x, update_sn=False)
        return out, variables[SN_COLLECTION]
    (out, _), state = disc.apply(variables, x, update_sn=True, mutable=[SN_COLLECTION])
    return out, state[SN_COLLECTION]
