"""Image and mask sources over prepared tensorflow-datasets datasets: random access through
`tfds.data_source` (ArrayRecord files), no TensorFlow at read time.

* `TfdsImageSource(name_or_builder, split, data_dir, config)`: the ImageSource protocol (`len`,
  `name(i)`, `load(i)` -> uint8 (H, W, 3) RGB) over any dataset with an `image` feature, e.g.
  'fdm_image_folder' (tfds_image_folder.py) or the catalog's 'places365_small'.
* `places365_small_source(split, data_dir)`: the catalog's Places365-Standard 256x256 as a source.
* `TfdsMaskSource(data_dir, split | ratio)`: the NVIDIA masks of tfds_irregular_masks.py, `load(i)`
  -> uint8 (H, W), 255 = hole.

Images are decoded like the original's loader (hyudsl/FDM:image_synthesis/data/utils/image_path_dataset.py),
PIL -> convert('RGB'), from the stored bytes (tfds' own decoding is skipped); one that does not decode
raises sources.CorruptImageError with the example's name. Sources pickle without their open files (for worker processes). tensorflow_datasets is imported on first use, not on import of this module.
"""

from __future__ import annotations

import io
import operator
import os
from pathlib import Path
from typing import Any

import numpy as np

from fdm_jax.data.sources import CorruptImageError

__all__ = ["DatasetNotPreparedError", "TfdsImageSource", "TfdsMaskSource", "open_builder", "places365_small_source"]

PLACES365_SMALL = "places365_small"

_BUILD_HINTS = {
    "fdm_image_folder": "build it with fdm_jax.data.tfds_image_folder.prepare_image_folder(folder, data_dir, config)",
    "fdm_irregular_masks": "build it with fdm_jax.data.tfds_irregular_masks.prepare_irregular_masks(folder, data_dir)",
    PLACES365_SMALL: ("build it once with tfds.builder('places365_small', data_dir=..., file_format='array_record')"
                      ".download_and_prepare() (downloads about 31 GB from data.csail.mit.edu)"),
}


class DatasetNotPreparedError(FileNotFoundError):
    """The dataset is not prepared under the given data_dir (or not readable without TensorFlow)."""


def _tfds():
    import tensorflow_datasets as tfds

    # Registers 'fdm_image_folder' and 'fdm_irregular_masks' with tfds.
    from fdm_jax.data import tfds_image_folder, tfds_irregular_masks  # noqa: F401

    return tfds


def _hint(name: str) -> str:
    return _BUILD_HINTS.get(name, f"build it with tfds.builder({name!r}, data_dir=..., file_format='array_record')"
                                  ".download_and_prepare()")


def open_builder(name_or_builder, data_dir=None, config=None):
    """A prepared, random-access tfds builder from a registered name ('name', 'name/config',
    'name/config:version'), a prepared dataset directory (…/name/config/version), or a builder."""
    tfds = _tfds()
    if isinstance(name_or_builder, tfds.core.DatasetBuilder):
        if data_dir is not None or config is not None:
            raise ValueError("give data_dir and config to the builder, not with a builder instance")
        builder = name_or_builder
    elif isinstance(name_or_builder, (str, os.PathLike)):
        name = os.fspath(name_or_builder)
        if data_dir is not None and not Path(data_dir).expanduser().is_dir():
            raise DatasetNotPreparedError(f"tfds data_dir {data_dir}: no such directory (dataset {name!r}; "
                                          f"{_hint(name.split('/')[0])})")
        as_dir = Path(name).expanduser()
        if (as_dir / "dataset_info.json").is_file():
            builder = tfds.builder_from_directory(os.fspath(as_dir))
        else:
            kwargs = {} if config is None else {"config": config}
            if data_dir is not None:
                kwargs["data_dir"] = os.fspath(Path(data_dir).expanduser())
            try:
                builder = tfds.builder(name, **kwargs)
            except tfds.core.registered.DatasetNotFoundError as e:
                raise ValueError(f"tfds dataset {name!r}: not a registered dataset name nor a prepared dataset "
                                 f"directory ({str(e).splitlines()[0]})") from None
    else:
        raise TypeError(f"name_or_builder: expected a dataset name, a directory or a tfds builder, "
                        f"got {type(name_or_builder).__name__}")
    if not builder.is_prepared():
        raise DatasetNotPreparedError(f"tfds dataset {builder.info.full_name} is not prepared under "
                                      f"{builder.data_dir_root}; {_hint(builder.name)}")
    formats = {f.value for f in builder.info.available_file_formats()}
    if "array_record" not in formats:
        raise DatasetNotPreparedError(
            f"tfds dataset {builder.info.full_name} under {builder.data_dir_root} is stored as {sorted(formats)}; "
            f"random access without TensorFlow needs array_record: prepare it again into another data_dir with "
            f"file_format='array_record'")
    return builder


