"""Training losses of PUT + FDM (fdm_jax.losses): parity with the original through the fixture
harness, and the rules of EdgeConnectLoss that the fixture alone cannot pin down."""

from __future__ import annotations

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.convert.discriminator import convert_discriminator, discriminator_state_dict
from fdm_jax.convert.put_fdm import ConversionError
from fdm_jax.losses import (Discriminator, EdgeConnectLoss, PerceptualNet, VGGFeatures, binary_cross_entropy,
                            build_perceptual, convert_vgg19, discriminator_apply, gradient_loss, hole_normalised_l1,
                            image_gradients, init_discriminator, load_vgg19, power_iteration, spectral_sigma)
from fdm_jax.put_fdm.quantization_error import quantization_error_inputs, quantization_error_loss
from fdm_jax.losses.discriminator import SN_COLLECTION, weight_matrix
from fdm_jax.losses.vgg import LAYERS, VGG19_BLOCKS, load_numpy_pickle, torchvision_indices
from fdm_jax.parity import EXIT_OK, run_fixture
from fdm_jax.parity.harness import load_fixture
from shared_paths import fixtures_dir, require, require_torch

PUT = fixtures_dir() / "put_fdm"
SMALL_WIDTHS = (4, 8, 8, 8)
SMALL_VGG = (4, 8, 8, 8, 8)


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


# --- parity with the original (shared/fixtures/put_fdm/losses.npz) ------------------------------

def _check_rows(status, rows, msg):
    assert rows, msg
    bad = [f"{r.name}: err {r.error} > tol {r.tolerance} {r.note}" for r in rows if not r.ok]
    if _has_torch():
        assert status == EXIT_OK and not bad, f"{msg}; {bad}"
    else:  # the fixture's random VGG19 can only be rebuilt through torch's generator
        assert all(r.name.startswith("vgg_") and r.not_checked for r in rows if not r.ok), bad


def test_losses_fixture_passes():
    _check_rows(*run_fixture(require(PUT / "losses.npz")))


@pytest.mark.slow
def test_losses_fixture_passes_with_original_checkpoint():
    # Codec + FDM from the original Solver checkpoint (same values as param/*).
    _check_rows(*run_fixture(require(PUT / "losses.npz"), (str(require(PUT / "put_fdm_codec_fdm_tuning.pth")),)))


def test_whole_generator_loss_with_the_rebuilt_vgg_matches_the_fixture():
    """The same terms as the harness, but the content/style terms from the port's own VGG19 pass
    (EdgeConnectLoss.perceptual_features) on the recorded Y and I, not from the recorded maps."""
    require_torch()
    from fdm_jax.nn.layout import to_nhwc
    from fdm_jax.parity.runners.put_fdm_losses import loss_config_from_notes, seeded_torchvision_vgg19

    fx = load_fixture(require(PUT / "losses.npz"))
    vgg = VGGFeatures()
    vv = convert_vgg19(seeded_torchvision_vgg19(fx.kwargs["vgg_seed"]), vgg)
    disc = Discriminator(widths=tuple(fx.kwargs["disc_widths"]))
    dv = convert_discriminator(discriminator_state_dict(fx.params), disc)
    loss = EdgeConnectLoss.from_config(loss_config_from_notes(fx.meta), discriminator=disc,
                                       perceptual=PerceptualNet(vgg, *LAYERS["vgg19"]))
    y, i = to_nhwc(fx.outputs["p3_reconstruction"]), to_nhwc(fx.outputs["p3_image"])
    mask = 1.0 - to_nhwc(fx.outputs["p3_hole_mask"])
    pv, target = to_nhwc(fx.outputs["p3_lost_feature"]), to_nhwc(fx.outputs["p3_gt_feature"])
    _, terms, sn = jax.jit(lambda y: loss.generator_loss(y, i, mask, fx.kwargs["step"], disc_variables=dv,
                                                         perceptual_variables=vv, lost_feature=pv,
                                                         gt_feature=target))(y)
    for k, value in terms.items():
        name = "p3_" + k
        assert abs(float(value) - float(fx.outputs[name])) <= fx.tolerance(name), (k, float(value))
    np.testing.assert_allclose(np.asarray(sn["conv4"]["u"]), fx.outputs["sn_after_gen.conv4.0.weight_u"],
                               atol=fx.tolerance("sn_after_gen.conv4.0.weight_u"))


