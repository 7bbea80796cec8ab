"""Evaluation of pluralistic inpainting per hole-ratio bucket, as the papers evaluate (FDM paper, Sec. 4.1).

    model = PutFdmInpainter.from_checkpoints(["runs/demo"])
    source, data_info = open_image_source("../shared/data/images/places2_256_freeform")
    masks = ProvidedMasks("../shared/data/masks/pconv_test")
    results = evaluate(model, source, masks, parse_buckets("0.2-0.4,0.4-0.6"), out_dir="eval/demo",
                       num_samples=5, seed=0, data_info=data_info)

For every bucket (lo, hi] of hole ratios and every image, one NVIDIA/PConv mask whose hole ratio,
MEASURED after the nearest resize to the model size, lies in the bucket is drawn (deterministic in
the seed; `assign_masks`), the model draws `num_samples` completions, and the per-image metrics are
written as they are produced. At the end the per-bucket numbers go to `results.json`, `table.md`
(shaped like Table 1 of the FDM paper) and `grid.png`.

How each number is computed (the conventions of liuqk3/PUT@main:scripts/metrics/cal_*.py; FDM
ships no metric scripts):
  * fake images = the model's own output, truncated to uint8 as the originals save their PNGs.
    PUT+FDM does NOT paste the known pixels back (FDM's inference saves `inpainted_image`, the raw
    decoder output; PUT@cvpr2022's PatchVQGAN has combine_rec_and_gt=False), and the metric scripts
    read those files, so neither does this evaluation unless `paste_known=True`.
  * the fidelity metrics (FID, LPIPS, SSIM, PSNR, MAE) use sample 0 of each image: PUT's
    fidelity evaluation runs one completion per input. The mean over all samples is in results.json.
  * FID: pytorch-fid's Inception (pool3, 2048-d) with PUT's preprocessing (bilinear to 299, any
    input size, e.g. the demo's 64 px), scipy sqrtm; the real set is the same ground-truth images
    (cal_fid.py --share_same_files). Computed at the end from the saved PNGs.
  * LPIPS: VGG (cal_lpips.py's default, not AlexNet), PUT's spatial-mean convention.
  * SSIM, PSNR, MAE: cal_psnr.py on OpenCV grey images: SSIM with a uniform 51x51 window, PSNR of
    grey/255, and PUT's "mae" = sum|a - b| / sum(a + b) (a relative error); `l1` is PUT's plain
    mean |a - b| / 255 of the grey images.
  * diversity: the mean LPIPS-VGG (spatial mean) over all pairs of the samples of each input, the
    expectation of cal_lpips.py --type diversity's random pairs.
  * ground truth: the model's eval preprocessing (SmallestMaxSize + CenterCrop), rounded to uint8.

Resuming: the settings are recorded in `<out>/manifest.json` with the first batch of results and
checked on every run (a mismatch is an error naming it; a run that failed before its first batch
leaves no manifest, so it does not block a corrected rerun); the mask assignment is kept in `masks.json`; every batch's samples (PNG) and
per-image metrics (one JSON line per image in `records.jsonl`) are written as soon as the batch is
done, and a restarted run skips the images already recorded. Batches are fixed chunks of the image
list and every image's random key depends only on (seed, bucket, image index), so an interrupted
and resumed evaluation gives the same files as an uninterrupted one.
"""

from fdm_jax.evaluation.buckets import (DEFAULT_BUCKETS, Bucket, EvaluationError, assign_masks, hole_ratio,
                                        parse_buckets, unit_key)
from fdm_jax.evaluation.models import InpaintingModel, PutFdmInpainter, weights_digest
from fdm_jax.evaluation.report import render_table
from fdm_jax.evaluation.runner import METRICS, default_metrics, evaluate, open_image_source, resolve_metrics

__all__ = [
    "Bucket", "DEFAULT_BUCKETS", "EvaluationError", "InpaintingModel", "METRICS", "PutFdmInpainter",
    "assign_masks", "default_metrics", "evaluate", "hole_ratio", "open_image_source", "parse_buckets",
    "render_table", "resolve_metrics", "unit_key", "weights_digest",
]
