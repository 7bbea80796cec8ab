"""nsgan adversarial loss: `nn.BCELoss` on sigmoid outputs
(hyudsl/FDM:image_synthesis/modeling/modules/edge_connect/losses.py:AdversarialLoss, type 'nsgan').

PyTorch's BCELoss clamps each log at -100, so a probability of exactly 0 or 1 with the wrong label
costs 100, not inf. Its backward does not differentiate the clamp: it is
(x - y) / max(x (1 - x), 1e-12), finite everywhere. A custom VJP reproduces both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LOG_CLAMP = -100.0  # aten binary_cross_entropy: log clamped to >= -100
GRAD_EPS = 1e-12  # aten binary_cross_entropy_backward: EPSILON
REAL_LABEL = 1.0  # AdversarialLoss(target_real_label=1.0), buffer loss.adversarial_loss.real_label
FAKE_LABEL = 0.0  # AdversarialLoss(target_fake_label=0.0), buffer loss.adversarial_loss.fake_label


def _clamped_logs(x):
    # jnp.log(0) = -inf, then clamped; no NaN is created in the forward.
    return jnp.maximum(jnp.log(x), LOG_CLAMP), jnp.maximum(jnp.log1p(-x), LOG_CLAMP)


@jax.custom_vjp
def binary_cross_entropy_elementwise(x: jax.Array, y: jax.Array) -> jax.Array:
    """-(y log x + (1 - y) log(1 - x)) with each log clamped at -100 (no reduction)."""
    log_x, log_1mx = _clamped_logs(x)
    return -(y * log_x + (1 - y) * log_1mx)


def _bce_fwd(x, y):
    return binary_cross_entropy_elementwise(x, y), (x, y)


def _bce_bwd(res, g):
    x, y = res
    gx = g * (x - y) / jnp.maximum(x * (1 - x), GRAD_EPS)
    log_x, log_1mx = _clamped_logs(x)
    gy = g * (log_1mx - log_x)
    return gx, gy


binary_cross_entropy_elementwise.defvjp(_bce_fwd, _bce_bwd)


def binary_cross_entropy(probs: jax.Array, target) -> jax.Array:
    """`nn.BCELoss()` (mean reduction). `target` broadcasts to `probs` (labels are expanded)."""
    target = jnp.broadcast_to(jnp.asarray(target, probs.dtype), probs.shape)
    return jnp.mean(binary_cross_entropy_elementwise(probs, target))


def nsgan_loss(probs: jax.Array, is_real: bool) -> jax.Array:
    """AdversarialLoss(type='nsgan')(outputs, is_real): BCE against the real (1) or fake (0) label."""
    return binary_cross_entropy(probs, REAL_LABEL if is_real else FAKE_LABEL)
