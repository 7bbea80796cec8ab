"""The original's learning-rate schedule as an optax schedule.

hyudsl/FDM:image_synthesis/engine/lr_scheduler.py `CosineAnnealingLRWithWarmup`, stepped once after
every optimizer step, starting from lr = base_lr = 0. Written in closed form over the optimizer's own
update count i (0 for the first update):

    lr(i) = i * warmup_lr / warmup                                   for i <= warmup + 1
    lr(i) = max(peak * (1 + cos(pi * (i - 1 - warmup) / max(1, T - warmup))) / 2, min_lr)   otherwise

with peak = (warmup + 1) * warmup_lr / warmup, the largest lr the warm-up reaches. So the first update
runs at lr 0 and the warm-up overshoots warmup_lr by a factor 1 + 1/warmup; both are
quirks of the original, kept. The original accumulates the warm-up in float64 by repeated addition;
the closed form differs from it by rounding only.
"""

from __future__ import annotations

import jax.numpy as jnp


def warmup_cosine(*, warmup_lr: float, warmup_steps: int, total_steps: int, min_lr: float):
    """Returns schedule(count) -> lr. `total_steps` is the original's T_max (epochs x iterations)."""
    if warmup_steps < 0 or total_steps < 0:
        raise ValueError(f"warmup_steps ({warmup_steps}) and total_steps ({total_steps}) must be >= 0")
    w = int(warmup_steps)
    inc = warmup_lr / w if w > 0 else 0.0
    peak = max((w + 1) * inc, min_lr) if w > 0 else max(0.0, min_lr)
    span = float(max(1, total_steps - w))

    def schedule(count):
        i = jnp.asarray(count, jnp.float32)
        warm = i * inc
        progress = (i - 1.0 - w) / span
        factor = jnp.maximum(0.0, 0.5 * (1.0 + jnp.cos(jnp.pi * progress)))
        cos = jnp.maximum(peak * factor, min_lr)
        return jnp.where(i <= w + 1, warm, cos) if w > 0 else jnp.where(i < 1, 0.0, cos)

    return schedule
