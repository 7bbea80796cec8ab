"""Reading images and masks from files, with the checks a command-line user needs.

Masks on disk are 8-bit PNGs; by default white (255) = hole, the convention of the NVIDIA irregular
masks and of `../shared/data`. Inside the models masks are float (H, W, 1) with 1 = known pixel.
Every problem is an `InputError` with a one-line message naming the file and what was expected.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

HOLE_WHITE, HOLE_BLACK = "hole-white", "hole-black"


class InputError(ValueError):
    """Bad user input (file, size, mask polarity/content)."""


DEMO_PREFIX = "demo:"


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3). `demo:<name>` reads one of scikit-image's bundled photographs
    (fdm_jax.data.sources.DEMO_IMAGES, e.g. demo:chelsea): an input on any fresh install."""
    if str(path).startswith(DEMO_PREFIX):
        from fdm_jax.data.sources import DEMO_IMAGES, DemoImageSource

        name = str(path)[len(DEMO_PREFIX):]
        if name not in DEMO_IMAGES:
            raise InputError(f"image {path}: no such built-in photograph; expected demo:<name> with name one of "
                             f"{', '.join(sorted(DEMO_IMAGES))}")
        return DemoImageSource([name]).load(0)
    p = Path(path)
    if not p.is_file():
        raise InputError(f"image {p}: no such file")
    _check_complete(p, "image")
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"image {p}: not a readable image file")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _check_complete(p: Path, what: str) -> None:
    """cv2 decodes a truncated JPEG without an error (the missing rows come out grey); PIL's full decode
    raises on it, so a cut-off file is an error rather than a silently wrong input. Run before cv2 so
    libjpeg's own stderr warning does not precede the one-line error."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.load()
    except UnidentifiedImageError:
        return  # a format cv2 reads and PIL does not: nothing to compare against
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{what} {p}: damaged or truncated image file ({e}); expected a complete image") from None


def resize_and_center_crop(image: np.ndarray, size: int, interpolation=cv2.INTER_LINEAR) -> tuple[np.ndarray, tuple]:
    """The original's inference preprocessing (SmallestMaxSize(size) + CenterCrop(size) of SimplePreprocessor):
    scale the smaller side to `size` (cv2 INTER_LINEAR), crop the centre with offset floor((L - size)/2).
    Returns the result and the (scale, top, left) used, so a mask can follow exactly."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        image = cv2.resize(image, (nw, nh), interpolation=interpolation)
    top, left = (nh - size) // 2, (nw - size) // 2
    return image[top:top + size, left:left + size], (nh, nw, top, left)


def read_mask(path: str | Path, polarity: str = HOLE_WHITE) -> np.ndarray:
    """Float32 (H, W) with 1 = known. Colour masks use their first channel; non-binary masks are
    thresholded at 128 with a warning."""
    p = Path(path)
    if polarity not in (HOLE_WHITE, HOLE_BLACK):
        raise InputError(f"mask polarity {polarity!r}: expected {HOLE_WHITE} or {HOLE_BLACK}")
    if not p.is_file():
        raise InputError(f"mask {p}: no such file")
    _check_complete(p, "mask")
    m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise InputError(f"mask {p}: not a readable image file")
    if m.ndim == 3:
        m = m[..., 0]
    if m.dtype != np.uint8:
        m = (m.astype(np.float64) / np.iinfo(m.dtype).max * 255).round().astype(np.uint8)
    values = np.unique(m)
    if not set(values.tolist()) <= {0, 255}:
        warnings.warn(f"mask {p}: not binary ({len(values)} grey levels); thresholded at 128", stacklevel=2)
    white = m >= 128
    hole = white if polarity == HOLE_WHITE else ~white
    return (~hole).astype(np.float32)


def fit_mask(mask: np.ndarray, image_shape: tuple[int, int], geometry: tuple, size: int, path: str = "mask") -> np.ndarray:
    """Bring a mask (1 = known) to the model input: a mask of the original image's size follows the
    image's resize (nearest) and crop; a mask already of the model size is used as is."""
    if mask.shape == (size, size):
        return mask
    if mask.shape != tuple(image_shape):
        raise InputError(f"{path}: size {mask.shape[1]}x{mask.shape[0]} matches neither the image "
                         f"({image_shape[1]}x{image_shape[0]}) nor the model input ({size}x{size})")
    nh, nw, top, left = geometry
    if (nh, nw) != mask.shape:
        mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
    return mask[top:top + size, left:left + size]


def check_mask(mask: np.ndarray, path: str = "mask") -> np.ndarray:
    """A mask must have at least one hole and one known pixel."""
    if not (mask == 0).any():
        raise InputError(f"{path}: no hole (every pixel is known); check --mask-polarity")
    if not (mask != 0).any():
        raise InputError(f"{path}: no known pixel (everything is a hole); check --mask-polarity")
    return mask


def random_mask(size: int, hole_ratio: float, seed: int) -> np.ndarray:
    """Random rectangles until `hole_ratio` of the pixels are holes (1 = known); deterministic in seed."""
    if not 0.0 < hole_ratio < 1.0:
        raise InputError(f"--mask-ratio {hole_ratio}: expected a hole fraction strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    known = np.ones((size, size), np.float32)
    while (known == 0).mean() < hole_ratio:
        h, w = rng.integers(size // 8, size // 2, size=2)
        y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        known[y:y + h, x:x + w] = 0
    return known


def write_image(path: str | Path, image: np.ndarray) -> None:
    """RGB (H, W, 3) uint8 or float in [0, 255] -> PNG. Floats are truncated, as the original's
    tensor2image does."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise InputError(f"{path}: could not write the image")
