"""Hole-ratio buckets and the deterministic assignment of one mask per (bucket, image) (the FDM
paper's Table 1 protocol: small = 20-40 %, large = 40-60 % holes)."""

from __future__ import annotations

import dataclasses
import zlib
from typing import Sequence

import numpy as np


class EvaluationError(ValueError):
    """Bad evaluation input or an output folder that cannot be resumed; the message names it."""


@dataclasses.dataclass(frozen=True)
class Bucket:
    """Hole ratios in (lo, hi], the NVIDIA mask set's own bucket convention (hyudsl/FDM: MASK_RATIO_INDEX
    of image_synthesis/data/image_list_dataset_provided_mask.py)."""

    lo: float
    hi: float
    label: str  # as written, e.g. "0.2-0.4"; also the bucket's folder name

    def contains(self, ratio: float) -> bool:
        return self.lo < ratio <= self.hi

    @property
    def title(self) -> str:
        return f"{_pct(self.lo)}–{_pct(self.hi)} %"


def _pct(v: float) -> str:
    p = round(v * 100, 4)
    return f"{p:g}"


def parse_buckets(text: str) -> tuple[Bucket, ...]:
    """'0.2-0.4,0.4-0.6' -> buckets; each 'lo-hi' with 0 <= lo < hi <= 1."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo_s, sep, hi_s = part.partition("-")
        try:
            if not sep:
                raise ValueError
            lo, hi = float(lo_s), float(hi_s)
        except ValueError:
            raise EvaluationError(f"--buckets: {part!r} is not 'lo-hi' (hole fractions, e.g. 0.2-0.4)") from None
        if not (0.0 <= lo < hi <= 1.0):
            raise EvaluationError(f"--buckets: {part!r} needs 0 <= lo < hi <= 1 (hole fractions, not percent)")
        out.append(Bucket(lo, hi, f"{lo:g}-{hi:g}"))
    if not out:
        raise EvaluationError(f"--buckets: no bucket in {text!r}; expected e.g. {DEFAULT_BUCKETS}")
    labels = [b.label for b in out]
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"--buckets: a bucket is given twice in {text!r}")
    return tuple(out)


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a mask with 1 = known."""
    return float(np.mean(np.asarray(mask) < 0.5))


def assign_masks(masks, buckets: Sequence[Bucket], num_images: int, size: int, seed: int) -> dict[str, list[dict]]:
    """{bucket label: [{'mask_index', 'mask', 'hole_ratio'} for image 0..num_images-1]}.

    The mask files are visited in one seeded random order (numpy PCG64 of SeedSequence([seed,
    'mask'])); each bucket takes, in that order, the first `num_images` masks whose hole ratio at
    `size` (ProvidedMasks.load: INTER_NEAREST, 255 = hole) lies in the bucket. Disjoint buckets
    therefore get disjoint masks, and the first k images get the same masks for any num_images >= k.
    `masks` is a `fdm_jax.data.masks.ProvidedMasks` (or anything with len, name(i), load(i, size))."""
    order = np.random.default_rng(np.random.SeedSequence([int(seed), _MASK_STREAM])).permutation(len(masks))
    ratios: dict[int, float] = {}
    out: dict[str, list[dict]] = {}
    for b in buckets:
        chosen: list[dict] = []
        for k in order:
            k = int(k)
            if k not in ratios:
                ratios[k] = hole_ratio(masks.load(k, size))
            if b.contains(ratios[k]):
                chosen.append({"mask_index": k, "mask": masks.name(k), "hole_ratio": ratios[k]})
                if len(chosen) == num_images:
                    break
        if len(chosen) < num_images:
            raise EvaluationError(f"masks: only {len(chosen)} of the {len(masks)} masks have a hole ratio in "
                                  f"({b.lo:g}, {b.hi:g}] at {size}x{size}; {num_images} are needed (one per image)")
        out[b.label] = chosen
    return out


def unit_key(seed: int, bucket_label: str, index: int):
    """The key of image `index` in a bucket: fold_in(fold_in(key(seed), crc32(label)), index), so it
    does not depend on the batch, the other buckets, or how many images are evaluated."""
    import jax

    k = jax.random.fold_in(jax.random.key(int(seed)), zlib.crc32(bucket_label.encode()))
    return jax.random.fold_in(k, int(index))


DEFAULT_BUCKETS = "0.2-0.4,0.4-0.6"  # FDM Table 1: small = 20-40 %, large = 40-60 % (configs/paris.py reference)


_MASK_STREAM = 0x6D61736B  # 'mask': the mask-assignment stream of a seed
