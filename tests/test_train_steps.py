"""The phase train steps: learning-rate schedule, frozen parts, multi-device equivalence, learning."""

from __future__ import annotations

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from fdm_jax.cli.config_loading import load_config
from fdm_jax.train import data_mesh
from fdm_jax.put_fdm.phases import make_phase
from fdm_jax.train.optimizers import trainable_labels
from fdm_jax.train.schedules import warmup_cosine
from shared_paths import require, shared_dir

SIZE = 64


def real_batch(n=8, offset=0, seed=0):
    """n real images from imagenet_sample (centre crops at 64x64) with rectangular holes."""
    folder = require(shared_dir() / "data" / "images" / "imagenet_sample")
    files = sorted(folder.glob("*.jpg"))[offset:offset + n]
    images = []
    for f in files:
        im = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        s = min(im.shape[:2])
        y, x = (im.shape[0] - s) // 2, (im.shape[1] - s) // 2
        images.append(cv2.resize(im[y:y + s, x:x + s], (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    rng = np.random.default_rng(seed)
    mask = np.ones((n, SIZE, SIZE, 1), np.float32)
    for i in range(n):
        y, x = rng.integers(0, SIZE // 2, 2)
        mask[i, y:y + SIZE // 2, x:x + SIZE // 2] = 0
    erase = np.ones_like(mask)
    erase[::2, :8, :8] = 0
    return {"image": jnp.asarray(np.stack(images), jnp.float32), "mask": jnp.asarray(mask),
            "erase_mask": jnp.asarray(erase)}


def tiny_config(phase):
    overrides = [f"phase={phase}", "perceptual.backbone=none"]
    for p in ("codec", "fdm_tuning"):
        overrides += [f"train.{p}.loss.g_content=0.0", f"train.{p}.loss.g_style=0.0",
                      f"train.{p}.loss.disc_start=2", f"train.{p}.disc.start_iteration=2",
                      f"train.{p}.loss.gradient_start=1"]
    for p in ("codec", "sampler", "fdm", "fdm_tuning"):
        overrides += [f"train.{p}.warmup_steps=3"]
    return load_config("configs/paris.py:tiny", overrides)


def run_steps(phase, state, batch, n, devices=None):
    mesh = data_mesh(devices)
    rep = NamedSharding(mesh, P())
    state = jax.device_put(state, rep)
    batch = jax.device_put(batch, NamedSharding(mesh, P("data")))
    step = jax.jit(phase.train_step, out_shardings=(rep, rep))
    history = []
    for _ in range(n):
        state, m = step(state, batch)
        history.append(jax.device_get(m))
    return state, history


def test_schedule_matches_the_original_rule():
    f = warmup_cosine(warmup_lr=2e-4, warmup_steps=150, total_steps=3000, min_lr=1e-6)
    lr = np.array([float(f(i)) for i in range(3100)])
    assert lr[0] == 0.0  # iteration 0 runs at lr 0 (engine/lr_scheduler.py:CosineAnnealingLRWithWarmup)
    np.testing.assert_allclose(lr[1:152], np.arange(1, 152) * 2e-4 / 150, rtol=1e-6)
    assert lr.argmax() == 151 and np.isclose(lr.max(), 2e-4 * (1 + 1 / 150), rtol=1e-6)  # overshoot
    assert np.all(np.diff(lr[151:]) <= 1e-12) and lr[-1] == np.float32(1e-6)  # cosine down to min_lr
    np.testing.assert_allclose(lr[152], lr[151] * 0.5 * (1 + np.cos(np.pi / 2850)), rtol=1e-6)


def _subtree(params, path):
    for k in path:
        params = params[k]
    return params


def _same(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _all_moved(a, b):
    return all(not np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.mark.parametrize("phase_name,trained,frozen", [
    ("fdm", [("fdm",)], [("codec",)]),
    ("sampler", [("sampler",)], [("codec",)]),
    ("fdm_tuning", [("fdm",), ("codec", "decoder"), ("codec", "post_quant_conv")],
     [("codec", "encoder"), ("codec", "quant_conv")]),
])
def test_frozen_parts_stay_bit_identical(phase_name, trained, frozen):
    phase = make_phase(tiny_config(phase_name), 10)
    state0 = phase.init_state(jax.random.PRNGKey(0))
    state, _ = run_steps(phase, state0, real_batch(), 4, jax.devices()[:1])
    for path in frozen:
        assert _same(_subtree(state0.params, path), _subtree(state.params, path)), path
    assert _same(state0.codebook, state.codebook)  # no EMA outside phase 1
    for path in trained:
        assert _all_moved(_subtree(state0.params, path), _subtree(state.params, path)), path
    if state.disc is not None:  # D stepped from iteration 2 on (tiny_config)
        assert _all_moved(state0.disc["variables"]["params"], state.disc["variables"]["params"])


def test_codec_phase_trains_the_codec_and_its_ema_codebook():
    phase = make_phase(tiny_config("codec"), 10)
    state0 = phase.init_state(jax.random.PRNGKey(0))
    state, hist = run_steps(phase, state0, real_batch(), 3, jax.devices()[:1])
    for part in ("encoder", "quant_conv", "post_quant_conv", "decoder"):
        assert _all_moved(state0.params["codec"][part], state.params["codec"][part]), part
    cb0, cb = state0.codebook["quantizer"], state.codebook["quantizer"]
    assert not np.array_equal(np.asarray(cb0["cluster_size"]), np.asarray(cb["cluster_size"]))
    # every term of the phase-1 loss is reported; D's terms start at iteration 2 (tiny_config)
    assert {"rec_loss", "grad_loss", "adv_loss", "quantize_loss", "d_loss"} <= set(hist[0])
    assert hist[0]["d_loss"] == 0 and hist[2]["d_loss"] > 0 and hist[2]["adv_loss"] > 0


def test_trainable_labels_follow_the_config():
    phase = make_phase(tiny_config("fdm_tuning"), 10)
    params = phase.abstract_state(jax.random.PRNGKey(0)).params
    labels = trainable_labels(params, ("post_quant_conv", "decoder", "fdm"))
    assert set(jax.tree_util.tree_leaves(labels["codec"]["encoder"])) == {"frozen"}
    assert set(jax.tree_util.tree_leaves(labels["codec"]["quant_conv"])) == {"frozen"}
    assert set(jax.tree_util.tree_leaves(labels["codec"]["decoder"])) == {"train"}
    assert set(jax.tree_util.tree_leaves(labels["fdm"])) == {"train"}
    with pytest.raises(ValueError, match="unknown part"):
        trainable_labels(params, ("decodr",))


@pytest.mark.parametrize("phase_name", ["sampler", "fdm_tuning",
                                        pytest.param("fdm", marks=pytest.mark.slow),
                                        pytest.param("codec", marks=pytest.mark.slow)])
def test_eight_devices_match_one(phase_name):
    assert jax.device_count() == 8
    phase = make_phase(tiny_config(phase_name), 10)
    state0 = phase.init_state(jax.random.PRNGKey(1))
    batch = real_batch()
    s1, h1 = run_steps(phase, state0, batch, 3, jax.devices()[:1])
    s8, h8 = run_steps(phase, state0, batch, 3, jax.devices())
    for a, b in zip(h1, h8):
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
    # The attention key biases have a true gradient of exactly 0 (softmax is shift-invariant per
    # query), so their gradient is rounding noise that Adam scales up to lr-sized steps (~1e-6 here
    # with lr <= 2e-4); every other leaf agrees to ~1e-7.
    for a, b in zip(jax.tree_util.tree_leaves(s1.params), jax.tree_util.tree_leaves(s8.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("phase_name,steps", [("fdm", 40), ("fdm_tuning", 30),
                                              pytest.param("sampler", 40, marks=pytest.mark.slow),
                                              pytest.param("codec", 30, marks=pytest.mark.slow)])
def test_loss_decreases_on_real_images(phase_name, steps):
    config = tiny_config(phase_name)
    phase = make_phase(config, 10)
    state, hist = run_steps(phase, phase.init_state(jax.random.PRNGKey(2)), real_batch(), steps,
                            jax.devices()[:1])
    losses = np.array([h["loss"] for h in hist])
    assert np.all(np.isfinite(losses))
    assert losses[-5:].mean() < 0.9 * losses[:5].mean(), losses


def test_misspelt_config_key_is_named():
    with pytest.raises(ValueError, match=r"train\.fdm\.bach_size.*did you mean train\.fdm\.batch_size"):
        load_config("configs/paris.py:tiny", ["train.fdm.bach_size=4"])
