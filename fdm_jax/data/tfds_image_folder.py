"""A tensorflow-datasets builder for image datasets distributed as a folder of images: Paris
StreetView, the Places365 'naturalscene' subset of PUT/FDM (the category filter of
liuqk3/PUT@cvpr2022:image_synthesis/data/image_list_dataset.py), or any folder.

Built and read without TensorFlow: tfds 4.9.10 generates `array_record` files with its own
example serializer, and the builder stores file bytes, so no image is encoded through TF.

    import tensorflow_datasets as tfds
    import fdm_jax.data.tfds_image_folder  # registers 'fdm_image_folder'

    builder = tfds.builder("fdm_image_folder", config="paris", data_dir="~/tfds")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="/data/paris"))

or `prepare_image_folder("/data/paris", "~/tfds", config="paris")`. Read it back with
`fdm_jax.data.tfds_sources.TfdsImageSource("fdm_image_folder", "train", "~/tfds", config="paris")`.

Stored images: the original file bytes whenever both of tfds' numpy decoders (cv2 with
IMREAD_UNCHANGED, or PIL) yield exactly the pixels the original loader sees (PIL `convert('RGB')`, in
hyudsl/FDM:image_synthesis/data/utils/image_path_dataset.py:ImagePaths); otherwise (RGBA, CMYK,
16-bit, BMP/TIFF/WebP, ...) a PNG of those pixels, flagged by the `reencoded` feature. Files that
cannot be decoded are skipped with a warning naming them.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

__all__ = [
    "IMAGE_EXTENSIONS", "PLACES_SUBSET_CATEGORIES", "FdmImageFolder", "ImageFolderConfig", "image_bytes_for_storage",
    "prepare_image_folder",
]

# FDM's dataloader configs: image_end_with bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp,JPEG (matched
# case-insensitively here).
IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")

# liuqk3/PUT image_synthesis/data/image_list_dataset.py:get_file_list, the 'naturalscene' branch:
# these 8 folders of Places365-Challenge `data_large/`.
PLACES_SUBSET_CATEGORIES = ("m/mountain", "m/mountain_path", "m/mountain_snowy", "b/butte", "c/canyon",
                            "f/field/cultivated", "t/tundra", "v/valley")

# tfds split -> accepted folder / list-file stems under manual_dir.
SPLIT_SOURCES = {"train": ("train",), "validation": ("val", "validation"), "test": ("test",)}

_LAYOUT = """\
Layout of the folder given as `manual_dir`, per split (train, validation, test); at least one:

  <manual_dir>/train/...        every image below it, recursively, sorted by relative path
  <manual_dir>/val/...          (or validation/); test/ likewise
  <manual_dir>/train.txt        optional list file (val.txt or validation.txt, test.txt): one image
                                path per line, in the order to keep. Paths are relative to the
                                split's folder when it exists (FDM's image_list.txt are relative to
                                images/paris/val), otherwise to manual_dir. A line "path label" (the
                                Places365 list format) uses its first field. A list file overrides
                                the folder scan of its split.

Image files: .bmp .jpg .jpeg .pgm .png .ppm .tif .tiff .webp (any case); other files are ignored.
"""

MANUAL_DOWNLOAD_INSTRUCTIONS = _LAYOUT + """
Configs:
* paris: Paris StreetView (Pathak et al. 2016; request it from the authors). FDM's layout
  data/images/paris/{train,val} is already this layout: manual_dir = data/images/paris. For FDM's
  1,900-image inference list, copy hyudsl/FDM data/image_list/paris/image_list.txt to
  <manual_dir>/val.txt.
* places_subset: PUT/FDM's 'naturalscene', 8 categories of Places365-Challenge (mountain,
  mountain_path, mountain_snowy, butte, canyon, field/cultivated, tundra, valley). Either
  train/ = Places365-Challenge `data_large/` (then only the folders m/mountain, m/mountain_path,
  m/mountain_snowy, b/butte, c/canyon, f/field/cultivated, t/tundra, v/valley are read, as PUT's
  filter does), or train/ = a folder that already holds only the subset. For validation, val/ =
  Places365 `val_large/` plus val.txt = hyudsl/FDM data/image_list/naturalscene/image_list.txt
  (800 images).