# --- small random set-up --------------------------------------------------------------------------

def _random_variables(module, *args, seed=0, scale=0.2, **kw):
    """Variables shaped like module.init's, drawn with numpy (XLA's compile of many threefry draws is
    slow on CPU); spectral-norm vectors are unit vectors like torch's."""
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kw))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        x = rng.normal(0.0, scale, leaf.shape).astype(leaf.dtype)
        return jnp.asarray(x / np.linalg.norm(x) if path[0].key == SN_COLLECTION else x)

    return jax.tree_util.tree_map_with_path(draw, abstract)


def _setup(key=0, b=2, size=32):
    rng = np.random.default_rng(key)
    y, i = (jnp.asarray(rng.uniform(size=(b, size, size, 3)).astype(np.float32)) for _ in range(2))
    mask = jnp.asarray((rng.uniform(size=(b, size, size, 1)) > 0.4).astype(np.float32))
    disc = Discriminator(widths=SMALL_WIDTHS)
    dv = _random_variables(disc, jnp.zeros((1, size, size, 3)), seed=key, scale=0.1, update_sn=False)
    vgg = VGGFeatures(widths=SMALL_VGG, taps=("relu5_2",))
    vv = _random_variables(vgg, jnp.zeros((1, size, size, 3)), seed=key + 1)
    net = PerceptualNet(vgg, *LAYERS["vgg19"])
    pv = jnp.asarray(rng.normal(size=(b, size // 8, size // 8, 8)).astype(np.float32))
    return y, i, mask, disc, dv, net, vv, pv, jnp.zeros_like(pv)


PHASE3 = dict(kind="image+qe", g_rec=1.0, g_gradient=5.0, g_content=0.1, g_style=250.0, g_adv=0.1, disc_start=300,
              content_start=150, style_start=150, gradient_start=150, qe=1.0)


def _tree_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _tree_close(a, b, atol=1e-6):
    """Equal up to float32 rounding (jit and eager may round differently)."""
    return all(np.allclose(x, y, rtol=0, atol=atol) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_start_steps_gate_terms_under_jit_with_a_traced_step():
    y, i, mask, disc, dv, net, vv, pv, target = _setup()
    loss = EdgeConnectLoss.from_config(PHASE3, discriminator=disc, perceptual=net)
    traces = []

    @jax.jit
    def g(step, dv):
        traces.append(1)
        return loss.generator_loss(y, i, mask, step, disc_variables=dv, perceptual_variables=vv,
                                   lost_feature=pv, gt_feature=target)

    _, one_step = discriminator_apply(disc, dv, y)
    for step in (0, 149, 150, 299, 300, 5000):
        total, terms, sn = g(jnp.asarray(step), dv)
        for name, start in (("grad_loss", 150), ("content_loss", 150), ("style_loss", 150), ("adv_loss", 300)):
            assert (float(terms[name]) != 0.0) == (step >= start), (name, step, float(terms[name]))
        assert float(terms["rec_loss"]) > 0 and float(terms["fdm_loss"]) > 0
        parts = sum(float(v) for k, v in terms.items() if k != "loss")
        np.testing.assert_allclose(float(total), parts, rtol=1e-6)
        # u, v advance only when the original called D (step >= disc_start).
        if step >= 300:
            assert _tree_close(sn, one_step) and not _tree_close(sn, dv["spectral_norm"]), step
        else:
            assert _tree_equal(sn, dv["spectral_norm"]), step
    assert len(traces) == 1, "the step must not be a static argument"


def test_discriminator_loss_before_and_after_disc_start():
    y, i, mask, disc, dv, net, vv, pv, target = _setup(1)
    loss = EdgeConnectLoss.from_config(PHASE3, discriminator=disc, perceptual=net)
    d = jax.jit(loss.discriminator_loss)
    real_map, after_real = discriminator_apply(disc, dv, i)
    fake_map, after_both = discriminator_apply(disc, {**dv, "spectral_norm": after_real}, y)
    bce = lambda p, t: float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))
    real, fake = bce(np.asarray(real_map), 1.0), bce(np.asarray(fake_map), 0.0)

    l, terms, sn = d(dv, y, i, jnp.asarray(299))
    assert float(l) == 0.0 and float(terms["real_loss"]) == 0.0
    assert _tree_close(sn, after_real) and not _tree_close(sn, after_both)  # 0 * BCE(D(I), 1): D still ran once on I
    grads = jax.grad(lambda p: d({**dv, "params": p}, y, i, 299)[0])(dv["params"])
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree_util.tree_leaves(grads))

    l, terms, sn = d(dv, y, i, jnp.asarray(300))
    np.testing.assert_allclose([float(terms["real_loss"]), float(terms["fake_loss"])], [real, fake], rtol=1e-5)
    np.testing.assert_allclose(float(l), (real + fake) / 2, rtol=1e-5)
    assert _tree_close(sn, after_both)
    grads = jax.grad(lambda p: d({**dv, "params": p}, y, i, 300)[0])(dv["params"])
    assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree_util.tree_leaves(grads))


