"""The original's training masks (fdm_jax.data.masks): bit parity with the ORIGINAL code's fixture
(shared/fixtures/put_fdm/masks_put.npz), the project configs driving the same generators, and the
properties the training pipeline relies on (pure function of (seed, epoch, index), draw order)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fdm_jax.cli.config_loading import load_config
from fdm_jax.data.masks import (MaskRNG, ProvidedMasks, image_list_mask, mask_seed, provided_dataset_mask,
                                stroke_mask, training_masks)
from fdm_jax.parity import EXIT_OK, run_fixture
from shared_paths import fixtures_dir, require, shared_dir

REPO = Path(__file__).resolve().parents[1]
FIXTURE = fixtures_dir() / "put_fdm" / "masks_put.npz"
PCONV = shared_dir() / "data" / "masks" / "pconv_test"
PARIS = str(REPO / "configs" / "paris.py")


def _fixture():
    with np.load(require(FIXTURE)) as f:
        return json.loads(str(f["meta"])), {k[4:]: f[k] for k in f.files if k.startswith("out/")}


def _paris_stroke_params():
    return load_config(PARIS).masks.sampler.stroken_mask_params.to_dict()


# ---------------------------------------------------------------------------------------------
# Parity with the original code
# ---------------------------------------------------------------------------------------------
def test_fixture_passes_through_harness():
    require(PCONV)
    status, rows, msg = run_fixture(require(FIXTURE))
    assert status == EXIT_OK, f"{msg}; {[(r.name, r.error, r.note) for r in rows if not r.ok]}"
    assert {r.name for r in rows} == {"stroke_masks", "dataset_masks", "dataset_provided_index",
                                      "provided_masks", "provided_index"}


def test_project_config_reproduces_the_fixture():
    """configs/paris.py `masks.sampler` / `masks.fdm` drive the generators to the recorded masks."""
    meta, out = _fixture()
    cfg = load_config(PARIS)
    kw = meta["kwargs"]
    for i, s in enumerate(kw["stroke_seeds"]):
        m = stroke_mask(MaskRNG.from_seed(s), kw["size"], **cfg.masks.sampler.stroken_mask_params.to_dict())
        np.testing.assert_array_equal(m, out["stroke_masks"][i, 0])
    provided = ProvidedMasks.from_config(require(PCONV), cfg.masks.sampler)
    for i, s in enumerate(kw["dataset_seeds"]):
        m, idx = image_list_mask(MaskRNG.from_seed(s), kw["dataset_size"], cfg.masks.sampler, provided)
        np.testing.assert_array_equal(m[:, :, 0].astype(bool), out["dataset_masks"][i, 0])
        assert idx == out["dataset_provided_index"][i]
    provided = ProvidedMasks.from_config(PCONV, cfg.masks.fdm)
    for i, s in enumerate(kw["provided_seeds"]):
        m, idx = provided_dataset_mask(MaskRNG.from_seed(s), kw["size"], provided)
        np.testing.assert_array_equal(m[:, :, 0], out["provided_masks"][i, 0])
        assert idx == out["provided_index"][i]
        # The file the original drew (named in meta.notes) is the one loaded.
    names = [provided.name(int(i)) for i in out["provided_index"]]
    assert all(f"'{n}'" in " ".join(meta["notes"]) for n in names), names


# ---------------------------------------------------------------------------------------------
# Stroke masks
# ---------------------------------------------------------------------------------------------
def test_stroke_mask_properties():
    params = _paris_stroke_params()
    lo, hi = params["keep_ratio"]
    for s in range(6):
        m = stroke_mask(MaskRNG.from_seed(s), (48, 64), **params)
        assert m.shape == (48, 64) and m.dtype == np.float32
        assert set(np.unique(m).tolist()) <= {0.0, 1.0}
        target = random.Random(s).uniform(lo, hi)  # the first draw of the Python stream
        assert m.mean() >= target  # strokes are added until the known fraction reaches it; filling only adds
        np.testing.assert_array_equal(m, stroke_mask(MaskRNG.from_seed(s), (48, 64), **params))
    assert not np.array_equal(stroke_mask(MaskRNG.from_seed(0), 64, **params),
                              stroke_mask(MaskRNG.from_seed(1), 64, **params))


def test_stroke_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="keep_ratio"):
        stroke_mask(MaskRNG.from_seed(0), 32, keep_ratio=(0.6, 0.5))
    with pytest.raises(ValueError, match="mask size"):
        stroke_mask(MaskRNG.from_seed(0), (32, 0))
    with pytest.raises(ValueError, match="mask seed"):
        MaskRNG.from_seed(-1)


# ---------------------------------------------------------------------------------------------
# Provided masks
# ---------------------------------------------------------------------------------------------
def _write_masks(folder: Path, n: int, size: int = 8) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    raws = []
    for i in range(n):
        raw = np.zeros((size, size), np.uint8)
        raw[: i + 1, :] = 255  # 255 = hole
        Image.fromarray(raw).save(folder / f"{i:05d}.png")
        raws.append(raw)
    (folder / "README.txt").write_text("not a mask")
    return raws


def test_provided_masks_polarity_resize_and_range(tmp_path):
    raws = _write_masks(tmp_path / "m", 5)
    pm = ProvidedMasks(tmp_path / "m", file_range=(1, 4))
    assert len(pm) == 3 and pm.name(0) == "00001.png" and pm.num_files == 5
    full = pm.load(0, 8)
    np.testing.assert_array_equal(full, 1 - raws[1] / 255.0)  # 255 = hole -> 0 = missing
    half = pm.load(2, (4, 2))  # nearest: cv2 takes every other row/column at an exact 2x/4x downscale
    assert half.shape == (4, 2) and half.dtype == np.float32
    np.testing.assert_array_equal(half, 1 - raws[3][::2, ::4] / 255.0)


def test_provided_masks_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .png mask files"):
        ProvidedMasks(tmp_path / "empty")
    _write_masks(tmp_path / "m", 3)
    with pytest.raises(ValueError, match=r"file range \[4000:12000\] is empty"):
        ProvidedMasks(tmp_path / "m", (4000, 12000))
    with pytest.raises(FileNotFoundError, match="no such directory"):
        ProvidedMasks(tmp_path / "absent")
    with pytest.raises(IndexError):
        ProvidedMasks(tmp_path / "m").load(3, 8)


# ---------------------------------------------------------------------------------------------
# training_masks: the pipeline's entry point
# ---------------------------------------------------------------------------------------------
def _cfg(**kw):
    base = dict(provided_mask_only=False, provided_mask_prob=0.0, mask_prob=1.0, zero_mask=0.0,
                mask_low_to_high=0.0, mask_low_size=(4, 4), erase_image_with_mask=-1.0,
                stroken_mask_params=_paris_stroke_params())
    base.update(kw)
    return base


def test_mask_seed_is_a_pure_function_of_the_triple():
    assert mask_seed(3, 1, 7) == mask_seed(3, 1, 7)
    seeds = {mask_seed(s, e, i) for s in range(3) for e in range(3) for i in range(20)}
    assert len(seeds) == 180  # distinct triples give distinct seeds
    with pytest.raises(ValueError, match="epoch"):
        mask_seed(0, -1, 0)


def test_training_masks_deterministic_and_varying():
    cfg = _cfg(erase_image_with_mask=0.5)
    a = training_masks(cfg, seed=1, epoch=2, index=3, size=64, provided=None)
    b = training_masks(cfg, seed=1, epoch=2, index=3, size=64, provided=None)
    for k in ("mask", "erase_mask"):
        assert a[k].shape == (64, 64, 1) and a[k].dtype == np.float32
        np.testing.assert_array_equal(a[k], b[k])
    # Different epochs, indices and seeds give different masks.
    masks = [training_masks(cfg, seed=s, epoch=e, index=i, size=64, provided=None)["mask"].tobytes()
             for s, e, i in ((1, 2, 3), (1, 3, 3), (1, 2, 4), (2, 2, 3), (1, 0, 0), (1, 0, 1))]
    assert len(set(masks)) == len(masks)


def test_training_masks_follow_the_original_draw_order():
    """__getitem__ draws random() for erasing even when it cannot fire; then the inpainting mask."""
    never, sometimes = _cfg(erase_image_with_mask=-1.0), _cfg(erase_image_with_mask=0.3)
    fired = 0
    for i in range(12):
        a = training_masks(never, seed=0, epoch=0, index=i, size=32, provided=None)
        b = training_masks(sometimes, seed=0, epoch=0, index=i, size=32, provided=None)
        np.testing.assert_array_equal(a["erase_mask"], 1.0)
        rngs = MaskRNG.from_seed(mask_seed(0, 0, i))
        if rngs.py.random() < 0.3:
            fired += 1
            assert not np.array_equal(b["erase_mask"], 1.0)
        else:
            np.testing.assert_array_equal(a["mask"], b["mask"])
            np.testing.assert_array_equal(b["erase_mask"], 1.0)
    assert 0 < fired < 12


def test_zero_mask_and_low_to_high():
    z = training_masks(_cfg(zero_mask=1.0), seed=0, epoch=0, index=0, size=32, provided=None)
    np.testing.assert_array_equal(z["mask"], 0.0)
    for size in (32, (32, 48)):
        m = training_masks(_cfg(mask_low_to_high=1.0, mask_low_size=(4, 4)), seed=0, epoch=0, index=1,
                           size=size, provided=None)["mask"][:, :, 0]
        h, w = m.shape
        assert (h, w) == ((32, 32) if size == 32 else size)
        bh, bw = h // 4, w // 4  # constant on the blocks of a 4x4 grid
        blocks = m.reshape(4, bh, 4, bw)
        assert (blocks == blocks[:, :1, :, :1]).all()


def test_provided_only_and_probability(tmp_path):
    raws = _write_masks(tmp_path / "m", 4, size=16)
    pm = ProvidedMasks(tmp_path / "m")
    expected = {tuple((1 - r / 255.0).astype(np.float32).ravel()) for r in raws}
    for i in range(5):
        out = training_masks(_cfg(provided_mask_only=True), seed=0, epoch=0, index=i, size=16, provided=pm)
        assert tuple(out["mask"].ravel()) in expected
        np.testing.assert_array_equal(out["erase_mask"], 1.0)
        out = training_masks(_cfg(provided_mask_prob=1.0, erase_image_with_mask=1.0), seed=0, epoch=0, index=i,
                             size=16, provided=pm)
        assert tuple(out["mask"].ravel()) in expected and tuple(out["erase_mask"].ravel()) in expected


def test_paris_phase_configs_run():
    cfg = load_config(PARIS + ":tiny")
    provided = ProvidedMasks.from_config(require(PCONV), cfg.masks.codec)
    for phase in ("codec", "sampler", "fdm", "fdm_tuning"):
        out = training_masks(cfg.masks[phase], seed=0, epoch=0, index=0, size=cfg.image_size, provided=provided)
        assert out["mask"].shape == (cfg.image_size, cfg.image_size, 1)
        assert set(np.unique(out["mask"]).tolist()) <= {0.0, 1.0}
