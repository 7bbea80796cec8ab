"""Importing this package registers every parity runner."""

from fdm_jax.parity.runners import put_fdm  # noqa: F401
from fdm_jax.parity.runners import put_fdm_sampling  # noqa: F401
