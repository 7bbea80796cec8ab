"""TSGL's 256 generator (fdm_jax.tsgl.medfe) against the original
(shared/fixtures/tsgl/tsgl_medfe_generator_small.npz + .pth) and its quirks piece by piece."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.convert import tsgl as conv
from fdm_jax.nn.params import abstract_variables, count_params
from fdm_jax.tsgl import medfe as tm
from fdm_jax.parity.harness import EXIT_OK, load_fixture, run_fixture
from fdm_jax.parity.runners.tsgl import medfe_from_kwargs
from shared_paths import fixtures_dir, require

TSGL = fixtures_dir() / "tsgl"
FIXTURE = TSGL / "tsgl_medfe_generator_small.npz"


@pytest.mark.slow
def test_generator_fixture():
    status, rows, msg = run_fixture(require(FIXTURE))
    assert status == EXIT_OK, (msg, [(r.name, r.error, r.tolerance) for r in rows if not r.ok])
    assert {"output", "en_low_3", "h2l_2", "pc_block.base", "pc_block_5", "en_high_5_mask"} <= {r.name for r in rows}


def test_original_pth_converts_to_the_same_variables():
    fx = load_fixture(require(FIXTURE))
    sd = conv.read_state_dict(require(TSGL / "tsgl_medfe_generator_small.pth"))
    assert set(sd) == set(fx.params)
    model = medfe_from_kwargs(fx.kwargs)
    a = conv.convert_medfe_generator(sd, model)
    b = conv.convert_medfe_generator(fx.params, model)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    # the random frozen mask_conv weights are loaded as stored, not replaced by ones
    w = np.asarray(a["params"]["pc_block"]["cov_7_4"]["conv"]["mask_conv"]["kernel"])
    np.testing.assert_array_equal(w, fx.params["pc_block.cov_7.4.conv.mask_conv.weight"].transpose(2, 3, 1, 0))
    assert 0.01 < w.std() < 0.04
    # the training-only structure decoder loads into a model that has it
    full = conv.convert_medfe_generator(sd, medfe_from_kwargs(fx.kwargs).clone(with_structure_decoder=True))
    assert {"en_high_6", "en_high_7", "de_high_0", "de_high_7"} <= set(full["params"])


def test_swin_shift_masks_equal_the_original_buffers():
    """calculate_mask: the fixture's stored attn_mask buffers (32x32 and 16x16 maps, window 8, shift 4)."""
    fx = load_fixture(require(FIXTURE))
    for key, size in (("en_low_3.blocks.1.attn_mask", 32), ("en_low_4.blocks.1.attn_mask", 16)):
        np.testing.assert_array_equal(tm.shift_attention_mask(size, size, 8, 4), fx.params[key])


def test_window_attention_tau_and_mask_update():
    """tau = -100 on invalid keys (additive, not -inf): a window with no valid key attends as if unmasked
    (softmax is shift-invariant) and stays invalid; a window with one valid token attends to it alone
    and becomes all-valid."""
    att = tm.WindowAttention(num_heads=2)
    x = jax.random.normal(jax.random.key(0), (1, 2, 4, 6))
    mask = jnp.array([[[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]])[..., None]
    v = att.init(jax.random.key(1), x, mask)
    out, new_mask = att.apply(v, x, mask)
    np.testing.assert_array_equal(new_mask[0, :, :, 0], [[0, 0, 0, 0], [1, 1, 1, 1]])
    unmasked, none = att.apply(v, x, None)
    assert none is None
    np.testing.assert_allclose(out[0, 0], unmasked[0, 0], rtol=1e-5, atol=1e-6)
    p = v["params"]
    fc = lambda name, t: t @ (p[name]["kernel"] / np.sqrt(6)) + p[name]["bias"]  # noqa: E731
    only = fc("proj", fc("v", x[0, 1])[1:2])  # the valid key's value, projected
    np.testing.assert_allclose(out[0, 1], jnp.broadcast_to(only, (4, 6)), rtol=1e-4, atol=1e-5)


def test_gaussian_table_and_feature_mask():
    k = tm.gaussian_table(32, 32)
    np.testing.assert_allclose(k.sum(1), 1.0, rtol=1e-6)
    assert abs(k[0, 0] - 0.1765) < 5e-5  # the corner pixel's own weight in util/util.py:gussin(1.5)
    hole = jnp.ones((1, 64, 64, 1))  # even a 100 % hole never exceeds the threshold (util/util.py:cal_feat_mask)
    assert float(jnp.max(tm.feature_mask(hole))) == 0.0
    assert float(jnp.max(tm.feature_mask(2.0 * hole))) == 1.0  # the rule itself is implemented


def test_pytorch_bilinear_conventions():
    x = jnp.arange(4.0).reshape(1, 1, 4, 1)
    ac = tm.resize_bilinear(x, (1, 7), align_corners=True)[0, 0, :, 0]
    np.testing.assert_allclose(ac, np.arange(7) * 0.5, atol=1e-6)  # src = dst * (in-1)/(out-1)
    hp = tm.resize_bilinear(x, (1, 8), align_corners=False)[0, 0, :, 0]
    np.testing.assert_allclose(hp, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], atol=1e-6)  # clamped at 0
    down = tm.resize_bilinear(jnp.arange(8.0).reshape(1, 1, 8, 1), (1, 4), align_corners=True)[0, 0, :, 0]
    np.testing.assert_allclose(down, [0, 7 / 3, 14 / 3, 7], atol=1e-5)  # no antialiasing