* generic: any folder with this layout. Give other datasets their own data_dir, or their own config
  name: `config=ImageFolderConfig(name="mydata")`.
"""


@dataclasses.dataclass(eq=False)
class ImageFolderConfig(tfds.core.BuilderConfig):
    """`category_subfolders`: when any of these exist below a split's folder, only they are read
    (PUT's naturalscene filter); list files are never filtered."""

    category_subfolders: tuple[str, ...] = ()


def _decode_rgb(data: bytes) -> tuple[np.ndarray, str]:
    """The original loader: PIL -> convert('RGB') -> uint8 (ImagePaths). Decodes fully, so truncated
    files fail here. -> ((H, W, 3) uint8, PIL format name)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        fmt = im.format or ""
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if rgb.ndim != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"decoded to shape {rgb.shape}")
    return rgb, fmt


def _cv2_rgb(data: bytes) -> np.ndarray | None:
    """What tfds' numpy decoder (features/image_feature.py: cv2.imdecode IMREAD_UNCHANGED, then
    BGR->RGB, grey repeated) returns, or None when that is not a (H, W, 3) uint8 image."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint8:
        return None
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        return np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return None


def _png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def image_bytes_for_storage(data: bytes) -> tuple[bytes, bool]:
    """-> (bytes to store, reencoded). The file's own bytes when it is a JPEG or PNG that cv2 and PIL
    decode to the same RGB pixels; else a lossless PNG of PIL's `convert('RGB')` pixels.
    Raises ValueError when the bytes are not a decodable image."""
    try:
        rgb, fmt = _decode_rgb(data)
    except Exception as e:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError, ...
        raise ValueError(f"not a decodable image ({type(e).__name__}: {e})") from None
    if fmt in ("JPEG", "PNG"):
        other = _cv2_rgb(data)
        if other is not None and other.shape == rgb.shape and np.array_equal(other, rgb):
            return data, False
    return _png_bytes(rgb), True


