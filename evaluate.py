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
already done are not redone. Same seed, same settings -> same files. How every metric is computed
(the conventions of PUT's metric scripts): see fdm_jax/evaluation/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
DEFAULT_MASK_DIR = REPO.parent / "shared" / "data" / "masks" / "pconv_test"


def _parse(argv):
    ap = argparse.ArgumentParser(prog="evaluate.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", action="append", required=True,
                    help="fdm_jax run directory, original .pth file (repeat for codec+FDM and transformer), "
                         "or 'random'")
    ap.add_argument("--config", default="configs/paris.py",
                    help="config file[:variant] giving the model sizes for .pth files and 'random' "
                         "(runs carry their own)")
    ap.add_argument("--data", required=True, help="folder of images, or a prepared tfds dataset name / directory")
    ap.add_argument("--split", default="validation", help="tfds split (default: %(default)s)")
    ap.add_argument("--tfds-data-dir", default=None, help="tfds data_dir of --data")
    ap.add_argument("--masks", default="pconv", choices=["pconv"],
                    help="mask set: 'pconv' = the NVIDIA irregular masks of --mask-dir, bucketed by hole ratio")
    ap.add_argument("--mask-dir", default=str(DEFAULT_MASK_DIR),
                    help="folder of mask PNGs, 255 = hole (default: %(default)s)")
    ap.add_argument("--buckets", default="0.2-0.4,0.4-0.6",
                    help="hole-ratio buckets lo-hi, comma-separated (default: %(default)s)")
    ap.add_argument("--num-samples", type=int, default=5, help="samples per image and bucket (default: %(default)s)")
    ap.add_argument("--num-images", type=int, default=None, help="evaluate the first N images (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--metrics", default=None,
                    help="comma-separated from fid,lpips,ssim,psnr,mae,l1,diversity (default: all but l1; diversity "
                         "needs --num-samples >= 2)")
    ap.add_argument("--top-k", type=int, default=None,
                    help="top-K token sampling (default: the config's sampling.top_k)")
    ap.add_argument("--no-fdm", action="store_true", help="evaluate PUT's pipeline: decode without the FDM")
    ap.add_argument("--paste-known", action="store_true",
                    help="paste the known pixels into the samples before measuring (the originals do not)")
    ap.add_argument("--name", default=None, help="row label of the table (default: method and checkpoint)")
    ap.add_argument("--batch-size", type=int, default=8, help="images per sampling call (default: %(default)s)")
    ap.add_argument("--max-new-images", type=int, default=None,
                    help="stop after about N newly evaluated images (whole batches); run again to continue")
    ap.add_argument("--out", required=True, help="output folder (also the resume state)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    from fdm_jax.cli import compilation_cache

    compilation_cache.add_argument(ap)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)

    from fdm_jax.cli import compilation_cache

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