def test_generator_loss_is_differentiable_in_the_reconstruction():
    y, i, mask, disc, dv, net, vv, pv, target = _setup(2)
    loss = EdgeConnectLoss.from_config(PHASE3, discriminator=disc, perceptual=net)

    def f(y, pv):
        total, terms, sn = loss.generator_loss(y, i, mask, 300, disc_variables=dv, perceptual_variables=vv,
                                               lost_feature=pv, gt_feature=target)
        return total, sn

    (gy, gpv), sn = jax.jit(jax.grad(f, argnums=(0, 1), has_aux=True))(y, pv)
    assert np.isfinite(gy).all() and float(jnp.abs(gy).max()) > 0
    assert np.isfinite(gpv).all() and float(jnp.abs(gpv).max()) > 0
    assert not _tree_equal(sn, dv["spectral_norm"])  # the new u/v come out through has_aux
    # The frozen VGG receives no gradient.
    gv = jax.grad(lambda v: loss.generator_loss(y, i, mask, 300, disc_variables=dv, perceptual_variables=v,
                                                lost_feature=pv, gt_feature=target)[0])(vv)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree_util.tree_leaves(gv))


# --- the individual rules -----------------------------------------------------------------------

def test_bce_clamps_the_log_at_minus_100_like_torch():
    for p, t, want in ((0.0, 1.0, 100.0), (1.0, 0.0, 100.0), (1.0, 1.0, 0.0), (0.0, 0.0, 0.0)):
        assert float(binary_cross_entropy(jnp.asarray([p]), t)) == want, (p, t)
    x = jnp.asarray([0.0, 1.0, 0.25, 1.0])
    y = jnp.asarray([1.0, 0.0, 1.0, 1.0])
    g = jax.grad(lambda x: binary_cross_entropy(x, y))(x)
    # aten binary_cross_entropy_backward: (x - y) / max(x (1 - x), 1e-12), / N for the mean.
    expected = (np.asarray(x) - np.asarray(y)) / np.maximum(np.asarray(x) * (1 - np.asarray(x)), 1e-12) / 4
    np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-6)
    # A saturated sigmoid (exactly 1.0 in float32) with the fake label: finite loss and gradient.
    z = jnp.asarray([40.0, -40.0])
    assert float(jax.nn.sigmoid(z)[0]) == 1.0
    v, gz = jax.value_and_grad(lambda z: binary_cross_entropy(jax.nn.sigmoid(z), 0.0))(z)
    assert float(v) == 50.0 and np.isfinite(gz).all()


def test_bce_matches_torch_value_and_gradient():
    require_torch()
    import torch

    x = np.array([0.0, 1.0, 0.3, 0.999, 1e-30], np.float32)
    for t in (0.0, 1.0):
        xt = torch.tensor(x, requires_grad=True)
        lt = torch.nn.BCELoss()(xt, torch.full_like(xt, t))
        lt.backward()
        lj, gj = jax.value_and_grad(lambda x: binary_cross_entropy(x, t))(jnp.asarray(x))
        np.testing.assert_allclose(float(lj), lt.item(), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(gj), xt.grad.numpy(), rtol=1e-5)


