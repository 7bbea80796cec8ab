"""The original's image preprocessing (hyudsl/FDM:image_synthesis/data/utils/
image_preprocessor.py:SimplePreprocessor).

The original runs albumentations on the float32 image: SmallestMaxSize(smallest_max_size) ->
RandomCrop or CenterCrop(size) -> HorizontalFlip(p=0.5) if horizon_flip. This module does the same
with cv2 and numpy, without albumentations:

* SmallestMaxSize: scale = smallest_max_size / min(H, W); new side = round(side * scale) with
  round-half-to-even, the rule of albumentations 0.5.2 (the version liuqk3/PUT's requirements.txt
  pins: `py3round`, which is round-half-even; later versions use Python's `round`, also half-even);
  cv2.resize INTER_LINEAR on the float32 image, skipped when the scale is 1 or the size is unchanged.
* RandomCrop: offsets int((H - h) * u) and int((W - w) * u') with u, u' ~ U[0, 1), albumentations'
  `get_random_crop_coords`. CenterCrop: offsets floor((H - h) / 2).
* HorizontalFlip: applied when u'' < 0.5.

The random numbers come from an explicit numpy Generator (the original uses the global Python
`random`), in the order u, u', u''. The output is float32 in [0, 255], (h, w, 3), not re-quantized.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

__all__ = ["PREPROCESS_STREAM", "preprocess_from_config", "preprocess_image", "preprocess_rng",
           "smallest_max_size_shape", "to_rgb_uint8"]

PREPROCESS_STREAM = 0x70726570  # 'prep': tags the preprocessing stream of an example


def preprocess_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The per-example preprocessing Generator: PCG64 seeded by SeedSequence([seed, epoch, index, 'prep'])."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index), PREPROCESS_STREAM]))


def to_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """uint8 (H, W), (H, W, 1), (H, W, 2 = LA), (H, W, 3) or (H, W, 4 = RGBA) -> (H, W, 3), as PIL's
    convert('RGB'): grey is replicated, alpha is dropped (not composited)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: dtype {image.dtype}; expected uint8 pixels in [0, 255]")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"{name}: shape {image.shape}; expected (H, W) or (H, W, C) with C in 1..4")
    c = image.shape[2]
    if c in (1, 2):
        return np.repeat(image[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _size_hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(s) for s in size)
    return h, w


def smallest_max_size_shape(h: int, w: int, smallest_max_size: int) -> tuple[int, int]:
    """(new_h, new_w) of albumentations SmallestMaxSize (round half to even)."""
    scale = smallest_max_size / float(min(w, h))
    if scale == 1.0:
        return h, w
    return round(h * scale), round(w * scale)  # Python round: half to even, = albumentations' py3round


def preprocess_image(image: np.ndarray, *, size, smallest_max_size: int | None = None, random_crop: bool = False,
                     horizon_flip: bool = False, rng: np.random.Generator | None = None,
                     name: str = "image") -> np.ndarray:
    """SimplePreprocessor(size, random_crop, horizon_flip, smallest_max_size) on a uint8 image.

    `size` is an int or (h, w); `smallest_max_size` defaults to min(size), as in the original.
    Returns float32 (h, w, 3) in [0, 255]. `rng` is required when random_crop or horizon_flip."""
    ch, cw = _size_hw(size)
    if ch <= 0 or cw <= 0:
        raise ValueError(f"preprocess size {size!r}: must be positive")
    sms = min(ch, cw) if smallest_max_size is None else int(smallest_max_size)
    if (random_crop or horizon_flip) and rng is None:
        raise ValueError("preprocess_image: random_crop/horizon_flip need an explicit numpy Generator `rng`")
    img = to_rgb_uint8(image, name).astype(np.float32)
    h, w = img.shape[:2]
    nh, nw = smallest_max_size_shape(h, w, sms)
    if (nh, nw) != (h, w):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    if h < ch or w < cw:
        raise ValueError(f"{name}: {w}x{h} after SmallestMaxSize({sms}) is smaller than the crop {cw}x{ch}; "
                         f"smallest_max_size must be >= the crop size")
    if random_crop:
        u_h, u_w = rng.random(), rng.random()
        top, left = int((h - ch) * u_h), int((w - cw) * u_w)
    else:
        top, left = (h - ch) // 2, (w - cw) // 2
    img = img[top:top + ch, left:left + cw]
    if horizon_flip and rng.random() < 0.5:
        img = img[:, ::-1]
    return np.ascontiguousarray(img, dtype=np.float32)


def preprocess_from_config(image: np.ndarray, cfg, rng: np.random.Generator | None = None,
                           name: str = "image") -> np.ndarray:
    """`preprocess_image` with the keys of `config.data.train_preprocess` / `eval_preprocess`
    (size, smallest_max_size, random_crop, horizon_flip)."""
    get = (lambda k, d=None: cfg[k] if k in cfg else d) if (isinstance(cfg, Mapping) or hasattr(cfg, "keys")) \
        else (lambda k, d=None: getattr(cfg, k, d))
    if get("size") is None:
        raise ValueError("preprocess config: missing 'size'")
    return preprocess_image(image, size=get("size"), smallest_max_size=get("smallest_max_size"),
                            random_crop=bool(get("random_crop", False)), horizon_flip=bool(get("horizon_flip", False)),
                            rng=rng, name=name)
