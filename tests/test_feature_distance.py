"""The Table-3 feature distance (fdm_jax/metrics/feature_distance.py)."""

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.cli.config_loading import load_config
from fdm_jax.metrics.feature_distance import feature_distances
from fdm_jax.put_fdm import build_models
from fdm_jax.put_fdm.patch_masks import masked_patch_index
from fdm_jax.put_fdm.phases import init_variables


def test_fdm_with_zero_output_leaves_the_distance_unchanged_and_counts_masked_patches():
    c = load_config("configs/paris.py:tiny")
    models = build_models(c.model)
    v = init_variables(models, 64, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.uniform(0, 255, (2, 64, 64, 3)), jnp.float32)
    mask = np.ones((2, 64, 64, 1), np.float32)
    mask[0, 3:20, 5:30] = 0
    mask = jnp.asarray(mask)
    out = feature_distances(models["codec"], v["codec"], models["fdm"], v["fdm"], image, mask)
    assert out["patches"] == masked_patch_index(mask, 8).sum() > 0
    assert out["quantized"] > 0 and out["with_fdm"] != out["quantized"]
    zero = jax.tree_util.tree_map(jnp.zeros_like, v["fdm"])  # pv = 0
    out0 = feature_distances(models["codec"], v["codec"], models["fdm"], zero, image, mask)
    np.testing.assert_allclose(out0["with_fdm"], out0["quantized"], rtol=1e-6)