def test_power_iteration_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 12)).astype(np.float32)
    u = rng.normal(size=6).astype(np.float32)
    v = rng.normal(size=12).astype(np.float32)
    norm = lambda a: a / max(np.linalg.norm(a), 1e-12)
    u0, v0 = norm(u), norm(v)
    v_ref = norm(w.T @ u0)  # torch order: v from the old u, then u from the new v
    u_ref = norm(w @ v_ref)
    u1, v1 = power_iteration(jnp.asarray(w), jnp.asarray(u0), jnp.asarray(v0))
    np.testing.assert_allclose(np.asarray(v1), v_ref, atol=1e-6)
    np.testing.assert_allclose(np.asarray(u1), u_ref, atol=1e-6)
    np.testing.assert_allclose(float(spectral_sigma(jnp.asarray(w), u1, v1)), u_ref @ (w @ v_ref), rtol=1e-6)
    for _ in range(200):
        u1, v1 = power_iteration(jnp.asarray(w), u1, v1)
    np.testing.assert_allclose(float(spectral_sigma(jnp.asarray(w), u1, v1)), np.linalg.svd(w)[1][0], rtol=1e-4)
    # A zero matrix hits the eps clamp instead of dividing by zero.
    uz, vz = power_iteration(jnp.zeros((3, 4)), jnp.ones(3) / 3 ** 0.5, jnp.ones(4) / 2)
    assert np.isfinite(uz).all() and np.isfinite(vz).all()


def test_weight_matrix_is_torchs_oihw_reshape():
    w = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)  # (O, I, kh, kw)
    np.testing.assert_array_equal(np.asarray(weight_matrix(jnp.asarray(w.transpose(2, 3, 1, 0)))), w.reshape(2, -1))


def _torch_style_gradient(x):
    """image_gradient_loss.py with numpy, NCHW: pad right/bottom, subtract, zero the last col/row."""
    r = np.pad(x, ((0, 0), (0, 0), (0, 0), (0, 1)))[..., 1:]
    b = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 0)))[:, :, 1:, :]
    dx, dy = np.abs(r - x), np.abs(b - x)
    dx[..., -1] = 0
    dy[:, :, -1, :] = 0
    return dx, dy


def test_gradient_loss_zeroes_the_last_column_and_row():
    x = np.random.default_rng(1).uniform(size=(2, 3, 5, 7)).astype(np.float32)  # NCHW
    dx, dy = image_gradients(jnp.asarray(x.transpose(0, 2, 3, 1)))
    rdx, rdy = _torch_style_gradient(x)
    np.testing.assert_allclose(np.asarray(dx).transpose(0, 3, 1, 2), rdx, atol=1e-7)
    np.testing.assert_allclose(np.asarray(dy).transpose(0, 3, 1, 2), rdy, atol=1e-7)
    assert float(jnp.abs(dx[:, :, -1]).max()) == 0.0 and float(jnp.abs(dy[:, -1]).max()) == 0.0
    # A unit ramp along W against a flat target: |dx| = 1 except the zeroed last column, which still
    # counts in the mean; dy = 0. Loss = ((W - 1) / W + 0) / 2.
    w = 7
    ramp = jnp.broadcast_to(jnp.arange(w, dtype=jnp.float32)[None, None, :, None], (2, 5, w, 3))
    np.testing.assert_allclose(float(gradient_loss(ramp, jnp.zeros_like(ramp))), (w - 1) / w / 2, rtol=1e-6)


def test_rec_loss_divides_by_the_batch_hole_fraction():
    rng = np.random.default_rng(2)
    y = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32)
    i = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32)
    mask = np.ones((2, 8, 8, 1), np.float32)
    mask[0, :2] = 0  # 16 holes in image 0, none in image 1: batch hole fraction 16 / 128
    got = float(hole_normalised_l1(jnp.asarray(y), jnp.asarray(i), jnp.asarray(mask)))
    np.testing.assert_allclose(got, np.abs(y - i).mean() / (16 / 128), rtol=1e-6)
    mask[1, :2] = 0  # twice the holes, half the loss
    np.testing.assert_allclose(float(hole_normalised_l1(jnp.asarray(y), jnp.asarray(i), jnp.asarray(mask))),
                               got / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="mask shape"):
        hole_normalised_l1(jnp.asarray(y), jnp.asarray(i), jnp.asarray(mask[..., 0]))


