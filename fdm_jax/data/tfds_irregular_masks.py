"""A tensorflow-datasets builder for the NVIDIA/PConv irregular hole masks (`testing_mask_dataset`,
of Liu et al. 2018, PConv): 12,000 PNGs 00000.png-11999.png, 512x512, 255 = hole, in six hole-ratio buckets of
2,000 in file order. Built and read without TensorFlow (array_record, stored file bytes).

    import tensorflow_datasets as tfds
    import fdm_jax.data.tfds_irregular_masks  # registers 'fdm_irregular_masks'

    builder = tfds.builder("fdm_irregular_masks", data_dir="~/tfds")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir="/data/testing_mask_dataset"))

or `prepare_irregular_masks(folder, data_dir)`. Read with `fdm_jax.data.tfds_sources.TfdsMaskSource`.

One split per bucket, `ratio_01_10` ... `ratio_50_60`, in file order; combine them with tfds' split
syntax (`mask_split(0.2, 0.6)` = 'ratio_20_30+ratio_30_40+ratio_40_50+ratio_50_60', the original's
use_provided_mask_ratio ['0.2', '0.6'], files 4000-11999). A mask's bucket comes from the index in
its file name (index // 2000), as the original's file-order slicing does on the complete folder, so
a partial folder keeps every mask in its true bucket; missing and corrupt files (skipped with a
warning naming them) are counted in a warning and in the dataset metadata, and a bucket without any
mask gets no split (tfds cannot write an empty one).

Stored mask: the PNG's own bytes when it is an 8-bit greyscale PNG (as all NVIDIA masks are), so
decoding gives the file's pixels exactly; any other file is stored as a greyscale PNG of channel 0 of
PIL's `convert('RGB')`, which is what the original's loader uses (flag `reencoded`).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

__all__ = [
    "BUCKET_RATIOS", "BUCKET_SIZE", "BUCKET_SPLITS", "NUM_MASKS", "FdmIrregularMasks", "bucket_of_index",
    "mask_bytes_for_storage", "mask_split", "prepare_irregular_masks",
]

NUM_MASKS = 12000
BUCKET_SIZE = 2000
# Hole-ratio bucket (lo, hi] of files [2000 b, 2000 (b + 1)) (NVIDIA's README; hyudsl/FDM's MASK_RATIO_INDEX).
BUCKET_RATIOS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
BUCKET_SPLITS = ("ratio_01_10", "ratio_10_20", "ratio_20_30", "ratio_30_40", "ratio_40_50", "ratio_50_60")

_NAME = re.compile(r"^(\d+)\.png$", re.IGNORECASE)

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
manual_dir = the extracted `testing_mask_dataset/` folder of NVIDIA's irregular mask dataset
(https://nv-adlr.github.io/publication/partialconv-inpainting, "Testing Mask Dataset",
CC BY-NC-SA 4.0): 00000.png ... 11999.png (a folder holding `testing_mask_dataset/` is accepted
too). FDM's `data/masks` and `data/irregular-mask` folders are this folder. A subset of the files
is accepted: each file keeps the bucket of its index.
"""


def bucket_of_index(index: int) -> int:
    """File index -> bucket 0..5 (index // 2000)."""
    if not 0 <= int(index) < NUM_MASKS:
        raise ValueError(f"mask index {index}: expected 0 <= index < {NUM_MASKS}")
    return int(index) // BUCKET_SIZE


def mask_split(lo: float = 0.0, hi: float = 1.0) -> str:
    """The tfds split holding the buckets inside hole ratio (lo, hi], in file order. lo and hi are
    bucket bounds (0.01, 0.1, ..., 0.6; 0 and 1 mean "from the first" and "to the last"), like the
    original's use_provided_mask_ratio strings: mask_split(0.2, 0.6) = files 4000-11999."""
    bounds = {0.0, 1.0} | {b for r in BUCKET_RATIOS for b in r}
    for v, what in ((lo, "lo"), (hi, "hi")):
        if not any(abs(float(v) - b) < 1e-9 for b in bounds):
            raise ValueError(f"mask_split {what}={v}: expected a bucket bound, one of {sorted(bounds)}")
    chosen = [s for s, (a, b) in zip(BUCKET_SPLITS, BUCKET_RATIOS) if a >= float(lo) - 1e-9 and b <= float(hi) + 1e-9]
    if not chosen:
        raise ValueError(f"mask_split({lo}, {hi}): no hole-ratio bucket lies inside ({lo}, {hi}]")
    return "+".join(chosen)


