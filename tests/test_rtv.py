"""RTV structure extraction (fdm_jax.data.rtv, StructureFlow tsmooth.m) against the original run in Octave
(shared/fixtures/tsgl/rtv_tsmooth.npz), its on-disk cache, and its place as TSGL-MEDFE's texture input."""

from __future__ import annotations

import numpy as np
import pytest

from fdm_jax.data import rtv
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