def test_qe_loss_counts_known_patches_in_the_denominator():
    m = np.zeros((2, 4, 4, 1), np.float32)
    m[0, 0, :3] = 1  # 3 masked patches of 32
    pv = jnp.asarray(np.broadcast_to(m, (2, 4, 4, 5)).copy())  # |pv - target| = 1 on masked patches only
    np.testing.assert_allclose(float(quantization_error_loss(pv, jnp.zeros_like(pv))), 3 / 32, rtol=1e-6)
    with pytest.raises(ValueError, match="pv shape"):
        quantization_error_loss(pv, jnp.zeros((2, 4, 4, 4)))


def test_qe_target_is_zero_on_known_patches():
    from fdm_jax.put_fdm import PatchVQVAE

    codec = PatchVQVAE(res_ch=16, encoder_out_ch=16, embed_dim=8, decoder_in_ch=16, num_embed=16,
                       masked_embed_start=8, num_res_blocks=1)
    image = jnp.asarray(np.random.default_rng(3).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32))
    mask = jnp.ones((1, 32, 32, 1)).at[0, 3, 20].set(0.0)  # one missing pixel: patch (0, 2)
    cv = _random_variables(codec, image, mask, seed=4)
    qi = quantization_error_inputs(codec, cv, image, mask)
    expected_m = np.zeros((1, 4, 4, 1), np.float32)
    expected_m[0, 0, 2] = 1
    np.testing.assert_array_equal(np.asarray(qi["masked_patch_idx"]), expected_m)
    f, q, t = (np.asarray(qi[k]) for k in ("feature", "quantized", "target"))
    np.testing.assert_array_equal(t[0, 0, 2], (f - q)[0, 0, 2])
    assert np.abs(np.delete(t.reshape(16, -1), 2, axis=0)).max() == 0.0


# --- discriminator converter ----------------------------------------------------------------------

def test_discriminator_converter_is_strict():
    fx = load_fixture(require(PUT / "losses.npz"))
    sd = discriminator_state_dict(fx.params)
    disc = Discriminator(widths=tuple(fx.kwargs["disc_widths"]))
    v = convert_discriminator(sd, disc)
    np.testing.assert_array_equal(np.asarray(v["spectral_norm"]["conv2"]["v"]), sd["conv2.0.weight_v"])
    np.testing.assert_array_equal(np.asarray(v["params"]["conv1"]["kernel"]),
                                  sd["conv1.0.weight_orig"].transpose(2, 3, 1, 0))
    bad = dict(sd, **{"features.0.weight_orig": sd["conv1.0.weight_orig"] + 1})
    with pytest.raises(ConversionError, match=r"features\.0\.weight_orig differs from conv1\.0\.weight_orig"):
        convert_discriminator(bad, disc)
    with pytest.raises(ConversionError, match=r"missing keys: conv3\.0\.weight_u"):
        convert_discriminator({k: x for k, x in sd.items() if k != "conv3.0.weight_u"}, disc)
    with pytest.raises(ConversionError, match=r"unexpected keys: conv6\.0\.weight_orig"):
        convert_discriminator(dict(sd, **{"conv6.0.weight_orig": np.zeros(1)}), disc)
    with pytest.raises(ConversionError, match=r"mis-shaped keys: conv1\.0\.weight_orig"):
        convert_discriminator(sd, Discriminator())  # full widths vs the reduced checkpoint
    with pytest.raises(ConversionError, match="real_label"):
        discriminator_state_dict(dict(fx.params, **{"loss.adversarial_loss.real_label": np.float32(0.9)}))


def test_fresh_discriminator_matches_the_original_init():
    disc = Discriminator(widths=SMALL_WIDTHS)
    v = init_discriminator(disc, jax.random.key(0))
    k = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(v["params"])])
    assert abs(k.mean()) < 3e-3 and abs(k.std() - 0.02) < 2e-3  # networks.py init_weights: N(0, 0.02)
    for conv, uv in v[SN_COLLECTION].items():  # normalize(randn), no power iteration at init
        assert abs(float(jnp.linalg.norm(uv["u"])) - 1) < 1e-6 and abs(float(jnp.linalg.norm(uv["v"])) - 1) < 1e-6
    assert jax.tree_util.tree_structure(v) == jax.tree_util.tree_structure(
        jax.eval_shape(lambda: disc.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), update_sn=False)))


