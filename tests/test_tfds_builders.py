"""tensorflow-datasets builders and sources (fdm_jax/data/tfds_*.py): built from small real folders
into tmp dirs and read back through the sources, without TensorFlow."""

import pickle
import shutil
import sys
import warnings

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from fdm_jax.data.tfds_image_folder import PLACES_SUBSET_CATEGORIES, ImageFolderConfig, prepare_image_folder
from fdm_jax.data.tfds_irregular_masks import (BUCKET_RATIOS, BUCKET_SIZE, BUCKET_SPLITS, mask_split,
                                               prepare_irregular_masks)
from fdm_jax.data.sources import CorruptImageError, ImageSource
from fdm_jax.data.tfds_sources import (DatasetNotPreparedError, TfdsImageSource, TfdsMaskSource,
                                       places365_small_source)
from shared_paths import require, shared_dir

IMAGENET = shared_dir() / "data/images/imagenet_sample"
PLACES_VAL = shared_dir() / "data/images/places2_256_freeform/images"
MASKS = shared_dir() / "data/masks/pconv_test"


def pil_rgb(path) -> np.ndarray:
    """The original's image loader (hyudsl/FDM:image_synthesis/data/utils/image_path_dataset.py)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def build_recording_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [str(w.message) for w in caught]


# ------------------------------------------------------------------------------------------------
# Image folder
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paris(tmp_path_factory):
    """A 'paris' build of a small folder: train/ scanned (with a corrupt JPEG, an RGBA PNG that must
    be re-encoded, a greyscale PNG, a nested file, a non-image), val/ selected by val.txt."""
    jpgs = sorted(require(IMAGENET).glob("*.jpg"))[:6]
    root = tmp_path_factory.mktemp("tfds_paris")
    manual, data_dir = root / "paris", root / "tfds"
    (manual / "train/sub").mkdir(parents=True)
    (manual / "val").mkdir()
    for p in jpgs[:3]:
        shutil.copy(p, manual / "train" / p.name)
    shutil.copy(jpgs[3], manual / "train/sub" / jpgs[3].name)
    rgb = pil_rgb(jpgs[4])
    alpha = np.linspace(0, 255, rgb.shape[1], dtype=np.uint8)[None, :].repeat(rgb.shape[0], 0)
    Image.fromarray(np.dstack([rgb, alpha])).save(manual / "train/rgba.png")
    Image.open(jpgs[2]).convert("L").save(manual / "train/grey.png")
    (manual / "train/broken.jpg").write_bytes(jpgs[0].read_bytes()[:3000])
    (manual / "train/notes.txt").write_text("not an image")
    for name, p in (("a.jpg", jpgs[5]), ("b.jpg", jpgs[0]), ("c.jpg", jpgs[1])):
        shutil.copy(p, manual / "val" / name)
    (manual / "val.txt").write_text("c.jpg\n\na.jpg\ngone.jpg\n")

    def build():
        builder = tfds.builder("fdm_image_folder", config="paris", data_dir=str(data_dir))
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
        return builder

    _, messages = build_recording_warnings(build)
    return manual, data_dir, messages


def test_image_folder_built_and_read_without_tensorflow(paris):
    manual, data_dir, _ = paris
    train = TfdsImageSource("fdm_image_folder", "train", data_dir, config="paris")
    assert len(train) > 0 and train.load(0).dtype == np.uint8
    assert "tensorflow" not in sys.modules


def test_image_folder_train_pixels_match_the_files(paris):
    manual, data_dir, _ = paris
    src = TfdsImageSource("fdm_image_folder", "train", data_dir, config="paris")
    expected = sorted(p.relative_to(manual / "train").as_posix() for p in (manual / "train").rglob("*")
                      if p.suffix in (".jpg", ".png") and p.name != "broken.jpg")
    assert [src.name(i) for i in range(len(src))] == expected
    for i, name in enumerate(expected):
        path = manual / "train" / name
        image = src.load(i)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        np.testing.assert_array_equal(image, pil_rgb(path), err_msg=name)
        if name.endswith(".jpg"):
            np.testing.assert_array_equal(image, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
        if name == "rgba.png":  # not representable as (H, W, 3): stored as a PNG of the RGB pixels
            assert src.encoded(i) != path.read_bytes()
        else:  # JPEGs and the greyscale PNG keep their bytes
            assert src.encoded(i) == path.read_bytes(), name


def test_tfds_default_numpy_decoding_matches_too(paris):
    # A plain `tfds.data_source` user (cv2 decoding inside tfds) sees the same RGB pixels.
    manual, data_dir, _ = paris
    import fdm_jax.data.tfds_image_folder  # noqa: F401  (registers the builder)

    ds = tfds.data_source("fdm_image_folder/paris", split="train", data_dir=str(data_dir), download=False)
    for i in range(len(ds)):
        ex = ds[i]
        np.testing.assert_array_equal(ex["image"], pil_rgb(manual / "train" / ex["file_name"].decode()))
        assert bool(ex["reencoded"]) == (ex["file_name"] == b"rgba.png")


def test_corrupt_image_skipped_with_a_warning_naming_it(paris):
    manual, data_dir, messages = paris
    assert any("skipping corrupt image" in m and str(manual / "train/broken.jpg") in m for m in messages), messages
    builder = tfds.builder("fdm_image_folder", config="paris", data_dir=str(data_dir))
    assert builder.info.metadata["skipped_corrupt"] == {"train": ["broken.jpg"], "validation": []}


def test_list_file_keeps_its_order_and_warns_on_missing_entries(paris):
    manual, data_dir, messages = paris
    val = TfdsImageSource("fdm_image_folder", "validation", data_dir, config="paris")
    assert [val.name(i) for i in range(len(val))] == ["c.jpg", "a.jpg"]
    for i in range(len(val)):
        np.testing.assert_array_equal(val.load(i), pil_rgb(manual / "val" / val.name(i)))
    assert any("gone.jpg" in m and "not found" in m for m in messages), messages


def test_image_source_pickles_for_worker_processes(paris):
    _, data_dir, _ = paris
    src = TfdsImageSource("fdm_image_folder", "train", data_dir, config="paris")
    clone = pickle.loads(pickle.dumps(src))
    assert len(clone) == len(src) and clone.name(1) == src.name(1)
    np.testing.assert_array_equal(clone.load(1), src.load(1))


def test_image_source_errors_are_clear(paris, tmp_path):
    _, data_dir, _ = paris
    with pytest.raises(DatasetNotPreparedError, match="no_such_dir: no such directory"):
        TfdsImageSource("fdm_image_folder", "train", tmp_path / "no_such_dir", config="paris")
    with pytest.raises(DatasetNotPreparedError,
                       match="fdm_image_folder/generic/1.0.0 is not prepared.*prepare_image_folder"):
        TfdsImageSource("fdm_image_folder", "train", data_dir, config="generic")
    with pytest.raises(ValueError, match=r"split 'tran' is not available \(splits: \['train', 'validation'\]"):
        TfdsImageSource("fdm_image_folder", "tran", data_dir, config="paris")
    with pytest.raises(ValueError, match="'not_a_dataset_xyz': not a registered dataset name"):
        TfdsImageSource("not_a_dataset_xyz", "train", data_dir)
    src = TfdsImageSource("fdm_image_folder", "validation", data_dir, config="paris")
    with pytest.raises(IndexError, match=r"index 2 out of range \[0, 2\)"):
        src.load(2)


def test_undecodable_stored_image_raises_corrupt_image_error(tmp_path):
    # Datasets not built here are not validated at build time: a bad image surfaces at load time.
    with tfds.core.registered.skip_registration():
        class BadBytes(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, disable_shuffling=True, features=tfds.features.FeaturesDict(
                    {"image": tfds.features.Image(shape=(None, None, 3)), "file_name": tfds.features.Text()}))

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples()}

            def _generate_examples(self):
                yield 0, {"image": b"not an image", "file_name": "bad.jpg"}

    builder = BadBytes(data_dir=str(tmp_path), file_format="array_record")
    builder.download_and_prepare()
    src = TfdsImageSource(builder, "train")
    assert isinstance(src, ImageSource) and src.name(0) == "bad.jpg"
    with pytest.raises(CorruptImageError, match=r"bad.jpg.*tfds bad_bytes/1.0.0 train\[0\]") as err:
        src.load(0)
    assert err.value.name == "bad.jpg"


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder .*missing: no such directory"):
        prepare_image_folder(tmp_path / "missing", tmp_path / "tfds")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat/readme.txt").write_text("images are elsewhere")
    with pytest.raises(FileNotFoundError, match="no train/, val/, validation/ or test/ folder"):
        prepare_image_folder(tmp_path / "flat", tmp_path / "tfds")


def test_places_subset_reads_only_the_eight_categories(tmp_path):
    jpgs = sorted(require(IMAGENET).glob("*.jpg"))[:3]
    train = tmp_path / "naturalscene/train"
    for sub, p in zip(("m/mountain", "c/canyon", "a/abbey"), jpgs):
        (train / sub).mkdir(parents=True)
        shutil.copy(p, train / sub / p.name)
    builder, messages = build_recording_warnings(prepare_image_folder, tmp_path / "naturalscene", tmp_path / "tfds",
                                                 config="places_subset")
    src = TfdsImageSource(builder, "train")
    assert [src.name(i) for i in range(len(src))] == [f"c/canyon/{jpgs[1].name}", f"m/mountain/{jpgs[0].name}"]
    absent = [c for c in PLACES_SUBSET_CATEGORIES if c not in ("m/mountain", "c/canyon")]
    assert any(all(c in m for c in absent) for m in messages), messages


def test_any_folder_under_its_own_config_name(tmp_path):
    jpg = sorted(require(IMAGENET).glob("*.jpg"))[0]
    (tmp_path / "mine/test").mkdir(parents=True)
    shutil.copy(jpg, tmp_path / "mine/test/x.jpg")
    builder = prepare_image_folder(tmp_path / "mine", tmp_path / "tfds", config=ImageFolderConfig(name="mine"))
    assert list(builder.info.splits) == ["test"]
    by_config = TfdsImageSource("fdm_image_folder", "test", tmp_path / "tfds", config=ImageFolderConfig(name="mine"))
    by_dir = TfdsImageSource(tmp_path / "tfds/fdm_image_folder/mine/1.0.0", "test")  # no config object needed
    for src in (by_config, by_dir):
        assert src.name(0) == "x.jpg"
        np.testing.assert_array_equal(src.load(0), pil_rgb(jpg))


# ------------------------------------------------------------------------------------------------
# Irregular masks
# ------------------------------------------------------------------------------------------------
# Two masks of each bucket but (30, 40] %, whose files are left out (a partial folder).
MASK_INDICES = (0, 1999, 2000, 3999, 4000, 5999, 8000, 9999, 10000, 11999)


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    src = require(MASKS)
    root = tmp_path_factory.mktemp("tfds_masks")
    manual = root / "testing_mask_dataset"
    manual.mkdir()
    for i in MASK_INDICES:
        shutil.copy(src / f"{i:05d}.png", manual / f"{i:05d}.png")
    (manual / "NVIDIA_README.txt").write_text("licence notice")
    (manual / "05000.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (manual / "extra.png").write_bytes((src / "00000.png").read_bytes())
    (manual / "12000.png").write_bytes((src / "00000.png").read_bytes())
    builder, messages = build_recording_warnings(prepare_irregular_masks, manual, root / "tfds")
    return manual, root / "tfds", builder, messages


def test_masks_buckets_follow_the_file_index(masks):
    manual, data_dir, builder, messages = masks
    assert list(builder.info.splits) == [s for s in BUCKET_SPLITS if s != "ratio_30_40"]
    src = TfdsMaskSource(data_dir)
    assert [src.name(i) for i in range(len(src))] == [f"{i:05d}.png" for i in MASK_INDICES]
    for i, index in enumerate(MASK_INDICES):
        assert src.index(i) == index and src.bucket(i) == index // BUCKET_SIZE
        lo, hi = BUCKET_RATIOS[src.bucket(i)]
        assert lo < src.hole_ratio(i) <= hi, (index, src.hole_ratio(i))
    assert "tensorflow" not in sys.modules


def test_masks_are_the_original_pngs(masks):
    manual, data_dir, _, _ = masks
    src = TfdsMaskSource(data_dir)
    for i in range(len(src)):
        path = manual / src.name(i)
        with Image.open(path) as im:
            original = np.asarray(im)
        mask = src.load(i)
        assert mask.dtype == np.uint8 and mask.shape == original.shape
        np.testing.assert_array_equal(mask, original)
        assert src.encoded(i) == path.read_bytes()
        assert src.hole_ratio(i) == pytest.approx(original.mean() / 255, rel=1e-6)


def test_masks_partial_folder_is_reported(masks):
    manual, data_dir, builder, messages = masks
    missing = [m for m in messages if "masks are missing" in m]
    assert len(missing) == 1 and f"{12000 - len(MASK_INDICES)} of the 12000" in missing[0]
    assert "'ratio_30_40': 0" in missing[0] and "get no split: ['ratio_30_40']" in missing[0]
    assert any("skipping corrupt mask" in m and "05000.png" in m for m in messages), messages
    assert any("extra.png" in m and "NNNNN.png" in m for m in messages), messages
    assert any("12000.png" in m and "beyond" in m for m in messages), messages
    assert builder.info.metadata["skipped_corrupt"] == ["05000.png"]


def test_mask_selection_by_hole_ratio(masks):
    _, data_dir, _, _ = masks
    # The original's use_provided_mask_ratio ['0.2', '0.6'] is files 4000-11999 (MASK_RATIO_INDEX).
    assert mask_split(0.2, 0.6) == "ratio_20_30+ratio_30_40+ratio_40_50+ratio_50_60"
    assert mask_split() == "+".join(BUCKET_SPLITS)
    with pytest.raises(ValueError, match="expected a bucket bound"):
        mask_split(0.25, 0.6)
    high = TfdsMaskSource(data_dir, ratio=(0.4, 0.6))
    assert [high.index(i) for i in range(len(high))] == [i for i in MASK_INDICES if i >= 8000]
    with pytest.raises(ValueError, match=r"needs buckets \['ratio_30_40'\]"):
        TfdsMaskSource(data_dir, ratio=(0.2, 0.6))
    low = TfdsMaskSource(data_dir, split="ratio_01_10")
    assert [low.name(i) for i in range(len(low))] == ["00000.png", "01999.png"]


# ------------------------------------------------------------------------------------------------
# places365_small (catalog dataset)
# ------------------------------------------------------------------------------------------------
def test_places365_small_needs_a_prepared_data_dir(tmp_path):
    with pytest.raises(ValueError, match="data_dir is required"):
        places365_small_source("validation", None)
    with pytest.raises(DatasetNotPreparedError, match="no such directory"):
        places365_small_source("validation", tmp_path / "absent")
    with pytest.raises(DatasetNotPreparedError, match="places365_small/.* is not prepared.*file_format='array_record'"):
        places365_small_source("validation", tmp_path)


def test_places365_small_from_a_tiny_local_build(tmp_path):
    """The catalog builder's own _info and _generate_examples on 3 local Places365 val images (its
    download is replaced by a local archive iterator), read back by the catalog name."""
    from etils import epath
    from tensorflow_datasets.datasets.places365_small import places365_small_dataset_builder as catalog

    files = sorted(require(PLACES_VAL).glob("*.jpg"))[:3]
    annotations = tmp_path / "places365_val.txt"
    annotations.write_text("".join(f"{p.name} {i}\n" for i, p in enumerate(files)))

    with tfds.core.registered.skip_registration():
        class TinyPlaces365Small(catalog.Builder):
            name = "places365_small"
            code_path = epath.Path(catalog.__file__)  # see FdmImageFolder.code_path
            pkg_dir_path = epath.Path(catalog.__file__).parent

            def _split_generators(self, dl_manager):
                archive = ((f"val_256/{p.name}", p.open("rb")) for p in files)
                return {"validation": self._generate_examples(archive=archive, path_prefix="val_256",
                                                              split_name="validation",
                                                              annotation_path=str(annotations))}

    TinyPlaces365Small(data_dir=str(tmp_path / "tfds"), file_format="array_record").download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path)))
    src = places365_small_source("validation", tmp_path / "tfds")
    assert src.dataset.startswith("places365_small/")
    assert [src.name(i) for i in range(len(src))] == [f"val_256/{p.name}" for p in files]
    for i, p in enumerate(files):
        np.testing.assert_array_equal(src.load(i), pil_rgb(p))
