"""The original's training masks, bit for bit (fixture shared/fixtures/put_fdm/masks_put.npz).

Three generators of hyudsl/FDM@3d3c30fd (copies of liuqk3/PUT@cvpr2022):

* `stroke_mask`: data/utils/util.py:generate_stroke_mask (free-form strokes; **the strokes are the
  known pixels**, so keep_ratio (0, 0.5) leaves 50-100 % missing), incl. fill_small_holes twice.
* `image_list_mask`: data/image_list_dataset.py:get_mask (phase 1 and the transformer): a provided
  mask with probability `provided_mask_prob`, else a stroke mask; then zero_mask / mask_low_to_high.
* `provided_dataset_mask`: data/image_list_dataset_provided_mask.py:get_mask (phases 2 and 3):
  always a uniformly drawn provided mask.

The original draws from the global `random` and `np.random` modules. Here every draw goes through
an explicit `MaskRNG` (a `random.Random` and a `np.random.RandomState` seeded with the same value),
which yields the same streams as `random.seed(s); np.random.seed(s)`. The cv2 calls are the
original's: rasterisation is part of the result, so it is not re-implemented.

`training_masks` is the entry point of the training pipeline: both masks of one example as a pure
function of (seed, epoch, index), driven by `config.masks.<phase>`.

Masks are float32 with 1 = known pixel. Provided mask files use 255 = hole (NVIDIA convention).
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "MaskRNG", "ProvidedMasks", "fill_small_holes", "free_form_mask", "image_list_mask", "mask_seed",
    "provided_dataset_mask", "stroke_mask", "training_masks",
]

# Distinguishes the mask stream from the other per-example streams derived from (seed, epoch, index).
_MASK_STREAM = 0x6D61736B  # 'mask'


def _hw(size) -> tuple[int, int]:
    """int or (H, W) -> (H, W), with a clear error for anything else."""
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        try:
            h, w = (int(s) for s in size)
        except (TypeError, ValueError):
            raise ValueError(f"mask size {size!r}: expected an int or a (height, width) pair") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"mask size {size!r}: height and width must be positive")
    return h, w


@dataclasses.dataclass
class MaskRNG:
    """The two random streams of the original data code: Python `random` and numpy's legacy global
    RandomState. `MaskRNG.from_seed(s)` equals `random.seed(s); np.random.seed(s)` (both MT19937)."""

    py: random.Random
    np: np.random.RandomState

    @classmethod
    def from_seed(cls, seed: int) -> "MaskRNG":
        seed = int(seed)
        if not 0 <= seed < 2**32:
            raise ValueError(f"mask seed {seed}: expected an integer in [0, 2**32)")
        return cls(random.Random(seed), np.random.RandomState(seed))


def mask_seed(seed: int, epoch: int, index: int) -> int:
    """The per-example mask seed: the first 32-bit word of numpy's
    `SeedSequence([seed, epoch, index, 0x6D61736B])` (the last entry tags the mask stream).

    SeedSequence hashes its whole entropy, so nearby (seed, epoch, index) triples give unrelated
    seeds, and the masks of an example are a pure function of the triple (exact resume)."""
    for name, v in (("seed", seed), ("epoch", epoch), ("index", index)):
        if int(v) != v or v < 0:
            raise ValueError(f"mask_seed: {name}={v!r} must be a non-negative integer")
    ss = np.random.SeedSequence([int(seed), int(epoch), int(index), _MASK_STREAM])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# ---------------------------------------------------------------------------------------------
# Stroke masks, data/utils/util.py
# ---------------------------------------------------------------------------------------------
def free_form_mask(rngs: MaskRNG, h: int, w: int, *, maxVertex, maxLength, maxBrushWidth, maxAngle,
                   minVertex=1, minBrushWidth=10, maxRectangle=0, minRectangle=0,
                   maxRectangleRatio=0.7, minRectangleRatio=0.1) -> np.ndarray:
    """util.py:np_free_form_mask: one polyline with value 1 (plus optional zero rectangles), (h, w, 1)."""
    mask = np.zeros((h, w, 1), np.float32)
    num_vertex = rngs.np.randint(minVertex, maxVertex + 1)
    start_y = rngs.np.randint(h)
    start_x = rngs.np.randint(w)
    for i in range(num_vertex):
        # The same float expressions as the original, so end points match to the last bit.
        angle = rngs.np.randint(maxAngle + 1)
        angle = angle / 360.0 * 2 * np.pi
        if i % 2 == 0:
            angle = 2 * np.pi - angle
        length = rngs.np.randint(maxLength + 1)
        brush_width = rngs.np.randint(minBrushWidth, maxBrushWidth + 1) // 2 * 2
        next_y = start_y + length * np.cos(angle)
        next_x = start_x + length * np.sin(angle)
        next_y = int(np.maximum(np.minimum(next_y, h - 1), 0).astype(int))  # truncation, as astype(np.int)
        next_x = int(np.maximum(np.minimum(next_x, w - 1), 0).astype(int))
        cv2.line(mask, (int(start_x), int(start_y)), (next_x, next_y), 1, brush_width)
        cv2.circle(mask, (int(start_x), int(start_y)), brush_width // 2, 2)  # 1-px outline, value 2 (clipped below)
        start_y, start_x = next_y, next_x
    # Drawn even with maxRectangle = 0: random.randint(0, 0) still consumes a draw.
    num_rectangles = rngs.py.randint(minRectangle, maxRectangle)
    for _ in range(num_rectangles):
        rw = rngs.py.randint(int(w * minRectangleRatio), int(w * maxRectangleRatio))
        rh = rngs.py.randint(int(h * minRectangleRatio), int(h * maxRectangleRatio))
        x1 = rngs.py.randint(0, w - rw)
        y1 = rngs.py.randint(0, h - rh)
        mask[y1:y1 + rh, x1:x1 + rw, :] = 0
    return np.minimum(mask, 1.0)


def fill_small_holes(mask: np.ndarray, fill_value=1, area_threshold=64, keep_topk=-1) -> np.ndarray:
    """util.py:fill_small_holes for (H, W) or (H, W, 1) masks: every contour (cv2.RETR_TREE) with
    cv2.contourArea < area_threshold, or outside the keep_topk largest, is filled with fill_value."""
    if mask.ndim == 2:
        plane = mask
    elif mask.ndim == 3 and mask.shape[-1] == 1:
        plane = mask[:, :, 0]
    else:
        raise ValueError(f"fill_small_holes: mask of shape {mask.shape}; expected (H, W) or (H, W, 1)")
    find = plane.astype(np.uint8)
    out = plane.astype(np.uint8)
    contours, _ = cv2.findContours(find.astype(bool).astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)
    if keep_topk > 0 and len(contours) > 1:
        keep_topk = min(keep_topk, len(contours) - 1)
        areas = [cv2.contourArea(c) for c in contours]
        keep = set(np.argsort(areas).tolist()[-keep_topk:])
    else:
        keep = set(range(len(contours)))
    for i, c in enumerate(contours):
        if cv2.contourArea(c) < area_threshold or i not in keep:
            cv2.fillConvexPoly(out, c, fill_value)
    out = out.astype(mask.dtype)
    return out[:, :, None] if mask.ndim == 3 else out


def stroke_mask(rngs: MaskRNG, size, *, maxVertex=25, minVertex=1, maxLength=100, maxBrushWidth=24,
                minBrushWidth=10, keep_ratio=None, min_area=64, maxAngle=360, keep_topk=-1,
                maxRectangle=0, minRectangle=0, maxRectangleRatio=0.8, minRectangleRatio=0.1,
                max_parts=5, min_parts=1) -> np.ndarray:
    """util.py:generate_stroke_mask -> (H, W) float32 {0, 1}, **1 = known** (the strokes).

    Defaults are the original function's; the Paris/Places values are `stroke_mask_params()` in
    configs/put_fdm_common.py. With keep_ratio (lo, hi): r ~ U(lo, hi) (Python random), then strokes
    until the fraction of ones reaches r. Without: U{min_parts..max_parts} strokes."""
    h, w = _hw(size)
    kw = dict(maxVertex=maxVertex, maxLength=maxLength, maxBrushWidth=maxBrushWidth, maxAngle=maxAngle,
              minVertex=minVertex, minBrushWidth=minBrushWidth, maxRectangle=maxRectangle,
              minRectangle=minRectangle, maxRectangleRatio=maxRectangleRatio,
              minRectangleRatio=minRectangleRatio)
    if minVertex > maxVertex or minBrushWidth > maxBrushWidth:
        raise ValueError(f"stroke_mask: need minVertex <= maxVertex and minBrushWidth <= maxBrushWidth, got {kw}")
    mask = np.zeros((h, w, 1), dtype=np.float32)
    if keep_ratio is None:
        for _ in range(rngs.py.randint(min_parts, max_parts)):
            mask = mask + free_form_mask(rngs, h, w, **kw)
    else:
        if not (isinstance(keep_ratio, Sequence) and len(keep_ratio) == 2
                and 0 <= keep_ratio[0] < keep_ratio[1] <= 1.0):
            raise ValueError(f"stroke_mask: keep_ratio {keep_ratio!r}; expected (lo, hi) with 0 <= lo < hi <= 1")
        target = rngs.py.uniform(keep_ratio[0], keep_ratio[1])
        # float32 sum / int, compared with a Python float: the original's expression and precision.
        while np.sum((mask > 0).astype(np.float32)) / (h * w) < target:
            mask = mask + free_form_mask(rngs, h, w, **kw)
    mask = np.minimum(mask, 1.0)
    mask = fill_small_holes(mask, fill_value=1, area_threshold=min_area)
    mask = fill_small_holes(mask, fill_value=1, area_threshold=min_area, keep_topk=keep_topk)
    return mask[:, :, 0]


# ---------------------------------------------------------------------------------------------
# Provided (NVIDIA irregular) masks
# ---------------------------------------------------------------------------------------------
class ProvidedMasks:
    """The provided hole masks: the `.png` files under `folder` (recursive), sorted by path, sliced
    `[start:end]` like the original's `use_provided_mask_ratio` (data/image_list_dataset.py:
    MASK_RATIO_INDEX, or `provided_mask_file_range` in configs/put_fdm_common.py).

    Files are 8-bit, 255 = hole. `load(i, size)` returns (H, W) float32, 1 = known."""

    def __init__(self, folder: str | os.PathLike, file_range: tuple[int, int] | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"provided mask folder {self.folder}: no such directory")
        # The original collects with os.walk + endswith('.png') and sorts the absolute paths.
        paths = sorted(str(Path(root) / f) for root, _, files in os.walk(self.folder)
                       for f in files if f.endswith(".png"))
        if not paths:
            raise ValueError(f"provided mask folder {self.folder}: no .png mask files found")
        self.num_files = len(paths)
        if file_range is not None:
            start, end = (int(v) for v in file_range)
            paths = paths[start:end]
            if not paths:
                raise ValueError(f"provided mask folder {self.folder}: file range [{start}:{end}] is empty "
                                 f"(the folder holds {self.num_files} .png files)")
        self.file_range = None if file_range is None else (start, end)
        self.paths = tuple(paths)

    @classmethod
    def from_config(cls, folder, mask_cfg) -> "ProvidedMasks":
        """Uses `mask_cfg.provided_mask_file_range` (a `config.masks.<phase>`)."""
        rng = mask_cfg["provided_mask_file_range"] if "provided_mask_file_range" in mask_cfg else None
        return cls(folder, None if rng is None else tuple(rng))

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, i: int) -> str:
        return os.path.relpath(self.paths[i], self.folder)

    def load(self, i: int, size) -> np.ndarray:
        """Mask i at `size` (int or (H, W)): PIL -> RGB -> uint8 -> float32 (ImagePaths), cv2.resize
        INTER_NEAREST to (W, H), 1 - m/255, channel 0. -> (H, W) float32, 1 = known."""
        h, w = _hw(size)
        if not 0 <= i < len(self.paths):
            raise IndexError(f"provided mask index {i} out of range [0, {len(self.paths)})")
        path = self.paths[i]
        try:
            with Image.open(path) as im:
                im = im if im.mode == "RGB" else im.convert("RGB")
                m = np.array(im).astype(np.uint8)
        except (OSError, ValueError, SyntaxError) as e:
            raise ValueError(f"provided mask {path}: not a readable image ({e})") from None
        _check_binary(m, path)
        m = m.astype(np.float32)[:, :, 0]  # nearest resizing acts per channel, so channel 0 first is equal
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
        return (1 - m / 255.0).astype(np.float32)


MAX_GREY_SHARE = 0.05  # binary masks saved with antialiased edges stay well below this


def _check_binary(m: np.ndarray, path) -> None:
    """A photo in the mask folder would otherwise be read as a soft mask (1 - grey/255) without a word:
    masks must be black and white (every channel equal, almost every pixel 0 or 255)."""
    c = m.astype(np.int16)
    if np.abs(c[..., 1:] - c[..., :1]).max(initial=0) > 8:
        raise ValueError(f"provided mask {path}: a colour image, not a mask; expected a black-and-white PNG "
                         "(255 = hole)")
    grey = float(np.mean((m[..., 0] > 8) & (m[..., 0] < 247)))
    if grey > MAX_GREY_SHARE:
        raise ValueError(f"provided mask {path}: {grey:.0%} of the pixels are grey, not a binary mask; expected "
                         "a black-and-white PNG (255 = hole)")


# ---------------------------------------------------------------------------------------------
# Dataset get_mask functions
# ---------------------------------------------------------------------------------------------
def _cfg(cfg, key, default=None):
    if isinstance(cfg, Mapping) or hasattr(cfg, "keys"):
        return cfg[key] if key in cfg else default
    return getattr(cfg, key, default)


def _stroke_params(mask_cfg) -> dict:
    p = _cfg(mask_cfg, "stroken_mask_params")
    if p is None:
        # image_list_dataset.get_mask's fallback when the YAML gives none.
        return {"max_parts": 15, "maxVertex": 25, "maxLength": 100, "maxBrushWidth": 24}
    p = p.to_dict() if hasattr(p, "to_dict") else dict(p)
    if isinstance(p.get("keep_ratio"), list):
        p["keep_ratio"] = tuple(p["keep_ratio"])
    return p


def _provided_or_stroke(rngs, size, mask_cfg, provided, prob) -> tuple[np.ndarray, int]:
    # `self.masks is not None and random.random() < p`: no draw at all without provided masks.
    if provided is not None and rngs.py.random() < prob:
        index = rngs.py.randint(0, len(provided) - 1)
        return provided.load(index, size)[:, :, None], index
    return stroke_mask(rngs, size, **_stroke_params(mask_cfg))[:, :, None], -1


def image_list_mask(rngs: MaskRNG, size, mask_cfg, provided: ProvidedMasks | None,
                    *, erase: bool = False) -> tuple[np.ndarray, int]:
    """data/image_list_dataset.py:ImageListDataset.get_mask -> ((H, W, 1) float32, provided index or -1).

    Draw order: random() < provided_mask_prob (only when provided masks exist), randint(0, n-1) for
    the file (provided branch) or a stroke mask; then, unless `erase`, random() < zero_mask (mask
    set to 0) and otherwise random() < mask_low_to_high (nearest resize to mask_low_size and back,
    giving 8x8-block masks). Values are returned before __getitem__'s bool cast."""
    h, w = _hw(size)
    prob = float(_cfg(mask_cfg, "provided_mask_prob", 1.0))
    mask, index = _provided_or_stroke(rngs, (h, w), mask_cfg, provided, prob)
    if not erase:
        if rngs.py.random() < float(_cfg(mask_cfg, "zero_mask", 0.0)):
            mask = mask * 0
        elif rngs.py.random() < float(_cfg(mask_cfg, "mask_low_to_high", 0.0)):
            low = _cfg(mask_cfg, "mask_low_size")
            if not (isinstance(low, Sequence) and len(low) == 2):
                raise ValueError(f"mask_low_to_high > 0 needs mask_low_size = (h, w), got {low!r}")
            m = mask[:, :, 0].astype(np.uint8)  # truncates fractional provided-mask values, as the original
            # The original passes mask_low_size straight as a cv2 dsize (w, h), and on the way back
            # passes mask.shape = (h, w) as dsize, which returns a TRANSPOSED (w, h) mask for
            # non-square sizes. Training only uses square sizes; here the way back uses (w, h) so the
            # shape is always right (identical for square sizes).
            m = cv2.resize(m, tuple(int(v) for v in low), interpolation=cv2.INTER_NEAREST)
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
            mask = m[:, :, None].astype(np.float32)
    return mask.astype(np.float32), index


