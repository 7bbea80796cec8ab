"""RTV structure extraction (fdm_jax.tsgl.rtv, StructureFlow tsmooth.m) against the original run in Octave
(shared/fixtures/tsgl/rtv_tsmooth.npz), its on-disk cache, and its place as TSGL-MEDFE's texture input."""

from __future__ import annotations

import numpy as np
import pytest

from fdm_jax.tsgl import rtv
from fdm_jax.parity.harness import EXIT_OK, load_fixture, run_fixture
from fdm_jax.parity.runners.rtv import mean_abs_errors, run_tsmooth
from shared_paths import fixtures_dir, require

FIXTURE = fixtures_dir() / "tsgl" / "rtv_tsmooth.npz"


def test_rtv_fixture_passes_both_branches():
    """Every output of the fixture (both solver branches, the weights, pcg's iteration counts) within
    its max tolerance, and the float images within their mean tolerance."""
    status, rows, msg = run_fixture(require(FIXTURE))
    assert status == EXIT_OK, (msg, [(r.name, r.error, r.tolerance) for r in rows if not r.ok])
    fx = load_fixture(FIXTURE)
    assert {r.name for r in rows} == set(fx.outputs)
    assert all(r.error is not None for r in rows)


def test_pcg_branch_is_not_the_exact_solve():
    """The default (MATLAB's pcg branch) differs from the exact solve by grey levels, far beyond the
    fixture's tolerance: a port that took the wrong branch would fail."""
    fx = load_fixture(require(FIXTURE))
    img = fx.inputs["image_1"]
    default = rtv.tsmooth(img)
    exact = rtv.tsmooth(img, solver="exact")
    assert np.abs(default - fx.outputs["rtv_pcg_1"]).max() <= fx.tolerance("rtv_pcg_1")
    assert np.abs(exact - fx.outputs["rtv_pcg_1"]).max() > 10 * fx.tolerance("rtv_pcg_1")
    # the runner's mean check catches a swapped output
    out = run_tsmooth(fx, None)
    out["rtv_pcg_1"] = exact
    mean, tol = mean_abs_errors(fx, out)["rtv_pcg_1"]
    assert mean > tol


def test_uint8_input_is_im2double_and_bad_input_is_one_line():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rtv.tsmooth(u, max_iter=1), rtv.tsmooth(u / 255.0, max_iter=1))
    for bad in (np.zeros((8, 8)), np.zeros((8, 8, 4)), np.zeros((2, 8, 3))):
        with pytest.raises(ValueError, match="tsmooth: .*") as e:
            rtv.tsmooth(bad)
        assert "\n" not in str(e.value)
    black = np.zeros((10, 12, 3), np.uint8)  # b = 0: pcg returns 0 without iterating, no 0/0
    for solver in rtv.SOLVERS:
        np.testing.assert_array_equal(rtv.tsmooth(black, solver=solver), 0.0)
    with pytest.raises(ValueError, match="solver"):
        rtv.tsmooth(u, solver="cg")
    assert rtv.gaussian_taps(3.0).size == 15 and rtv.gaussian_taps(1.5).size == 9  # bitor(round(5 sigma), 1)
    np.testing.assert_allclose(rtv.gaussian_taps(0.75).sum(), 1.0, rtol=1e-15)


