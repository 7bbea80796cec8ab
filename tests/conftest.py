"""Test setup: 8 fake CPU devices for the sharding tests, float32-exact matmuls for the parity checks.

XLA_FLAGS must be set before JAX initialises its backends, hence here and not in a fixture.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Commands called in-process (inpaint.main, train.main) would switch on the persistent compilation
# cache in the user's home; tests that check the cache pass their own folder.
os.environ.setdefault("FDM_JAX_COMPILATION_CACHE", "none")

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")
