"""Image sources: random access to uint8 RGB images by index.

`ImageSource` is the protocol the training iterator reads (the tensorflow-datasets builders in
`fdm_jax/data/tfds_*.py` implement it too): `len(source)`, `source.name(i)` (a stable name for
messages) and `source.load(i)` -> uint8 (H, W, 3), raising `CorruptImageError(name)` when the
image cannot be decoded, so that a training run can skip it.

Implementations here: `FolderImageSource` (a folder tree or a list file, like the original's
ImageListDataset), `DemoImageSource` (photographs shipped inside the scikit-image wheel; no
download) and `ArrayImageSource` (in-memory arrays, for notebooks and tests).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from fdm_jax.data.preprocess import to_rgb_uint8

__all__ = ["ArrayImageSource", "CorruptImageError", "DEMO_IMAGES", "DemoImageSource", "FolderImageSource",
           "ImageSource", "read_rgb"]


class CorruptImageError(OSError):
    """An image that exists but cannot be decoded; `.name` is the source's name for it."""

    def __init__(self, name: str, reason: str = ""):
        self.name = name
        super().__init__(f"image {name}: cannot be decoded" + (f" ({reason})" if reason else ""))


@runtime_checkable
class ImageSource(Protocol):
    def __len__(self) -> int: ...

    def name(self, i: int) -> str: ...

    def load(self, i: int) -> np.ndarray: ...


def read_rgb(path: str | os.PathLike, name: str | None = None) -> np.ndarray:
    """PIL -> convert('RGB') -> uint8 (H, W, 3), as the original's ImagePaths._read_image.
    Missing, undecodable or truncated files raise CorruptImageError(name)."""
    name = str(path) if name is None else name
    try:
        with Image.open(path) as im:
            im = im if im.mode == "RGB" else im.convert("RGB")
            arr = np.array(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise CorruptImageError(name, f"{type(e).__name__}: {e}") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise CorruptImageError(name, f"decoded to shape {arr.shape}")
    return arr


def _check_index(source, i: int) -> int:
    n = len(source)
    if not (isinstance(i, (int, np.integer)) and 0 <= i < n):
        raise IndexError(f"{type(source).__name__}: index {i!r} out of range [0, {n})")
    return int(i)


class FolderImageSource:
    """The image files under `root` whose names end with one of `extensions` (case-sensitive, as the
    original's `get_all_file`; give both 'jpg' and 'JPG' to take both), or the relative paths listed
    in `list_file` (one per line, blank lines ignored), read with PIL as RGB.

    Deviation: the original collects a folder with os.walk, whose order depends on the filesystem;
    here the relative paths are sorted, so the index -> file map (and the training order for a seed)
    is the same on every machine."""

    def __init__(self, root: str | os.PathLike, extensions: str | Sequence[str] = ("jpg", "jpeg", "png"),
                 list_file: str | os.PathLike | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root}: no such directory")
        if isinstance(extensions, str):
            extensions = extensions.split(",")
        self.extensions = tuple("." + e.strip().lstrip(".") for e in extensions if e.strip())
        if list_file is not None:
            lf = Path(list_file)
            if not lf.is_file():
                raise FileNotFoundError(f"image list file {lf}: no such file")
            rel = [ln.strip() for ln in lf.read_text().splitlines() if ln.strip()]
            missing = [r for r in rel if not (self.root / r).is_file()]
            if missing:
                raise FileNotFoundError(f"image list {lf}: {len(missing)} listed file(s) not under {self.root}, "
                                        f"e.g. {missing[0]!r}")
        else:
            if not self.extensions:
                raise ValueError("FolderImageSource: no image extensions given")
            rel = sorted(os.path.relpath(os.path.join(d, f), self.root)
                         for d, _, files in os.walk(self.root) for f in files if f.endswith(self.extensions))
        if not rel:
            what = f"list file {list_file}" if list_file is not None else f"{self.root} (extensions {self.extensions})"
            raise ValueError(f"no images found in {what}")
        self.relpaths = tuple(rel)

    def __len__(self) -> int:
        return len(self.relpaths)

    def name(self, i: int) -> str:
        return self.relpaths[_check_index(self, i)]

    def path(self, i: int) -> Path:
        return self.root / self.name(i)

    def load(self, i: int) -> np.ndarray:
        return read_rgb(self.path(i), str(self.path(i)))


# Photographs inside the scikit-image wheel (skimage/data/*), read from the installed package: no
# download. Grey ones are replicated to RGB (PIL convert('RGB')).
DEMO_IMAGES = {
    "astronaut": "astronaut.png",  # 512x512 colour
    "chelsea": "chelsea.png",  # 451x300 colour (cat)
    "coffee": "coffee.png",  # 600x400 colour
    "rocket": "rocket.jpg",  # 640x427 colour
    "motorcycle": "motorcycle_left.png",  # 741x500 colour
    "hubble_deep_field": "hubble_deep_field.jpg",  # 1000x872 colour
    "camera": "camera.png",  # 512x512 grey
    "moon": "moon.png",  # 512x512 grey
    "brick": "brick.png",  # 512x512 grey texture
    "grass": "grass.png",  # 512x512 grey texture
    "gravel": "gravel.png",  # 512x512 grey texture
    "coins": "coins.png",  # 384x303 grey
}


class DemoImageSource:
    """scikit-image's bundled sample photographs (`DEMO_IMAGES`; all by default), for demos and
    smoke-test training without any dataset on disk."""

    def __init__(self, names: Sequence[str] | None = None):
        import skimage.data

        self.data_dir = Path(skimage.data.__file__).parent
        names = tuple(DEMO_IMAGES) if names is None else tuple(names)
        unknown = [n for n in names if n not in DEMO_IMAGES]
        if unknown or not names:
            raise ValueError(f"DemoImageSource: unknown image name(s) {unknown}; choose from {sorted(DEMO_IMAGES)}")
        missing = [DEMO_IMAGES[n] for n in names if not (self.data_dir / DEMO_IMAGES[n]).is_file()]
        if missing:
            raise FileNotFoundError(f"DemoImageSource: {missing} not in {self.data_dir} (the installed "
                                    f"scikit-image wheel should ship them)")
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def name(self, i: int) -> str:
        return self.names[_check_index(self, i)]

    def load(self, i: int) -> np.ndarray:
        n = self.name(i)
        return read_rgb(self.data_dir / DEMO_IMAGES[n], n)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


class ArrayImageSource:
    """Images held in memory: uint8 (H, W), (H, W, 1|3|4) arrays (converted to RGB like PIL)."""

    def __init__(self, images: Sequence[np.ndarray], names: Sequence[str] | None = None):
        if len(images) == 0:
            raise ValueError("ArrayImageSource: no images")
        self.names = tuple(names) if names is not None else tuple(f"array[{i}]" for i in range(len(images)))
        if len(self.names) != len(images):
            raise ValueError(f"ArrayImageSource: {len(images)} images but {len(self.names)} names")
        self.images = tuple(_frozen(to_rgb_uint8(im, n)) for im, n in zip(images, self.names))

    def __len__(self) -> int:
        return len(self.images)

    def name(self, i: int) -> str:
        return self.names[_check_index(self, i)]

    def load(self, i: int) -> np.ndarray:
        return self.images[_check_index(self, i)]
