"""TSGL-LaMa generator (fdm_jax.tsgl.lama) against the original
(shared/fixtures/tsgl/tsgl_lama_generator_small.npz + .pth), its front/rear split and refinement."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.convert import tsgl as conv
from fdm_jax.convert.pth_reader import load_pth
from fdm_jax.nn.layout import to_nchw, to_nhwc
from fdm_jax.nn.params import abstract_variables, count_params
from fdm_jax.tsgl.lama import TSGLLamaGenerator, front_rear
from fdm_jax.parity.harness import EXIT_OK, load_fixture, run_fixture
from fdm_jax.parity.runners.tsgl import lama_from_kwargs
from shared_paths import fixtures_dir, require

TSGL = fixtures_dir() / "tsgl"


def _inputs(size, key=0, batch=1):
    k = jax.random.split(jax.random.key(key), 3)
    image = jax.random.uniform(k[0], (batch, size, size, 3))
    mask = (jax.random.uniform(k[1], (batch, size, size, 1)) > 0.4).astype(jnp.float32)
    edge = (jax.random.uniform(k[2], (batch, size, size, 1)) > 0.8).astype(jnp.float32)
    return image, edge, image.mean(-1, keepdims=True), mask


def test_generator_fixture():
    status, rows, msg = run_fixture(require(TSGL / "tsgl_lama_generator_small.npz"))
    assert status == EXIT_OK, (msg, [(r.name, r.error, r.tolerance) for r in rows if not r.ok])
    assert {"output", "h2l_0_l", "h2l_4_g", "resblocks_g", "model_low_4_l"} <= {r.name for r in rows}


def test_original_pth_converts_to_the_same_variables():
    """The DataParallel checkpoint (`module.` keys, read without torch) gives the fixture's variables."""
    fx = load_fixture(require(TSGL / "tsgl_lama_generator_small.npz"))
    path = require(TSGL / "tsgl_lama_generator_small.pth")
    sd = conv.read_state_dict(path)
    assert set(sd) == set(fx.params)
    pure = load_pth(path, use_torch=False)  # without torch: same tensors under `module.` keys
    assert all(k.startswith("module.") for k in pure)
    for k, v in fx.params.items():
        np.testing.assert_array_equal(pure["module." + k], v)
    model = lama_from_kwargs(fx.kwargs)
    a = conv.convert_lama_generator(sd, model)
    b = conv.convert_lama_generator(fx.params, model)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    # the training-only up_high loads into a model that has it
    full = TSGLLamaGenerator(ngf=3, max_features=12, n_blocks=2, with_structure_decoder=True)
    v = conv.convert_lama_generator(sd, full)
    assert "up_high" in v["params"]


def test_front_rear_split_reproduces_the_original():
    """rear(front(.)) is the original's forward: z = (h2l_4_l, h2l_4_g) and the output match the fixture."""
    fx = load_fixture(require(TSGL / "tsgl_lama_generator_small.npz"))
    model = lama_from_kwargs(fx.kwargs)
    v = conv.convert_lama_generator(fx.params, model)
    known = 1.0 - to_nhwc(fx.inputs["mask"])
    # raw (unmasked) inputs: the model multiplies by the mask itself
    image = jnp.asarray(fx.inputs["raw_rgb"].astype(np.float32) / 255)
    z = model.apply(v, image, known, to_nhwc(fx.inputs["pre_edge"]), to_nhwc(fx.inputs["pre_gray"]),
                    method=TSGLLamaGenerator.front)
    for part, name in zip(z, ("h2l_4_l", "h2l_4_g")):
        np.testing.assert_allclose(to_nchw(part), fx.outputs[name], atol=fx.tolerance(name))
    out = model.apply(v, z, method=TSGLLamaGenerator.rear)
    np.testing.assert_allclose(to_nchw(out), fx.outputs["output"], atol=fx.tolerance("output"))
    assert front_rear(model) is front_rear(model)  # cached: jitted callers compile once


@pytest.mark.slow
def test_multiscale_refinement_runs_on_tsgl_lama():
    """fdm_jax.lama.refine through front_rear (edges recomputed per pyramid level on the host)."""
    from fdm_jax.lama.refine import RefineConfig, refine

    fx = load_fixture(require(TSGL / "tsgl_lama_generator_small.npz"))
    model = lama_from_kwargs(fx.kwargs)
    v = conv.convert_lama_generator(fx.params, model)
    image = jnp.asarray(fx.inputs["raw_rgb"].astype(np.float32) / 255)
    known = to_nhwc(fx.inputs["pre_known"])
    cfg = RefineConfig(modulo=model.modulo, n_iters=3, min_side=64)
    result, rec = refine(front_rear(model), v, image, known, cfg, record=True)
    assert result.shape == image.shape and np.all(np.isfinite(np.asarray(result)))
    np.testing.assert_array_equal(np.asarray(result) * np.asarray(known), np.asarray(image * known))
    losses = np.asarray(rec["aux"][1]["losses"])
    assert losses.shape == (3,) and losses[-1] < losses[0]  # Adam on z lowers the refinement loss


def test_parameter_count_of_the_released_model():
    """34,468,035 test-time parameters and 4,141,313 in the training-only up_high: counted on the
    original module; the paper rounds to 34.0M."""
    def count(m):
        s = m.modulo
        x, one = jnp.zeros((1, s, s, 3)), jnp.zeros((1, s, s, 1))
        v = abstract_variables(m, x, one, one, one, return_structure=m.with_structure_decoder)
        return count_params(v["params"])

    assert count(TSGLLamaGenerator()) == 34_468_035
    assert count(TSGLLamaGenerator(with_structure_decoder=True)) - 34_468_035 == 4_141_313


def test_bad_configurations_and_inputs():
    x = _inputs(32)
    with pytest.raises(ValueError, match="4\\*ngf <= max_features"):
        TSGLLamaGenerator(ngf=8, max_features=16).init(jax.random.key(0), *x)
    model = TSGLLamaGenerator(ngf=2, max_features=8, n_blocks=1)
    with pytest.raises(ValueError, match="multiples of 32"):
        model.init(jax.random.key(0), *_inputs(48))
    with pytest.raises(ValueError, match="edge"):
        model.init(jax.random.key(0), x[0], x[1][..., :0], x[2], x[3])
    with pytest.raises(ValueError, match="with_structure_decoder"):
        model.init(jax.random.key(0), *x, return_structure=True)
