"""Pluralistic inpainting of one image from the command line.

    python -m fdm_jax.inpaint --checkpoint fdm_tuning.pth --checkpoint generator.pth \\
        --image photo.jpg --mask hole.png --num-samples 5 --seed 0 --out results/

Checkpoints: the name of a model shipped in the package (`put_fdm_small`, MODEL_CARD.md; its own
config and weights, SHA-256 checked); an fdm_jax training run (the run root that `python train.py`
writes, holding codec/ sampler/ fdm/ fdm_tuning/, or phase run directories: the codec and FDM come
from the latest phase, the transformer from `sampler`, the model sizes from the run's saved config); original
PUT+FDM `.pth` files (the codec+FDM file and the transformer file, in any order; or a directory
holding them); or `random` for a freshly initialised model (a smoke test of the pipeline: its samples
are noise). For `.pth` files and `random` the model sizes come from --config (default
configs/paris.py; use configs/paris.py:tiny for the fixtures' reduced models).

Image size policy: the image is scaled so its shorter side equals the model size (256 for the paper
configs; cv2 INTER_LINEAR) and the centre is cropped, as the original's inference preprocessing.
A mask of the image's original size follows the same resize (nearest) and crop; a mask of the model
size is used as is; any other size is an error. Masks: 8-bit PNG, by default white (255) = hole
(--mask-polarity hole-black for the opposite); non-binary masks are thresholded at 128 with a
warning. Instead of a mask, --mask-ratio R draws random rectangular holes covering R of the image.
Warnings, not errors: a mask that is 75 % hole or more (inverted polarity?), an image upscaled 4x or
more, or one whose centre crop keeps a third of its long side or less. The files and --out are
checked before the model loads; a truncated image file is an error.

Writes to --out: masked_input.png (holes black, as the original's masked_input/), sample_<k>.png
(the raw decoder output, as the original; --paste-known pastes the known pixels back), and
grid.png (input | masked input | samples side by side).

Other models (one deterministic result, sample_0.png, known pixels copied back as their originals):
  --model lama [--refine]   Big-LaMa (configs/big_lama.py; --checkpoint best.ckpt or a generator
                            state_dict, or random), at the image's own resolution (padded to 8 and
                            cropped back); --refine runs multiscale feature refinement with the
                            original's defaults (--refine-n-iters, --refine-lr, --refine-min-side).
  --model tsgl_lama [--refine]  TSGL-LaMa (configs/tsgl_lama.py, .pth), own resolution, padded to 32.
  --model tsgl_medfe        TSGL-MEDFE (configs/tsgl_medfe.py, .pth), 256x256 images only; its texture
                            input is the RTV image (tsmooth) as the original's, or the Gaussian-blur
                            fallback where the config says texture_source 'gaussian' (':tiny').
For these the mask must have the image's size (or use --mask-ratio).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def _read_inputs(args):
    """The image and mask files (or the --mask-ratio mask), read and checked before any model loads.
    Returns (image uint8 (H, W, 3), mask (h, w) 1 = known, or None for --mask-ratio)."""
    from fdm_jax.io.images import read_image, read_mask

    raw = read_image(args.image)
    mask = read_mask(args.mask, args.mask_polarity) if args.mask else None
    if mask is not None:
        _warn_suspicious_mask(mask, str(args.mask))
    return raw, mask


def _prepare_inputs(args, size: int, raw=None, raw_mask=None):
    from fdm_jax.io.images import check_mask, fit_mask, random_mask, resize_and_center_crop

    if raw is None:
        raw, raw_mask = _read_inputs(args)
    _warn_scale(raw.shape[:2], size, str(args.image))
    image, geometry = resize_and_center_crop(raw, size)
    if raw_mask is not None:
        mask = fit_mask(raw_mask, raw.shape[:2], geometry, size, str(args.mask))
    else:
        mask = random_mask(size, args.mask_ratio, args.seed)
    check_mask(mask, str(args.mask or "--mask-ratio mask"))
    return image.astype(np.float32), mask.astype(np.float32)


# Thresholds of the warnings for inputs that are valid but probably not what was meant.
MOSTLY_HOLE = 0.75  # the paper's masks are up to 60 % hole; far more usually means inverted polarity
MAX_UPSCALE = 4.0  # upscaled this much or more: the model sees mostly interpolation
MIN_KEPT = 1 / 3  # the centre crop keeps this share of the long side or less


def _warn_suspicious_mask(known: np.ndarray, path: str) -> None:
    import warnings

    hole = float(np.mean(known == 0))
    if hole >= MOSTLY_HOLE:
        warnings.warn(f"mask {path}: {hole:.0%} of the pixels are holes; if white marks the KNOWN region, "
                      "use --mask-polarity hole-black", stacklevel=3)


def _warn_scale(hw, size: int, path: str) -> None:
    import warnings

    h, w = hw
    if size / min(h, w) >= MAX_UPSCALE:
        warnings.warn(f"image {path}: {w}x{h} is upscaled {size / min(h, w):.1f}x to the model's {size}x{size}; "
                      "the result will be blurry (give a larger image)", stacklevel=3)
    if min(h, w) / max(h, w) <= MIN_KEPT:
        warnings.warn(f"image {path}: {w}x{h} is centre-cropped to a square, keeping {min(h, w) / max(h, w):.0%} "
                      "of its long side; crop it to the region you want first", stacklevel=3)


def _check_out(out) -> None:
    """--out must be a directory or creatable as one; checked before any work, since the files are
    written only after sampling."""
    import os

    from fdm_jax.io.images import InputError

    p = Path(out)
    if p.exists() and not p.is_dir():
        raise InputError(f"--out {p}: exists and is not a directory; expected an output directory")
    parent = next((a for a in p.absolute().parents if a.exists()), None)
    if not p.exists() and parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK)):
        raise InputError(f"--out {p}: cannot create it in {parent}; expected a writable location")
    if p.is_dir() and not os.access(p, os.W_OK):
        raise InputError(f"--out {p}: not writable; expected a writable output directory")


def run(args) -> Path:
    """PUT + FDM through the Python API (fdm_jax.api): this command only reads files and writes them."""
    import jax

    from fdm_jax.api import load
    from fdm_jax.io.images import write_image
    from fdm_jax.io.visualize import labelled_grid

    raw, raw_mask = _read_inputs(args)
    model = load(args.checkpoint, args.config, dtype=args.dtype)
    image, mask = _prepare_inputs(args, model.image_size, raw, raw_mask)
    # The run's sampling settings unless given on the command line (the demo's sampler needs top_k 2).
    samples = model.inpaint(image.astype(np.uint8), mask, key=jax.random.key(args.seed), num_samples=args.num_samples,
                            top_k=args.top_k, num_token_per_iter=args.num_token_per_iter, use_fdm=not args.no_fdm,
                            schedule=args.schedule, num_passes=args.num_passes,
                            paste_known=args.paste_known, mask_polarity="known", progress=True)
    out_dir = Path(args.out)
    masked = image * mask[..., None]
    write_image(out_dir / "masked_input.png", masked)
    for k, s in enumerate(samples):
        write_image(out_dir / f"sample_{k}.png", s)
    tag = "" if args.no_fdm else " (FDM)"
    grid = labelled_grid([[image, masked, *samples]],
                         col_labels=["input", "masked input"] + [f"sample {k}{tag}" for k in range(len(samples))])
    write_image(out_dir / "grid.png", grid)
    return out_dir


def run_generator(args) -> Path:
    """--model lama | tsgl_lama | tsgl_medfe."""
    from fdm_jax.inference import generators as gi
    from fdm_jax.io.images import InputError, check_mask, random_mask, read_image, read_mask, write_image

    if len(args.checkpoint) != 1:
        raise InputError(f"--model {args.model}: give one --checkpoint (got {len(args.checkpoint)})")
    image = read_image(args.image)
    h, w = image.shape[:2]
    if args.mask:
        known = read_mask(args.mask, args.mask_polarity)
        _warn_suspicious_mask(known, str(args.mask))
    else:
        known = random_mask(max(h, w), args.mask_ratio, args.seed)[:h, :w]
    check_mask(known, str(args.mask or "--mask-ratio mask"))
    gen = gi.load(args.model, args.checkpoint[0], args.config)
    overrides = {k: v for k, v in (("n_iters", args.refine_n_iters), ("lr", args.refine_lr),
                                   ("min_side", args.refine_min_side)) if v is not None}
    result = gi.inpaint(gen, image, known, refine=args.refine, refine_overrides=overrides, progress=True)
    out_dir = Path(args.out)
    masked = image.astype(np.float32) * known[..., None]
    write_image(out_dir / "masked_input.png", masked)
    write_image(out_dir / "sample_0.png", result)
    if result.shape[:2] == image.shape[:2]:
        write_image(out_dir / "grid.png", np.concatenate([image.astype(np.float32), masked, result], axis=1))
    return out_dir


def _define(fv) -> None:
    from absl import flags

    from fdm_jax.cli import compilation_cache

    d = dict(flag_values=fv)
    flags.DEFINE_multi_string("checkpoint", None, "shipped model name (put_fdm_small), fdm_jax run directory, "
                              "original .pth file (repeat for codec+FDM and transformer), a directory of .pth "
                              "files, or 'random'", **d)
    from fdm_jax.inference.registry import REGISTRY

    flags.DEFINE_enum("model", "put_fdm", list(REGISTRY),
                      "put_fdm (pluralistic, default), lama, tsgl_lama, tsgl_medfe", **d)
    flags.DEFINE_string("image", None, "image file", **d)
    flags.DEFINE_string("mask", None, "mask PNG (see --mask-polarity); or --mask-ratio", **d)
    flags.DEFINE_float("mask-ratio", None, "random rectangular holes covering this fraction; or --mask", **d)
    flags.DEFINE_enum("mask-polarity", "hole-white", ["hole-white", "hole-black"], "which mask value is the hole", **d)
    flags.DEFINE_integer("num-samples", 1, "samples to draw (put_fdm)", lower_bound=1, **d)
    flags.DEFINE_integer("seed", 0, "seed of the samples and of --mask-ratio", **d)
    flags.DEFINE_integer("top-k", None, "top-K of the token sampling (default: the config's sampling.top_k; "
                         "paper: 50; 1 = greedy)", **d)
    flags.DEFINE_integer("num-token-per-iter", None, "patches filled per transformer pass (default: the config's "
                         "sampling.num_token_per_iter; paper: 1; -1 = all in one pass with top-50)", **d)
    flags.DEFINE_enum("schedule", None, ["sequential", "parallel"], "fill order (default: the config's "
                      "sampling.schedule): the original's sequential one, or MaskGIT's parallel cosine schedule", **d)
    flags.DEFINE_integer("num-passes", None, "transformer passes of the parallel schedule (default: the config's "
                         "sampling.num_passes)", lower_bound=1, **d)
    flags.DEFINE_boolean("no-fdm", False, "decode without the FDM (PUT features only)", **d)
    flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"], "computation dtype of put_fdm (default: the "
                      "config's model.dtype, float32): bfloat16 matmuls with float32 parameters", **d)
    flags.DEFINE_boolean("paste-known", False, "paste the known input pixels into the samples", **d)
    flags.DEFINE_boolean("refine", False, "multiscale feature refinement (--model lama, tsgl_lama)", **d)
    flags.DEFINE_integer("refine-n-iters", None, "forward passes per refined scale (original: 15)", **d)
    flags.DEFINE_float("refine-lr", None, "Adam learning rate of the refinement (original: 0.002)", **d)
    flags.DEFINE_integer("refine-min-side", None, "refinement pyramid's smallest side (original: 512)", **d)
    flags.DEFINE_string("out", None, "output directory", **d)
    for name in ("checkpoint", "image", "out"):
        flags.mark_flag_as_required(name, flag_values=fv)
    flags.register_validator("refine", lambda v: not v or fv["model"].value in ("lama", "tsgl_lama"),
                             "--refine needs --model lama or tsgl_lama", **d)
    flags.register_validator("dtype", lambda v: v is None or fv["model"].value == "put_fdm",
                             "--dtype applies to --model put_fdm only", **d)
    flags.register_multi_flags_validator(["mask", "mask-ratio"], lambda f: (f["mask"] is None) != (f["mask-ratio"] is None),
                                         "give exactly one of --mask and --mask-ratio", **d)
    compilation_cache.define_flag(fv)


def main(argv=None) -> int:
    from fdm_jax.cli.flags import run as run_command

    # --config (optional): the model sizes of .pth files and 'random' (default: the paper config of
    # --model: paris, big_lama, tsgl_lama, tsgl_medfe); training runs carry their own config.
    return run_command(_main, argv, prog="python -m fdm_jax.inpaint", doc=__doc__, define=_define)


def _main(args) -> int:
    from fdm_jax.cli import compilation_cache

    from fdm_jax.convert.pth_reader import PthFormatError
    from fdm_jax.convert.put_fdm import ConversionError
    from fdm_jax.io.images import InputError

    compilation_cache.setup(args.compilation_cache)
    try:
        _check_out(args.out)
        out = run(args) if args.model == "put_fdm" else run_generator(args)
    except (InputError, ConversionError, PthFormatError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = args.num_samples if args.model == "put_fdm" else 1
    print(f"wrote {n} sample(s), masked_input.png and grid.png to {out}")
    return 0


def cli() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    cli()
