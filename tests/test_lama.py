"""LaMa FFC generator, its converter and the thin/medium/thick masks against the original's fixtures
(shared/fixtures/lama, geomagical/lama-with-refiner@d4239d8)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdm_jax.convert import lama as conv
from fdm_jax.convert.pth_reader import load_pth
from fdm_jax.convert.put_fdm import ConversionError
from fdm_jax.data import lama_masks
from fdm_jax.lama.ffc import FFC, FFCResnetBlock, FourierUnit
from fdm_jax.lama.generator import (FFCResNetGenerator, count_parameters, front_rear,
                                           generator_input, predict, random_variables)
from fdm_jax.nn.layout import to_nchw, to_nhwc
from fdm_jax.parity.harness import EXIT_OK, load_fixture, run_fixture
from fdm_jax.parity.runners.lama import generator_from_kwargs
from shared_paths import fixtures_dir, require, require_torch

LAMA = fixtures_dir() / "lama"


def _fixture(name):
    return load_fixture(require(LAMA / name))


def _assert_pass(path, weights=()):
    status, rows, msg = run_fixture(path, weights)
    assert status == EXIT_OK, (msg, [(r.name, r.error, r.tolerance) for r in rows if not r.ok])
    assert rows and all(r.ok for r in rows)
    return rows


@pytest.mark.parametrize("name", ["fourier_unit.npz", "ffc_resnet_block.npz", "ffc_generator_small.npz"])
def test_module_fixtures(name):
    _assert_pass(require(LAMA / name))


def test_generator_from_original_pth_file():
    """The same fixture with the weights read from the original's .pth (bare state_dict)."""
    rows = _assert_pass(require(LAMA / "ffc_generator_small.npz"), (str(require(LAMA / "ffc_generator_small.pth")),))
    assert {"predicted_image", "z_l", "z_g", "model.18"} <= {r.name for r in rows}


def test_pth_pure_reader_equals_fixture_params():
    fx = _fixture("ffc_generator_small.npz")
    sd = load_pth(require(LAMA / "ffc_generator_small.pth"), use_torch=False)
    assert list(sd) == list(fx.params)
    for k, v in fx.params.items():
        np.testing.assert_array_equal(sd[k], v)


def test_generator_input_matches_fixture_x():
    fx = _fixture("ffc_generator_small.npz")
    image = to_nhwc(fx.inputs["image"])
    hole = to_nhwc(fx.inputs["mask"])
    x = generator_input(image, 1.0 - hole)
    np.testing.assert_array_equal(to_nchw(x), fx.inputs["x"])


def test_front_rear_split_is_the_full_forward():
    fx = _fixture("ffc_generator_small.npz")
    model = generator_from_kwargs(fx.kwargs)
    v = conv.convert_generator(fx.params, model)
    image = to_nhwc(fx.inputs["image"])
    known = 1.0 - to_nhwc(fx.inputs["mask"])
    fr = front_rear(model)
    assert front_rear(model) is fr  # cached: jitted callers compile once
    z = fr.front(v, image, known)
    assert isinstance(z, tuple) and z[0].shape == (2, 8, 12, 32) and z[1].shape == (2, 8, 12, 96)
    np.testing.assert_allclose(to_nchw(z[0]), fx.outputs["z_l"], atol=6e-4)
    np.testing.assert_array_equal(fr.rear(v, z), model.apply(v, image, known))


def test_param_counts():
    # Big-LaMa: 50,975,875 trainable parameters (counted on the original ffc.py:FFCResNetGenerator).
    big = count_parameters(FFCResNetGenerator(n_blocks=18))
    assert big["total"] == 50_975_875
    assert big["front"] + big["rear"] == big["total"]
    # The reduced fixture generator: its state_dict minus BN buffers is the trainable parameter set.
    fx = _fixture("ffc_generator_small.npz")
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    n_params = sum(v.size for k, v in fx.params.items() if not k.endswith(buffers))
    n_stats = sum(v.size for k, v in fx.params.items() if k.endswith(("running_mean", "running_var")))
    small = count_parameters(generator_from_kwargs(fx.kwargs))
    assert (small["total"], small["batch_stats"]) == (n_params, n_stats)


