"""Parameter trees without allocating them: element counts and abstract (shape-only) variables."""

from __future__ import annotations

import math

import jax


def count_params(tree) -> int:
    """Number of elements over all leaves of a pytree of arrays or jax.ShapeDtypeStruct."""
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def abstract_variables(module, *inputs, **kwargs) -> dict:
    """`module.init(key, *inputs, **kwargs)` as shapes only (jax.eval_shape): nothing is allocated."""
    return jax.eval_shape(lambda: module.init(jax.random.key(0), *inputs, **kwargs))