def test_cache_returns_the_same_array_without_recomputing(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    u = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    first = rtv.rtv_uint8(u, cache_dir=tmp_path)
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 1 and not list(tmp_path.rglob(".tmp-*"))  # written atomically, nothing left over
    calls = []
    monkeypatch.setattr(rtv, "tsmooth", lambda *a, **k: calls.append(1) or np.zeros(u.shape))
    again = rtv.rtv_uint8(u, cache_dir=tmp_path)
    assert calls == [] and again.dtype == np.uint8
    np.testing.assert_array_equal(again, first)
    # another parameter or another image is another entry, computed anew
    rtv.rtv_uint8(u, cache_dir=tmp_path, lam=0.02)
    assert calls == [1] and len(list(tmp_path.rglob("*.npy"))) == 2


def _small_images():
    """Two crops of real photographs (non-square, larger than the 32x32 training crop)."""
    fx = load_fixture(require(FIXTURE))
    return [fx.inputs["raw_image_0"][40:80, 30:78], fx.inputs["raw_image_1"][20:60, 50:98]]


def test_medfe_pipeline_uses_rtv_of_the_full_image_by_default(tmp_path):
    """configs/tsgl_medfe.py (the released variant) feeds the RTV image: tsmooth of the FULL image, then
    the example's own crop and flip, as the original crops its precomputed RTV file with the RGB image."""
    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.data.pipeline import TrainIterator
    from fdm_jax.data.preprocess import preprocess_from_config, preprocess_rng
    from fdm_jax.data.sources import ArrayImageSource
    from fdm_jax.tsgl.structure import normalize_image
    from fdm_jax.put_fdm.phases import example_fn
    from fdm_jax.tsgl.phase import _blur_texture

    config = load_config("configs/tsgl_medfe.py")
    assert config.data.texture_source == "rtv" and config.data.rtv.solver == "pcg"
    assert (config.data.rtv.lam, config.data.rtv.sigma, config.data.rtv.sharpness, config.data.rtv.max_iter) == \
        (rtv.LAMBDA, rtv.SIGMA, rtv.SHARPNESS, rtv.MAX_ITER) == (0.015, 3.0, 0.001, 3)
    config.data.rtv.cache_dir = str(tmp_path)
    pre = config.data.train_preprocess
    pre.size, pre.smallest_max_size = 32, 40  # no resize: a random 32x32 crop (+ flip) of the 40x48 images
    mg = config.masks.generator
    mg.provided_mask_only, mg.provided_mask_prob = False, 0.0
    images = _small_images()
    fn = example_fn(config)
    assert callable(getattr(fn, "full_image_fn", None))
    with TrainIterator(ArrayImageSource(images), mg, pre, size=32, seed=3, global_batch=2, num_workers=0,
                       example_fn=fn) as it:
        batch = next(it)
    assert "rtv" not in batch and batch["texture"].shape == (2, 32, 32, 3)
    # one cached RTV per full image, keyed by the full image. Only finished entries count: grain's
    # prefetch threads may still be writing the next batch's (same) images to a ".tmp-" file.
    rp = config.data.rtv
    keys = {rtv.cache_key(im, lam=rp.lam, sigma=rp.sigma, sharpness=rp.sharpness, max_iter=rp.max_iter,
                      solver=rp.solver) for im in images}
    assert {p.stem for p in tmp_path.rglob("*.npy") if not p.name.startswith(".tmp-")} == keys
    perm = it.permutation(0)
    for row in range(2):
        full = images[int(perm[row])]
        crop = preprocess_from_config(rtv.rtv_uint8(full), pre, preprocess_rng(3, 0, row))
        assert np.array_equal(crop, np.rint(crop))
        want = normalize_image(crop.astype(np.uint8))
        np.testing.assert_array_equal(batch["texture"][row], want)
        u8 = batch["image"][row].astype(np.uint8)
        blur = normalize_image(_blur_texture(u8, 2.0))
        assert np.abs(batch["texture"][row] - blur).max() > 0.05  # not the Gaussian stand-in
        # RTV of the crop would differ from the crop of the RTV (the full image's context)
        assert not np.array_equal(want, normalize_image(rtv.im2uint8(rtv.tsmooth(u8))))


def test_gaussian_fallback_is_named_and_unknown_source_is_an_error():
    from fdm_jax.cli.config_loading import load_config
    from fdm_jax.tsgl.phase import structure_example_fn

    tiny = load_config("configs/tsgl_medfe.py:tiny")
    assert tiny.data.texture_source == "gaussian"
    fn = structure_example_fn(tiny)
    assert not hasattr(fn, "full_image_fn")
    img = _small_images()[0][:32, :32].astype(np.float32)
    assert fn({"image": img})["texture"].shape == (32, 32, 3)
    tiny.data.texture_source = "l0"
    with pytest.raises(ValueError, match="data.texture_source"):
        structure_example_fn(tiny)
    rtv_cfg = load_config("configs/tsgl_medfe.py")
    with pytest.raises(ValueError, match="no 'rtv' image"):
        structure_example_fn(rtv_cfg)({"image": img})


def test_full_image_fn_must_keep_the_image_size():
    from fdm_jax.data.pipeline import TrainIterator
    from fdm_jax.data.sources import ArrayImageSource

    def fn(ex):
        return {}

    fn.full_image_fn = lambda image, name: {"rtv": image[:-1]}
    pre = {"size": 32, "smallest_max_size": 40, "random_crop": True, "horizon_flip": True}
    masks = {"provided_mask_only": False, "provided_mask_prob": 0.0}
    with TrainIterator(ArrayImageSource(_small_images()), masks, pre, size=32, seed=0, global_batch=1,
                       num_workers=0, example_fn=fn) as it:
        with pytest.raises(ValueError, match="full_image_fn: 'rtv' .* shape"):
            it.example(0, 0)


def test_medfe_inference_takes_the_configs_texture_source(monkeypatch):
    """inpaint --model tsgl_medfe feeds tsmooth's RTV image when the config says 'rtv' (the released
    config) and the Gaussian fallback for 'gaussian' (':tiny')."""
    import fdm_jax.tsgl.rtv as rtv_mod
    from fdm_jax.inference import generators as gi
    from fdm_jax.cli.config_loading import load_config

    seen = {}
    monkeypatch.setattr(gi, "_apply", lambda model, v, x, edge, t, gray, k: (seen.update(t=np.asarray(t)), x)[1])
    calls = []
    monkeypatch.setattr(rtv_mod, "rtv_uint8", lambda im, **kw: (calls.append(kw), np.full_like(im, 7))[1])
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    known = np.ones((256, 256), np.float32)
    known[64:128, 64:128] = 0
    for spec, expect_rtv in (("configs/tsgl_medfe.py", True), ("configs/tsgl_medfe.py:tiny", False)):
        calls.clear()
        gen = gi.Generator("tsgl_medfe", load_config(spec), None, None)
        gi._medfe(gen, image, known)
        assert bool(calls) == expect_rtv
        if expect_rtv:
            assert calls[0]["lam"] == 0.015 and calls[0]["sigma"] == 3.0 and calls[0]["solver"] == "pcg"
            np.testing.assert_allclose(seen["t"], 7 / 127.5 - 1.0, atol=1e-6)  # the RTV image, normalised
        else:
            assert not np.allclose(seen["t"], 7 / 127.5 - 1.0)
