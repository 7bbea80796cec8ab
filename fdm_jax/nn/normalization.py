"""PyTorch's normalisation mechanics, shared by every port that needs them: BatchNorm's running
statistics (`torch.nn.BatchNorm2d` / SyncBN update rule) and spectral normalisation's power iteration
(`torch.nn.utils.spectral_norm`). The modules that use them (ffc.TorchBatchNorm, spade.BatchNorm,
spade.SNConv2d, losses.discriminator.SpectralConv2d) keep their own parameters and output formulas.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

BN_MOMENTUM = 0.1  # torch.nn.BatchNorm2d default momentum (new = 0.9 old + 0.1 batch)
SN_COLLECTION = "spectral_norm"
SN_EPS = 1e-12  # torch.nn.utils.spectral_norm(eps=1e-12) default


def batch_statistics(module: nn.Module, x: jax.Array, train: bool, momentum: float = BN_MOMENTUM):
    """(mean, var) that normalise `x` over all but its last axis, declaring the `batch_stats`
    variables `mean` (init 0) and `var` (init 1) on `module`.

    train=False: the running statistics. train=True: the batch mean and biased variance; the running
    statistics move by `momentum` toward the batch mean and the UNBIASED batch variance (PyTorch's
    rule, also sync_batchnorm's), skipped while initialising, so the caller needs
    mutable=['batch_stats']. Under a batch-sharded jit the batch statistics are global.
    """
    c = x.shape[-1]
    ra_mean = module.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
    ra_var = module.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
    if not train:
        return ra_mean.value, ra_var.value
    n = x.size // c
    if n < 2:
        raise ValueError(f"BatchNorm({module.name}) in train mode needs more than one value per channel, "
                         f"got input shape {x.shape}")
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axes)
    var = jnp.mean(jnp.square(x - mean), axes)
    if not module.is_initializing():
        ra_mean.value = (1 - momentum) * ra_mean.value + momentum * lax.stop_gradient(mean)
        ra_var.value = (1 - momentum) * ra_var.value + momentum * lax.stop_gradient(var) * (n / (n - 1))
    return mean, var


def l2_normalize(x: jax.Array, eps: float = SN_EPS) -> jax.Array:
    """`F.normalize(x, dim=0, eps)`: x / max(||x||_2, eps)."""
    return x / jnp.maximum(jnp.sqrt(jnp.sum(x * x)), eps)


def weight_matrix(kernel: jax.Array) -> jax.Array:
    """HWIO kernel -> PyTorch's `weight_orig.reshape(out, -1)`, i.e. columns ordered (in, kh, kw)."""
    return kernel.transpose(3, 2, 0, 1).reshape(kernel.shape[3], -1)


def power_iteration(w: jax.Array, u: jax.Array, v: jax.Array, eps: float = SN_EPS):
    """One step of torch's SpectralNorm.compute_weight, in its order: v first, then u.

    v <- normalize(W^T u), u <- normalize(W v). No gradient flows through u, v (torch: no_grad).
    """
    w = lax.stop_gradient(w)
    v = l2_normalize(jnp.dot(w.T, u), eps)
    u = l2_normalize(jnp.dot(w, v), eps)
    return u, v


def spectral_sigma(w: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
    """sigma = u . (W v); differentiable in W only (u, v are constants, as in torch)."""
    u, v = lax.stop_gradient(u), lax.stop_gradient(v)
    return jnp.dot(u, jnp.dot(w, v))


def spectral_norm_vectors(module: nn.Module, kernel: jax.Array, update: bool, eps: float = SN_EPS):
    """Declares u (out,) and v (in*kh*kw,) in the `spectral_norm` collection of `module` (torch draws
    them as normalize(N(0, 1)) when spectral_norm wraps the conv), runs one power iteration when
    `update` (torch train mode; not while initialising) and returns sigma of the HWIO `kernel`."""
    k_h, k_w, cin, cout = kernel.shape
    u = module.variable(SN_COLLECTION, "u",
                        lambda: l2_normalize(jax.random.normal(module.make_rng("params"), (cout,)), eps))
    v = module.variable(SN_COLLECTION, "v",
                        lambda: l2_normalize(jax.random.normal(module.make_rng("params"), (cin * k_h * k_w,)), eps))
    w = weight_matrix(kernel)
    if update and not module.is_initializing():
        u.value, v.value = power_iteration(w, u.value, v.value, eps)
    return spectral_sigma(w, u.value, v.value)