def provided_dataset_mask(rngs: MaskRNG, size, provided: ProvidedMasks | None,
                          mask_cfg=None) -> tuple[np.ndarray, int]:
    """data/image_list_dataset_provided_mask.py:ImageListDataset.get_mask -> ((H, W, 1) float32,
    index). One draw, randint(0, n-1); no zero_mask, low-to-high or erasing. Without provided masks
    the original falls back to a stroke mask (with `mask_cfg.stroken_mask_params`); so does this."""
    if provided is not None:
        index = rngs.py.randint(0, len(provided) - 1)
        return provided.load(index, size)[:, :, None], index
    return stroke_mask(rngs, size, **_stroke_params(mask_cfg or {}))[:, :, None], -1


def training_masks(mask_cfg, *, seed: int, epoch: int, index: int, size,
                   provided: ProvidedMasks | None) -> dict[str, np.ndarray]:
    """Both masks of one training example as a pure function of (seed, epoch, index).

    `mask_cfg` is a `config.masks.<phase>` (configs/paris.py). Returns {'mask': (H, W, 1) float32,
    'erase_mask': (H, W, 1) float32}, 1 = known; 'erase_mask' is all ones when no erasing happened.

    * provided_mask_only (phases 2-3, image_list_dataset_provided_mask): mask = a provided mask
      (float32, as that class returns it); never erased.
    * otherwise (image_list_dataset, phase 1 and the transformer), in __getitem__'s order:
      random() < erase_image_with_mask -> an independent erase mask (provided or stroke; no zero /
      low-to-high; float32); then random() < mask_prob -> the inpainting mask, cast to bool as
      __getitem__ does (any non-zero value -> 1). The original leaves the key out when that draw
      fails; a batch needs it, so the mask is then all ones (nothing missing).

    The original draws the image preprocessing (albumentations) from the same global `random` before
    the masks; here preprocessing has its own stream (`fdm_jax.data.preprocess`), so masks depend
    only on this triple.
    """
    h, w = _hw(size)
    rngs = MaskRNG.from_seed(mask_seed(seed, epoch, index))
    ones = np.ones((h, w, 1), np.float32)
    if bool(_cfg(mask_cfg, "provided_mask_only", False)):
        mask, _ = provided_dataset_mask(rngs, (h, w), provided, mask_cfg)
        return {"mask": mask.astype(np.float32), "erase_mask": ones}
    erase_mask = ones
    if rngs.py.random() < float(_cfg(mask_cfg, "erase_image_with_mask", -1.0)):
        erase_mask, _ = image_list_mask(rngs, (h, w), mask_cfg, provided, erase=True)
    mask = ones
    if rngs.py.random() < float(_cfg(mask_cfg, "mask_prob", 1.0)):
        m, _ = image_list_mask(rngs, (h, w), mask_cfg, provided)
        mask = m.astype(bool).astype(np.float32)
    return {"mask": mask, "erase_mask": erase_mask.astype(np.float32)}
