"""Evaluate an inpainting model per hole-ratio bucket: FID, LPIPS, SSIM, PSNR, MAE and diversity.

    python evaluate.py --checkpoint runs/demo --data ../shared/data/images/places2_256_freeform \\
        --masks pconv --buckets 0.2-0.4,0.4-0.6 --num-samples 5 --out runs/demo/eval

--checkpoint: an fdm_jax training run (the run root of `python train.py`, or phase directories),
original PUT + FDM .pth files (repeat the flag; the model sizes then come from --config), or
`random`. --data: a folder of images (a folder holding images/ and masks/ means its images/), or a
prepared tensorflow-datasets dataset (name, name/config, or its directory; --split, --tfds-data-dir).
--masks pconv: the NVIDIA irregular masks (--mask-dir, default ../shared/data/masks/pconv_test);
each image gets one mask per bucket whose hole ratio, measured at the model size, lies in the bucket
(lo, hi]. The paper's Table 1 uses 0.2-0.4 (small) and 0.4-0.6 (large).

Writes to --out: results.json, table.md (rows = methods, columns = metric x bucket, like the FDM
paper's Table 1, with the paper's numbers when the config is Paris or Places), grid.png, and the
samples and per-image metrics as they are produced. Running the same command again resumes: images
already done are not redone. Same seed, same settings -> same files. Several processes (hosts; the same
command with --coordinator_address/--num_processes/--process_id, or under srun / a TPU slice) split
the images and must share --out (one filesystem); process 0 merges their records and writes the
table, which equals a one-process run's. How every metric is computed
(the conventions of PUT's metric scripts): see fdm_jax/evaluation/.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
DEFAULT_MASK_DIR = REPO.parent / "shared" / "data" / "masks" / "pconv_test"


def _define(fv) -> None:
    from absl import flags

    from fdm_jax.cli import compilation_cache

    d = dict(flag_values=fv)
    flags.DEFINE_multi_string("checkpoint", None, "fdm_jax run directory, original .pth file (repeat for codec+FDM "
                              "and transformer), or 'random'", **d)
    flags.DEFINE_string("data", None, "folder of images, or a prepared tfds dataset name / directory", **d)
    flags.DEFINE_string("split", "validation", "tfds split", **d)
    flags.DEFINE_string("tfds-data-dir", None, "tfds data_dir of --data", **d)
    flags.DEFINE_enum("masks", "pconv", ["pconv"], "mask set: 'pconv' = the NVIDIA irregular masks of --mask-dir, "
                      "bucketed by hole ratio", **d)
    flags.DEFINE_string("mask-dir", str(DEFAULT_MASK_DIR), "folder of mask PNGs, 255 = hole", **d)
    flags.DEFINE_string("buckets", "0.2-0.4,0.4-0.6", "hole-ratio buckets lo-hi, comma-separated", **d)
    flags.DEFINE_integer("num-samples", 5, "samples per image and bucket", **d)
    flags.DEFINE_integer("num-images", None, "evaluate the first N images (default: all)", **d)
    flags.DEFINE_integer("seed", 0, "seed of the mask assignment and the samples", **d)
    flags.DEFINE_string("metrics", None, "comma-separated from fid,lpips,ssim,psnr,mae,l1,diversity (default: all "
                        "but l1; diversity needs --num-samples >= 2)", **d)
    flags.DEFINE_integer("top-k", None, "top-K token sampling (default: the config's sampling.top_k)", **d)
    flags.DEFINE_boolean("no-fdm", False, "evaluate PUT's pipeline: decode without the FDM", **d)
    flags.DEFINE_boolean("paste-known", False, "paste the known pixels into the samples before measuring (the "
                         "originals do not)", **d)
    flags.DEFINE_string("name", None, "row label of the table (default: method and checkpoint)", **d)
    flags.DEFINE_integer("batch-size", 8, "images per sampling call", **d)
    flags.DEFINE_integer("max-new-images", None, "stop after about N newly evaluated images (whole batches); run "
                         "again to continue", **d)
    flags.DEFINE_string("out", None, "output folder (also the resume state)", **d)
    flags.DEFINE_boolean("no-progress", False, "no progress bar", **d)
    for name in ("checkpoint", "data", "out"):
        flags.mark_flag_as_required(name, flag_values=fv)
    compilation_cache.define_flag(fv)
    from fdm_jax.train import distributed

    distributed.define_flags(fv)


def main(argv=None) -> int:
    from fdm_jax.cli.flags import run

    # --config: the model sizes of .pth files and 'random' (training runs carry their own config).
    return run(_main, argv, prog="evaluate.py", doc=__doc__, define=_define, config_default="paris")


def _main(args) -> int:
    from fdm_jax.cli import compilation_cache
    from fdm_jax.train import distributed

    try:  # before anything touches a JAX backend
        distributed.initialize_from_flags(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    compilation_cache.setup(args.compilation_cache)

    from fdm_jax.convert.pth_reader import PthFormatError
    from fdm_jax.convert.put_fdm import ConversionError
    from fdm_jax.data.masks import ProvidedMasks
    from fdm_jax.evaluation import PutFdmInpainter, evaluate, open_image_source, parse_buckets, resolve_metrics
    from fdm_jax.io.images import InputError

    try:
        buckets = parse_buckets(args.buckets)
        metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
        metrics = resolve_metrics(metrics, args.num_samples)
        source, data_info = open_image_source(args.data, split=args.split, tfds_data_dir=args.tfds_data_dir)
        masks = ProvidedMasks(args.mask_dir)
        masks.load(0, 8)  # a folder of photos is an error before the model loads (every mask is checked later)
        masks_info = {"kind": args.masks, "name": Path(args.mask_dir).name, "path": str(Path(args.mask_dir).resolve())}
        model = PutFdmInpainter.from_checkpoints(args.checkpoint, args.config, use_fdm=not args.no_fdm,
                                                 top_k=args.top_k, name=args.name)
        results = evaluate(model, source, masks, buckets, out_dir=args.out, num_samples=args.num_samples,
                           seed=args.seed, metrics=metrics, num_images=args.num_images, batch_size=args.batch_size,
                           paste_known=args.paste_known, max_new_images=args.max_new_images, data_info=data_info,
                           masks_info=masks_info, progress=not args.no_progress)
    except (InputError, ConversionError, PthFormatError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not distributed.is_primary():  # process 0 reports (it wrote the table)
        return 0
    if not results["complete"]:
        print(f"stopped after {results['new']} new image(s): {results['done']} of {results['total']} done in "
              f"{results['out_dir']}; run the same command again to continue")
        return 0
    out = Path(args.out)
    print((out / "table.md").read_text(), end="")
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'grid.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
