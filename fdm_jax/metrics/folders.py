"""Metrics between two folders of images: `python -m fdm_jax.metrics --real DIR --fake DIR`.

Paired metrics (everything except FID) match files by their path relative to the folder, without
the extension (PUT's cal_psnr.py / cal_lpips.py also pair a.png with a.jpg); every real image
needs its fake and vice versa, and a pair must have one size. FID uses every image of each folder
(any sizes: each is resized to 299) and streams its float64 statistics, so no feature matrix is
held. Images are read with PIL `.convert("RGB")`, as the originals do.

Metric names (defaults: fid,lpips,ssim,psnr,mae):

    fid            FID, pytorch-fid / PUT preprocessing (--fid-pipeline nv: fid-helper's)
    lpips          LPIPS v0.1, standard spatial average (--lpips-net vgg|alex; vgg = PUT's)
    lpips_put      LPIPS as PUT's cal_lpips.py reports it (mean of the upsampled map)
    ssim           PUT cal_psnr.py: gray (OpenCV), uniform 51x51 window, data_range 255
    ssim_lama      LaMa: RGB, 11x11 Gaussian (sigma 1.5), zero padding
    ssim_gaussian  Wang et al. / scikit-image Gaussian (sigma 1.5) per RGB channel
    psnr           PUT cal_psnr.py: gray / 255, data_range 1
    psnr_rgb       RGB, data_range 255
    mae            mean |real - fake| / 255 over RGB (the plain mean absolute error)
    l1_put         PUT "l1": mean |real - fake| of gray / 255
    mse_put        PUT "mse": mean (real - fake)^2 of gray / 255
    mae_put        PUT "mae": the RELATIVE error sum |a - b| / sum (a + b) of gray / 255
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

IMAGE_EXTENSIONS = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}
DEFAULT_METRICS = ("fid", "lpips", "ssim", "psnr", "mae")


class FolderError(ValueError):
    """A folder cannot be evaluated (missing, empty, unpaired names, size mismatch, unreadable)."""


def _pixel_metrics() -> dict[str, Callable]:
    from fdm_jax.metrics import image_quality as iq

    return {"ssim": iq.ssim_put, "ssim_lama": iq.ssim_lama, "ssim_gaussian": iq.ssim_gaussian,
            "psnr": iq.psnr_put, "psnr_rgb": iq.psnr, "mae": iq.mae, "l1_put": iq.l1_put,
            "mse_put": iq.mse_put, "mae_put": iq.mae_put}


METRICS = ("fid", "lpips", "lpips_put", "ssim", "ssim_lama", "ssim_gaussian", "psnr", "psnr_rgb", "mae",
           "l1_put", "mse_put", "mae_put")


def list_images(folder: str | Path) -> dict[str, Path]:
    """{relative path without extension: file} of every image under `folder` (recursive)."""
    root = Path(folder)
    if not root.is_dir():
        raise FolderError(f"{root}: no such folder")
    found: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            key = p.relative_to(root).with_suffix("").as_posix()
            if key in found:
                raise FolderError(f"{root}: {found[key].name} and {p.name} have the same name; "
                                  "pairing by name needs one image per name")
            found[key] = p
    if not found:
        raise FolderError(f"{root}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found")
    return found


def pair_images(real: dict[str, Path], fake: dict[str, Path], real_dir, fake_dir) -> list[str]:
    """Sorted names present in both folders; unpaired names are an error listing a few of them."""
    only_real, only_fake = sorted(set(real) - set(fake)), sorted(set(fake) - set(real))
    if only_real or only_fake:
        parts = []
        if only_real:
            parts.append(f"{len(only_real)} in {real_dir} only (e.g. {', '.join(only_real[:3])})")
        if only_fake:
            parts.append(f"{len(only_fake)} in {fake_dir} only (e.g. {', '.join(only_fake[:3])})")
        raise FolderError("unpaired images: " + "; ".join(parts) +
                          ". Paired metrics need the same file names in both folders")
    return sorted(real)


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise FolderError(f"{path}: not a readable image ({e})") from None


def _batches(paths: list[Path], batch_size: int) -> Iterable[np.ndarray]:
    """Images in order, grouped into same-size batches of at most `batch_size`."""
    batch: list[np.ndarray] = []
    for p in paths:
        img = read_rgb(p)
        if batch and (len(batch) == batch_size or img.shape != batch[0].shape):
            yield np.stack(batch)
            batch = []
        batch.append(img)
    if batch:
        yield np.stack(batch)


def folder_fid_stats(paths: list[Path], extractor, batch_size: int, desc: str = "FID"):
    from tqdm import tqdm

    from fdm_jax.metrics.fid import FIDStats

    stats = FIDStats(extractor)
    with tqdm(total=len(paths), desc=desc, unit="img") as bar:
        for batch in _batches(paths, batch_size):
            stats.update(batch)
            bar.update(len(batch))
    return stats.result()


def evaluate_folders(real_dir, fake_dir, metrics: Iterable[str] = DEFAULT_METRICS, batch_size: int = 16,
                     fid_pipeline: str = "pytorch_fid", lpips_net: str = "vgg") -> dict:
    """-> {'count', 'metrics': {name: mean}, 'std': {name: std over images}, ...}."""
    metrics = list(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise FolderError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if not metrics:
        raise FolderError("no metrics requested")
    if batch_size < 1:
        raise FolderError(f"--batch-size must be >= 1, got {batch_size}")
    real, fake = list_images(real_dir), list_images(fake_dir)
    result: dict = {"real": str(real_dir), "fake": str(fake_dir), "metrics": {}, "std": {}}

    paired = [m for m in metrics if m != "fid"]
    if paired:
        names = pair_images(real, fake, real_dir, fake_dir)
        result["count"] = len(names)
        result["metrics"].update(_paired_metrics(names, real, fake, paired, batch_size, lpips_net))
        result["std"].update(result["metrics"].pop("__std__"))
    if "fid" in metrics:
        from fdm_jax.metrics.fid import InceptionFeatures, fid_score

        if len(real) < 2 or len(fake) < 2:
            raise FolderError(f"FID needs at least 2 images per folder, found {len(real)} in {real_dir} "
                              f"and {len(fake)} in {fake_dir}")
        extractor = InceptionFeatures(fid_pipeline, batch_size=batch_size)
        s_real = folder_fid_stats([real[k] for k in sorted(real)], extractor, batch_size, "FID real")
        s_fake = folder_fid_stats([fake[k] for k in sorted(fake)], extractor, batch_size, "FID fake")
        result["metrics"]["fid"] = fid_score(s_real, s_fake)
        result["fid_count"] = {"real": s_real.count, "fake": s_fake.count}
        result["fid_pipeline"] = fid_pipeline
    if any(m.startswith("lpips") for m in metrics):
        result["lpips_net"] = lpips_net
    return result


def _paired_metrics(names, real, fake, metrics, batch_size, lpips_net) -> dict:
    from tqdm import tqdm

    pixel = _pixel_metrics()
    values: dict[str, list[float]] = {m: [] for m in metrics}
    params = None
    if "lpips" in metrics or "lpips_put" in metrics:
        from fdm_jax.metrics.lpips import load_lpips

        params = load_lpips(lpips_net)
    with tqdm(total=len(names), desc="paired metrics", unit="img") as bar:
        for start in range(0, len(names), batch_size):
            chunk = names[start:start + batch_size]
            a_list, b_list = [], []
            for n in chunk:
                a, b = read_rgb(real[n]), read_rgb(fake[n])
                if a.shape != b.shape:
                    raise FolderError(f"size mismatch for {n!r}: {real[n]} is {a.shape[1]}x{a.shape[0]}, "
                                      f"{fake[n]} is {b.shape[1]}x{b.shape[0]}")
                a_list.append(a)
                b_list.append(b)
            for a_group, b_group in _same_size_groups(a_list, b_list):
                for m in metrics:
                    if m in pixel:
                        values[m].extend(np.atleast_1d(pixel[m](a_group, b_group)).tolist())
                    else:
                        from fdm_jax.metrics.lpips import lpips

                        d = lpips(params, a_group, b_group, spatial_mean=(m == "lpips_put"))
                        values[m].extend(np.asarray(d, np.float64).tolist())
            bar.update(len(chunk))
    out = {m: float(np.mean(v)) for m, v in values.items()}
    out["__std__"] = {m: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan for m, v in values.items()}
    return out


def _same_size_groups(a_list, b_list):
    """Consecutive runs of equal-size pairs, as stacked (N, H, W, 3) arrays."""
    start = 0
    for i in range(1, len(a_list) + 1):
        if i == len(a_list) or a_list[i].shape != a_list[start].shape:
            yield np.stack(a_list[start:i]), np.stack(b_list[start:i])
            start = i


def _parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m fdm_jax.metrics", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="folder of ground-truth images")
    ap.add_argument("--fake", required=True, help="folder of generated / inpainted images")
    ap.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                    help=f"comma-separated, from: {', '.join(METRICS)} (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=16, help="images per network call (default: %(default)s)")
    ap.add_argument("--fid-pipeline", default="pytorch_fid", choices=("pytorch_fid", "nv"),
                    help="Inception preprocessing: PUT/pytorch-fid's or fid-helper's (default: %(default)s)")
    ap.add_argument("--lpips-net", default="vgg", choices=("vgg", "alex"), help="LPIPS backbone (default: vgg)")
    ap.add_argument("--json", metavar="OUT", help="also write the results to this JSON file")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    try:
        result = evaluate_folders(args.real, args.fake, metrics, args.batch_size, args.fid_pipeline, args.lpips_net)
    except (FolderError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, value in result["metrics"].items():
        std = result["std"].get(name)
        extra = f"  (std {std:.6g} over {result['count']} images)" if std is not None and not math.isnan(std) else ""
        print(f"{name:14s} {value:.6f}{extra}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, allow_nan=True)
        print(f"written: {args.json}")
    return 0
