"""TSGL training losses (fdm_jax.tsgl.losses): the loss arithmetic, and a few optimisation steps of each
tiny generator + discriminator on real Places2 images and masks, composed as the original train.py files
order them."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image, ImageFilter

from fdm_jax.cli.config_loading import load_config
from fdm_jax.convert import tsgl as conv
from fdm_jax.tsgl import structure
from fdm_jax.tsgl import losses as L
from fdm_jax.parity.harness import load_fixture
from shared_paths import fixtures_dir, require, shared_dir

DATA = shared_dir() / "data" / "images" / "places2_256_freeform"
NAMES = ("Places365_val_00000267", "Places365_val_00000332")


def test_hinge_and_nonsaturating_terms():
    real, fake = jnp.array([2.0, 0.5, -1.0]), jnp.array([-2.0, 0.0, 1.0])
    # (mean relu(1 - real) + mean relu(1 + fake)) / 2 = ((0 + .5 + 2)/3 + (0 + 1 + 2)/3) / 2
    np.testing.assert_allclose(L.hinge_discriminator_loss(real, fake), (2.5 / 3 + 3 / 3) / 2, rtol=1e-6)
    logits = jnp.array([[[[0.3], [-1.2]]]])
    hole = jnp.zeros((1, 4, 4, 1)).at[:, :2, :2].set(1.0)  # max-pooled to [[1, 0]]
    t = L.lama_discriminator_terms(jnp.zeros_like(logits), logits, hole, jnp.asarray(2.0))
    sp = jax.nn.softplus
    np.testing.assert_allclose(t["fake"], (sp(0.3) + sp(1.2)) / 2, rtol=1e-6)  # known area is "real" target
    np.testing.assert_allclose(t["r1_penalty"], 0.002, rtol=1e-6)
    np.testing.assert_allclose(t["total"], t["real"] + t["fake"] + t["r1_penalty"], rtol=1e-6)


def test_adaptive_max_pool_bins():
    x = jnp.array([1.0, 5.0, 2.0, 0.0, 3.0]).reshape(1, 1, 5, 1)
    # PyTorch bins for 5 -> 3: [0, 2), [1, 4), [3, 5)
    np.testing.assert_array_equal(L.adaptive_max_pool(x, (1, 3))[0, 0, :, 0], [5.0, 5.0, 3.0])
    y = jax.random.normal(jax.random.key(0), (2, 12, 12, 1))
    np.testing.assert_array_equal(L.adaptive_max_pool(y, (12, 12)), y)
    np.testing.assert_array_equal(L.adaptive_max_pool(y, (3, 3)), y.reshape(2, 3, 4, 3, 4, 1).max(axis=(2, 4)))


def test_medfe_generator_terms_weights():
    out = jnp.zeros((1, 2, 2, 3))
    image = jnp.ones((1, 2, 2, 3))
    mask = jnp.array([1.0, 0.0, 0.0, 0.0]).reshape(1, 2, 2, 1)
    s, e = jnp.zeros((1, 2, 2, 1)), jnp.ones((1, 2, 2, 1))
    t = L.medfe_generator_terms(out, s, image, e, mask, fake_logits=jnp.full((1, 3, 3, 1), 2.0))
    # hole share 3/4 of the elements with error 1 (weight 5), valid share 1/4 (weight 1)
    np.testing.assert_allclose(t["image_l1"], 5 * 0.75 + 0.25, rtol=1e-6)
    np.testing.assert_allclose(t["total"], 0.1 * -2.0 + 2 * (5 * 0.75 + 0.25), rtol=1e-6)


def _batch(size, variant):
    rgb = np.stack([np.asarray(Image.open(require(DATA / "images" / f"{n}.jpg")).convert("RGB")) for n in NAMES])
    masks = np.stack([np.asarray(Image.open(require(DATA / "masks" / f"{n}.png")).convert("L")) for n in NAMES])
    o = (256 - size) // 2
    rgb, masks = rgb[:, o:o + size, o:o + size], masks[:, o:o + size, o:o + size]
    edge, gray = structure.edge_and_gray(rgb, wraparound=True)  # both train pipelines normalise first
    batch = {"image": structure.normalize_image(rgb), "edge": edge, "gray": gray, "mask": structure.known_mask(masks)}
    if variant == "medfe":  # stand-in for the RTV image (as the fixture): PIL GaussianBlur(2)
        low = np.stack([np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(2))) for a in rgb])
        batch["texture"] = structure.normalize_image(low)
    assert 0.05 < 1 - batch["mask"].mean() < 0.9  # real holes
    return {k: jnp.asarray(v) for k, v in batch.items()}


def _train(variant, n_steps=5, size=128):
    cfg = load_config(f"configs/tsgl_{variant}.py:tiny")
    fx = load_fixture(require(fixtures_dir() / "tsgl" / f"tsgl_{variant}_generator_small.npz"))
    generator = conv.build_generator(cfg.model, with_structure_decoder=True)
    convert = conv.convert_lama_generator if variant == "lama" else conv.convert_medfe_generator
    g_vars = convert(fx.params, generator)  # the fixture's weights, training-only decoder included
    disc = (L.LamaDiscriminator(cfg.discriminator.ndf) if variant == "lama"
            else L.MedfeDiscriminator(tuple(cfg.discriminator.widths)))
    d_vars = jax.jit(functools.partial(L.init_discriminator, variant, disc, size=size))(jax.random.key(0))
    o = cfg.optimizer
    g_opt, d_opt = optax.adam(o.g_lr, o.b1, o.b2), optax.adam(o.d_lr, o.b1, o.b2)
    batch = _batch(size, variant)

    @jax.jit
    def step(g_vars, d_vars, g_os, d_os):
        g_state = {k: v for k, v in g_vars.items() if k != "params"}

        def forward(p):  # one G forward in train mode; its vjp serves the G step (train.py reuses it)
            return L.generator_forward(variant, generator, {**g_state, "params": p}, batch)

        outs, vjp, g_state = jax.vjp(forward, g_vars["params"], has_aux=True)

        def g_step(d_vars):
            (loss, (terms, d_state)), grad_out = jax.value_and_grad(
                lambda o_: L.generator_loss(variant, o_, batch, disc, d_vars), has_aux=True)(outs)
            return terms, d_state, vjp(grad_out)[0]

        def d_step(d_vars, d_os):
            fake = L.composite(outs[0], batch["image"], batch["mask"])
            (loss, (terms, d_state)), grad = jax.value_and_grad(
                lambda p: L.discriminator_loss(variant, disc, {**d_vars, "params": p}, batch, fake),
                has_aux=True)(d_vars["params"])
            upd, d_os = d_opt.update(grad, d_os, d_vars["params"])
            return terms, {**d_vars, **d_state, "params": optax.apply_updates(d_vars["params"], upd)}, d_os

        if variant == "medfe":  # D step first, then G through the updated D (TSGL_MEDFE/train/train.py)
            d_terms, d_vars, d_os = d_step(d_vars, d_os)
            g_terms, d_state, g_grad = g_step(d_vars)
        else:  # G step, then D on the detached composite (TSGL_Lama/train/train.py)
            g_terms, d_state, g_grad = g_step(d_vars)
            d_terms, d_vars, d_os = d_step({**d_vars, **d_state}, d_os)
            d_state = {}
        upd, g_os = g_opt.update(g_grad, g_os, g_vars["params"])
        g_vars = {**g_vars, **g_state, "params": optax.apply_updates(g_vars["params"], upd)}
        return g_vars, {**d_vars, **d_state}, g_os, d_os, g_terms, d_terms

    g_os, d_os = g_opt.init(g_vars["params"]), d_opt.init(d_vars["params"])
    history = []
    for _ in range(n_steps):
        g_vars, d_vars, g_os, d_os, g_terms, d_terms = step(g_vars, d_vars, g_os, d_os)
        history.append(({k: float(v) for k, v in g_terms.items()}, {k: float(v) for k, v in d_terms.items()}))
    return history, g_vars


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["medfe", "lama"])
def test_a_few_steps_reduce_the_loss_on_real_images(variant):
    history, g_vars = _train(variant)
    first, last = history[0][0], history[-1][0]
    assert all(np.isfinite(v) for g, d in history for v in (*g.values(), *d.values()))
    assert last["total"] < first["total"], [h[0]["total"] for h in history]
    assert last["structure_l1"] < first["structure_l1"], [h[0]["structure_l1"] for h in history]
    if variant == "medfe":  # LaMa's 10x known-pixel L1 oscillates over the first Adam(b1=0, lr 1e-3) steps,
        # while the 100x feature matching dominates its gradient; its total still falls
        assert last["image_l1"] < first["image_l1"], [h[0]["image_l1"] for h in history]
    else:
        assert last["feature_matching"] < first["feature_matching"]
    # the train-mode state advanced: SPADE BN running statistics and spectral-norm vectors
    assert "spectral_norm" in g_vars and "batch_stats" in g_vars