def test_partial_conv_ratio_and_mat_fir_downsample():
    pc = tm.PartialConv2d(2, 3, 1, 1)
    x = jnp.ones((1, 4, 4, 3))
    m = jnp.zeros((1, 4, 4, 3)).at[:, 0, 0].set(1.0)
    v = pc.init(jax.random.key(0), x, m)
    y, new = pc.apply(v, x, m)
    w = np.asarray(v["params"]["kernel"])
    # at (0, 0) one valid input pixel (3 channels) of a 27-tap window: raw * 27 / 3
    np.testing.assert_allclose(y[0, 0, 0], w[1, 1].sum(0) * 9, rtol=1e-5)
    assert float(new[0, 3, 3, 0]) == 0.0 and new.shape == (1, 4, 4, 2)
    mat = tm.MATConv2d(4, 3, down=2)
    xv = mat.init(jax.random.key(1), jnp.zeros((1, 16, 16, 5)))
    assert mat.apply(xv, jnp.zeros((1, 16, 16, 5))).shape == (1, 8, 8, 4)


def test_parameter_counts():
    """138,331,611 test-time parameters and 53,539,009 in the training-only structure decoder: counted on
    the original module. The reduced model: the fixture's parameter tensors."""
    def count(m):
        x, one = jnp.zeros((1, 256, 256, 3)), jnp.zeros((1, 256, 256, 1))
        v = abstract_variables(m, x, one, x, one, one, return_structure=m.with_structure_decoder)
        return count_params(v["params"])

    assert count(tm.TSGLMedfeGenerator()) == 138_331_611
    assert count(tm.TSGLMedfeGenerator(with_structure_decoder=True)) - 138_331_611 == 53_539_009
    fx = load_fixture(require(FIXTURE))
    buffers = ("running_", "num_batches", "resample_filter", "attn_mask", "weight_u", "weight_v")
    n_params = sum(v.size for k, v in fx.params.items() if not any(b in k for b in buffers))
    assert count(medfe_from_kwargs(fx.kwargs).clone(with_structure_decoder=True)) == n_params


def test_bad_inputs():
    model = tm.TSGLMedfeGenerator(cnum=4, tdim=12, depths=(1, 1, 1, 1))
    x, one = jnp.zeros((1, 96, 96, 3)), jnp.zeros((1, 96, 96, 1))
    with pytest.raises(ValueError, match="multiples of 64"):
        model.init(jax.random.key(0), x, one, x, one, one)
    x, one = jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 1))
    with pytest.raises(ValueError, match="texture"):
        model.init(jax.random.key(0), x, one, one, one, one)
    with pytest.raises(ValueError, match="with_structure_decoder"):
        model.init(jax.random.key(0), x, one, x, one, one, return_structure=True)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        tm.TSGLMedfeGenerator(tdim=10).init(jax.random.key(0), x, one, x, one, one)