def _check_index(i, n: int, what: str) -> int:
    i = operator.index(i)
    if not 0 <= i < n:
        raise IndexError(f"{what}: index {i} out of range [0, {n})")
    return i


class _TfdsRecords:
    """Lazily opened `as_data_source` of one split, with the given features left undecoded."""

    def __init__(self, builder, split, raw_keys: tuple[str, ...]):
        self._builder, self._split, self._raw_keys = builder, split, raw_keys
        self._source = None
        self.full_name = builder.info.full_name
        self._open()  # fail now on a bad split, not at the first load

    def _open(self):
        tfds = _tfds()
        decoders = {k: tfds.decode.SkipDecoding() for k in self._raw_keys}
        try:
            self._source = self._builder.as_data_source(split=self._split, decoders=decoders)
        except (KeyError, ValueError) as e:
            raise ValueError(f"tfds dataset {self.full_name}: split {self._split!r} is not available "
                             f"(splits: {sorted(self._builder.info.splits)}; {e})") from None
        return self._source

    def __len__(self) -> int:
        return len(self._source if self._source is not None else self._open())

    def __getitem__(self, i: int) -> dict[str, Any]:
        return (self._source if self._source is not None else self._open())[i]

    def __getstate__(self):
        return {**self.__dict__, "_source": None}