def test_converter_is_strict():
    fx = _fixture("ffc_generator_small.npz")
    model = generator_from_kwargs(fx.kwargs)
    sd = dict(fx.params)
    missing = {k: v for k, v in sd.items() if k != "model.5.conv1.ffc.convg2g.fu.conv_layer.weight"}
    with pytest.raises(ConversionError, match=r"missing keys: model\.5\.conv1\.ffc\.convg2g\.fu\.conv_layer\.weight"):
        conv.convert_generator(missing, model)
    with pytest.raises(ConversionError, match=r"unexpected keys: model\.99\.weight"):
        conv.convert_generator({**sd, "model.99.weight": np.zeros(3, np.float32)}, model)
    bad = dict(sd)
    bad["model.8.weight"] = np.zeros((128, 64, 3, 2), np.float32)  # the first ConvTranspose2d
    with pytest.raises(ConversionError, match=r"mis-shaped keys: model\.8\.weight: checkpoint shape \(128, 64, 3, 2\)"):
        conv.convert_generator(bad, model)
    # A Big-LaMa-sized module does not accept the reduced weights.
    with pytest.raises(ConversionError, match="model.22"):
        conv.convert_generator(sd, FFCResNetGenerator(ngf=16, n_blocks=18))


def test_lightning_checkpoint_without_torch(tmp_path):
    """best.ckpt layout: ckpt['state_dict'] with `generator.` (and other modules') keys plus pickled
    non-tensor hyper-parameters; read by the pure reader with inert placeholders."""
    torch = require_torch()
    fx = _fixture("ffc_generator_small.npz")
    sd = {"generator." + k: torch.from_numpy(np.array(v)) for k, v in fx.params.items()}
    sd["discriminator.model0.0.weight"] = torch.zeros(2, 3)
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": sd, "epoch": 3, "hyper_parameters": _FakeConfig({"generator": {"ngf": 16}})}, path)
    got = conv.read_generator_state_dict(path)
    assert sorted(got) == sorted(fx.params)
    model = generator_from_kwargs(fx.kwargs)
    ours = conv.load_generator(path, model)
    ref = conv.convert_generator(fx.params, model)
    jax.tree.map(np.testing.assert_array_equal, ours, ref)


class _FakeConfig(dict):
    """Stands in for OmegaConf's DictConfig in a pickled Lightning checkpoint (a non-allowlisted global)."""

    def __reduce__(self):
        return (_FakeConfig, (dict(self),))


def test_read_generator_state_dict_errors(tmp_path):
    p = tmp_path / "not_a_checkpoint.ckpt"
    p.write_bytes(b"hello")
    with pytest.raises(ConversionError, match="not_a_checkpoint.ckpt"):
        conv.read_generator_state_dict(p)


def test_remat_changes_nothing():
    model = FFCResNetGenerator(ngf=8, n_blocks=2)
    image = jax.random.uniform(jax.random.key(1), (1, 32, 40, 3))
    known = (jax.random.uniform(jax.random.key(2), (1, 32, 40, 1)) > 0.3).astype(jnp.float32)
    v = random_variables(model)
    remat = FFCResNetGenerator(ngf=8, n_blocks=2, remat=True)
    assert jax.tree.structure(jax.eval_shape(remat.init, jax.random.key(0), image, known)) == jax.tree.structure(v)
    fr, fr_remat = front_rear(model), front_rear(remat)
    z = fr.front(v, image, known)

    def loss(f):
        return lambda z: jnp.sum(f.rear(v, z) ** 2)

    g, g_remat = jax.jit(jax.grad(loss(fr)))(z), jax.jit(jax.grad(loss(fr_remat)))(z)
    np.testing.assert_allclose(jax.jit(fr_remat.rear)(v, z), jax.jit(fr.rear)(v, z), rtol=1e-6, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), g_remat, g)


def test_predict_pads_and_composites():
    model = FFCResNetGenerator(ngf=8, n_blocks=1)
    image = jax.random.uniform(jax.random.key(1), (1, 30, 37, 3))
    known = jnp.ones((1, 30, 37, 1)).at[:, 10:20, 5:25].set(0.0).at[:, 0, 0].set(0.5)  # grey = hole
    v = random_variables(model)
    out = jax.jit(predict, static_argnums=0)(model, v, image, known)
    assert out.shape == image.shape
    hole = np.asarray(known) < 1
    np.testing.assert_array_equal(np.where(hole, 0, out), np.where(hole, 0, image))
    # The generator saw the numpy-'symmetric' padded input (InpaintingDataset pad_out_to_modulo).
    img_p = jnp.pad(image, ((0, 0), (0, 2), (0, 3), (0, 0)), mode="symmetric")
    kn_p = jnp.pad(jnp.where(known < 1, 0.0, 1.0), ((0, 0), (0, 2), (0, 3), (0, 0)), mode="symmetric")
    pred = jax.jit(model.apply)(v, img_p, kn_p)[:, :30, :37]
    np.testing.assert_allclose(np.where(hole, out, 0), np.where(hole, pred, 0), atol=1e-6)


