"""Pixel metrics: SSIM (three named variants), PSNR, L1 / MAE, as the originals' scripts compute them.

All functions take uint8 RGB images, one (H, W, 3) or a batch (N, H, W, 3), and return a float
or an (N,) float64 array. Everything is computed in float64 numpy (scikit-image's precision).

Which variant is which (fixtures/README.md, "SSIM / PSNR / MAE"):

- PUT `scripts/metrics/cal_psnr.py` measures on GRAYSCALE (`cv2.cvtColor(RGB2GRAY)`, see
  `rgb_to_gray`): `ssim_put` (skimage, UNIFORM 51x51 window, data_range 255, sample covariance,
  25 px border cropped), `psnr_put` (gray / 255, data_range 1), `l1_put` (mean |a - b| / 255),
  `mse_put`, and `mae_put`, which is PUT's RELATIVE "mae": sum |a - b| / sum (a + b).
- LaMa `saicinpainting/evaluation/losses/ssim.py`: `ssim_lama`, RGB / 255, 11x11 Gaussian
  (sigma 1.5) per channel with ZERO padding (the border is averaged too), C1 1e-4, C2 9e-4.
- Wang et al. / scikit-image `structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)` per RGB channel: `ssim_gaussian`.
- `psnr` (RGB, data_range 255) and `mae` (plain mean |a - b| / 255 over RGB).

`ssim_skimage` is the general scikit-image algorithm the named variants are built on.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class ImageQualityError(ValueError):
    """Bad input to a pixel metric."""


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------

def _pair(a, b, *, channels: int | None = 3) -> tuple[np.ndarray, np.ndarray, bool]:
    """-> (a, b) as (N, H, W[, C]) arrays and whether the input was a single image."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ImageQualityError(f"image pair of different shapes: {a.shape} vs {b.shape}")
    base = 2 if channels is None else 3
    if a.ndim not in (base, base + 1) or (channels is not None and a.shape[-1] != channels):
        want = "(H, W)" if channels is None else f"(H, W, {channels})"
        raise ImageQualityError(f"expected images {want} or a batch (N, ...) of them, got shape {a.shape}")
    single = a.ndim == base
    if single:
        a, b = a[None], b[None]
    return a, b, single


def _out(values: list[float], single: bool):
    arr = np.asarray(values, np.float64)
    return float(arr[0]) if single else arr


def _require_uint8(a: np.ndarray, what: str) -> None:
    if a.dtype != np.uint8:
        raise ImageQualityError(f"{what}: expected uint8 images, got {a.dtype}")


def rgb_to_gray(images) -> np.ndarray:
    """OpenCV `cvtColor(RGB2GRAY)` on uint8, bit-exact: (9798 R + 19235 G + 3735 B + 2^14) >> 15.
    (Not round(0.299 R + 0.587 G + 0.114 B), which differs on ~0.13 % of colours.)"""
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.shape[-1] != 3:
        raise ImageQualityError(f"rgb_to_gray: expected uint8 (..., 3) RGB, got {x.dtype} {x.shape}")
    x = x.astype(np.int64)
    return ((9798 * x[..., 0] + 19235 * x[..., 1] + 3735 * x[..., 2] + 16384) >> 15).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Filtering
# ---------------------------------------------------------------------------------------------

