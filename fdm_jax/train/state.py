"""The train state: one pytree holding everything a phase updates, so a step is
`state, metrics = step(state, batch)` under one `jax.jit` with the state donated."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct


@struct.dataclass
class TrainState:
    step: jax.Array  # global iteration, int32; the original's `last_iter` (loss start steps count it)
    params: dict  # {'codec': ..., 'fdm': ..., 'sampler': ...}: every model of the phase, frozen parts included
    codebook: dict  # the codec's EMA codebook collection (`codebook`: embedding, embedding_avg, cluster_size)
    opt_state: Any  # optax state of the generator-side optimizer (frozen leaves carry none)
    disc: Any  # None, or {'params', 'spectral', 'opt_state'} of the EdgeConnect discriminator
    key: jax.Array  # base PRNG key; step s draws from fold_in(key, s)

    def variables(self, name: str) -> dict:
        """Flax variables of one model ({'params': ..., plus 'codebook' for the codec})."""
        v = {"params": self.params[name]}
        if name == "codec":
            v["codebook"] = self.codebook
        return v