def test_bad_inputs_are_named():
    model = FFCResNetGenerator(ngf=8, n_blocks=1)
    v = random_variables(model)
    with pytest.raises(ValueError, match=r"multiples of 8, got 20x16"):
        model.apply(v, jnp.zeros((1, 20, 16, 3)), jnp.ones((1, 20, 16, 1)))
    with pytest.raises(ValueError, match=r"mask: expected \(1, 16, 16, 1\)"):
        model.apply(v, jnp.zeros((1, 16, 16, 3)), jnp.ones((1, 16, 16)))
    with pytest.raises(ValueError, match=r"image: expected \(B, H, W, 3\)"):
        model.apply(v, jnp.zeros((1, 16, 16, 4)), jnp.ones((1, 16, 16, 1)))
    with pytest.raises(ValueError, match="ratio_gin"):
        jax.eval_shape(FFC(8, 3, 0.5, 0.5).init, jax.random.key(0), (jnp.zeros((1, 4, 4, 8)), None))
    with pytest.raises(ValueError, match="out_activation"):
        jax.eval_shape(FFCResNetGenerator(out_activation="relu").init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)),
                       jnp.ones((1, 8, 8, 1)))


def test_fourier_unit_odd_width_and_interleaving():
    """The spectrum channels are interleaved (2k = Re, 2k+1 = Im) and odd widths round-trip."""
    fu = FourierUnit(3)
    x = jax.random.normal(jax.random.key(0), (1, 6, 7, 3))
    v = jax.jit(fu.init)(jax.random.key(1), x)
    _, state = fu.apply(v, x, mutable=["intermediates"])
    spec = np.asarray(state["intermediates"]["spectrum"][0])
    ref = np.fft.rfft2(np.asarray(x), axes=(1, 2), norm="ortho")
    np.testing.assert_allclose(spec[..., 0::2], ref.real, atol=1e-5)
    np.testing.assert_allclose(spec[..., 1::2], ref.imag, atol=1e-5)
    assert fu.apply(v, x).shape == x.shape


def test_resnet_block_without_global_branch_in_ffc_pieces():
    """Ratio 0 everywhere gives a plain conv block with no global tensors (TSGL's streams use these)."""
    block = FFCResnetBlock(8, 0.0, 0.0)
    x = (jnp.ones((1, 6, 6, 8)), None)
    v = jax.jit(block.init)(jax.random.key(0), x)
    y_l, y_g = block.apply(v, x)
    assert y_g is None and y_l.shape == (1, 6, 6, 8)
    assert "convg2g" not in json.dumps(jax.tree.map(lambda a: a.shape, v["params"]))


def test_masks_fixture():
    _assert_pass(require(LAMA / "masks_thin_medium_thick.npz"))


def test_mask_pipeline_drop_and_empty_masks():
    fx = _fixture("masks_thin_medium_thick.npz")
    cfg = lama_masks.MaskDatasetConfig.from_original(fx.kwargs["random_thin_256"]["config"])
    small = np.full((100, 120, 3), 128, np.uint8)
    drop = lama_masks.MaskDatasetConfig(**{**cfg.__dict__, "handle_small_mode": "drop"})
    assert lama_masks.process_image(small, drop, np.random.RandomState(0)) == []
    pairs = lama_masks.process_image(small, cfg, np.random.RandomState(0))  # upscaled to 256 x 307
    assert len(pairs) == 1 and pairs[0][0].shape == (256, 256, 3) and pairs[0][1].shape == (256, 256)
    assert pairs[0][1].mean() <= cfg.max_tamper_area
    with pytest.raises(ValueError, match="no hole pixel"):
        lama_masks.propose_random_square_crop(np.zeros((4, 6), np.float32), np.random.RandomState(0))
    with pytest.raises(ValueError, match="segm_proba"):
        lama_masks.MaskDatasetConfig.from_original({"mask_generator_kwargs": {}, "cropping": {"out_min_size": 8}})


def test_mask_generator_matches_fixture_statistics_of_kind():
    """Thin configs only draw strokes; medium/thick draw either strokes or boxes (never both)."""
    fx = _fixture("masks_thin_medium_thick.npz")
    for name in fx.meta["configs"]:
        kinds = fx.outputs[f"{name}/kind"]
        gen = lama_masks.MixedMaskGenerator(
            lama_masks.MaskDatasetConfig.from_original(fx.kwargs[name]["config"]).mask_generator)
        np.testing.assert_allclose(gen.probas, fx.kwargs[name]["probas_float32"], rtol=0, atol=0)
        if "thin" in name:
            assert (kinds == 0).all()
