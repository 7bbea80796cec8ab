"""Evaluation metrics (fdm_jax.metrics) against the ORIGINAL metric code (shared/fixtures/metrics),
plus the behaviour the fixtures do not pin down: streaming statistics, FID of a set against itself
and under noise, error handling, the folder CLI.

The Inception (299x299) and VGG forwards are heavy on a 2-core CPU: full-fixture and FID-on-images
tests are marked slow; the fast tier checks a subset of each network fixture.
"""

import io
import json
import pickle
import random
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from fdm_jax.metrics import diversity as div
from fdm_jax.metrics import fid, image_quality as iq, inception
from fdm_jax.metrics import lpips as lp
from fdm_jax.metrics.folders import main as cli_main
from fdm_jax.parity import EXIT_OK, run_fixture
from fdm_jax.parity.harness import find_runner, load_fixture, Weights
from fdm_jax.parity.runners.metrics import put_draw_seed
from fdm_jax.weights import cached_path
from shared_paths import require, shared_dir, fixtures_dir

METRICS = fixtures_dir() / "metrics"
PLACES = shared_dir() / "data" / "images" / "places2_256_freeform" / "images"


def _weights(name):
    return require(cached_path(name))


def _fixture(name):
    return load_fixture(require(METRICS / name))


def _assert_pass(status, rows, msg):
    bad = [f"{r.name}: err {r.error} > tol {r.tolerance} {r.note}" for r in rows if not r.ok]
    assert status == EXIT_OK, f"{msg}; {bad}"
    assert rows, "no outputs compared"


