"""LaMa's random thin / medium / thick masks and its evaluation-set pipeline, bit-identical to the original.

Follows geomagical/lama-with-refiner@d4239d8 (= advimman/lama):
  * saicinpainting/training/data/masks.py: make_random_irregular_mask, make_random_rectangle_mask,
    RandomIrregularMaskGenerator, RandomRectangleMaskGenerator, MixedMaskGenerator (no ramp, no
    inversion: what configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml use);
  * saicinpainting/evaluation/masks/mask.py: propose_random_square_crop;
  * bin/gen_mask_dataset.py: process_images, per image (`process_image`).
Masks are float32 (H, W) with 1 = hole (LaMa polarity); `mask_to_uint8` gives the saved PNG (255 = hole).

Randomness: the original draws everything from numpy's legacy global RandomState; here an explicit
`np.random.RandomState` is passed in and consumed in exactly the same order, so
`RandomState(seed)` reproduces the original after `np.random.seed(seed)` (the files above call
np.random directly). Strokes are rasterised with cv2.line (LINE_8), as in the original. The original's quirks are
kept on purpose (masks.py): max_times + 1 strokes, integer-radian stroke angles (+0.01), end points
clipped to W/H (not W-1/H-1), box sizes up to bbox_max_size inclusive, the crop bounds' off-by-one,
the no-op empty-mask filter, medium/thick masks being either strokes or boxes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class IrregularConfig:
    """RandomIrregularMaskGenerator kwargs (masks.py defaults)."""

    max_angle: int = 4
    max_len: int = 60
    max_width: int = 20
    min_times: int = 0
    max_times: int = 10


@dataclasses.dataclass(frozen=True)
class BoxConfig:
    """RandomRectangleMaskGenerator kwargs (masks.py defaults)."""

    margin: int = 10
    bbox_min_size: int = 30
    bbox_max_size: int = 100
    min_times: int = 0
    max_times: int = 3


@dataclasses.dataclass(frozen=True)
class MixedConfig:
    """MixedMaskGenerator with the irregular and box generators (the only ones the data_gen configs
    enable). A probability of 0 drops that generator, as the original does."""

    irregular_proba: float = 1 / 3
    irregular: IrregularConfig = IrregularConfig()
    box_proba: float = 1 / 3
    box: BoxConfig = BoxConfig()


@dataclasses.dataclass(frozen=True)
class MaskDatasetConfig:
    """A configs/data_gen/*.yaml file (bin/gen_mask_dataset.py, generator_kind 'random')."""

    mask_generator: MixedConfig
    variants_n: int = 2  # masks proposed per image (gen_mask_dataset.py default 2; the yamls: 5)
    max_masks_per_image: int = 1
    out_min_size: int = 256
    handle_small_mode: str = "upscale"  # 'upscale' or 'drop' (evaluation/utils.py SmallMode)
    out_square_crop: bool = True
    crop_min_overlap: float = 1
    max_tamper_area: float = 1.0  # gen_mask_dataset.py: config.get('max_tamper_area', 1)

    @classmethod
    def from_original(cls, cfg: Mapping[str, Any]) -> "MaskDatasetConfig":
        """From the original yaml's dict; anything this port does not implement is a ValueError."""
        if cfg.get("generator_kind", "random") != "random":
            raise ValueError(f"mask config: generator_kind {cfg.get('generator_kind')!r} is not supported "
                             "(only 'random')")
        kw = dict(cfg.get("mask_generator_kwargs", {}))
        variants_n = kw.pop("variants_n", 2)
        defaults = {"segm_proba": 1 / 3, "squares_proba": 0, "superres_proba": 0, "outpainting_proba": 0,
                    "invert_proba": 0}
        for name, default in defaults.items():
            if float(kw.pop(name, default)) > 0:
                raise ValueError(f"mask config: {name} > 0 is not supported (only irregular and box masks)")
        for name in ("segm_kwargs", "squares_kwargs", "superres_kwargs", "outpainting_kwargs"):
            kw.pop(name, None)
        irr, box = dict(kw.pop("irregular_kwargs", None) or {}), dict(kw.pop("box_kwargs", None) or {})
        for part, d in (("irregular_kwargs", irr), ("box_kwargs", box)):
            if d.pop("ramp_kwargs", None) is not None:
                raise ValueError(f"mask config: {part}.ramp_kwargs is not supported (no ramp: coef = 1)")
            if d.pop("draw_method", "line") not in ("line", "LINE"):
                raise ValueError(f"mask config: {part}.draw_method must be 'line'")
        mixed = MixedConfig(irregular_proba=kw.pop("irregular_proba", 1 / 3), irregular=IrregularConfig(**irr),
                            box_proba=kw.pop("box_proba", 1 / 3), box=BoxConfig(**box))
        if kw:
            raise ValueError(f"mask config: unknown mask_generator_kwargs {sorted(kw)}")
        crop = dict(cfg.get("cropping", {}))
        return cls(mask_generator=mixed, variants_n=variants_n,
                   max_masks_per_image=cfg.get("max_masks_per_image", 1),
                   out_min_size=crop["out_min_size"], handle_small_mode=crop.get("handle_small_mode", "upscale"),
                   out_square_crop=crop.get("out_square_crop", True),
                   crop_min_overlap=crop.get("crop_min_overlap", 1),
                   max_tamper_area=cfg.get("max_tamper_area", 1))


def _randint(rng: np.random.RandomState, *args) -> int:
    return int(rng.randint(*args))


def random_irregular_mask(rng: np.random.RandomState, shape: tuple[int, int], max_angle: int, max_len: int,
                          max_width: int, min_times: int, max_times: int) -> np.ndarray:
    """masks.py make_random_irregular_mask (draw_method LINE): strokes of 1..5 straight segments."""
    height, width = shape
    mask = np.zeros((height, width), np.float32)
    times = _randint(rng, min_times, max_times + 1)
    for i in range(times):
        start_x = _randint(rng, width)
        start_y = _randint(rng, height)
        for _ in range(1 + _randint(rng, 5)):
            angle = 0.01 + _randint(rng, max_angle)  # integer radians, as the original
            if i % 2 == 0:
                angle = 2 * 3.1415926 - angle
            length = 10 + _randint(rng, max_len)
            brush_w = 5 + _randint(rng, max_width)
            # float64 product, truncation toward zero (astype int32), then clip to [0, W] / [0, H].
            end_x = int(np.clip(np.int32(start_x + length * np.sin(angle)), 0, width))
            end_y = int(np.clip(np.int32(start_y + length * np.cos(angle)), 0, height))
            cv2.line(mask, (start_x, start_y), (end_x, end_y), 1.0, brush_w)
            start_x, start_y = end_x, end_y
    return mask


def random_rectangle_mask(rng: np.random.RandomState, shape: tuple[int, int], margin: int, bbox_min_size: int,
                          bbox_max_size: int, min_times: int, max_times: int) -> np.ndarray:
    """masks.py make_random_rectangle_mask: `times` filled axis-aligned boxes."""
    height, width = shape
    mask = np.zeros((height, width), np.float32)
    bbox_max_size = min(bbox_max_size, height - margin * 2, width - margin * 2)
    times = _randint(rng, min_times, max_times + 1)
    for _ in range(times):
        box_width = _randint(rng, bbox_min_size, bbox_max_size)
        box_height = _randint(rng, bbox_min_size, bbox_max_size)
        start_x = _randint(rng, margin, width - margin - box_width + 1)
        start_y = _randint(rng, margin, height - margin - box_height + 1)
        mask[start_y:start_y + box_height, start_x:start_x + box_width] = 1
    return mask


@dataclasses.dataclass(frozen=True)
class _Generator:
    name: str
    config: Any

    def __call__(self, rng: np.random.RandomState, shape: tuple[int, int]) -> np.ndarray:
        c = self.config
        if self.name == "irregular":  # RandomIrregularMaskGenerator.__call__ with coef = 1
            return random_irregular_mask(rng, shape, c.max_angle, int(max(1, c.max_len)), int(max(1, c.max_width)),
                                         c.min_times, int(c.min_times + 1 + (c.max_times - c.min_times)))
        # RandomRectangleMaskGenerator.__call__ with coef = 1
        return random_rectangle_mask(rng, shape, c.margin, c.bbox_min_size,
                                     int(c.bbox_min_size + 1 + (c.bbox_max_size - c.bbox_min_size)), c.min_times,
                                     int(c.min_times + (c.max_times - c.min_times)))


class MixedMaskGenerator:
    """masks.py MixedMaskGenerator: one generator per call, chosen with rng.choice over the float32
    probabilities normalised in float32 (this draws one double even with a single generator)."""

    def __init__(self, config: MixedConfig):
        gens, probas = [], []
        if config.irregular_proba > 0:
            gens.append(_Generator("irregular", config.irregular))
            probas.append(config.irregular_proba)
        if config.box_proba > 0:
            gens.append(_Generator("box", config.box))
            probas.append(config.box_proba)
        if not gens:
            raise ValueError("MixedMaskGenerator: irregular_proba and box_proba are both 0")
        self.generators = gens
        self.probas = np.array(probas, dtype="float32")
        self.probas /= self.probas.sum()

    def __call__(self, rng: np.random.RandomState, shape: tuple[int, int], return_kind: bool = False):
        """A (H, W) float32 mask, 1 = hole; with return_kind also the generator's index."""
        kind = int(rng.choice(len(self.probas), p=self.probas))
        mask = self.generators[kind](rng, tuple(int(s) for s in shape))
        return (mask, kind) if return_kind else mask


def propose_random_square_crop(mask: np.ndarray, rng: np.random.RandomState,
                               min_overlap: float = 0.5) -> tuple[int, int, int, int]:
    """mask.py propose_random_square_crop: (left, top, right, bottom) of a side-min(H, W) square,
    pushed towards the last hole column (row) by min_overlap. Square inputs still draw once."""
    height, width = mask.shape
    mask_ys, mask_xs = np.where(mask > 0.5)
    if mask_xs.size == 0:
        raise ValueError("propose_random_square_crop: the mask has no hole pixel (> 0.5)")
    if float(min_overlap).is_integer():
        min_overlap = int(min_overlap)  # the yamls give 1: integer arithmetic, as the original
    if height < width:
        crop_size = height
        obj_left, obj_right = mask_xs.min(), mask_xs.max()
        obj_width = obj_right - obj_left
        left_border = max(0, min(width - crop_size - 1, obj_left + obj_width * min_overlap - crop_size))
        right_border = max(left_border + 1, min(width - crop_size, obj_left + obj_width * min_overlap))
        start_x = _randint(rng, left_border, right_border)
        return start_x, 0, start_x + crop_size, height
    crop_size = width
    obj_top, obj_bottom = mask_ys.min(), mask_ys.max()
    obj_height = obj_bottom - obj_top
    top_border = max(0, min(height - crop_size - 1, obj_top + obj_height * min_overlap - crop_size))
    bottom_border = max(top_border + 1, min(height - crop_size, obj_top + obj_height * min_overlap))
    start_y = _randint(rng, top_border, bottom_border)
    return 0, start_y, width, start_y + crop_size


def resized_size(height: int, width: int, out_min_size: int) -> tuple[int, int]:
    """gen_mask_dataset.py: (np.array(PIL size) * out_min_size / min(size)).round() -> (H, W)."""
    factor = out_min_size / min(height, width)
    w, h = (np.array((width, height)) * factor).round().astype("uint32")
    return int(h), int(w)


def process_image(image: np.ndarray, config: MaskDatasetConfig,
                  rng: np.random.RandomState) -> list[tuple[np.ndarray, np.ndarray]]:
    """bin/gen_mask_dataset.py process_images for one RGB uint8 (H, W, 3) image.

    Resizes (PIL BICUBIC) so the short side is out_min_size, proposes variants_n masks, square-crops
    each, drops those covering more than max_tamper_area and keeps max_masks_per_image of the rest
    (rng.choice without replacement). Returns [(image crop uint8 (S, S, 3), mask crop float32 (S, S))];
    an empty list where the original saves nothing (a dropped small image, every variant too large, or
    an all-known mask, on which the original's crop raises and the image is skipped).
    """
    from PIL import Image  # Pillow comes with scikit-image; only this pipeline needs it

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"process_image: expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if config.handle_small_mode not in ("upscale", "drop"):
        raise ValueError(f"handle_small_mode must be 'upscale' or 'drop', got {config.handle_small_mode!r}")
    pil = Image.fromarray(image)
    if min(pil.size) < config.out_min_size and config.handle_small_mode == "drop":
        return []
    h, w = resized_size(image.shape[0], image.shape[1], config.out_min_size)
    pil = pil.resize((w, h), resample=Image.BICUBIC)
    gen = MixedMaskGenerator(config.mask_generator)
    masks = [gen(rng, (h, w)) for _ in range(config.variants_n)]  # MakeManyMasksWrapper.get_masks
    pairs = []
    for mask in masks:
        if config.out_square_crop:
            try:
                left, top, right, bottom = propose_random_square_crop(mask, rng, config.crop_min_overlap)
            except ValueError:
                return []  # the original's exception handler skips the whole image
            mask = mask[top:bottom, left:right]
            crop = np.asarray(pil.crop((left, top, right, bottom)))
        else:
            crop = np.asarray(pil)
        if len(np.unique(mask)) == 0 or mask.mean() > config.max_tamper_area:
            continue
        pairs.append((crop, mask))
    chosen = rng.choice(len(pairs), size=min(len(pairs), config.max_masks_per_image), replace=False)
    return [pairs[i] for i in chosen]


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """The saved mask PNG: np.clip(mask * 255, 0, 255).astype('uint8') (255 = hole)."""
    return np.clip(mask * 255, 0, 255).astype("uint8")
