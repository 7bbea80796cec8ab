"""LPIPS diversity of pluralistic inpainting: how different the samples of one masked input are.

    diversity = mean over inputs k and unordered sample pairs i < j of LPIPS(sample_ki, sample_kj)

FDM's repository ships no metric script; the score follows PUT's `scripts/metrics/cal_lpips.py
--type diversity` (LPIPS-VGG by default), whose expectation this all-pairs mean is. PUT itself
draws `loops` (default 5) random distinct pairs per input (`put_random_pairs`) and averages the
`spatial=True` mean LPIPS over all drawn pairs; `diversity_from_pairs` reproduces such a draw.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from fdm_jax.metrics.lpips import LPIPSError, lpips_layers_both


@dataclasses.dataclass(frozen=True)
class DiversityResult:
    score: float  # mean over all inputs and all unordered pairs (every pair weighted equally)
    per_image: np.ndarray  # (K,) all-pairs mean per input
    pairs: np.ndarray  # (K, S, S) symmetric LPIPS matrix, zero diagonal (float32, as computed)


def _as_groups(samples) -> np.ndarray:
    s = np.asarray(samples)
    if s.ndim == 4:
        s = s[None]
    if s.ndim != 5 or s.shape[-1] != 3:
        raise LPIPSError(f"diversity: expected samples (K inputs, S samples, H, W, 3) or (S, H, W, 3), "
                         f"got shape {s.shape}")
    if s.shape[1] < 2:
        raise LPIPSError(f"diversity: needs at least 2 samples per input, got {s.shape[1]}")
    return s


def pairwise_lpips_both(params: dict, samples) -> tuple[np.ndarray, np.ndarray]:
    """(standard, PUT spatial-mean) (K, S, S) LPIPS matrices between every two samples of each
    input (uint8, or float in [-1, 1]), from one network pass per pair."""
    s = _as_groups(samples)
    k, n = s.shape[:2]
    i, j = np.triu_indices(n, k=1)
    out = np.zeros((2, k, n, n), np.float32)
    for g in range(k):
        for c, layers in enumerate(lpips_layers_both(params, s[g, i], s[g, j])):
            d = np.asarray(layers.sum(axis=-1))
            out[c, g, i, j] = d
            out[c, g, j, i] = d  # LPIPS is symmetric: (n(a) - n(b))^2 == (n(b) - n(a))^2 exactly
    return out[0], out[1]


def pairwise_lpips(params: dict, samples, *, spatial_mean: bool = False) -> np.ndarray:
    """(K, S, S) LPIPS between every two samples of each input (zero diagonal)."""
    return pairwise_lpips_both(params, samples)[1 if spatial_mean else 0]


def diversity_from_matrix(pairs: np.ndarray) -> DiversityResult:
    """All-pairs means of a (K, S, S) pair matrix (upper triangle), in float64."""
    n = pairs.shape[1]
    i, j = np.triu_indices(n, k=1)
    values = pairs[:, i, j].astype(np.float64)  # (K, S(S-1)/2)
    return DiversityResult(float(values.mean()), values.mean(axis=1), pairs)


def diversity(params: dict, samples, *, spatial_mean: bool = False) -> DiversityResult:
    """LPIPS diversity of (K, S, H, W, 3) samples (or (S, H, W, 3) for one input).

    `params` from `load_lpips('vgg')` (PUT's default) or `load_lpips('alex')`. spatial_mean=True
    uses PUT's per-pair convention (mean of the upsampled LPIPS map)."""
    return diversity_from_matrix(pairwise_lpips(params, samples, spatial_mean=spatial_mean))


def put_random_pairs(num_samples: int, loops: int = 5, rng: random.Random | None = None) -> list[tuple[int, int]]:
    """The pairs PUT's cal_lpips.py draws for one input: `loops` times
    `tuple(sorted(rng.sample(range(num_samples), 2)))`, redrawn while already drawn (PUT skips
    folders with <= 2 files). `rng` is a `random.Random` (PUT uses the global `random` module)."""
    rng = rng or random.Random()
    if num_samples <= 2:
        return []
    max_pairs = num_samples * (num_samples - 1) // 2
    if loops > max_pairs:
        raise ValueError(f"put_random_pairs: {loops} distinct pairs requested, only {max_pairs} exist")
    index = list(range(num_samples))
    drawn: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for _ in range(loops):
        pair = tuple(sorted(rng.sample(index, 2)))
        while pair in seen:
            pair = tuple(sorted(rng.sample(index, 2)))
        seen.add(pair)
        drawn.append(pair)
    return drawn


def diversity_from_pairs(pairs_matrix: np.ndarray, drawn) -> float:
    """Mean of `pairs_matrix[k, i, j]` over the drawn (K, P, 2) pairs (PUT's overall_mean)."""
    drawn = np.asarray(drawn)
    k = np.arange(drawn.shape[0])[:, None]
    return float(pairs_matrix[k, drawn[..., 0], drawn[..., 1]].astype(np.float64).mean())