def _correlate_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of (H, W) with the 1-D window `w` along both axes."""
    x = sliding_window_view(x, w.size, axis=0) @ w
    return sliding_window_view(x, w.size, axis=1) @ w


def _gaussian_window(sigma: float, radius: int) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _ssim_map_valid(x: np.ndarray, y: np.ndarray, w: np.ndarray, c1: float, c2: float, cov_norm: float):
    mx, my = _correlate_valid(x, w), _correlate_valid(y, w)
    vx = cov_norm * (_correlate_valid(x * x, w) - mx * mx)
    vy = cov_norm * (_correlate_valid(y * y, w) - my * my)
    vxy = cov_norm * (_correlate_valid(x * y, w) - mx * my)
    return ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


# ---------------------------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------------------------

def ssim_skimage(a, b, *, data_range: float, win_size: int | None = None, gaussian_weights: bool = False,
                 sigma: float = 1.5, use_sample_covariance: bool = True, k1: float = 0.01, k2: float = 0.03,
                 channel_axis: bool = False):
    """scikit-image `structural_similarity` (mean SSIM), for (H, W) / (H, W, C) images or batches
    of them (`channel_axis=True`: the last axis holds channels, and the result is their mean).

    Uniform window: `win_size` (default 7). Gaussian: sigma with truncate 3.5, i.e. a window of
    2 * int(3.5 sigma + 0.5) + 1 taps. The SSIM map is averaged after cropping (win_size - 1) / 2
    pixels, which is the region where the window lies inside the image, so the padding mode of
    skimage's filters never matters: only that region is computed here.
    """
    a, b, single = _pair(a, b, channels=None if not channel_axis else np.shape(a)[-1])
    if gaussian_weights:
        radius = int(3.5 * sigma + 0.5)
        w = _gaussian_window(sigma, radius)
        win = 2 * radius + 1
    else:
        win = 7 if win_size is None else int(win_size)
        if win < 3 or win % 2 == 0:
            raise ImageQualityError(f"SSIM win_size must be odd and >= 3, got {win}")
        w = np.full(win, 1.0 / win)
    h, wd = a.shape[1:3]
    if min(h, wd) < win:
        raise ImageQualityError(f"SSIM: images of {h}x{wd} are smaller than the {win}x{win} window")
    np_ = win * win
    cov_norm = np_ / (np_ - 1.0) if use_sample_covariance else 1.0
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    values = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64)):
        if not channel_axis:
            x, y = x[..., None], y[..., None]
        per_channel = [_ssim_map_valid(x[..., c], y[..., c], w, c1, c2, cov_norm).mean()
                       for c in range(x.shape[-1])]
        values.append(float(np.mean(per_channel)))
    return _out(values, single)


def ssim_put(a, b):
    """PUT cal_psnr.py `get_SSIM(full=False, win_size=51)`: skimage SSIM of the OpenCV gray uint8
    images, uniform 51x51 window, data_range 255, K1 0.01, K2 0.03, sample covariance."""
    a, b, single = _pair(a, b)
    _require_uint8(a, "ssim_put")
    v = ssim_skimage(rgb_to_gray(a), rgb_to_gray(b), data_range=255.0, win_size=51)
    return float(v[0]) if single else v


def ssim_gaussian(a, b):
    """Wang et al. settings via scikit-image: per RGB channel, Gaussian sigma 1.5 (11 taps),
    population covariance, data_range 255, 5 px border cropped, mean over channels."""
    a, b, single = _pair(a, b)
    _require_uint8(a, "ssim_gaussian")
    v = ssim_skimage(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                     use_sample_covariance=False, channel_axis=True)
    return float(v[0]) if single else v


def ssim_lama(a, b, window_size: int = 11):
    """LaMa `SSIM(window_size=11, size_average=False)` on RGB / 255: Gaussian window (sigma 1.5)
    per channel, zero padding window_size // 2 (the border is included), C1 1e-4, C2 9e-4,
    mean over C, H, W. LaMa runs it in float32; here float64 (they differ by ~3e-5)."""
    a, b, single = _pair(a, b)
    _require_uint8(a, "ssim_lama")
    r = window_size // 2
    w = _gaussian_window(1.5, r) if window_size % 2 else None
    if w is None:
        raise ImageQualityError(f"ssim_lama: window_size must be odd, got {window_size}")
    values = []
    for x, y in zip(a.astype(np.float64) / 255.0, b.astype(np.float64) / 255.0):
        pad = ((r, r), (r, r))
        maps = [_ssim_map_valid(np.pad(x[..., c], pad), np.pad(y[..., c], pad), w, 1e-4, 9e-4, 1.0)
                for c in range(3)]
        values.append(float(np.mean(maps)))
    return _out(values, single)


# ---------------------------------------------------------------------------------------------
# PSNR, L1, MSE, MAE
# ---------------------------------------------------------------------------------------------

def _psnr_from_mse(mse: float, data_range: float) -> float:
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range ** 2 / mse))


def psnr(a, b, data_range: float = 255.0):
    """skimage `peak_signal_noise_ratio` on uint8 RGB (data_range 255): 10 log10(R^2 / MSE);
    identical images give inf."""
    a, b, single = _pair(a, b)
    _require_uint8(a, "psnr")
    d = a.astype(np.float64) - b.astype(np.float64)
    return _out([_psnr_from_mse(float(np.mean(x * x)), data_range) for x in d], single)


def _gray_unit(a, b, what):
    a, b, single = _pair(a, b)
    _require_uint8(a, what)
    return rgb_to_gray(a).astype(np.float64) / 255.0, rgb_to_gray(b).astype(np.float64) / 255.0, single


def psnr_put(a, b):
    """PUT `get_PSNR(tool='skimage')`: PSNR of gray / 255 with data_range 1 (skimage infers 1 for
    non-negative float images)."""
    x, y, single = _gray_unit(a, b, "psnr_put")
    return _out([_psnr_from_mse(float(np.mean((p - q) ** 2)), 1.0) for p, q in zip(x, y)], single)


def l1_put(a, b):
    """PUT `get_l1_loss`: mean |a - b| of gray / 255 (the plain mean absolute error)."""
    x, y, single = _gray_unit(a, b, "l1_put")
    return _out([float(np.mean(np.abs(p - q))) for p, q in zip(x, y)], single)


def mse_put(a, b):
    """PUT `get_mse_loss`: mean (a - b)^2 of gray / 255."""
    x, y, single = _gray_unit(a, b, "mse_put")
    return _out([float(np.mean((p - q) ** 2)) for p, q in zip(x, y)], single)


def mae_put(a, b):
    """PUT `get_mae` ("mae" in its json): the RELATIVE error sum |a - b| / sum (a + b) of gray / 255.
    Not the mean absolute error (that is `l1_put`, or `mae` for RGB). Two black images give nan."""
    x, y, single = _gray_unit(a, b, "mae_put")
    vals = []
    for p, q in zip(x, y):
        den = float(np.sum(p + q))
        vals.append(float(np.sum(np.abs(p - q))) / den if den > 0 else float("nan"))
    return _out(vals, single)


def mae(a, b):
    """Mean absolute error over RGB, in [0, 1] units: mean |a - b| / 255."""
    a, b, single = _pair(a, b)
    _require_uint8(a, "mae")
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)) / 255.0
    return _out([float(np.mean(x)) for x in d], single)