def test_discriminator_from_original_checkpoint_file():
    from fdm_jax.convert.checkpoints import read_state_dict

    path = require(PUT / "put_fdm_codec_fdm_tuning.pth")
    sd = read_state_dict(path)
    v = convert_discriminator(discriminator_state_dict(sd, str(path)), Discriminator(widths=(16, 32, 64, 128)))
    np.testing.assert_array_equal(np.asarray(v[SN_COLLECTION]["conv5"]["v"]), sd["loss.discriminator.conv5.0.weight_v"])


# --- VGG loaders ---------------------------------------------------------------------------------

def _torch_vgg19(widths):
    """A random VGG19-shaped `features` Sequential built from torch.nn layers (torchvision's layout)."""
    import torch

    layers, c = [], 3
    for b, n in enumerate(VGG19_BLOCKS):
        for _ in range(n):
            layers += [torch.nn.Conv2d(c, widths[b], 3, padding=1), torch.nn.ReLU()]
            c = widths[b]
        layers.append(torch.nn.MaxPool2d(2, 2))
    seq = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for p in seq.parameters():
            p.normal_(0, 0.3)
    return seq


def test_vgg19_converter_matches_a_torch_forward(tmp_path):
    require_torch()
    import torch

    torch.manual_seed(0)
    widths = (8, 16, 16, 32, 32)
    seq = _torch_vgg19(widths)
    sd = {f"features.{k}": t for k, t in seq.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(4, 2)  # torchvision files carry the classifier head
    torch.save(sd, tmp_path / "vgg19.pth")
    module, variables = load_vgg19(tmp_path / "vgg19.pth")
    assert tuple(module.widths) == widths

    x = np.random.default_rng(0).uniform(size=(2, 3, 32, 32)).astype(np.float32)
    taps = tuple(f"relu{b}_{i}" for b, n in enumerate(VGG19_BLOCKS, 1) for i in range(1, n + 1))
    feats = jax.jit(module.clone(taps=taps).apply)(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
    idx = torchvision_indices(VGG19_BLOCKS)
    with torch.no_grad():
        for tap in taps:
            ref = seq[: idx["conv" + tap[4:]] + 2](torch.from_numpy(x)).numpy()  # up to that conv's ReLU
            got = np.asarray(feats[tap]).transpose(0, 3, 1, 2)
            np.testing.assert_allclose(got, ref, atol=2e-5 * max(1.0, np.abs(ref).max()), err_msg=tap)

    # The original's own module names (losses.VGG19: relu2_1.5.weight ...) convert to the same tree.
    ec = {f"perceptual_loss.vgg.relu{conv[4:]}.{n}.{leaf}": sd[f"features.{n}.{leaf}"].numpy()
          for conv, n in idx.items() for leaf in ("weight", "bias")}
    v2 = convert_vgg19(ec, prefix="perceptual_loss.vgg.")
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(variables),
                                                    jax.tree_util.tree_leaves(v2)))


def test_vgg19_converter_reads_the_reduced_copies_in_the_original_checkpoint():
    from fdm_jax.convert.checkpoints import read_state_dict

    sd = read_state_dict(require(PUT / "put_fdm_codec_fdm_tuning.pth"))
    perc = convert_vgg19(sd, prefix="loss.perceptual_loss.vgg.")
    style = convert_vgg19(sd, prefix="loss.style_loss.vgg.")
    assert perc["params"]["conv5_4"]["kernel"].shape == (3, 3, 32, 32)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(perc), jax.tree_util.tree_leaves(style)))
    broken = {k: v for k, v in sd.items() if k != "loss.perceptual_loss.vgg.relu3_4.16.bias"}
    with pytest.raises(ConversionError, match=r"missing keys: features\.16\.bias"):
        convert_vgg19(broken, prefix="loss.perceptual_loss.vgg.")
    extra = dict(sd, **{"loss.perceptual_loss.vgg.relu5_4.36.weight": np.zeros(1)})
    with pytest.raises(ConversionError, match=r"unexpected keys: features\.36\.weight"):
        convert_vgg19(extra, prefix="loss.perceptual_loss.vgg.")