def _text_tolerance(value, ref) -> float:
    """The metrics fixtures state some tolerances in words ('exact', '1e-6 relative ...',
    '|d| <= 1e-6 ...'); the parity harness reads numbers only, so these are checked here."""
    if isinstance(value, (int, float)):
        return float(value)
    if value.strip().lower().startswith("exact"):
        return 0.0
    tol = float(re.search(r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", value).group())
    return tol * float(np.max(np.abs(ref))) if "relative" in value else tol


def _check_runner(fx):
    produced = find_runner(fx.meta["module"])(fx, Weights(fx))
    for name, ref in fx.outputs.items():
        tol = _text_tolerance(fx.meta.get("tolerances", {}).get(name, fx.meta["tolerance"]), ref)
        got = np.asarray(produced[name])
        assert got.shape == ref.shape, name
        err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
        assert err <= tol, f"{name}: max abs err {err} > {tol}"


def _real_images(n, size=None):
    from PIL import Image

    paths = sorted(require(PLACES).glob("*.jpg"))[:n]
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    if size:
        imgs = [im[:size, :size] for im in imgs]
    return np.stack(imgs), [p.stem for p in paths]


# ------------------------------------------------------------------------------------------------
# Fixtures of the original code
# ------------------------------------------------------------------------------------------------

def test_ssim_psnr_mae_fixture_passes():
    _assert_pass(*run_fixture(require(METRICS / "ssim_psnr_mae.npz")))


def test_frechet_distance_fixture():
    _check_runner(_fixture("frechet_distance.npz"))


def test_put_random_pairs_reproduce_the_recorded_draw():
    fx = _fixture("diversity.npz")
    ref = fx.outputs["put_random_pairs"]
    seed = put_draw_seed(fx)
    for k in range(ref.shape[0]):
        pairs = div.put_random_pairs(fx.inputs["samples"].shape[1], ref.shape[1], random.Random(seed + k))
        assert np.array_equal(np.asarray(pairs), ref[k])


def test_pair_draw_follows_the_fixture_seed_not_a_constant(tmp_path):
    """A diversity fixture made with another seed: the runner's seed comes from its meta, and the
    draw equals PUT's loop written out here (liuqk3/PUT:scripts/metrics/cal_lpips.py: `loops` times
    tuple(sorted(random.sample(indices, 2))), redrawn when already drawn)."""
    import json

    with np.load(require(METRICS / "diversity.npz")) as f:
        data = {k: f[k] for k in f.files}
    meta = json.loads(str(data["meta"]))
    n, loops = data["in/samples"].shape[1], data["out/put_random_pairs"].shape[1]
    new_seed = int(meta["put_draw_seed"]) + 12345
    expected = []
    for k in range(data["in/samples"].shape[0]):
        rng, pairs = random.Random(new_seed + k), []
        while len(pairs) < loops:
            pair = tuple(sorted(rng.sample(list(range(n)), 2)))
            if pair not in pairs:
                pairs.append(pair)
        expected.append(pairs)
    original = data["out/put_random_pairs"].copy()
    meta["put_draw_seed"] = new_seed
    data["meta"] = np.array(json.dumps(meta))
    data["out/put_random_pairs"] = np.asarray(expected, np.int64)
    np.savez(tmp_path / "diversity_other_seed.npz", **data)
    fx = load_fixture(tmp_path / "diversity_other_seed.npz")
    assert put_draw_seed(fx) == new_seed
    drawn = [div.put_random_pairs(n, loops, random.Random(put_draw_seed(fx) + k)) for k in range(len(expected))]
    assert np.array_equal(np.asarray(drawn), fx.outputs["put_random_pairs"])
    assert not np.array_equal(fx.outputs["put_random_pairs"], original)  # another seed, another draw


def test_lpips_first_pairs_match_fixture():
    fx = _fixture("lpips.npz")
    a, b = fx.inputs["img0"][:2], fx.inputs["img1"][:2]
    for net, weight in (("vgg", "lpips_vgg16"), ("alex", "lpips_alexnet")):
        params = lp.load_lpips(net, _weights(weight))
        layers, spatial = (np.asarray(v) for v in lp.lpips_layers_both(params, a, b))
        tol = fx.meta["tolerances"]
        assert np.abs(layers - fx.outputs[f"lpips_{net}_layers"][:2]).max() <= tol[f"lpips_{net}_layers"]
        assert np.abs(layers.sum(1) - fx.outputs[f"lpips_{net}"][:2]).max() <= tol[f"lpips_{net}"]
        assert np.abs(spatial.sum(1) - fx.outputs[f"lpips_{net}_spatial_mean"][:2]).max() <= \
            tol[f"lpips_{net}_spatial_mean"]
        # the public one-number API agrees with the per-layer sum
        np.testing.assert_allclose(np.asarray(lp.lpips(params, a, b)), layers.sum(1), rtol=0, atol=1e-7)


def test_fid_network_inputs_match_both_pipelines():
    fx = _fixture("fid_inception_features.npz")
    tol = fx.meta["tolerances"]
    for i in (0, 6, 7):
        x = np.asarray(fid.preprocess(fx.inputs[f"image_{i}"][None], "nv")).transpose(0, 3, 1, 2)
        assert np.abs(x - fx.inputs[f"net_input_nv_{i}"]).max() <= tol["net_input_nv"]
    x = np.asarray(fid.preprocess(fx.inputs["image_6"][None], "pytorch_fid")).transpose(0, 3, 1, 2)
    assert np.abs(x - fx.inputs["net_input_pytorch_fid_6"]).max() <= tol["net_input_pytorch_fid"]


def test_fid_inception_features_of_one_image():
    fx = _fixture("fid_inception_features.npz")
    weights = _weights("fid_inception")
    for pipeline, key in (("pytorch_fid", "features_pytorch_fid"), ("nv", "features_nv")):
        feats = fid.InceptionFeatures(pipeline, batch_size=1, weights=weights)(fx.inputs["image_0"][None])
        assert feats.shape == (1, 2048)
        assert np.abs(feats[0] - fx.outputs[key][0]).max() <= fx.meta["tolerances"][key]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lpips.npz", "fid_inception_features.npz"])
def test_network_fixture_passes(name):
    _weights("fid_inception"), _weights("lpips_vgg16"), _weights("lpips_alexnet")
    _assert_pass(*run_fixture(require(METRICS / name)))


@pytest.mark.slow
def test_diversity_fixture():
    _weights("lpips_vgg16"), _weights("lpips_alexnet")
    _check_runner(_fixture("diversity.npz"))


# ------------------------------------------------------------------------------------------------
# FID: statistics, Fréchet distance, behaviour on real images
# ------------------------------------------------------------------------------------------------

def test_streaming_statistics_equal_numpy_cov():
    rng = np.random.default_rng(0)
    feats = rng.normal(3.0, 2.0, size=(37, 16)) * rng.uniform(0.1, 5, size=16)
    ref = fid.statistics(feats)
    for splits in ([37], [1] * 37, [5, 1, 20, 11]):
        s = fid.FIDStats(dim=16)
        start = 0
        for n in splits:
            s.update_features(feats[start:start + n])
            start += n
        got = s.result()
        assert got.count == 37
        np.testing.assert_allclose(got.mu, np.mean(feats, axis=0), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(got.sigma, np.cov(feats, rowvar=False), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.sigma, ref.sigma, rtol=1e-12, atol=1e-12)


def test_statistics_errors_and_roundtrip(tmp_path):
    s = fid.FIDStats(dim=4)
    s.update_features(np.ones((1, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        s.result()
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        s.update_features(np.ones((3, 5)))
    s.update_features(np.arange(8.0).reshape(2, 4))
    st = s.result()
    st.save(tmp_path / "stats.npz")
    back = fid.Statistics.load(tmp_path / "stats.npz")
    assert back.count == 3 and np.array_equal(back.mu, st.mu) and np.array_equal(back.sigma, st.sigma)


def test_frechet_eigvals_method_agrees_with_sqrtm():
    fx = _fixture("frechet_distance.npz")
    for case in ("regular", "near_singular"):
        s1 = fid.statistics(fx.inputs[f"features1_{case}"])
        s2 = fid.statistics(fx.inputs[f"features2_{case}"])
        d = fid.frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma, method="eigvals").distance
        assert abs(d - fx.outputs[f"distance_{case}"]) <= 1e-6 * abs(fx.outputs[f"distance_{case}"])


def test_frechet_imaginary_check_and_eps_fallback(monkeypatch):
    eye = np.eye(3)
    # sqrtm(-I) = iI: a large imaginary diagonal is refused, as in pytorch-fid
    with pytest.raises(ValueError, match="imaginary component"):
        fid.frechet_distance(np.zeros(3), eye, np.zeros(3), -eye)
    # a non-finite sqrtm retries with eps on the diagonals
    real_sqrtm, calls = fid._sqrtm, []

    def flaky(a):
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fid, "_sqrtm", flaky)
    with pytest.warns(UserWarning, match="singular product"):
        r = fid.frechet_distance(np.zeros(3), 2 * eye, np.ones(3), 2 * eye, eps=1e-2)
    assert r.eps_fallback_used and len(calls) == 2
    np.testing.assert_allclose(calls[1], (2 + 1e-2) ** 2 * eye)
    # |mu1 - mu2|^2 = 3, tr = 6 each, tr sqrt((2 + eps)^2 I) = 3 (2 + eps): only the trace term sees eps
    assert r.distance == pytest.approx(3 + 6 + 6 - 2 * 3 * 2.01, abs=1e-12)
    with pytest.raises(ValueError, match="do not match"):
        fid.frechet_distance(np.zeros(3), eye, np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="unknown method"):
        fid.frechet_distance(np.zeros(3), eye, np.zeros(3), eye, method="svd")


@pytest.fixture(scope="module")
def real_features():
    """Features of 6 real images and of their noisy copies (sigma 8 and 32), computed once."""
    extractor = fid.InceptionFeatures(batch_size=6, weights=_weights("fid_inception"))
    images, _ = _real_images(6)
    rng = np.random.default_rng(0)
    out = {0: extractor(images)}
    for sigma in (8, 32):
        noisy = np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).round().astype(np.uint8)
        out[sigma] = extractor(noisy)
    return out


@pytest.mark.slow
def test_fid_grows_monotonically_with_noise(real_features):
    real = fid.statistics(real_features[0])
    d = [fid.fid_score(real, fid.statistics(real_features[s])) for s in (0, 8, 32)]
    assert abs(d[0]) < 1e-3
    assert d[0] < d[1] < d[2], d


@pytest.mark.slow
def test_fid_of_a_folder_against_itself_is_zero(tmp_path, capsys):
    from PIL import Image

    images, names = _real_images(6)
    for im, n in zip(images, names):
        Image.fromarray(im).save(tmp_path / f"{n}.png")
    out = tmp_path / "fid.json"
    assert cli_main(["--real", str(tmp_path), "--fake", str(tmp_path), "--metrics", "fid",
                     "--batch-size", "3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert abs(result["metrics"]["fid"]) < 1e-3
    assert result["fid_count"] == {"real": 6, "fake": 6}


def test_preprocess_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        fid.preprocess(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="unknown FID pipeline"):
        fid.preprocess(np.zeros((1, 8, 8, 3), np.uint8), "tf")
    with pytest.raises(TypeError, match="uint8 or floating"):
        fid.preprocess(np.zeros((1, 8, 8, 3), np.int32))
    extractor = fid.InceptionFeatures(weights=_weights("fid_inception"))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        extractor(np.full((1, 8, 8, 3), 255.0, np.float32))


# ------------------------------------------------------------------------------------------------
# Weight readers
# ------------------------------------------------------------------------------------------------

def test_torchscript_archive_layers_match_the_architecture():
    layers = inception.flatten_script_module(inception.read_torchscript(_weights("fid_inception")))
    table = inception.conv_table()
    assert set(layers) == {v[0] for v in table.values()}
    ts, out, k, s, p = table[("Mixed_6b", "branch7x7_2")]
    layer = layers[ts]
    assert layer["tensors"]["weight"].shape == (out, 128, *k)
    assert list(layer["attrs"]["padding"]) == list(p) and layer["attrs"]["stride"] == s


def test_torchscript_converter_is_strict(monkeypatch):
    table = inception.conv_table()
    key = ("Mixed_7a", "branch3x3_2")
    ts, out, k, s, p = table[key]
    monkeypatch.setattr(inception, "conv_table", lambda: {**table, key: (ts, out, k, 1, p)})
    with pytest.raises(inception.ConversionError, match="mixed_8.tower.conv_1 has stride"):
        inception.convert_torchscript(_weights("fid_inception"))


def test_torchscript_reader_refuses_foreign_globals(tmp_path):
    evil = tmp_path / "evil.pt"
    payload = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("m/data.pkl", payload)
        z.writestr("m/code/__torch__/m.py", "")
    with pytest.raises(ValueError, match="os.system"):
        inception.read_torchscript(evil)
    (tmp_path / "plain.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a TorchScript archive"):
        inception.read_torchscript(tmp_path / "plain.pt")


def test_lpips_reader_allows_numpy_only(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"x": io.BytesIO}))
    with pytest.raises(lp.LPIPSError, match="not allowed"):
        lp.read_lpips_ckpt(bad)
    good = lp.read_lpips_ckpt(_weights("lpips_alexnet"))
    assert good["AlexNet_0"]["Conv_0"]["kernel"].shape == (11, 11, 3, 64)
    del good["NetLinLayer_4"]
    with pytest.raises(lp.LPIPSError, match="missing.*NetLinLayer_4"):
        lp.convert_lpips_ckpt(good, "alex")
    with pytest.raises(lp.LPIPSError, match="unknown LPIPS network"):
        lp.load_lpips("squeeze")


# ------------------------------------------------------------------------------------------------
# Pixel metrics and diversity
# ------------------------------------------------------------------------------------------------

def test_pixel_metrics_on_identical_and_bad_inputs():
    images, _ = _real_images(2, size=64)
    assert iq.ssim_put(images, images).tolist() == pytest.approx([1.0, 1.0])
    assert iq.ssim_lama(images[0], images[0]) == pytest.approx(1.0)
    assert iq.ssim_gaussian(images[0], images[0]) == pytest.approx(1.0)
    assert iq.psnr(images[0], images[0]) == float("inf") and iq.psnr_put(images[0], images[0]) == float("inf")
    assert iq.mae(images, images).tolist() == [0.0, 0.0] and iq.l1_put(images[0], images[0]) == 0.0
    with pytest.raises(iq.ImageQualityError, match="different shapes"):
        iq.psnr(images[0], images[1, :32])
    with pytest.raises(iq.ImageQualityError, match="uint8"):
        iq.ssim_put(images.astype(np.float32), images.astype(np.float32))
    with pytest.raises(iq.ImageQualityError, match="smaller than the 51x51 window"):
        iq.ssim_put(images[:, :40, :40], images[:, :40, :40])


def test_generic_ssim_and_gray_match_scikit_image_and_opencv():
    import cv2
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    for kw in ({"win_size": 7}, {"win_size": 15, "use_sample_covariance": False},
               {"gaussian_weights": True, "sigma": 1.0}):
        ref = structural_similarity(a, b, channel_axis=2, data_range=255, **kw)
        got = iq.ssim_skimage(a, b, data_range=255, channel_axis=True, **kw)
        assert got == pytest.approx(ref, abs=1e-12)
    colours = rng.integers(0, 256, (1, 4096, 3), dtype=np.uint8)
    assert np.array_equal(iq.rgb_to_gray(colours), cv2.cvtColor(colours, cv2.COLOR_RGB2GRAY))


def test_diversity_is_zero_for_identical_samples_and_symmetric():
    params = lp.load_lpips("alex", _weights("lpips_alexnet"))
    images, _ = _real_images(3, size=64)
    same = np.stack([np.repeat(images[:1], 3, axis=0)])  # (1, 3, 64, 64, 3): three identical samples
    assert div.diversity(params, same).score < 1e-12  # 0 up to float rounding of two network passes
    res = div.diversity(params, images[None])  # one input, three different samples
    assert res.pairs.shape == (1, 3, 3) and np.array_equal(res.pairs[0], res.pairs[0].T)
    assert np.all(np.diag(res.pairs[0]) == 0) and res.score > 0
    assert res.score == pytest.approx(res.pairs[0][np.triu_indices(3, 1)].astype(np.float64).mean())
    with pytest.raises(lp.LPIPSError, match="at least 2 samples"):
        div.diversity(params, images[:1][None])


# ------------------------------------------------------------------------------------------------
# Folder CLI
# ------------------------------------------------------------------------------------------------

@pytest.fixture()
def folders(tmp_path):
    from PIL import Image

    images, names = _real_images(3, size=64)
    rng = np.random.default_rng(2)
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir(), fake.mkdir()
    fakes = np.clip(images + rng.normal(0, 12, images.shape), 0, 255).round().astype(np.uint8)
    for im, f, n in zip(images, fakes, names):
        Image.fromarray(im).save(real / f"{n}.png")
        Image.fromarray(f).save(fake / f"{n}.png")
    return real, fake, images, fakes


def test_cli_pixel_metrics_match_the_functions(folders, tmp_path):
    real, fake, images, fakes = folders
    out = tmp_path / "m.json"
    assert cli_main(["--real", str(real), "--fake", str(fake), "--metrics", "ssim,psnr,mae,mae_put",
                     "--batch-size", "2", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["count"] == 3
    assert res["metrics"]["ssim"] == pytest.approx(np.mean(iq.ssim_put(images, fakes)), abs=1e-12)
    assert res["metrics"]["psnr"] == pytest.approx(np.mean(iq.psnr_put(images, fakes)), abs=1e-12)
    assert res["metrics"]["mae"] == pytest.approx(np.mean(iq.mae(images, fakes)), abs=1e-12)
    assert res["metrics"]["mae_put"] == pytest.approx(np.mean(iq.mae_put(images, fakes)), abs=1e-12)


@pytest.mark.slow
def test_cli_all_default_metrics(folders, tmp_path):
    real, fake, images, fakes = folders
    out = tmp_path / "m.json"
    assert cli_main(["--real", str(real), "--fake", str(fake), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["metrics"]) == {"fid", "lpips", "ssim", "psnr", "mae"}
    params = lp.load_lpips("vgg")
    assert res["metrics"]["lpips"] == pytest.approx(float(np.mean(np.asarray(lp.lpips(params, images, fakes)))),
                                                    abs=1e-6)
    assert res["metrics"]["fid"] > 1.0


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fdm_jax.metrics", *map(str, args)], capture_output=True, text=True)


def test_cli_errors_are_one_line(folders, tmp_path, capsys):
    real, fake, _, _ = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _cli("--real", empty, "--fake", fake, "--metrics", "mae")
    assert r.returncode == 2 and "no images" in r.stderr and "Traceback" not in r.stderr

    def error_of(*args):
        assert cli_main(list(map(str, args))) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]  # after any progress bar
        assert err.startswith("error: ")
        return err

    unpaired = tmp_path / "unpaired"
    unpaired.mkdir()
    first = sorted(fake.iterdir())[0]
    for p in sorted(fake.iterdir())[1:]:
        (unpaired / p.name).write_bytes(p.read_bytes())
    assert f"unpaired images: 1 in {real} only (e.g. {first.stem})" in error_of(
        "--real", real, "--fake", unpaired, "--metrics", "mae")

    from PIL import Image

    small = tmp_path / "small"
    small.mkdir()
    for p in sorted(fake.iterdir()):
        im = Image.open(p)
        (im.resize((32, 32)) if p == first else im).save(small / p.name)
    assert "size mismatch" in error_of("--real", real, "--fake", small, "--metrics", "psnr")
    assert "unknown metric(s) fidd" in error_of("--real", real, "--fake", fake, "--metrics", "fidd")
    assert "no such folder" in error_of("--real", tmp_path / "nope", "--fake", fake)