def mask_bytes_for_storage(data: bytes) -> tuple[bytes, np.ndarray, bool]:
    """-> (bytes to store, (H, W) uint8 pixels as the original reads them, reencoded).
    Raises ValueError when the bytes are not a decodable image."""
    import cv2
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            fmt, mode = im.format, im.mode
            # The original: PIL -> convert('RGB') -> channel 0 (data/image_list_dataset.py:get_mask).
            pixels = np.array(im if mode == "L" else im.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # PIL raises OSError, ValueError, SyntaxError, ...
        raise ValueError(f"not a decodable image ({type(e).__name__}: {e})") from None
    if pixels.ndim == 3:
        pixels = np.ascontiguousarray(pixels[:, :, 0])
    if fmt == "PNG" and mode == "L":
        other = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # tfds' numpy decoder
        if other is not None and other.dtype == np.uint8 and np.array_equal(other, pixels):
            return data, pixels, False
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue(), pixels, True


def _mask_files(root: Path) -> dict[int, Path]:
    """{file index: path} of the NNNNN.png files in `root` (or in root/testing_mask_dataset)."""
    if not any(_NAME.match(p.name) for p in root.iterdir()) and (root / "testing_mask_dataset").is_dir():
        root = root / "testing_mask_dataset"
    found = {}
    for p in sorted(root.iterdir()):
        if p.suffix.lower() != ".png" or not p.is_file():
            continue
        m = _NAME.match(p.name)
        if m is None:
            warnings.warn(f"{p}: not a mask of the dataset (expected NNNNN.png); skipped", stacklevel=3)
            continue
        index = int(m.group(1))
        if index >= NUM_MASKS:
            warnings.warn(f"{p}: index {index} beyond the {NUM_MASKS} masks of the dataset; skipped", stacklevel=3)
            continue
        if index in found:
            raise ValueError(f"{root}: {found[index].name} and {p.name} both have index {index}")
        found[index] = p
    if not found:
        raise FileNotFoundError(f"manual_dir {root}: no mask files NNNNN.png\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return found


class FdmIrregularMasks(tfds.core.GeneratorBasedBuilder):
    """NVIDIA irregular hole masks, one split per hole-ratio bucket (see the module docstring).

    Features: `mask` (H, W, 1) uint8 PNG, 255 = hole; `file_name`; `index` (from the file name);
    `bucket` (ClassLabel over BUCKET_SPLITS); `hole_ratio` = mean(mask) / 255 as measured;
    `reencoded`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    # See FdmImageFolder.code_path (tensorflow/datasets#11212).
    code_path = epath.Path(__file__)

    def __init__(self, *, file_format=None, **kwargs):
        super().__init__(file_format=file_format or "array_record", **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="NVIDIA/PConv irregular hole masks (testing_mask_dataset), 255 = hole.\n\n"
                        + MANUAL_DOWNLOAD_INSTRUCTIONS,
            features=tfds.features.FeaturesDict({
                "mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                "file_name": tfds.features.Text(),
                "index": tfds.features.Scalar(np.int32, doc="the number in the file name"),
                "bucket": tfds.features.ClassLabel(names=list(BUCKET_SPLITS)),
                "hole_ratio": tfds.features.Scalar(np.float32, doc="mean(mask) / 255"),
                "reencoded": tfds.features.Scalar(np.bool_, doc="True when `mask` is not the file's own bytes"),
            }),
            disable_shuffling=True,
            homepage="https://nv-adlr.github.io/publication/partialconv-inpainting",
            citation="@article{liu2018image, title={Image inpainting for irregular holes using partial convolutions}, "
                     "author={Liu, Guilin and Reda, Fitsum A and Shih, Kevin J and Wang, Ting-Chun and Tao, Andrew "
                     "and Catanzaro, Bryan}, journal={arXiv preprint arXiv:1804.07723}, year={2018}}",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        root = Path(dl_manager.manual_dir)
        files = _mask_files(root)
        # Decoded here rather than in _generate_examples, so that corrupt files count as missing
        # before the splits are chosen (the stored masks of all 12,000 files take about 45 MB).
        per_bucket = {s: [] for s in BUCKET_SPLITS}
        skipped, outside = [], []
        for index in sorted(files):
            path = files[index]
            try:
                stored, pixels, reencoded = mask_bytes_for_storage(path.read_bytes())
            except (OSError, ValueError) as e:
                warnings.warn(f"{self.name}: skipping corrupt mask {path}: {e}", stacklevel=2)
                skipped.append(path.name)
                continue
            bucket = bucket_of_index(index)
            ratio = float(pixels.mean(dtype=np.float64) / 255.0)
            lo, hi = BUCKET_RATIOS[bucket]
            if not lo < ratio <= hi:
                outside.append(path.name)
            per_bucket[BUCKET_SPLITS[bucket]].append({
                "mask": stored, "file_name": path.name, "index": index, "bucket": bucket, "hole_ratio": ratio,
                "reencoded": reencoded})
        present = {s: len(v) for s, v in per_bucket.items()}
        missing = NUM_MASKS - sum(present.values())
        if missing:
            empty = [s for s, n in present.items() if n == 0]
            warnings.warn(
                f"{self.name}: {missing} of the {NUM_MASKS} masks are missing or unreadable in {root}; masks per "
                f"bucket (of {BUCKET_SIZE}): {present}. Each mask keeps the bucket of its file index"
                + (f"; buckets without any mask get no split: {empty}" if empty else ""), stacklevel=2)
        if outside:
            warnings.warn(f"{self.name}: {len(outside)} masks have a hole ratio outside the bucket of their file "
                          f"index (e.g. {outside[:5]}); they stay in that bucket", stacklevel=2)
        self.info.metadata.update(manual_dir=str(root), masks_per_bucket=present, missing=missing,
                                  skipped_corrupt=skipped, outside_bucket=outside)
        return {s: self._generate_examples(examples) for s, examples in per_bucket.items() if examples}

    def _generate_examples(self, examples: list[dict]) -> Iterator[tuple[str, dict]]:
        for ex in examples:
            yield ex["file_name"], ex


def prepare_irregular_masks(folder: str | os.PathLike, data_dir: str | os.PathLike) -> FdmIrregularMasks:
    """Build the mask folder into `data_dir`; returns the prepared builder (a no-op when prepared)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"mask folder {folder}: no such directory\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
    builder = FdmIrregularMasks(data_dir=os.fspath(Path(data_dir).expanduser()))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(folder)))
    return builder