def test_lpips_vgg16_weights_load_and_give_features_at_every_tap():
    from fdm_jax.weights import cached_path

    if not cached_path("lpips_vgg16").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("lpips_vgg16 weights not fetched (python -m fdm_jax.weights fetch lpips_vgg16)")
        pytest.skip("lpips_vgg16 weights not fetched")
    net, variables = build_perceptual("lpips_vgg16")
    assert net.input_norm == "imagenet" and net.style_layers == ("relu2_2", "relu3_3", "relu4_3", "relu5_2")
    x = jax.random.uniform(jax.random.key(0), (1, 32, 32, 3))
    feats = jax.jit(net.features)(variables, x)
    shapes = {"relu1_1": (1, 32, 32, 64), "relu2_1": (1, 16, 16, 128), "relu2_2": (1, 16, 16, 128),
              "relu3_1": (1, 8, 8, 256), "relu3_3": (1, 8, 8, 256), "relu4_1": (1, 4, 4, 512),
              "relu4_3": (1, 4, 4, 512), "relu5_1": (1, 2, 2, 512), "relu5_2": (1, 2, 2, 512)}
    assert {k: tuple(v.shape) for k, v in feats.items()} == shapes
    for k, v in feats.items():
        assert np.isfinite(v).all() and float(v.max()) > 0, k


def test_numpy_pickle_loader_refuses_other_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "evil.ckpt").write_bytes(pickle.dumps({"a": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing global"):
        load_numpy_pickle(tmp_path / "evil.ckpt")
    (tmp_path / "obj.ckpt").write_bytes(pickle.dumps({"a": np.array(["x", 1], dtype=object)}))
    with pytest.raises((pickle.UnpicklingError, ValueError)):
        load_numpy_pickle(tmp_path / "obj.ckpt")
    (tmp_path / "ok.ckpt").write_bytes(pickle.dumps({"a": {"b": np.arange(3.0)}}))
    np.testing.assert_array_equal(load_numpy_pickle(tmp_path / "ok.ckpt")["a"]["b"], np.arange(3.0))


# --- configuration ---------------------------------------------------------------------------------

def test_losses_build_from_the_shipped_configs():
    from fdm_jax.cli.config_loading import load_config

    cfg = load_config("configs/paris.py:tiny")
    disc = Discriminator(widths=SMALL_WIDTHS)
    _, _, _, _, _, net, _, _, _ = _setup()
    p3 = EdgeConnectLoss.from_config(cfg.train.fdm_tuning.loss, discriminator=disc, perceptual=net)
    assert (p3.kind, p3.g_gradient, p3.disc_start, p3.qe) == ("image+qe", 5.0, 300, 1.0)
    p2 = EdgeConnectLoss.from_config(cfg.train.fdm.loss)  # L_qe only: no D, no VGG needed
    assert p2.kind == "qe" and not p2.uses_discriminator
    pv = jnp.ones((1, 2, 2, 4))
    total, terms, state = p2.generator_loss(lost_feature=pv, gt_feature=jnp.zeros_like(pv))
    assert float(total) == 1.0 and set(terms) == {"fdm_loss", "loss"} and state is None
    p1 = EdgeConnectLoss.from_config(cfg.train.codec.loss, discriminator=disc, perceptual=net)
    assert p1.kind == "image" and p1.quantize == 1.0

    assert build_perceptual("none") == (None, None)
    with pytest.raises(ValueError, match="g_content > 0 needs a perceptual network"):
        EdgeConnectLoss.from_config(cfg.train.fdm_tuning.loss, discriminator=disc)
    with pytest.raises(ValueError, match="g_adv > 0 needs a discriminator"):
        EdgeConnectLoss.from_config(cfg.train.fdm_tuning.loss, perceptual=net)
    with pytest.raises(KeyError, match="unknown EdgeConnect loss config key"):
        EdgeConnectLoss.from_config({"g_recc": 1.0})
    with pytest.raises(NotImplementedError, match="nsgan"):
        EdgeConnectLoss.from_config({"gan_loss": "hinge", "g_adv": 0.0, "g_content": 0.0, "g_style": 0.0})
    with pytest.raises(ValueError, match="needs weights_path"):
        build_perceptual("vgg19")
    with pytest.raises(ValueError, match="expected one of"):
        build_perceptual("resnet")
