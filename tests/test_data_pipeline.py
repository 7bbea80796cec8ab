"""Preprocessing, image sources, the deterministic resumable TrainIterator and shard_batch
(fdm_jax.data.{preprocess,sources,pipeline}). Tiny sizes; the 8 fake CPU devices of conftest.py."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P
from PIL import Image

from fdm_jax.cli.config_loading import load_config
from fdm_jax.data.masks import ProvidedMasks
from fdm_jax.data.pipeline import TrainIterator, epoch_permutation, shard_batch
from fdm_jax.data.preprocess import preprocess_image, smallest_max_size_shape, to_rgb_uint8
from fdm_jax.data.sources import (DEMO_IMAGES, ArrayImageSource, CorruptImageError, DemoImageSource,
                                  FolderImageSource, ImageSource)
from shared_paths import require, shared_dir

REPO = Path(__file__).resolve().parents[1]
IMAGENET = shared_dir() / "data" / "images" / "imagenet_sample"
PCONV = shared_dir() / "data" / "masks" / "pconv_test"
SIZE = 16
PRE = {"size": SIZE, "smallest_max_size": SIZE, "random_crop": True, "horizon_flip": True}
STROKES = {"maxVertex": 10, "minVertex": 5, "maxLength": 100, "maxBrushWidth": 30, "minBrushWidth": 10,
           "keep_ratio": (0.0, 0.5), "min_area": 64}
MASKS = {"provided_mask_only": False, "provided_mask_prob": 0.0, "mask_prob": 1.0, "zero_mask": 0.2,
         "mask_low_to_high": 0.3, "mask_low_size": (4, 4), "erase_image_with_mask": 0.3,
         "stroken_mask_params": STROKES}


def _images(n, seed=0, shape=(20, 26)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(n)]


def _iterator(source, **kw):
    args = dict(size=SIZE, seed=3, global_batch=4, num_workers=0)
    args.update(kw)
    return TrainIterator(source, args.pop("masks", MASKS), args.pop("pre", PRE), **args)


def _equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---------------------------------------------------------------------------------------------
# preprocess
# ---------------------------------------------------------------------------------------------
def test_smallest_max_size_rounding():
    assert smallest_max_size_shape(537, 936, 256) == (256, 446)  # a 936 x 537 Paris StreetView image
    # albumentations 0.5.2 py3round: halves go to the even neighbour (2.5 -> 2, 3.5 -> 4).
    assert smallest_max_size_shape(4, 5, 2) == (2, 2)
    assert smallest_max_size_shape(4, 7, 2) == (2, 4)
    assert smallest_max_size_shape(30, 40, 30) == (30, 40)


def test_center_crop_and_resize():
    img = _images(1, shape=(30, 41))[0]
    out = preprocess_image(img, size=30)  # no resize (scale 1); offset floor((41 - 30) / 2) = 5
    assert out.dtype == np.float32 and out.shape == (30, 30, 3)
    np.testing.assert_array_equal(out, img[:, 5:35].astype(np.float32))
    import cv2
    out = preprocess_image(img, size=12, smallest_max_size=15)  # -> 15 x round(41 / 2) = 20 (half-even)
    ref = cv2.resize(img.astype(np.float32), (20, 15), interpolation=cv2.INTER_LINEAR)[1:13, 4:16]
    np.testing.assert_array_equal(out, ref)
    assert not np.array_equal(out, np.round(out))  # bilinear values are not re-quantized


def test_random_crop_and_flip_use_the_given_generator():
    img = _images(1, shape=(SIZE, 40))[0].astype(np.float32)
    seen_flip = seen_plain = 0
    lefts = set()
    for s in range(24):
        out = preprocess_image(img.astype(np.uint8), size=SIZE, random_crop=True, horizon_flip=True,
                               rng=np.random.default_rng(s))
        again = preprocess_image(img.astype(np.uint8), size=SIZE, random_crop=True, horizon_flip=True,
                                 rng=np.random.default_rng(s))
        np.testing.assert_array_equal(out, again)
        u = np.random.default_rng(s).random(3)  # draw order: top, left, flip
        left = int((40 - SIZE) * u[1])
        crop = img[:, left:left + SIZE]
        np.testing.assert_array_equal(out, crop[:, ::-1] if u[2] < 0.5 else crop)
        seen_flip += u[2] < 0.5
        seen_plain += u[2] >= 0.5
        lefts.add(left)
    assert seen_flip and seen_plain and len(lefts) > 5
    with pytest.raises(ValueError, match="Generator"):
        preprocess_image(img.astype(np.uint8), size=SIZE, random_crop=True)


def test_rgb_conversion_and_errors():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(to_rgb_uint8(gray), np.repeat(gray[:, :, None], 3, 2))
    rgba = np.dstack([np.full((3, 4), v, np.uint8) for v in (1, 2, 3, 9)])
    pil = np.array(Image.fromarray(rgba, "RGBA").convert("RGB"))
    np.testing.assert_array_equal(to_rgb_uint8(rgba), pil)
    with pytest.raises(ValueError, match="uint8"):
        to_rgb_uint8(gray.astype(np.float32))
    with pytest.raises(ValueError, match="smaller than the crop"):
        preprocess_image(_images(1)[0], size=20, smallest_max_size=10)


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------
def _write_folder(folder: Path, n: int, broken: tuple[str, ...] = ()) -> list[np.ndarray]:
    imgs = _images(n, seed=1)
    for i, im in enumerate(imgs):
        sub = folder / ("b" if i % 2 else "a")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(sub / f"{i:02d}.png")
    for name in broken:
        (folder / name).write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (folder / "notes.txt").write_text("ignored")
    return imgs


def test_folder_source_sorted_recursive_and_list_file(tmp_path):
    imgs = _write_folder(tmp_path / "d", 5, broken=("zz_broken.jpg",))
    src = FolderImageSource(tmp_path / "d", "png,jpg")
    assert isinstance(src, ImageSource)
    assert [src.name(i) for i in range(len(src))] == ["a/00.png", "a/02.png", "a/04.png", "b/01.png",
                                                      "b/03.png", "zz_broken.jpg"]
    np.testing.assert_array_equal(src.load(3), imgs[1])
    with pytest.raises(CorruptImageError, match="zz_broken.jpg") as e:
        src.load(5)
    assert e.value.name.endswith("zz_broken.jpg")
    (tmp_path / "list.txt").write_text("b/03.png\n\na/00.png\n")
    listed = FolderImageSource(tmp_path / "d", list_file=tmp_path / "list.txt")
    assert len(listed) == 2 and listed.name(0) == "b/03.png"
    np.testing.assert_array_equal(listed.load(1), imgs[0])
    with pytest.raises(ValueError, match="no images found"):
        FolderImageSource(tmp_path / "d", "bmp")
    (tmp_path / "bad.txt").write_text("nope.png\n")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        FolderImageSource(tmp_path / "d", list_file=tmp_path / "bad.txt")


def test_real_folder_source():
    src = FolderImageSource(require(IMAGENET), "jpg")
    assert len(src) == len(list(IMAGENET.glob("*.jpg"))) > 0
    img = src.load(0)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 256


def test_demo_source_loads_real_images():
    src = DemoImageSource()
    assert len(src) == len(DEMO_IMAGES)
    shapes = {}
    for i in range(len(src)):
        img = src.load(i)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.std() > 10
        shapes[src.name(i)] = img.shape
    assert shapes["astronaut"] == (512, 512, 3) and shapes["chelsea"] == (300, 451, 3)
    gray = src.load(src.names.index("camera"))
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    with pytest.raises(ValueError, match="unknown image"):
        DemoImageSource(["lena"])


def test_array_source():
    src = ArrayImageSource([np.zeros((4, 5), np.uint8), np.ones((4, 5, 3), np.uint8)])
    assert src.load(0).shape == (4, 5, 3) and src.name(1) == "array[1]"
    with pytest.raises(IndexError):
        src.load(2)


# ---------------------------------------------------------------------------------------------
# TrainIterator
# ---------------------------------------------------------------------------------------------
def test_iterator_batches_are_deterministic_pure_functions():
    src = ArrayImageSource(_images(7))
    it = _iterator(src)
    assert it.steps_per_epoch == 1
    batches = [next(it) for _ in range(3)]  # 3 epochs (7 // 4 = 1 step each)
    b = batches[0]
    assert b["image"].shape == (4, SIZE, SIZE, 3) and b["image"].dtype == np.float32
    assert b["mask"].shape == b["erase_mask"].shape == (4, SIZE, SIZE, 1)
    for s, batch in enumerate(batches):  # row i of step s is example(epoch, position)
        for i in range(4):
            ex = it.example(s, i)
            for k in batch:
                np.testing.assert_array_equal(batch[k][i], ex[k])
    # Same seed -> same batches, whatever the number of grain threads or worker processes; another
    # seed -> others.
    for kw in (dict(num_threads=3), dict(num_workers=2, num_threads=1)):
        with _iterator(src, **kw) as parallel:
            for batch in batches:
                _equal(batch, next(parallel))
    other = next(_iterator(src, seed=4))
    assert not np.array_equal(other["image"], batches[0]["image"])
    assert not np.array_equal(batches[0]["image"], batches[1]["image"])
    # Erasing is applied to the image: erased pixels are 0.
    assert np.all(b["image"][np.broadcast_to(b["erase_mask"] == 0, b["image"].shape)] == 0)


def test_every_epoch_visits_every_image_once():
    colors = [np.full((18, 22, 3), 10 * i, np.uint8) for i in range(7)]
    it = _iterator(ArrayImageSource(colors), masks=dict(MASKS, erase_image_with_mask=-1.0), global_batch=3,
                   drop_remainder=False)
    assert it.steps_per_epoch == 3
    for epoch in range(2):
        seen = [int(v) for _ in range(3) for v in next(it)["image"][:, 0, 0, 0]]
        assert sorted(seen) == [10 * i for i in range(7)]
        assert seen == [10 * int(i) for i in epoch_permutation(3, epoch, 7)]
        assert it.get_state()["position"] == 7
    assert it.get_state()["epoch"] == 1


def test_resume_gives_identical_batches():
    src = ArrayImageSource(_images(9))
    ref = _iterator(src, num_threads=2)
    expected = [next(ref) for _ in range(7)]  # 2 steps per epoch: crosses 3 epoch boundaries
    ref.close()
    for k in (0, 1, 2, 3, 5):
        it = _iterator(src, num_threads=3)
        for _ in range(k):
            next(it)
        state = json.loads(json.dumps(it.get_state()))
        it.close()
        resumed = _iterator(src, num_threads=0)
        resumed.set_state(state)
        for want in expected[k:]:
            _equal(next(resumed), want)


def test_set_state_rejects_a_different_run():
    it = _iterator(ArrayImageSource(_images(9)))
    state = it.get_state()
    with pytest.raises(ValueError, match="seed=3"):
        _iterator(ArrayImageSource(_images(9)), seed=5).set_state(state)
    with pytest.raises(ValueError, match="num_examples"):
        _iterator(ArrayImageSource(_images(8))).set_state(state)
    with pytest.raises(ValueError, match="keys"):
        it.set_state({"epoch": 0})


def test_corrupt_image_is_skipped_with_a_warning(tmp_path):
    _write_folder(tmp_path / "d", 5, broken=("broken.jpg",))
    src = FolderImageSource(tmp_path / "d", ("png", "jpg"))
    bad = [src.name(i) for i in range(len(src))].index("broken.jpg")
    it = _iterator(src, global_batch=3, num_threads=2)
    with pytest.warns(UserWarning, match="broken.jpg") as record:
        batches = [next(it) for _ in range(4)]  # 2 steps per epoch, 2 epochs: the broken file is drawn
    assert sum("broken.jpg" in str(w.message) for w in record) == 1  # warned once
    it.close()
    clean = ArrayImageSource([src.load(i) if i != bad else np.zeros((20, 26, 3), np.uint8) for i in range(6)])
    plain = _iterator(clean, global_batch=3)
    for epoch in range(2):
        perm = epoch_permutation(3, epoch, 6)
        for step in range(2):
            for row in range(3):
                p = step * 3 + row
                got = batches[2 * epoch + step]["image"][row]
                if perm[p] == bad:  # position p takes the next image of the order, with p's crop and masks
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ex = _iterator(clean, global_batch=3).example(epoch, p)
                    # Same crop/masks as position p, image of position p + 1 (clean copy differs here).
                    nxt = ArrayImageSource([clean.load(int(perm[(p + 1) % 6]))] * 6)
                    want = _iterator(nxt, global_batch=3).example(epoch, p)
                    np.testing.assert_array_equal(got, want["image"])
                    assert not np.array_equal(got, ex["image"])
                else:
                    np.testing.assert_array_equal(got, plain.example(epoch, p)["image"])


def test_process_rows_assemble_the_global_batch():
    src = ArrayImageSource(_images(10))
    whole = next(_iterator(src))
    parts = [next(_iterator(src, process_index=i, process_count=2)) for i in range(2)]
    _equal(whole, {k: np.concatenate([p[k] for p in parts]) for k in whole})


def test_iterator_argument_errors():
    src = ArrayImageSource(_images(3))
    with pytest.raises(ValueError, match="fewer than global_batch"):
        _iterator(src)
    with pytest.raises(ValueError, match="differs from size"):
        _iterator(ArrayImageSource(_images(5)), size=8)
    with pytest.raises(TypeError, match="ImageSource"):
        _iterator([np.zeros((4, 4, 3), np.uint8)])


def test_iterator_with_paris_config_and_provided_masks():
    cfg = load_config(str(REPO / "configs" / "paris.py") + ":tiny")
    provided = ProvidedMasks.from_config(require(PCONV), cfg.masks.fdm)
    src = FolderImageSource(require(IMAGENET), cfg.data.image_end_with.fdm)
    it = TrainIterator(src, cfg.masks.fdm, cfg.data.train_preprocess, size=cfg.image_size, seed=0,
                       global_batch=2, provided=provided, num_workers=0)
    b = next(it)
    assert b["image"].shape == (2, cfg.image_size, cfg.image_size, 3)
    assert 0 <= b["image"].min() and b["image"].max() <= 255
    hole = 1 - b["mask"].mean(axis=(1, 2, 3))
    assert np.all((hole > 0.1) & (hole < 0.7))  # Paris phase-2 masks: files 4000-11999, 20-60 % holes
    np.testing.assert_array_equal(b["erase_mask"], 1.0)


# ---------------------------------------------------------------------------------------------
# shard_batch
# ---------------------------------------------------------------------------------------------
def test_shard_batch_over_eight_devices():
    assert jax.device_count() == 8
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    batch = next(_iterator(ArrayImageSource(_images(9)), global_batch=8))
    out = shard_batch(batch, mesh)
    for k, v in out.items():
        assert isinstance(v, jax.Array) and v.shape == batch[k].shape
        assert v.sharding.is_equivalent_to(NamedSharding(mesh, P("data")), v.ndim)
        assert len(v.addressable_shards) == 8 and v.addressable_shards[0].data.shape[0] == 1
        np.testing.assert_array_equal(np.asarray(v), batch[k])
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        shard_batch({"image": np.zeros((6, 2, 2, 3), np.float32)}, mesh)
    with pytest.raises(ValueError, match="not 'batch'"):
        shard_batch(batch, mesh, axis="batch")
