"""TSGL SPADE blocks (fdm_jax.tsgl.spade) against the original modules
(shared/fixtures/tsgl/spade_blocks.npz), plus the train-mode rules the fixture (eval mode) cannot see."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.convert import tsgl as conv
from fdm_jax.nn.layout import to_nchw, to_nhwc
from fdm_jax.nn.resize import nearest_indices
from fdm_jax.tsgl import spade
from fdm_jax.parity.harness import EXIT_OK, load_fixture, run_fixture
from shared_paths import fixtures_dir, require

FIXTURE = fixtures_dir() / "tsgl" / "spade_blocks.npz"


def test_spade_blocks_fixture():
    status, rows, msg = run_fixture(require(FIXTURE))
    assert status == EXIT_OK, (msg, [(r.name, r.error, r.tolerance) for r in rows if not r.ok])
    assert {r.name for r in rows} == {"spade_global", "spade_local", "resblock_medfe", "resblock_lama"}


def _resblock(fx, name, skip):
    sub = {k[len(name) + 1:]: v for k, v in fx.params.items() if k.startswith(name + ".")}
    x, s1, s2 = (to_nhwc(fx.inputs[f"{name}.{k}"], np.float32) for k in ("x", "seg1", "seg2"))
    block = spade.SPADEResnetBlock(identity_skip=skip)
    v = conv.convert_spade_resblock(sub, block, x.shape[-1], s1.shape[-1], s2.shape[-1])
    return block, v, (x, s1, s2)


def test_known_quirks_move_the_output():
    """A biased positional variance or an exact-SVD spectral norm would fail the fixture (README)."""
    fx = load_fixture(require(FIXTURE))
    x = to_nhwc(fx.inputs["spade_local.x"], np.float32)
    mean = x.mean(-1, keepdims=True)
    biased = (x - mean) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5)
    assert float(jnp.max(jnp.abs(spade.positional_norm(x) - biased))) > 1e-3
    block, v, args = _resblock(fx, "resblock_lama", True)
    ref = fx.outputs["resblock_lama"]
    np.testing.assert_allclose(to_nchw(block.apply(v, *args)), ref, atol=fx.tolerance("resblock_lama"))
    # replace the stored u, v by the exact top singular vectors: the output moves beyond the tolerance
    sn = dict(v["spectral_norm"])
    for conv_name in ("conv_0", "conv_1", "conv_s"):
        k = v["params"][conv_name]["kernel"]
        w = np.asarray(k).transpose(3, 2, 0, 1).reshape(k.shape[3], -1)
        uu, _, vt = np.linalg.svd(w)
        sn[conv_name] = {"u": jnp.asarray(uu[:, 0]), "v": jnp.asarray(vt[0])}
    svd_out = to_nchw(block.apply({**v, "spectral_norm": sn}, *args))
    assert np.max(np.abs(svd_out - ref)) > 10 * fx.tolerance("resblock_lama")


def test_train_mode_batchnorm_and_power_iteration_follow_pytorch():
    fx = load_fixture(require(FIXTURE))
    block, v, args = _resblock(fx, "resblock_medfe", False)
    out, state = block.apply(v, *args, train=True, mutable=["batch_stats", "spectral_norm"])
    assert np.all(np.isfinite(np.asarray(out)))
    # BatchNorm: running = 0.9 running + 0.1 batch (mean, and UNBIASED variance) of norm_0's input x
    x = np.asarray(args[0], np.float64).reshape(-1, args[0].shape[-1])
    old = v["batch_stats"]["norm_0"]["param_free_norm"]
    new = state["batch_stats"]["norm_0"]["param_free_norm"]
    np.testing.assert_allclose(new["mean"], 0.9 * np.asarray(old["mean"]) + 0.1 * x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["var"], 0.9 * np.asarray(old["var"]) + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    # spectral norm: one power iteration, v first then u
    k = np.asarray(v["params"]["conv_s"]["kernel"], np.float64)
    w = k.transpose(3, 2, 0, 1).reshape(k.shape[3], -1)
    u0 = np.asarray(v["spectral_norm"]["conv_s"]["u"], np.float64)
    v1 = w.T @ u0 / np.linalg.norm(w.T @ u0)
    u1 = w @ v1 / np.linalg.norm(w @ v1)
    np.testing.assert_allclose(state["spectral_norm"]["conv_s"]["v"], v1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(state["spectral_norm"]["conv_s"]["u"], u1, rtol=1e-4, atol=1e-6)


def test_nearest_resize_index_rule():
    np.testing.assert_array_equal(nearest_indices(32, 16), np.arange(16) * 2)  # even pixels
    np.testing.assert_array_equal(nearest_indices(4, 8), np.arange(8) >> 1)
    np.testing.assert_array_equal(nearest_indices(5, 3), [0, 1, 3])  # floor(dst * 5/3)


def test_bad_inputs():
    x = jnp.zeros((2, 4, 4, 6))
    with pytest.raises(ValueError, match="norm must be"):
        spade.SPADE("instance").init(jax.random.key(0), x, x)
    with pytest.raises(ValueError, match="segmap"):
        spade.SPADE("position").init(jax.random.key(0), x, jnp.zeros((4, 4, 6)))
    with pytest.raises(ValueError, match="fout == fin"):
        spade.SPADEResnetBlock(features=8, identity_skip=True).init(jax.random.key(0), x, x, x)