def _is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _scan_folder(folder: Path, categories: Sequence[str]) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every image below `folder`, sorted by relative path (the
    original walks the folder unsorted, in filesystem order). With `categories` present, only those."""
    roots = [folder]
    if categories:
        present = [c for c in categories if (folder / c).is_dir()]
        if present:
            missing = [c for c in categories if c not in present]
            if missing:
                warnings.warn(f"{folder}: category folders {missing} are missing; reading only {present}",
                              stacklevel=3)
            roots = [folder / c for c in present]
    found = []
    for root in roots:
        for dirpath, _, files in os.walk(root, followlinks=True):
            for f in files:
                if _is_image_file(f):
                    p = Path(dirpath) / f
                    found.append((p.relative_to(folder).as_posix(), p))
    return sorted(found)


def _read_list(list_file: Path, base: Path) -> list[tuple[str, Path]]:
    """Entries of a list file, in file order; missing files are skipped with a warning."""
    entries, missing = [], []
    for raw in list_file.read_text().splitlines():
        line = raw.strip()
        if not line:
            continue
        candidates = [line] + ([line.split()[0]] if len(line.split()) > 1 else [])
        for token in candidates:
            p = Path(token)
            if not (p.is_absolute() and p.is_file()):
                p = base / token.lstrip("/")
            if p.is_file():
                entries.append((token, p))
                break
        else:
            missing.append(line)
            warnings.warn(f"{list_file}: listed image {line!r} not found under {base}; skipped", stacklevel=3)
    if not entries:
        raise FileNotFoundError(f"{list_file}: none of its {len(missing)} entries exist under {base}")
    return entries


def _split_entries(root: Path, categories: Sequence[str]) -> dict[str, list[tuple[str, Path]]]:
    out = {}
    for split, stems in SPLIT_SOURCES.items():
        folder = next((root / s for s in stems if (root / s).is_dir()), None)
        list_file = next((root / f"{s}.txt" for s in stems if (root / f"{s}.txt").is_file()), None)
        if list_file is not None:
            out[split] = _read_list(list_file, folder if folder is not None else root)
        elif folder is not None:
            entries = _scan_folder(folder, categories)
            if not entries:
                raise FileNotFoundError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found")
            out[split] = entries
    if not out:
        raise FileNotFoundError(f"manual_dir {root}: no train/, val/, validation/ or test/ folder and no "
                                f"train.txt/val.txt/validation.txt/test.txt list file.\n{_LAYOUT}")
    return out


class FdmImageFolder(tfds.core.GeneratorBasedBuilder):
    """Images from a folder with train/validation(/test) splits, read from `manual_dir`.

    Features: `image` (the file's bytes, see the module docstring), `file_name` (path relative to
    the split's folder, or the list entry as written), `reencoded`. Example order = sorted file
    order, or list order (shuffling is disabled so that index i stays image i)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        ImageFolderConfig(name="generic", description="Any folder with the train/val layout."),
        ImageFolderConfig(name="paris", description="Paris StreetView (manual download)."),
        ImageFolderConfig(name="places_subset", category_subfolders=PLACES_SUBSET_CATEGORIES,
                          description="PUT/FDM 'naturalscene': 8 categories of Places365-Challenge."),
    ]
    DEFAULT_CONFIG_NAME = "generic"
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    # tfds' own `code_path` needs the `importlib_resources` backport, which tfds 4.9.10 declares
    # for Python < 3.9 only (tensorflow/datasets#11212); this module's path is what it would find.
    code_path = epath.Path(__file__)

    def __init__(self, *, file_format=None, **kwargs):
        # array_record by default: the random-access format `tfds.data_source` reads without TF.
        super().__init__(file_format=file_format or "array_record", **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo directly: `dataset_info_from_configs` would read metadata files next to this module.
        return tfds.core.DatasetInfo(
            builder=self,
            description=(self.builder_config.description or "") + "\n\n" + _LAYOUT,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "file_name": tfds.features.Text(),
                "reencoded": tfds.features.Scalar(np.bool_, doc="True when `image` is not the file's own bytes"),
            }),
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        root = Path(dl_manager.manual_dir)
        entries = _split_entries(root, self.builder_config.category_subfolders)
        self.info.metadata["manual_dir"] = str(root)
        self.info.metadata["skipped_corrupt"] = {split: [] for split in entries}
        self.info.metadata["reencoded"] = {split: 0 for split in entries}
        return {split: self._generate_examples(split, items) for split, items in entries.items()}

    def _generate_examples(self, split: str, items: list[tuple[str, Path]]) -> Iterator[tuple[str, dict]]:
        for name, path in items:
            try:
                stored, reencoded = image_bytes_for_storage(path.read_bytes())
            except (OSError, ValueError) as e:
                warnings.warn(f"{self.name}/{self.builder_config.name} {split}: skipping corrupt image {path}: {e}",
                              stacklevel=2)
                self.info.metadata["skipped_corrupt"][split].append(name)
                continue
            self.info.metadata["reencoded"][split] += int(reencoded)
            yield name, {"image": stored, "file_name": name, "reencoded": reencoded}


def prepare_image_folder(folder: str | os.PathLike, data_dir: str | os.PathLike,
                         config: str | ImageFolderConfig = "generic") -> FdmImageFolder:
    """Build `folder` (laid out as in MANUAL_DOWNLOAD_INSTRUCTIONS) into `data_dir`; returns the
    prepared builder (a no-op when it is already prepared there)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder}: no such directory\n{_LAYOUT}")
    builder = FdmImageFolder(data_dir=os.fspath(Path(data_dir).expanduser()), config=config)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(folder)))
    return builder