def _text(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _decode(data: bytes, name: str, where: str, mask: bool = False) -> np.ndarray:
    """The original's loader: PIL -> convert('RGB') -> uint8; for a mask its channel 0 (a greyscale
    mask is read directly: the same pixels). Raises CorruptImageError(name) (sources.py)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if mask and im.mode == "L":
                return np.array(im, dtype=np.uint8)
            rgb = np.array(im.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # PIL raises OSError, ValueError, SyntaxError, ...
        raise CorruptImageError(name, f"{where}: {type(e).__name__}: {e}") from None
    return np.ascontiguousarray(rgb[:, :, 0]) if mask else rgb


class TfdsImageSource:
    """ImageSource over split `split` of a prepared tfds dataset (array_record).

    name_or_builder: a registered name (e.g. 'fdm_image_folder', 'places365_small'), a prepared
    dataset version directory, or a tfds builder. `config` picks the builder config (a name or a
    BuilderConfig). `image_key` names the tfds Image feature; the name of example i is its
    `file_name` / `filename` feature when the dataset has one, else '<split>/<i>'."""

    def __init__(self, name_or_builder, split: str, data_dir: str | os.PathLike | None = None, config=None, *,
                 image_key: str = "image"):
        tfds = _tfds()
        builder = open_builder(name_or_builder, data_dir, config)
        features = builder.info.features
        feature = features[image_key] if image_key in features else None
        if not isinstance(feature, tfds.features.Image) or feature.np_dtype != np.uint8:
            raise ValueError(f"tfds dataset {builder.info.full_name}: {image_key!r} is not a uint8 image feature "
                             f"(features: {sorted(features)})")
        self.dataset = builder.info.full_name
        self.split = split
        self._image_key = image_key
        self._name_key = next((k for k in ("file_name", "filename") if k in features), None)
        self._records = _TfdsRecords(builder, split, (image_key,))

    def __len__(self) -> int:
        return len(self._records)

    def _record(self, i) -> tuple[int, dict]:
        i = _check_index(i, len(self), f"{self.dataset} {self.split}")
        return i, self._records[i]

    def name(self, i: int) -> str:
        i, rec = self._record(i)
        return _text(rec[self._name_key]) if self._name_key else f"{self.split}/{i}"

    def encoded(self, i: int) -> bytes:
        """The stored image bytes of example i."""
        return bytes(self._record(i)[1][self._image_key])

    def load(self, i: int) -> np.ndarray:
        """uint8 (H, W, 3) RGB."""
        i, rec = self._record(i)
        name = _text(rec[self._name_key]) if self._name_key else f"{self.split}/{i}"
        return _decode(rec[self._image_key], name, f"tfds {self.dataset} {self.split}[{i}]")


def places365_small_source(split: str, data_dir: str | os.PathLike) -> TfdsImageSource:
    """The catalog's places365_small (Places365-Standard at 256x256; names are its `filename`
    feature, e.g. 'val_256/Places365_val_00000001.jpg') prepared as array_record under data_dir.
    Note: PUT/FDM's 'naturalscene' is an 8-category subset of the full-resolution Places365-Challenge
    (use tfds_image_folder's places_subset config for it); this is the standard 256x256 release."""
    if data_dir is None:
        raise ValueError(f"places365_small_source: data_dir is required (the tfds data_dir where places365_small "
                         f"was prepared; {_hint(PLACES365_SMALL)})")
    return TfdsImageSource(PLACES365_SMALL, split, data_dir)


class TfdsMaskSource:
    """The prepared 'fdm_irregular_masks' dataset: `load(i)` -> uint8 (H, W), 255 = hole.

    Select masks by `split` (a tfds split over the bucket splits, e.g. 'ratio_50_60' or
    'ratio_40_50+ratio_50_60') or by `ratio=(lo, hi)` (tfds_irregular_masks.mask_split); default:
    every mask, in file order."""

    def __init__(self, data_dir: str | os.PathLike | None = None, split: str | None = None, *,
                 ratio: tuple[float, float] | None = None, name: str = "fdm_irregular_masks"):
        from fdm_jax.data.tfds_irregular_masks import BUCKET_SPLITS, mask_split

        builder = open_builder(name, data_dir)
        present = [s for s in BUCKET_SPLITS if s in builder.info.splits]
        if split is not None and ratio is not None:
            raise ValueError("TfdsMaskSource: give split or ratio, not both")
        if ratio is not None:
            split = mask_split(*ratio)
            absent = [s for s in split.split("+") if s not in present]
            if absent:
                raise ValueError(f"TfdsMaskSource: hole ratio {tuple(ratio)} needs buckets {absent}, which have no "
                                 f"masks in {builder.info.full_name} under {builder.data_dir_root} (built from a "
                                 f"partial folder; buckets present: {present})")
        self.split = split if split is not None else "+".join(present)
        self.dataset = builder.info.full_name
        self._records = _TfdsRecords(builder, self.split, ("mask",))

    def __len__(self) -> int:
        return len(self._records)

    def _record(self, i) -> tuple[int, dict]:
        i = _check_index(i, len(self), f"{self.dataset} {self.split}")
        return i, self._records[i]

    def name(self, i: int) -> str:
        return _text(self._record(i)[1]["file_name"])

    def index(self, i: int) -> int:
        """The file index (00000.png -> 0) of mask i."""
        return int(self._record(i)[1]["index"])

    def bucket(self, i: int) -> int:
        """Hole-ratio bucket 0..5 of mask i (from its file index)."""
        return int(self._record(i)[1]["bucket"])

    def hole_ratio(self, i: int) -> float:
        """mean(mask) / 255 of mask i, measured at build time."""
        return float(self._record(i)[1]["hole_ratio"])

    def encoded(self, i: int) -> bytes:
        """The stored PNG bytes of mask i."""
        return bytes(self._record(i)[1]["mask"])

    def load(self, i: int) -> np.ndarray:
        """uint8 (H, W), 255 = hole."""
        i, rec = self._record(i)
        return _decode(rec["mask"], _text(rec["file_name"]), f"tfds {self.dataset} {self.split}[{i}]", mask=True)
