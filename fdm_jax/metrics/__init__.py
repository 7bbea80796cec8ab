"""Evaluation metrics of PUT / FDM / LaMa, ported from the originals' scripts
(liuqk3/PUT@main:scripts/metrics/cal_{psnr,fid,lpips}.py, geomagical/lama-with-refiner:saicinpainting/evaluation/).

    from fdm_jax.metrics import FIDStats, fid_score, load_lpips, ssim_put, psnr_put, mae
    from fdm_jax.metrics.lpips import lpips
    from fdm_jax.metrics.diversity import diversity

    real, fake = FIDStats(), FIDStats()       # FID Inception, PUT / pytorch-fid preprocessing
    real.update(images_uint8_nhwc)            # any number of batches; float64 streaming stats
    score = fid_score(real.result(), fake.result())
    params = load_lpips("vgg")
    d = lpips(params, a, b)                   # (B,) standard LPIPS; spatial_mean=True: PUT's
    diversity(params, samples).score          # samples (K, S, H, W, 3) per masked input

`fdm_jax.metrics.fid`, `.lpips` and `.diversity` are the submodules (the functions of the same
name live inside them), so `import fdm_jax.metrics.lpips` always yields the module.

Folders: `python -m fdm_jax.metrics --real DIR --fake DIR`.
"""

from fdm_jax.metrics import diversity, fid, image_quality, inception, lpips  # noqa: F401  (modules)
from fdm_jax.metrics.diversity import (DiversityResult, diversity_from_matrix, diversity_from_pairs, pairwise_lpips,
                                       pairwise_lpips_both, put_random_pairs)
from fdm_jax.metrics.fid import (FIDStats, FrechetResult, InceptionFeatures, Statistics, fid_score,
                                 frechet_distance, preprocess, statistics)
from fdm_jax.metrics.image_quality import (l1_put, mae, mae_put, mse_put, psnr, psnr_put, rgb_to_gray,
                                           ssim_gaussian, ssim_lama, ssim_put, ssim_skimage)
from fdm_jax.metrics.inception import FIDInceptionV3, convert_torchscript, load_fid_inception
from fdm_jax.metrics.lpips import LPIPSNet, load_lpips, lpips_layers, lpips_layers_both

__all__ = [
    "DiversityResult", "FIDInceptionV3", "FIDStats", "FrechetResult", "InceptionFeatures", "LPIPSNet", "Statistics",
    "convert_torchscript", "diversity", "diversity_from_matrix", "diversity_from_pairs", "fid", "fid_score", "frechet_distance",
    "image_quality", "inception", "l1_put", "load_fid_inception", "load_lpips", "lpips", "lpips_layers", "lpips_layers_both", "mae",
    "mae_put", "mse_put", "pairwise_lpips", "pairwise_lpips_both", "preprocess", "psnr", "psnr_put", "put_random_pairs", "rgb_to_gray",
    "ssim_gaussian", "ssim_lama", "ssim_put", "ssim_skimage", "statistics",
]
